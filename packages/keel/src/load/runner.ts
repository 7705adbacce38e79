/**
 * The load runner. Closed model: each connection sends its next request as soon as the
 * previous response arrives (up to `pipelining` in flight). Open model: requests are due at
 * intended times from a {@link Schedule}; latency is measured from the intended time, so a
 * stalled server shows in the corrected histogram as it would to real users (wrk2's
 * coordinated-omission correction), while the uncorrected histogram shows service time.
 *
 * Time comes from `performance.now()`, not the injectable Clock: the runner measures real
 * latency, and the parts with logic (schedule, thresholds, histograms) are tested alone.
 */
import { booleanOption, durationOption, functionOption, intOption, numberOption, objectOptions } from '../internal/options.ts';
import type { LatencySummary, WindowStats } from './histogram.ts';
import { Run } from './run.ts';
import { type Scenario, scenarioSource } from './scenario.ts';
import { Schedule, type Stage } from './schedule.ts';
import { type ThresholdResult, ThresholdSet } from './thresholds.ts';

/** Options of {@link runLoad}. */
export interface LoadOptions {
  /** Target URL; its path is requested unless a `scenario` is given. */
  url: string;
  /** Requests to replay instead of the URL's path. */
  scenario?: Scenario;
  /** Method for the URL mode. Default `GET`. */
  method?: string;
  /**
   * Headers for every request. With a `scenario`, a header the scenario or the request sets
   * itself wins (names compared case-insensitively).
   */
  headers?: Record<string, string>;
  body?: string;
  /** Connections, 1 to 10,000. Default 10. */
  connections?: number;
  /** Requests in flight per connection (HTTP/1.1 pipelining), 1 to 1,000. Default 1. */
  pipelining?: number;
  /** Run length in ms (closed model and constant rate). Default 10000. */
  durationMs?: number;
  /** Open model: requests per second. */
  rate?: number;
  /** Open model: rate stages (overrides `rate` and `durationMs`). */
  stages?: Stage[];
  /**
   * Runs this long first, at the same load (closed model, or `rate`), on connections of its
   * own, and discards what it measured; the result is the run after it. 0: none. Default 0.
   * A fresh generator's first seconds (its JIT, its first GCs) and a cold server's add to
   * the open model's tail (a bare node:http server at 15% of its capacity: first-second p99
   * 13-100 ms, then 0.4 ms); wrk2 drops its first 10 s for the same reason. Not with `stages`,
   * which already ramp up from 0.
   */
  warmupMs?: number;
  /** Per-request timeout in ms. Default 10000. */
  timeoutMs?: number;
  /** Thresholds, e.g. `['p(99)<500', 'rate<0.01']`; each must hold over the run and in every window. */
  thresholds?: string[];
  /** Stop as soon as a window fails a threshold. Default false. */
  abortOnFail?: boolean;
  /** Window length in ms, at least 10. Default 1000. */
  windowMs?: number;
  /** Windows kept (oldest dropped beyond). Default 3600. */
  maxWindows?: number;
  /** PRNG seed for scenario templates. Default 1. */
  seed?: number;
  /** Stops the run early (it still resolves with what was measured). */
  signal?: AbortSignal;
  /** Called after each window (the progress line uses it). */
  onWindow?: (w: WindowStats, elapsedMs: number) => void;
}

/** What {@link runLoad} resolves to. */
export interface LoadResult {
  model: 'closed' | 'open';
  url: string;
  /**
   * When the run's clock started (ms since the Unix epoch, once every connection was up).
   * Window `t`s count from here, so windows line up with the server's logs and metrics.
   */
  startedAt: number;
  connections: number;
  pipelining: number;
  durationMs: number;
  sent: number;
  completed: number;
  /** Open model: requests whose send was delayed because every connection was busy. */
  delayed: number;
  /** Open model: scheduled requests never sent before the run ended. */
  missed: number;
  targetRate?: number;
  expected?: number;
  rps: number;
  bytes: number;
  statusCodes: Record<string, number>;
  /**
   * `timeouts` and `socket` count requests lost that way; `unsent` counts requests that
   * failed because their connection could not be made (closed model: each failed connection
   * attempt; open model: a due request waiting for a connection when one failed);
   * `connections` counts connections lost or refused. `rate` is `total` over attempts
   * (responses + timeouts + socket + unsent).
   */
  errors: {
    total: number;
    non2xx: number;
    timeouts: number;
    socket: number;
    unsent: number;
    connections: number;
    rate: number;
  };
  /** From the intended send time (open model) or the send time (closed model, equal). */
  latency: LatencySummary;
  uncorrected: LatencySummary;
  windows: WindowStats[];
  thresholds: ThresholdResult[];
  aborted: boolean;
  warnings: string[];
  ok: boolean;
  /** What the warm-up (`warmupMs`) did before the measured run, when there was one. */
  warmup?: { durationMs: number; completed: number; errors: number; p99: number };
}

