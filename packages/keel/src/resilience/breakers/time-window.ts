import { durationOption, intOption, objectOptions } from '../../internal/options.ts';
import type { BreakerStrategy } from './strategy.ts';
import { rateOption } from './strategy.ts';

export interface TimeWindowOptions {
  /** Window length in ms. Default `60_000`. */
  windowMs?: number;
  /** Buckets the window is split into (its time resolution). Default `10`. */
  buckets?: number;
  /** Open when failures / calls reaches this, in (0, 1]. Default `0.5`. */
  failureRateThreshold?: number;
  /** No decision before this many calls are in the window. Default `10`. */
  minimumCalls?: number;
}

/**
 * Opens when the failure rate over the last `windowMs` reaches the threshold, once at least
 * `minimumCalls` calls fell in the window. Buckets expire as time passes, so old failures
 * stop counting without any timer.
 *
 * @example
 * ```ts
 * new CircuitBreaker({ strategy: new TimeWindowBreaker({ windowMs: 30_000, failureRateThreshold: 0.25 }) });
 * ```
 */
export class TimeWindowBreaker implements BreakerStrategy {
  readonly timed = true;
  readonly windowMs: number;
  readonly buckets: number;
  readonly failureRateThreshold: number;
  readonly minimumCalls: number;
  readonly #bucketMs: number;
  readonly #calls: Float64Array;
  readonly #fails: Float64Array;
  // Bucket index (time / bucketMs) the ring's newest slot holds; -Infinity when empty.
  #head = Number.NEGATIVE_INFINITY;
  #calls_ = 0;
  #fails_ = 0;

  constructor(options?: TimeWindowOptions) {
    const o = objectOptions('TimeWindowBreaker', options);
    this.windowMs = durationOption('TimeWindowBreaker', 'windowMs', o.windowMs, 60_000, 1);
    this.buckets = intOption('TimeWindowBreaker', 'buckets', o.buckets, 10, { min: 1, max: 1000 });
    this.failureRateThreshold = rateOption('TimeWindowBreaker', o.failureRateThreshold, 0.5);
    this.minimumCalls = intOption('TimeWindowBreaker', 'minimumCalls', o.minimumCalls, 10, { min: 1 });
    this.#bucketMs = this.windowMs / this.buckets;
    this.#calls = new Float64Array(this.buckets);
    this.#fails = new Float64Array(this.buckets);
  }

  #slot(now: number): number {
    const index = Math.floor(now / this.#bucketMs);
    if (index > this.#head) {
      const steps = Math.min(this.buckets, index - this.#head);
      for (let i = 1; i <= steps; i++) {
        const s = (((index - steps + i) % this.buckets) + this.buckets) % this.buckets;
        this.#calls_ -= this.#calls[s] as number;
        this.#fails_ -= this.#fails[s] as number;
        this.#calls[s] = 0;
        this.#fails[s] = 0;
      }
      this.#head = index;
    }
    // A clock that steps back lands in the newest bucket rather than corrupting older ones.
    return ((this.#head % this.buckets) + this.buckets) % this.buckets;
  }

  success(now: number): void {
    const s = this.#slot(now);
    this.#calls[s]! += 1;
    this.#calls_++;
  }

  failure(now: number): boolean {
    const s = this.#slot(now);
    this.#calls[s]! += 1;
    this.#fails[s]! += 1;
    this.#calls_++;
    this.#fails_++;
    return this.#calls_ >= this.minimumCalls && this.#fails_ / this.#calls_ >= this.failureRateThreshold;
  }

  reset(): void {
    this.#calls.fill(0);
    this.#fails.fill(0);
    this.#calls_ = this.#fails_ = 0;
    this.#head = Number.NEGATIVE_INFINITY;
  }

  toJSON(): { head: number | null; calls: number[]; failures: number[] } {
    return { head: Number.isFinite(this.#head) ? this.#head : null, calls: [...this.#calls], failures: [...this.#fails] };
  }

  restore(snapshot: unknown): void {
    const s = snapshot as { head?: unknown; calls?: unknown; failures?: unknown } | undefined;
    if (
      !s ||
      !Array.isArray(s.calls) ||
      !Array.isArray(s.failures) ||
      s.calls.length !== this.buckets ||
      s.failures.length !== this.buckets
    )
      return;
    this.reset();
    if (typeof s.head !== 'number') return;
    this.#head = s.head;
    for (let i = 0; i < this.buckets; i++) {
      const c = Number(s.calls[i]) || 0;
      const f = Number(s.failures[i]) || 0;
      this.#calls[i] = c;
      this.#fails[i] = f;
      this.#calls_ += c;
      this.#fails_ += f;
    }
  }
}
