/**
 * One load run: owns the connections, the open model's send loop, the window and timeout
 * timers, and turns counts and histograms into a {@link LoadResult}. Built by `runLoad`
 * (runner.ts), which validates the options first.
 */
import { performance } from 'node:perf_hooks';
import { type ConnectionSink, HttpConnection } from './client.ts';
import { LatencyRecorder, type LatencySummary, summarize, type WindowStats } from './histogram.ts';
import type { LoadOptions, LoadResult } from './runner.ts';
import type { RequestSource } from './scenario.ts';
import type { Schedule } from './schedule.ts';
import type { ThresholdInput, ThresholdSet } from './thresholds.ts';

const TIMEOUT = new Error('timeout');

/** Validated options of one run. */
export interface RunConfig {
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
  source: RequestSource;
  schedule: Schedule | undefined;
}

/**
 * A window's figures as threshold input. Timeouts, socket errors and unsent requests have no
 * latency but are attempts: `rate` divides by attempts (dividing by responses gave rates
 * above 1, and a window where everything timed out had no responses and was never judged).
 */
export function windowInput(w: WindowStats): ThresholdInput {
  return {
    percentile: (p) => (p === 50 ? w.p50 : p === 90 ? w.p90 : p === 95 ? w.p95 : p === 99 ? w.p99 : (w.extra[String(p)] ?? 0)),
    med: w.p50,
    avg: w.mean,
    min: w.min,
    max: w.max,
    rate: w.attempts === 0 ? 0 : w.errors / w.attempts,
    rps: w.rps,
    count: w.count,
    attempts: w.attempts,
  };
}

/** A running load test; `done` resolves with the result. */
export class Run implements ConnectionSink {
  readonly done: Promise<LoadResult>;
  #c: RunConfig;
  #resolve!: (r: LoadResult) => void;
  #rec: LatencyRecorder;
  #conns: HttpConnection[] = [];
  #t0 = performance.now();
  /** Wall time at #t0, for lining windows up with other clocks' records. */
  #startedAt = Date.now();
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
  /** Requests that failed without being sent: their connection could not be made. */
  #unsent = 0;
  #errors = 0;
  /** Whether the last closed window was judged (a folded end re-judges it). */
  #lastJudged = false;
  #delayed = 0;
  #starved = false;
  #next = 0;
  #rr = 0;
  #started = false;
  #up = 0;
  #tick: NodeJS.Timeout | undefined;
  #spin: NodeJS.Immediate | undefined;
  #timers: NodeJS.Timeout[] = [];
  #endAt: number;

