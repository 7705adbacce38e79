/**
 * `Metrics`: one object per service that owns a prom-client `Registry`, the HTTP RED
 * metrics, process metrics, the `keel:*` channel subscriptions, the `/metrics` exposition
 * and the JSON snapshot the dashboard reads.
 *
 * Nothing is global: each instance has its own registry (prom-client's default registry is
 * never touched) and releases its subscriptions, observer and timer on close.
 */
import { performance } from 'node:perf_hooks';
import { Registry } from 'prom-client';
import type { Clock } from '../clock.ts';
import { booleanOption, clockOption, durationOption, intOption, objectOptions, optionError } from '../internal/options.ts';
import { Scope } from '../lifecycle/scope.ts';
import { type BreakerStats, type CacheStats, ChannelMetrics } from './channel-metrics.ts';
import { EventLoopMonitor, type EventLoopMonitorOptions } from './event-loop.ts';
import { HttpMetrics, type RouteStats } from './http-metrics.ts';
import { ProcessMetrics } from './process-metrics.ts';
import type { WindowStats } from './rolling.ts';
import { CounterFamily, GaugeFamily, HistogramFamily, type SeriesLimit } from './series-cap.ts';

/**
 * Latency buckets in seconds. 0.127 is an edge so a 127 ms SLO reads straight off the
 * histogram (`le="0.127"`) instead of being interpolated between 0.1 and 0.25.
 *
 * @example
 * ```ts
 * import { HTTP_BUCKETS, Metrics } from 'keel/observe';
 * // Finer low buckets; 0.127 stays in any list.
 * const metrics = new Metrics({ httpBuckets: [0.001, 0.0025, ...HTTP_BUCKETS] });
 * await metrics.close();
 * ```
 */
export const HTTP_BUCKETS: readonly number[] = Object.freeze([0.005, 0.01, 0.025, 0.05, 0.1, 0.127, 0.25, 0.5, 1, 2.5, 5, 10]);

export interface MetricsOptions {
  /** Prepended to every metric name. Default: `'keel_'`. */
  prefix?: string;
  /** The prom-client registry to register in. Default: a new `Registry` of this instance's own. */
  registry?: Registry;
  /** Most series per metric; samples for further series are dropped and counted. Default: `1000`. */
  seriesCap?: number;
  /** How long a rendered scrape is reused, in ms (clock time). Default: `1000`. */
  scrapeCacheMs?: number;
  /** Export event-loop, heap, RSS, CPU, GC and active-resource metrics. Default: `true`. */
  processMetrics?: boolean;
  /** Options for the owned {@link EventLoopMonitor}, or a monitor to share (not closed by `close()`). Default: `{}`. */
  eventLoop?: EventLoopMonitorOptions | EventLoopMonitor;
  /** Subscribe to the `keel:*` diagnostics channels. Default: `true`. */
  channels?: boolean;
  /** HTTP latency bucket edges in seconds; 0.127 is always added. Default: {@link HTTP_BUCKETS}. */
  httpBuckets?: readonly number[];
  /** How many (route, method) pairs keep rolling stats for `snapshot().routes`. Default: `100`. */
  routeStatsLimit?: number;
  /** Drives the rolling windows, the scrape cache and the event-loop window. Default: the real clock. */
  clock?: Clock;
}

export type { WindowStats } from './rolling.ts';

