/**
 * HTTP RED metrics (rate, errors, duration) by route template, method and status class.
 *
 * This is the per-request hot path, so `end()` does one Map lookup (on the route template
 * string, whose hash the engine caches), an array index for method × status class, a
 * histogram bucket scan and two rolling-window records. Labels are bounded by design: the
 * route is the template, never the URL; methods outside the standard nine become `OTHER`;
 * status codes collapse to their class.
 */
import { performance } from 'node:perf_hooks';
import type { Clock } from '../clock.ts';
import { RollingHistogram, type WindowStats } from './rolling.ts';
import type { CounterFamily, CounterSeries, HistogramFamily, HistogramSeries } from './series-cap.ts';
import { observe } from './series-cap.ts';

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'CONNECT', 'TRACE', 'OTHER'] as const;
const CLASSES = ['unknown', '1xx', '2xx', '3xx', '4xx', '5xx'] as const;
const OTHER = METHODS.length - 1;

function methodIndex(method: string): number {
  switch (method) {
    case 'GET':
      return 0;
    case 'HEAD':
      return 1;
    case 'POST':
      return 2;
    case 'PUT':
      return 3;
    case 'PATCH':
      return 4;
    case 'DELETE':
      return 5;
    case 'OPTIONS':
      return 6;
    case 'CONNECT':
      return 7;
    case 'TRACE':
      return 8;
    default:
      return OTHER;
  }
}

function classIndex(status: number): number {
  return status >= 100 && status < 600 ? (status / 100) | 0 : 0;
}

interface Pair {
  total: CounterSeries;
  duration: HistogramSeries;
}

interface RouteEntry {
  readonly route: string;
  readonly pairs: Array<Pair | undefined>;
  // Per method; allocated on first use and only for the first `routeStatsLimit` routes.
  readonly windows: Array<RollingHistogram | undefined>;
}

/** A route's latency over the last minute, as {@link HttpMetrics.slowestRoutes} lists it. */
export interface RouteStats {
  method: string;
  route: string;
  count: number;
  p50Ms: number;
  p99Ms: number;
}

/** @internal What {@link Metrics} hands its `HttpMetrics`. */
export interface HttpMetricsParts {
  clock: Clock;
  requests: CounterFamily;
  duration: HistogramFamily;
  routeStatsLimit: number;
}

/**
 * Records HTTP requests. Get one from `new Metrics().http`; adapters call `start()` when a
 * request arrives and `end()` when its response finished or its socket closed.
 *
 * @example
 * ```ts
 * import { Metrics } from 'keel/observe';
 * await using metrics = new Metrics({ processMetrics: false });
 * const mark = metrics.http.start();
 * metrics.http.end(mark, 'GET', '/api/v1/topics/:id', 200);
 * ```
 */
export class HttpMetrics {
  readonly #clock: Clock;
  readonly #requests: CounterFamily;
  readonly #duration: HistogramFamily;
  readonly #bounds: Float64Array;
  readonly #routes = new Map<string, RouteEntry>();
  readonly #routeStatsLimit: number;
  readonly #all: RollingHistogram;
  #routeWindows = 0;
  #inFlight = 0;

  /** @internal Created by {@link Metrics}. */
  constructor(parts: HttpMetricsParts) {
    this.#clock = parts.clock;
    this.#requests = parts.requests;
    this.#duration = parts.duration;
    this.#bounds = parts.duration.bounds;
    this.#routeStatsLimit = parts.routeStatsLimit;
    this.#all = new RollingHistogram({ clock: parts.clock, bucketMs: 1_000, buckets: 300 });
  }

  /** Marks a request's start (a `performance.now()` value to pass to {@link end}). Counts it in flight. */
  start(): number {
    this.#inFlight++;
    return performance.now();
  }

  /**
   * Records a finished request. `route` is the route template (`'/api/v1/topics/:id'`), or
   * `'<unmatched>'` when no route matched. Never throws.
   */
  end(startMark: number, method: string, route: string, statusCode: number): void {
    const ms = performance.now() - startMark;
    if (this.#inFlight > 0) this.#inFlight--;
    const m = methodIndex(method);
    const c = classIndex(statusCode);
    const error = c === 5;
    const now = this.#clock.now();
    this.#all.record(now, ms, error);
    let entry = this.#routes.get(route);
    if (entry === undefined) {
      entry = this.#newRoute(route, m, c);
      if (entry === undefined) return;
    }
    const pair = entry.pairs[m * 6 + c] ?? this.#newPair(entry, m, c);
    if (pair !== undefined) {
      pair.total.value++;
      observe(this.#bounds, pair.duration, ms / 1000);
    }
    const window = entry.windows[m];
    if (window !== undefined) window.record(now, ms, error);
    else if (this.#routeWindows < this.#routeStatsLimit) this.#newWindow(entry, m).record(now, ms, error);
  }

  #newRoute(route: string, m: number, c: number): RouteEntry | undefined {
    // Admit the route only if its first series fits under the cap: the route map must stay
    // bounded by the same cap as the metric, or unmatched-URL floods would grow it.
    const entry: RouteEntry = { route, pairs: new Array(METHODS.length * 6), windows: new Array(METHODS.length) };
    if (this.#newPair(entry, m, c) === undefined) return undefined;
    this.#routes.set(route, entry);
    return entry;
  }

  #newPair(entry: RouteEntry, m: number, c: number): Pair | undefined {
    const labels = [METHODS[m] as string, entry.route, CLASSES[c] as string];
    // Ask both before giving up, so a refused sample is counted as dropped for both metrics.
    // The two hold the same keys under the same cap, so they admit or refuse a pair together.
    const duration = this.#duration.series(...labels);
    const total = this.#requests.series(...labels);
    if (duration === undefined || total === undefined) return undefined;
    const pair = { total, duration };
    entry.pairs[m * 6 + c] = pair;
    return pair;
  }

  #newWindow(entry: RouteEntry, m: number): RollingHistogram {
    this.#routeWindows++;
    const w = new RollingHistogram({ clock: this.#clock, bucketMs: 10_000, buckets: 6 });
    entry.windows[m] = w;
    return w;
  }

  /** Requests started and not yet ended. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** Rate, error share and latency percentiles over the last `windowMs` (≤ 5 min). */
  window(windowMs: number): WindowStats {
    return this.#all.stats(windowMs);
  }

  /** The slowest routes by p99 over the last minute, slowest first. */
  slowestRoutes(limit = 10): RouteStats[] {
    const out: RouteStats[] = [];
    for (const entry of this.#routes.values()) {
      for (let m = 0; m < METHODS.length; m++) {
        const w = entry.windows[m];
        if (!w) continue;
        const s = w.stats(60_000);
        if (s.count > 0) out.push({ method: METHODS[m] as string, route: entry.route, count: s.count, p50Ms: s.p50Ms, p99Ms: s.p99Ms });
      }
    }
    out.sort((a, b) => b.p99Ms - a.p99Ms || b.count - a.count);
    return out.slice(0, limit);
  }
}
