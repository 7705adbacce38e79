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
import { performance } from 'node:perf_hooks';
import { booleanOption, durationOption, functionOption, intOption, numberOption, objectOptions } from '../internal/options.ts';
import { type ConnectionSink, HttpConnection } from './client.ts';
import { LatencyRecorder, type LatencySummary, summarize, type WindowStats } from './histogram.ts';
import { type Scenario, scenarioSource } from './scenario.ts';
import { Schedule, type Stage } from './schedule.ts';
import { type ThresholdInput, type ThresholdResult, ThresholdSet } from './thresholds.ts';

/** Options of {@link runLoad}. */
export interface LoadOptions {
  /** Target URL; its path is requested unless a `scenario` is given. */
  url: string;
  /** Requests to replay instead of the URL's path. */
  scenario?: Scenario;
  /** Method for the URL mode. Default `GET`. */
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  /** Connections. Default 10. */
  connections?: number;
  /** Requests in flight per connection (HTTP/1.1 pipelining). Default 1. */
  pipelining?: number;
  /** Run length in ms (closed model and constant rate). Default 10000. */
  durationMs?: number;
  /** Open model: requests per second. */
  rate?: number;
  /** Open model: rate stages (overrides `rate` and `durationMs`). */
  stages?: Stage[];
  /** Per-request timeout in ms. Default 10000. */
  timeoutMs?: number;
  /** Thresholds, e.g. `['p(99)<500', 'rate<0.01']`. */
  thresholds?: string[];
  /** Stop early when a threshold fails mid-run. Default false. */
  abortOnFail?: boolean;
  /** Window length in ms. Default 1000. */
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
   * `timeouts` and `socket` count requests lost that way; `connections` counts connections
   * lost or refused (a refused target shows here even with nothing in flight).
   */
  errors: { total: number; non2xx: number; timeouts: number; socket: number; connections: number; rate: number };
  /** From the intended send time (open model) or the send time (closed model, equal). */
  latency: LatencySummary;
  uncorrected: LatencySummary;
  windows: WindowStats[];
  thresholds: ThresholdResult[];
  aborted: boolean;
  warnings: string[];
  ok: boolean;
}

const TIMEOUT = new Error('timeout');

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
    o.scenario ?? {
      requests: [{ method: o.method ?? 'GET', path: `${target.pathname}${target.search}`, headers: o.headers, body: o.body }],
    },
    host,
    o.seed ?? 1,
  );
  const schedule = o.stages ? new Schedule({ stages: o.stages }) : rate ? new Schedule({ rate, durationMs }) : undefined;
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) {
    throw new TypeError('keel: runLoad option "signal" must be an AbortSignal');
  }
  return new Run({
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
  }).done;
}

interface RunConfig {
  signal: AbortSignal | undefined;
  target: URL;
  connections: number;
  pipelining: number;
  durationMs: number;
  timeoutMs: number;
  windowMs: number;
  maxWindows: number;
  abortOnFail: boolean;
  onWindow: LoadOptions['onWindow'];
  thresholds: ThresholdSet;
  source: ReturnType<typeof scenarioSource>;
  schedule: Schedule | undefined;
}

class Run implements ConnectionSink {
  readonly done: Promise<LoadResult>;
  #c: RunConfig;
  #resolve!: (r: LoadResult) => void;
  #rec: LatencyRecorder;
  #conns: HttpConnection[] = [];
  #t0 = performance.now();
  #sending = true;
  #finished = false;
  #aborted = false;
  #sent = 0;
  #completed = 0;
  #bytes = 0;
  #status = new Uint32Array(600);
  #timeouts = 0;
  #socket = 0;
  #connErrors = 0;
  #errors = 0;
  #delayed = 0;
  #starved = false;
  #next = 0;
  #rr = 0;
  #started = false;
  #up = 0;
  #tick: NodeJS.Timeout | undefined;
  #timers: NodeJS.Timeout[] = [];
  #endAt: number;