/** The dashboard's JSON: everything it shows, without Prometheus. */
export interface MetricsSnapshot {
  /** `clock.now()` when taken. */
  at: number;
  windows: { '10s': WindowStats; '1m': WindowStats; '5m': WindowStats };
  process: {
    eventLoopDelayP50Ms: number;
    eventLoopDelayP99Ms: number;
    eventLoopUtilization: number;
    heapUsedBytes: number;
    heapTotalBytes: number;
    rssBytes: number;
    activeHandles: number;
    inFlight: number;
    /** GC pause time over the last 10 s; present when `processMetrics` is on. */
    gcPauseMs10s?: number;
  };
  shed: { total: number; last10s: number };
  cache: CacheStats[];
  breakers: BreakerStats[];
  /** Slowest first by p99 over the last minute, top 10. */
  routes: RouteStats[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

function bucketsOption(value: unknown): number[] {
  if (value === undefined) return [...HTTP_BUCKETS];
  const ok =
    Array.isArray(value) &&
    value.length > 0 &&
    value.every((v, i) => typeof v === 'number' && Number.isFinite(v) && v > 0 && (i === 0 || v > (value[i - 1] as number)));
  if (!ok) throw optionError('Metrics', 'httpBuckets', 'a non-empty array of increasing positive numbers', value);
  return [...new Set([...(value as number[]), 0.127])].sort((a, b) => a - b);
}

type Family = CounterFamily | GaugeFamily | HistogramFamily;

/**
 * Metrics for one service.
 *
 * @example
 * ```ts
 * import { Metrics } from 'keel/observe';
 * await using metrics = new Metrics();
 * const mark = metrics.http.start();
 * metrics.http.end(mark, 'GET', '/api/v1/forums', 200);
 * const { contentType, body } = await metrics.scrape(); // serve these on GET /metrics
 * ```
 */
export class Metrics implements AsyncDisposable {
  readonly registry: Registry;
  readonly http: HttpMetrics;
  readonly eventLoop: EventLoopMonitor;
  readonly prefix: string;
  readonly #clock: Clock;
  readonly #scope: Scope;
  readonly #families: Family[] = [];
  readonly #scrapeCacheMs: number;
  readonly #scrapeDuration: GaugeFamily;
  readonly #process: ProcessMetrics | undefined;
  readonly #channels: ChannelMetrics | undefined;
  #cached: { contentType: string; body: string } | undefined;
  #cachedAt = Number.NEGATIVE_INFINITY;
  #rendering: Promise<{ contentType: string; body: string }> | undefined;

  constructor(options?: MetricsOptions) {
    const o = objectOptions('Metrics', options);
    const prefix = o.prefix ?? 'keel_';
    if (typeof prefix !== 'string' || (prefix !== '' && !NAME.test(prefix))) {
      throw optionError('Metrics', 'prefix', 'a valid Prometheus metric-name prefix ([a-zA-Z_:][a-zA-Z0-9_:]*)', prefix);
    }
    this.prefix = prefix;
    const registry = o.registry ?? new Registry();
    if (
      typeof registry !== 'object' ||
      registry === null ||
      typeof (registry as Registry).registerMetric !== 'function' ||
      typeof (registry as Registry).metrics !== 'function'
    ) {
      throw optionError('Metrics', 'registry', 'a prom-client Registry', registry);
    }
    const cap = intOption('Metrics', 'seriesCap', o.seriesCap, 1_000, { min: 1 });
    this.#scrapeCacheMs = durationOption('Metrics', 'scrapeCacheMs', o.scrapeCacheMs, 1_000);
    const processMetrics = booleanOption('Metrics', 'processMetrics', o.processMetrics, true);
    const channels = booleanOption('Metrics', 'channels', o.channels, true);
    const httpBuckets = bucketsOption(o.httpBuckets);
    const routeStatsLimit = intOption('Metrics', 'routeStatsLimit', o.routeStatsLimit, 100);
    this.#clock = clockOption('Metrics', o.clock);
    if (o.eventLoop !== undefined && (typeof o.eventLoop !== 'object' || o.eventLoop === null)) {
      throw optionError('Metrics', 'eventLoop', 'EventLoopMonitor options or an EventLoopMonitor', o.eventLoop);
    }
    this.#scope = new Scope({ name: 'metrics', clock: this.#clock });
    // Everything is validated; from here on the constructor only builds.
    this.registry = registry;
    if (o.eventLoop instanceof EventLoopMonitor) {
      this.eventLoop = o.eventLoop;
    } else {
      this.eventLoop = this.#scope.add(new EventLoopMonitor({ clock: this.#clock, ...(o.eventLoop as EventLoopMonitorOptions) }));
    }

    // The dropped counter's label values are this instance's own metric names, a fixed set.
    const dropped = new CounterFamily(
      {
        name: `${prefix}metrics_series_dropped_total`,
        help: 'Samples dropped because their metric hit its series cap, by metric.',
        labelNames: ['metric'],
      },
      { cap: Number.POSITIVE_INFINITY, dropped() {} },
    );
    const limit: SeriesLimit = { cap, dropped: (metric) => dropped.inc([metric]) };
    this.#scrapeDuration = new GaugeFamily(
      { name: `${prefix}metrics_scrape_duration_seconds`, help: 'Time the last /metrics render took.' },
      limit,
    );
    this.#scrapeDuration.set([], 0);
    const labelNames = ['method', 'route', 'status_class'];
    const requests = new CounterFamily(
      { name: `${prefix}http_requests_total`, help: 'HTTP requests, by method, route template and status class.', labelNames },
      limit,
    );
    const duration = new HistogramFamily(
      {
        name: `${prefix}http_request_duration_seconds`,
        help: 'HTTP request duration, by method, route template and status class.',
        labelNames,
      },
      limit,
      httpBuckets,
    );
    const inFlight: GaugeFamily = new GaugeFamily(
      {
        name: `${prefix}http_requests_in_flight`,
        help: 'HTTP requests started and not yet finished.',
        collect: () => inFlight.set([], this.http.inFlight),
      },
      limit,
    );
    inFlight.set([], 0);
    this.http = new HttpMetrics({ clock: this.#clock, requests, duration, routeStatsLimit });
    this.#families.push(requests, duration, inFlight, this.#scrapeDuration, dropped);

    if (processMetrics) {
      this.#process = new ProcessMetrics({ prefix, limit, eventLoop: this.eventLoop, clock: this.#clock });
      this.#scope.add(() => this.#process?.close());
      this.#families.push(...this.#process.families);
    }
    if (channels) {
      this.#channels = new ChannelMetrics({ prefix, limit, clock: this.#clock });
      this.#scope.add(() => this.#channels?.close());
      this.#families.push(...this.#channels.families);
    }
    // Registration is the step that can fail (a name already taken in a shared registry);
    // nothing is subscribed or observed until it has succeeded.
    const unregister = (): void => {
      for (const f of this.#families) if (registry.getSingleMetric(f.name) === (f as unknown)) registry.removeSingleMetric(f.name);
    };
    try {
      for (const f of this.#families) registry.registerMetric(f as never);
    } catch (err) {
      unregister();
      void this.#scope.close();
      throw err;
    }
    // Unregister on close, so a shared registry can host a new Metrics afterwards.
    this.#scope.add(unregister);
    this.#process?.start();
    this.#channels?.start();
  }

  /**
   * The Prometheus text exposition. Rendered at most once per `scrapeCacheMs` (concurrent
   * scrapes share one render), so a scrape storm costs one render per window.
   */
  scrape(): Promise<{ contentType: string; body: string }> {
    if (this.#cached && this.#clock.now() - this.#cachedAt < this.#scrapeCacheMs) return Promise.resolve(this.#cached);
    this.#rendering ??= this.#render().finally(() => {
      this.#rendering = undefined;
    });
    return this.#rendering;
  }

  async #render(): Promise<{ contentType: string; body: string }> {
    const started = performance.now();
    const body = await this.registry.metrics();
    // Exported on the next render: this one's text is already built.
    this.#scrapeDuration.set([], (performance.now() - started) / 1000);
    this.#cached = { contentType: this.registry.contentType, body };
    this.#cachedAt = this.#clock.now();
    return this.#cached;
  }

  /** Everything the dashboard shows, as JSON-ready data. Costs tens of microseconds; poll it, don't call it per request. */
  snapshot(): MetricsSnapshot {
    const loop = this.eventLoop.sample();
    const proc: MetricsSnapshot['process'] = {
      eventLoopDelayP50Ms: loop.delayP50Ms,
      eventLoopDelayP99Ms: loop.delayP99Ms,
      eventLoopUtilization: loop.utilization,
      heapUsedBytes: loop.heapUsedBytes,
      heapTotalBytes: loop.heapTotalBytes,
      rssBytes: loop.rssBytes,
      activeHandles: process.getActiveResourcesInfo().length,
      inFlight: this.http.inFlight,
    };
    if (this.#process) proc.gcPauseMs10s = this.#process.gcPauseMs(10_000);
    return {
      at: this.#clock.now(),
      windows: { '10s': this.http.window(10_000), '1m': this.http.window(60_000), '5m': this.http.window(300_000) },
      process: proc,
      shed: this.#channels?.shed() ?? { total: 0, last10s: 0 },
      cache: this.#channels?.caches() ?? [],
      breakers: this.#channels?.breakers() ?? [],
      routes: this.http.slowestRoutes(10),
    };
  }

  /** Unsubscribes, stops the GC observer and the owned event-loop monitor, unregisters the metrics. Idempotent. */
  close(): Promise<void> {
    return this.#scope.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