/** `scenario` with `headers` under each request's own (the CLI's `-H` was dropped with `-s`). */
function withHeaders(scenario: Scenario, headers: Record<string, string> | undefined): Scenario {
  if (!headers || !Array.isArray(scenario?.requests)) return scenario;
  return {
    ...scenario,
    requests: scenario.requests.map((r) => {
      const own = new Set(Object.keys({ ...scenario.headers, ...r?.headers }).map((k) => k.toLowerCase()));
      const added = Object.entries(headers).filter(([k]) => !own.has(k.toLowerCase()));
      return { ...r, headers: { ...Object.fromEntries(added), ...r?.headers } };
    }),
  };
}

/**
 * Runs a load test and resolves with its result; it never throws for target failures, which
 * are counted.
 *
 * @example
 * ```ts
 * import { runLoad } from 'keel/load';
 * const r = await runLoad({ url: 'http://127.0.0.1:3000/', rate: 200, durationMs: 5000, thresholds: ['p(99)<50'] });
 * console.log(r.latency.p99, r.ok);
 * ```
 */
export function runLoad(options: LoadOptions): Promise<LoadResult> {
  const o = objectOptions('runLoad', options);
  let target: URL;
  try {
    target = new URL(o.url ?? o.scenario?.target ?? '');
  } catch {
    throw new TypeError(`keel: runLoad option "url" must be an http:// URL (got ${JSON.stringify(o.url)})`);
  }
  if (target.protocol !== 'http:') throw new TypeError(`keel: runLoad option "url" must be an http:// URL (got ${JSON.stringify(o.url)})`);
  const connections = intOption('runLoad', 'connections', o.connections, 10, { min: 1, max: 10_000 });
  const pipelining = intOption('runLoad', 'pipelining', o.pipelining, 1, { min: 1, max: 1000 });
  const durationMs = durationOption('runLoad', 'durationMs', o.durationMs, 10_000, 1);
  const rate = o.rate === undefined ? undefined : numberOption('runLoad', 'rate', o.rate, 0, { min: Number.MIN_VALUE });
  const timeoutMs = durationOption('runLoad', 'timeoutMs', o.timeoutMs, 10_000, 1);
  const windowMs = durationOption('runLoad', 'windowMs', o.windowMs, 1000, 10);
  const maxWindows = intOption('runLoad', 'maxWindows', o.maxWindows, 3600, { min: 1 });
  const abortOnFail = booleanOption('runLoad', 'abortOnFail', o.abortOnFail, false);
  const onWindow = functionOption('runLoad', 'onWindow', o.onWindow) as LoadOptions['onWindow'];
  if (o.stages !== undefined && (!Array.isArray(o.stages) || o.stages.length === 0)) {
    throw new TypeError('keel: runLoad option "stages" must be a non-empty array');
  }
  const thresholds = new ThresholdSet(o.thresholds ?? []);
  const host = `${target.hostname}:${target.port || 80}`;
  const source = scenarioSource(
    o.scenario
      ? withHeaders(o.scenario, o.headers)
      : { requests: [{ method: o.method ?? 'GET', path: `${target.pathname}${target.search}`, headers: o.headers, body: o.body }] },
    host,
    o.seed ?? 1,
  );
  const warmupMs = durationOption('runLoad', 'warmupMs', o.warmupMs, 0, 0);
  if (warmupMs > 0 && o.stages !== undefined) {
    throw new TypeError('keel: runLoad option "warmupMs" does not combine with "stages" (stages already ramp up from 0 req/s)');
  }
  const schedule = o.stages ? new Schedule({ stages: o.stages }) : rate ? new Schedule({ rate, durationMs }) : undefined;
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) {
    throw new TypeError('keel: runLoad option "signal" must be an AbortSignal');
  }
  const config = {
    signal: o.signal,
    target,
    connections,
    pipelining,
    durationMs,
    timeoutMs,
    windowMs,
    maxWindows,
    abortOnFail,
    onWindow,
    thresholds,
    source,
    schedule,
  };
  if (warmupMs === 0) return new Run(config).done;
  return (async () => {
    // The warm-up is judged by nothing and reports no windows; its connections are closed
    // before the measured run opens its own (whose clock starts once they are up).
    const warm = await new Run({
      ...config,
      durationMs: warmupMs,
      maxWindows: 1,
      abortOnFail: false,
      onWindow: undefined,
      thresholds: new ThresholdSet([]),
      schedule: rate ? new Schedule({ rate, durationMs: warmupMs }) : undefined,
    }).done;
    const result = await new Run(config).done;
    result.warmup = { durationMs: warm.durationMs, completed: warm.completed, errors: warm.errors.total, p99: warm.latency.p99 };
    return result;
  })();
}