  constructor(c: RunConfig) {
    this.#c = c;
    this.#rec = new LatencyRecorder(c.maxWindows, c.thresholds.percentiles, c.schedule !== undefined);
    this.done = new Promise((r) => {
      this.#resolve = r;
    });
    this.#endAt = c.schedule ? c.schedule.durationMs : c.durationMs;
    if (c.schedule) this.#next = c.schedule.first();
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
    this.#startedAt = Date.now();
    this.#timers.push(setInterval(() => this.#tickWindow(), c.windowMs));
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
    if (lost === 0 && this.#started && this.#sending) this.#failUnsent();
    if (!this.#sending && !this.#finished && this.#inFlight() === 0) this.#finish();
  }

  /**
   * A connection failed with nothing in flight (refused, or dropped before answering). Only
   * counting the connection let a dead target pass: 0 sent, 580 connection errors, `rate` 0/0
   * = 0. Closed model: the request the connection was there to send fails (one attempt).
   * Open model, where attempts are the scheduled requests: the oldest request due and waiting
   * for a connection fails; with none waiting, no request was hurt and only the connection counts.
   */
  #failUnsent(): void {
    const schedule = this.#c.schedule;
    if (schedule) {
      if (this.#next > performance.now() - this.#t0) return;
      this.#next = schedule.next(this.#next);
    }
    this.#unsent++;
    this.#errors++;
    this.#rec.recordError();
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
    if (this.#spin) {
      clearImmediate(this.#spin);
      this.#spin = undefined;
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
    if (this.#next === Number.POSITIVE_INFINITY) return;
    // Timers fire on whole milliseconds and never before 1 ms, so a send left to setTimeout
    // went out up to ~1 ms late, and that lateness counted as the server's latency (at 350
    // req/s against an idle forum: corrected p50 1.14 ms against 0.50 ms uncorrected). A timer
    // now only covers the whole milliseconds before the due time; the last one is spent in
    // setImmediate turns, which also let responses in between.
    const wait = this.#next - now;
    if (wait >= 2) this.#tick = setTimeout(this.#pumpNow, Math.floor(wait) - 1);
    else this.#spin = setImmediate(this.#pumpNow);
  }

  readonly #pumpNow = (): void => this.#pump();

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
    // Failures without a response (timeouts, socket errors, unsent) count as attempts too.
    const attempts = count + this.#timeouts + this.#socket + this.#unsent;
    return {
      percentile: pct,
      med: h.p50,
      avg: h.mean,
      min: h.min,
      max: h.max,
      rate: attempts === 0 ? 0 : this.#errors / attempts,
      rps: (count * 1000) / Math.max(1, elapsedMs),
      count,
      attempts,
    };
  }

  /** The window timer: closes a window while sending (the drain belongs to the last window). */
  #tickWindow(): void {
    if (this.#sending) this.#roll();
  }

  /**
   * Closes the open window and judges it. A failed window fails the run; with abort-on-fail
   * it stops the run at once (k6's abortOnFail: stop as soon as a threshold is crossed; the
   * cumulative figures used before skipped rps and let a 1 s outage in a 4 s run pass).
   */
  #roll(last = false): void {
    const elapsed = performance.now() - this.#t0;
    // A last window under half a window long is folded into the one before (see fold).
    const fold = last && this.#rec.windows.length > 0 && elapsed - this.#rec.windowStart < this.#c.windowMs / 2;
    const w = fold ? this.#rec.fold(elapsed) : this.#rec.roll(elapsed, last);
    const th = this.#c.thresholds;
    // A window where requests ended, or where they were in flight and none ended (a stall:
    // its 0 req/s is judged), is judged; one with nothing going on is not.
    const judged = th.thresholds.length > 0 && (w.attempts > 0 || this.#inFlight() > 0);
    if (judged) {
      const failed = th.window(windowInput(w), fold && this.#lastJudged);
      if (failed.length > 0 && this.#c.abortOnFail && this.#sending) {
        this.#aborted = true;
        this.#stopSending();
      }
    }
    this.#lastJudged = judged;
    if (!fold) this.#c.onWindow?.(w, elapsed);
  }

  #stopSending(): void {
    if (!this.#sending) return;
    this.#sending = false;
    if (this.#tick) clearTimeout(this.#tick);
    if (this.#spin) clearImmediate(this.#spin);
    if (this.#inFlight() === 0) this.#finish();
  }

  async #finish(): Promise<void> {
    if (this.#finished) return;
    this.#finished = true;
    const elapsed = Math.min(performance.now() - this.#t0, this.#aborted ? Number.POSITIVE_INFINITY : this.#endAt);
    for (const t of this.#timers) clearTimeout(t);
    // The last window is cut short by the end: dropping it lost up to a window of responses
    // (a 900 ms run with 1 s windows had none), so it is rolled (or folded) and marked partial.
    if (this.#rec.pending > 0) this.#roll(true);
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
      missed = Math.max(0, expected - this.#sent - this.#unsent);
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
    if (this.#completed === 0 && input.attempts > 0) {
      warnings.push(
        `no responses: all ${input.attempts} attempts failed (${this.#unsent} unsent because no connection could be made, ${this.#timeouts} timeouts, ${this.#socket} socket errors); latency thresholds fail with nothing to measure`,
      );
    }
    if (this.#aborted)
      warnings.push(c.signal?.aborted ? 'stopped early by the caller' : 'aborted early: a threshold failed (abort-on-fail)');
    return {
      model: c.schedule ? 'open' : 'closed',
      url: c.target.href,
      startedAt: this.#startedAt,
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
        unsent: this.#unsent,
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
