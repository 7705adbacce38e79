/**
 * Rolling windows for the dashboard: latency percentiles, request rate and error rate over
 * the last N seconds, in bounded memory and without a timer.
 *
 * A ring of time buckets (default 300 × 1 s), each holding a count, an error count and a
 * log-linear latency histogram: 8 sub-buckets per power of two of microseconds, so any
 * percentile is within ±6.25 % of the true value, from 1 µs to 35 minutes, in 232 bins.
 * Recording is an index computation and three increments; a bucket is cleared lazily when
 * the ring comes round to it, so idle time costs nothing. The 300-bucket ring is ≈ 280 KB.
 */
import type { Clock } from '../clock.ts';
import { durationOption, intOption, objectOptions, optionError } from '../internal/options.ts';

/** Latency bins: 8 linear bins for 0..7 µs, then 8 per octave up to 2^31 µs. */
export const LATENCY_BINS = 232;
const MAX_US = 2 ** 31 - 1;

/** The bin of a latency in milliseconds. */
export function binOf(ms: number): number {
  const us = ms * 1000;
  if (!(us >= 8)) return us > 0 ? us | 0 : 0;
  const v = us >= MAX_US ? MAX_US : us | 0;
  const e = 31 - Math.clz32(v);
  return 8 + (e - 3) * 8 + ((v >>> (e - 3)) - 8);
}

/** The representative latency of a bin, in milliseconds (its midpoint). */
export function valueOfBin(bin: number): number {
  if (bin < 8) return bin / 1000;
  const e = ((bin - 8) >>> 3) + 3;
  const sub = (bin - 8) & 7;
  const width = 2 ** (e - 3);
  return ((8 + sub) * width + width / 2) / 1000;
}

/** What a window reports. */
export interface WindowStats {
  count: number;
  /** Requests per second over the window (or since the recorder started, if younger). */
  rps: number;
  /** Share of 5xx responses, 0..1. */
  errorRate: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
}

export interface RollingOptions {
  /** Width of one bucket in ms, at least 1. Default: `1_000`. */
  bucketMs?: number;
  /** Buckets in the ring, 1 – 100,000; the longest window is `bucketMs × buckets`. Default: `300`. */
  buckets?: number;
  /** Required: only `now()` is read (no timer). */
  clock: Clock;
}

/** Validates once, at construction: a bad value would otherwise crash far from its cause. */
function rollingOptions(owner: string, options: RollingOptions): Required<RollingOptions> {
  const o = objectOptions(owner, options);
  if (typeof o.clock?.now !== 'function') throw optionError(owner, 'clock', 'a Clock (with now())', o.clock);
  return {
    clock: o.clock,
    // Under 1 ms (0 divides by zero into one NaN slot) is no useful bucket.
    bucketMs: durationOption(owner, 'bucketMs', o.bucketMs, 1_000, 1),
    // A RollingHistogram holds 232 bins per bucket: 100,000 buckets is already ≈ 93 MB.
    buckets: intOption(owner, 'buckets', o.buckets, 300, { min: 1, max: 100_000 }),
  };
}

/**
 * Latency, rate and error share over rolling windows.
 *
 * @example
 * ```ts
 * import { RollingHistogram } from 'keel/observe';
 * import { FakeClock } from 'keel/testing';
 * const clock = new FakeClock();
 * const r = new RollingHistogram({ clock });
 * r.record(clock.now(), 12, false);
 * r.stats(10_000).count; // 1
 * ```
 */
export class RollingHistogram {
  readonly bucketMs: number;
  readonly buckets: number;
  readonly #clock: Clock;
  readonly #startedAt: number;
  readonly #stamps: Float64Array;
  readonly #counts: Uint32Array;
  readonly #errors: Uint32Array;
  #bins: Uint32Array | undefined;

  constructor(options: RollingOptions) {
    const o = rollingOptions('RollingHistogram', options);
    this.bucketMs = o.bucketMs;
    this.buckets = o.buckets;
    this.#clock = o.clock;
    this.#startedAt = this.#clock.now();
    this.#stamps = new Float64Array(this.buckets).fill(-1);
    this.#counts = new Uint32Array(this.buckets);
    this.#errors = new Uint32Array(this.buckets);
  }