  constructor(c: RunConfig) {
    this.#c = c;
    this.#rec = new LatencyRecorder(c.maxWindows, c.thresholds.percentiles, c.schedule !== undefined);
    this.done = new Promise((r) => {
      this.#resolve = r;
    });
    this.#endAt = c.schedule ? c.schedule.durationMs : c.durationMs;
    if (c.schedule && c.schedule.rateAt(0) === 0) this.#next = c.schedule.next(0);
    const port = Number(c.target.port || 80);
    for (let i = 0; i < c.connections; i++) this.#conns.push(new HttpConnection(i, c.target.hostname, port, this));
    // The clock starts once every connection is up (or after a bounded wait), as in wrk2:
    // connection set-up is not the service's latency and would mark the first requests late.
    this.#timers.push(setTimeout(() => this.#start(), Math.min(2000, c.timeoutMs)));
    if (c.signal) {
      if (c.signal.aborted) queueMicrotask(this.#onAbort);
      else c.signal.addEventListener('abort', this.#onAbort, { once: true });
    }
  }

  #onAbort = (): void => {
    this.#aborted = true;
    this.#stopSending();
  };

  #start(): void {
    if (this.#started || !this.#sending) return;
    this.#started = true;
    const c = this.#c;
    this.#t0 = performance.now();
    this.#timers.push(setInterval(() => this.#roll(), c.windowMs));
    this.#timers.push(setInterval(() => this.#checkTimeouts(), Math.min(250, Math.max(10, c.timeoutMs / 4))));
    this.#timers.push(setTimeout(() => this.#stopSending(), this.#endAt));
    if (c.schedule) this.#pump();
    else for (const conn of this.#conns) if (conn.connected) this.ready(conn);
  }

  ready(conn: HttpConnection): void {
    if (!this.#started) {
      if (++this.#up === this.#conns.length) this.#start();
      return;
    }
    if (!this.#sending) return;
    if (this.#c.schedule) this.#pump();
    else while (conn.inFlight < this.#c.pipelining) this.#send(conn, performance.now());
  }

  response(conn: HttpConnection, status: number, bytes: number): void {
    const now = performance.now();
    const intended = conn.intended.shift()!;
    const sent = conn.sent.shift()!;
    this.#completed++;
    this.#bytes += bytes;
    this.#status[status < 600 ? status : 0]!++;
    const error = status >= 400 || status < 100;
    if (error) this.#errors++;
    this.#rec.record(intended, sent, now, error);
    if (!this.#sending) {
      if (!this.#finished && this.#inFlight() === 0) this.#finish();
      return;
    }
    if (this.#c.schedule) {
      if (this.#next <= now - this.#t0) this.#pump();
    } else this.#send(conn, now);
  }

  failed(_conn: HttpConnection, lost: number, err: Error): void {
    if (err === TIMEOUT) this.#timeouts += lost;
    else this.#socket += lost;
    if (this.#sending) this.#connErrors++;
    this.#errors += lost;
    for (let i = 0; i < lost; i++) this.#rec.recordError();
    if (!this.#sending && !this.#finished && this.#inFlight() === 0) this.#finish();
  }

  #send(conn: HttpConnection, intended: number): void {
    const r = this.#c.source.next();
    this.#sent++;
    conn.write(r.buf, intended, performance.now(), r.head);
  }

  #free(): HttpConnection | undefined {
    const n = this.#conns.length;
    for (let k = 0; k < n; k++) {
      const conn = this.#conns[(this.#rr + k) % n]!;
      if (conn.connected && conn.inFlight < this.#c.pipelining) {
        this.#rr = (this.#rr + k + 1) % n;
        return conn;
      }
    }
    return undefined;
  }

  /** Open model: sends what is due (never ahead of time), then sleeps until the next due time. */
  #pump(): void {
    if (this.#tick) {
      clearTimeout(this.#tick);
      this.#tick = undefined;
    }
    if (!this.#sending) return;
    const schedule = this.#c.schedule!;
    const now = performance.now() - this.#t0;
    while (this.#next <= now) {
      const conn = this.#free();
      if (!conn) {
        // Every connection is busy: the request waits (its corrected latency grows) and the
        // backlog is sent as connections free up.
        this.#starved = true;
        return;
      }
      if (this.#starved) this.#delayed++;
      this.#send(conn, this.#t0 + this.#next);
      this.#next = schedule.next(this.#next);
    }
    this.#starved = false;
    if (this.#next !== Number.POSITIVE_INFINITY) {
      this.#tick = setTimeout(() => this.#pump(), Math.max(0, Math.floor(this.#next - now)));
    }
  }

  #inFlight(): number {
    let n = 0;
    for (const c of this.#conns) n += c.inFlight;
    return n;
  }

  #checkTimeouts(): void {
    const now = performance.now();
    for (const c of this.#conns) if (c.inFlight > 0 && now - c.sent[0]! > this.#c.timeoutMs) c.abort(TIMEOUT);
    if (!this.#sending && !this.#finished && this.#inFlight() === 0) this.#finish();
  }

  #input(h: LatencySummary, count: number, elapsedMs: number, pct: (p: number) => number): ThresholdInput {
    // Failures without a response (timeouts, socket errors) count as attempts too.
    const attempts = count + this.#timeouts + this.#socket;
    return {
      percentile: pct,
      med: h.p50,
      avg: h.mean,
      min: h.min,
      max: h.max,
      rate: attempts === 0 ? 0 : this.#errors / attempts,
      rps: (count * 1000) / Math.max(1, elapsedMs),
    };
  }

  #roll(): void {
    const elapsed = performance.now() - this.#t0;
    const w = this.#rec.roll(elapsed);
    const th = this.#c.thresholds;
    if (th.thresholds.length > 0 && w.count > 0) {
      th.window({
        percentile: (p) => (p === 50 ? w.p50 : p === 90 ? w.p90 : p === 95 ? w.p95 : p === 99 ? w.p99 : (w.extra[String(p)] ?? 0)),
        med: w.p50,
        avg: w.p50,
        min: 0,
        max: w.max,
        rate: w.errors / Math.max(1, w.count),
        rps: w.rps,
      });
      if (this.#c.abortOnFail && this.#sending) {
        const h = this.#rec.corrected;
        const input = this.#input(summarize(h), h.totalCount, elapsed, (p) => h.getValueAtPercentile(p) / 1000);
        if (th.failing(input).length > 0) {
          this.#aborted = true;
          this.#stopSending();
        }
      }
    }
    this.#c.onWindow?.(w, elapsed);
  }

  #stopSending(): void {
    if (!this.#sending) return;
    this.#sending = false;
    if (this.#tick) clearTimeout(this.#tick);
    if (this.#inFlight() === 0) this.#finish();
  }

  async #finish(): Promise<void> {
    if (this.#finished) return;
    this.#finished = true;
    const elapsed = Math.min(performance.now() - this.#t0, this.#aborted ? Number.POSITIVE_INFINITY : this.#endAt);
    for (const t of this.#timers) clearTimeout(t);
    this.#c.signal?.removeEventListener('abort', this.#onAbort);
    await Promise.all(this.#conns.map((c) => c.close()));
    this.#resolve(this.#result(elapsed));
  }

  #result(elapsed: number): LoadResult {
    const c = this.#c;
    const h = this.#rec.corrected;
    const latency = summarize(h);
    const uncorrected = c.schedule ? summarize(this.#rec.uncorrected) : latency;
    const statusCodes: Record<string, number> = {};
    let non2xx = 0;
    this.#status.forEach((n, code) => {
      if (n === 0) return;
      statusCodes[String(code)] = n;
      if (code < 200 || code >= 300) non2xx += n;
    });
    const input = this.#input(latency, h.totalCount, elapsed, (p) => Math.round(h.getValueAtPercentile(p)) / 1000);
    const thresholds = c.thresholds.finish(input);
    this.#rec.destroy();
    const warnings: string[] = [];
    let expected: number | undefined;
    let targetRate: number | undefined;
    let missed = 0;
    if (c.schedule) {
      expected = c.schedule.expectedCount();
      targetRate = Math.round((expected * 1000) / c.schedule.durationMs);
      missed = Math.max(0, expected - this.#sent);
      if (this.#sent < 0.95 * expected) {
        warnings.push(
          `target rate not reached: sent ${this.#sent} of ${expected} scheduled requests (${Math.round((100 * this.#sent) / expected)}%); add connections (-c) or check the generator's CPU`,
        );
      }
      if (this.#delayed > 0) {
        warnings.push(
          `${this.#delayed} requests were sent late because every connection was busy; their latency counts from the intended time`,
        );
      }
      if (uncorrected.p99 > 0 && latency.p99 > 2 * uncorrected.p99 && latency.p99 - uncorrected.p99 > 10) {
        warnings.push(
          `coordinated omission: corrected p99 ${latency.p99} ms vs uncorrected ${uncorrected.p99} ms; the server stalled and requests queued behind the stall`,
        );
      }
    }
    if (this.#aborted)
      warnings.push(c.signal?.aborted ? 'stopped early by the caller' : 'aborted early: a threshold failed (abort-on-fail)');
    return {
      model: c.schedule ? 'open' : 'closed',
      url: c.target.href,
      connections: c.connections,
      pipelining: c.pipelining,
      durationMs: Math.round(elapsed),
      sent: this.#sent,
      completed: this.#completed,
      delayed: this.#delayed,
      missed,
      targetRate,
      expected,
      rps: Math.round((this.#completed * 1000) / Math.max(1, elapsed)),
      bytes: this.#bytes,
      statusCodes,
      errors: {
        total: this.#errors,
        non2xx,
        timeouts: this.#timeouts,
        socket: this.#socket,
        connections: this.#connErrors,
        rate: input.rate,
      },
      latency,
      uncorrected,
      windows: this.#rec.windows,
      thresholds,
      aborted: this.#aborted,
      warnings,
      ok: thresholds.every((t) => t.ok),
    };
  }
}
