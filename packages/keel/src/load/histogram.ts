/**
 * Latency recording with bounded memory: two HDR histograms (corrected: from each request's
 * intended send time; uncorrected: from its actual send time) plus one small summary per
 * window (default 1 s), capped in number, so a run of any length holds a fixed amount.
 */
import * as hdr from 'hdr-histogram-js';

/** Percentiles kept for every window (the charts and window thresholds read them). */
export const WINDOW_PERCENTILES = [50, 90, 95, 99] as const;

/** One window of the run. Latencies are in milliseconds. */
export interface WindowStats {
  /** Window start, ms since the run started. */
  t: number;
  /** Responses (their latencies are below). */
  count: number;
  /** Responses plus requests that failed without one (timeouts, socket errors, unsent). */
  attempts: number;
  /** Error responses plus requests that failed without one. */
  errors: number;
  rps: number;
  min: number;
  mean: number;
  p50: number;
  p90: number;
  p95: number;
  p99: number;
  max: number;
  /** Extra percentiles asked for by thresholds, keyed by percentile. */
  extra: Record<string, number>;
  /**
   * The run's last window, closed by the run's end: it lasts until the last in-flight
   * response drains, at least half a window (a shorter end is folded into the window before),
   * and its `rps` divides by that real span.
   */
  partial: boolean;
}

/** A latency summary in milliseconds. */
export interface LatencySummary {
  count: number;
  min: number;
  p50: number;
  p90: number;
  p95: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
  stdev: number;
}

function build(): hdr.Histogram {
  // Microseconds, 1 µs .. 1 h, 3 significant digits. The plain JS Int32 variant measured
  // fastest for recordValue on Node 20 (the packed variant is ~2x slower; wasm needs an
  // async init and each call crosses the boundary).
  return hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 3_600_000_000,
    numberOfSignificantValueDigits: 3,
    bitBucketSize: 32,
  });
}

/** Summarises a histogram recorded in µs as milliseconds. */
export function summarize(h: hdr.Histogram): LatencySummary {
  const ms = (us: number): number => Math.round(us) / 1000;
  const count = h.totalCount;
  if (count === 0) return { count: 0, min: 0, p50: 0, p90: 0, p95: 0, p99: 0, p999: 0, max: 0, mean: 0, stdev: 0 };
  return {
    count,
    min: ms(h.minNonZeroValue),
    p50: ms(h.getValueAtPercentile(50)),
    p90: ms(h.getValueAtPercentile(90)),
    p95: ms(h.getValueAtPercentile(95)),
    p99: ms(h.getValueAtPercentile(99)),
    p999: ms(h.getValueAtPercentile(99.9)),
    max: ms(h.maxValue),
    mean: ms(h.mean),
    stdev: ms(h.stdDeviation),
  };
}

/**
 * Records latencies; `roll()` closes the current window. Percentile lookups happen once per
 * window, never per request.
 */
export class LatencyRecorder {
  readonly corrected = build();
  readonly uncorrected = build();
  readonly windows: WindowStats[] = [];
  #window = build();
  /** The last closed window's latencies (see fold). */
  #previous = build();
  #windowErrors = 0;
  #windowLost = 0;
  #windowStart = 0;
  #maxWindows: number;
  #extra: number[];
  /** Windows dropped because the cap was reached (the oldest go first). */
  droppedWindows = 0;

  #trackUncorrected: boolean;

  /**
   * `trackUncorrected: false` (the closed model, where intended and actual send times are
   * the same) skips the second histogram: one fewer record on the hot path.
   */
  constructor(maxWindows = 3600, extraPercentiles: readonly number[] = [], trackUncorrected = true) {
    this.#maxWindows = maxWindows;
    this.#trackUncorrected = trackUncorrected;
    this.#extra = extraPercentiles.filter((p) => !(WINDOW_PERCENTILES as readonly number[]).includes(p));
  }

  /** Records one response; times are in ms from the same monotonic clock. */
  record(intended: number, sent: number, done: number, error: boolean): void {
    const c = Math.max(1, Math.round((done - intended) * 1000));
    this.corrected.recordValue(c);
    if (this.#trackUncorrected) this.uncorrected.recordValue(Math.max(1, Math.round((done - sent) * 1000)));
    this.#window.recordValue(c);
    if (error) this.#windowErrors++;
  }

  /** Counts a failure without a latency (timeout, socket error) in the current window. */
  recordError(): void {
    this.#windowErrors++;
    this.#windowLost++;
  }

  /** Responses and lost requests in the open window. */
  get pending(): number {
    return this.#window.totalCount + this.#windowLost;
  }

  /** Closes the window that started at `#windowStart` and ends at `now` (ms since start). */
  roll(now: number, partial = false): WindowStats {
    const w = this.#summary(this.#window, this.#windowStart, now, this.#windowErrors, this.#windowLost, partial);
    if (this.windows.length >= this.#maxWindows) {
      this.windows.shift();
      this.droppedWindows++;
    }
    this.windows.push(w);
    // The closed window's histogram is kept until the next roll, so fold() can merge into it.
    const closed = this.#window;
    this.#window = this.#previous;
    this.#previous = closed;
    this.#window.reset();
    this.#windowErrors = 0;
    this.#windowLost = 0;
    this.#windowStart = now;
    return w;
  }

  /**
   * Closes the open window into the last closed one, which then spans both and is marked
   * partial: a run that ends just after a roll left a sliver of drained responses (4 in 1
   * ms, charted as 4,000 req/s beside 10,000 req/s windows), too short to judge or chart as
   * a window of its own. Rolls instead when no window was closed yet.
   */
  fold(now: number): WindowStats {
    const last = this.windows.at(-1);
    if (!last) return this.roll(now, true);
    this.#previous.add(this.#window);
    const w = this.#summary(
      this.#previous,
      last.t,
      now,
      last.errors + this.#windowErrors,
      last.attempts - last.count + this.#windowLost,
      true,
    );
    this.windows[this.windows.length - 1] = w;
    this.#window.reset();
    this.#windowErrors = 0;
    this.#windowLost = 0;
    this.#windowStart = now;
    return w;
  }

  /** When the open window started (ms since the run started). */
  get windowStart(): number {
    return this.#windowStart;
  }

  #summary(h: hdr.Histogram, start: number, now: number, errors: number, lost: number, partial: boolean): WindowStats {
    const span = Math.max(1, now - start);
    const empty = h.totalCount === 0;
    const v = (p: number): number => (empty ? 0 : Math.round(h.getValueAtPercentile(p)) / 1000);
    const extra: Record<string, number> = {};
    for (const p of this.#extra) extra[String(p)] = v(p);
    return {
      t: start,
      count: h.totalCount,
      attempts: h.totalCount + lost,
      errors,
      rps: Math.round((h.totalCount * 1000) / span),
      min: empty ? 0 : Math.round(h.minNonZeroValue) / 1000,
      mean: empty ? 0 : Math.round(h.mean) / 1000,
      p50: v(50),
      p90: v(90),
      p95: v(95),
      p99: v(99),
      max: Math.round(h.maxValue) / 1000,
      extra,
      partial,
    };
  }

  /** Frees the histograms' memory. */
  destroy(): void {
    this.corrected.destroy();
    this.uncorrected.destroy();
    this.#window.destroy();
    this.#previous.destroy();
  }
}