  /** Records one request that ended at `now` (clock ms) and took `ms`. */
  record(now: number, ms: number, error: boolean): void {
    const idx = Math.floor(now / this.bucketMs);
    const slot = idx % this.buckets;
    // Allocated on the first record, so a route seen once costs little until it is used.
    let bins = this.#bins;
    if (bins === undefined) {
      bins = new Uint32Array(this.buckets * LATENCY_BINS);
      this.#bins = bins;
    }
    const counts = this.#counts;
    const errors = this.#errors;
    if (this.#stamps[slot] !== idx) {
      this.#stamps[slot] = idx;
      counts[slot] = 0;
      errors[slot] = 0;
      bins.fill(0, slot * LATENCY_BINS, slot * LATENCY_BINS + LATENCY_BINS);
    }
    counts[slot] = (counts[slot] as number) + 1;
    if (error) errors[slot] = (errors[slot] as number) + 1;
    const at = slot * LATENCY_BINS + binOf(ms);
    bins[at] = (bins[at] as number) + 1;
  }

  /** Stats over the last `windowMs` (at most `bucketMs × buckets`), including the current bucket. */
  stats(windowMs: number): WindowStats {
    const now = this.#clock.now();
    const cur = Math.floor(now / this.bucketMs);
    const k = Math.max(1, Math.min(this.buckets, Math.ceil(windowMs / this.bucketMs)));
    const oldest = cur - k + 1;
    let count = 0;
    let errors = 0;
    const merged = new Float64Array(LATENCY_BINS);
    const bins = this.#bins;
    if (bins) {
      for (let slot = 0; slot < this.buckets; slot++) {
        const stamp = this.#stamps[slot] as number;
        if (stamp < oldest || stamp > cur || this.#counts[slot] === 0) continue;
        count += this.#counts[slot] as number;
        errors += this.#errors[slot] as number;
        const base = slot * LATENCY_BINS;
        for (let b = 0; b < LATENCY_BINS; b++) merged[b] = (merged[b] as number) + (bins[base + b] as number);
      }
    }
    const spanMs = Math.max(this.bucketMs, Math.min(now - oldest * this.bucketMs, now - this.#startedAt));
    return {
      count,
      rps: count / (spanMs / 1000),
      errorRate: count === 0 ? 0 : errors / count,
      p50Ms: percentile(merged, count, 50),
      p95Ms: percentile(merged, count, 95),
      p99Ms: percentile(merged, count, 99),
    };
  }
}

function percentile(bins: Float64Array, count: number, p: number): number {
  if (count === 0) return 0;
  const rank = Math.max(1, Math.ceil((p / 100) * count));
  let seen = 0;
  for (let b = 0; b < bins.length; b++) {
    seen += bins[b] as number;
    if (seen >= rank) return valueOfBin(b);
  }
  return valueOfBin(bins.length - 1);
}

/**
 * A sum over rolling windows (shed requests, GC pause time).
 *
 * @example
 * ```ts
 * import { RollingCounter } from 'keel/observe';
 * import { FakeClock } from 'keel/testing';
 * const clock = new FakeClock();
 * const shed = new RollingCounter({ clock, buckets: 10 });
 * shed.add(1);
 * shed.sum(10_000); // 1
 * ```
 */
export class RollingCounter {
  readonly bucketMs: number;
  readonly buckets: number;
  readonly #clock: Clock;
  readonly #stamps: Float64Array;
  readonly #sums: Float64Array;
  #total = 0;

  constructor(options: RollingOptions) {
    const o = rollingOptions('RollingCounter', options);
    this.bucketMs = o.bucketMs;
    this.buckets = o.buckets;
    this.#clock = o.clock;
    this.#stamps = new Float64Array(this.buckets).fill(-1);
    this.#sums = new Float64Array(this.buckets);
  }

  /** Adds `n` (default 1) now. */
  add(n = 1): void {
    const idx = Math.floor(this.#clock.now() / this.bucketMs);
    const slot = idx % this.buckets;
    if (this.#stamps[slot] !== idx) {
      this.#stamps[slot] = idx;
      this.#sums[slot] = 0;
    }
    (this.#sums as Float64Array)[slot] = (this.#sums[slot] as number) + n;
    this.#total += n;
  }

  /** Everything ever added. */
  get total(): number {
    return this.#total;
  }

  /** The sum over the last `windowMs`, including the current bucket. */
  sum(windowMs: number): number {
    const cur = Math.floor(this.#clock.now() / this.bucketMs);
    const oldest = cur - Math.max(1, Math.min(this.buckets, Math.ceil(windowMs / this.bucketMs))) + 1;
    let total = 0;
    for (let slot = 0; slot < this.buckets; slot++) {
      const stamp = this.#stamps[slot] as number;
      if (stamp >= oldest && stamp <= cur) total += this.#sums[slot] as number;
    }
    return total;
  }
}
