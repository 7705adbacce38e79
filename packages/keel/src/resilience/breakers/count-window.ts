import { intOption, objectOptions, optionError } from '../../internal/options.ts';
import type { BreakerStrategy } from './strategy.ts';
import { rateOption } from './strategy.ts';

export interface CountWindowOptions {
  /** Calls in the window (the last N outcomes). Default `100`. */
  size?: number;
  /** Open when failures / calls reaches this, in (0, 1]. Default `0.5`. */
  failureRateThreshold?: number;
  /** No decision before this many calls are in the window. Default `10` (at most `size`). */
  minimumCalls?: number;
}

/**
 * Opens when the failure rate over the last `size` calls reaches the threshold, once at
 * least `minimumCalls` have been seen.
 *
 * @example
 * ```ts
 * new CircuitBreaker({ strategy: new CountWindowBreaker({ size: 50, failureRateThreshold: 0.5, minimumCalls: 20 }) });
 * ```
 */
export class CountWindowBreaker implements BreakerStrategy {
  readonly timed = false;
  readonly size: number;
  readonly failureRateThreshold: number;
  readonly minimumCalls: number;
  // A ring of outcomes (1 = failure); O(1) per call, no allocation after construction.
  readonly #ring: Uint8Array;
  #next = 0;
  #count = 0;
  #failures = 0;

  constructor(options?: CountWindowOptions) {
    const o = objectOptions('CountWindowBreaker', options);
    this.size = intOption('CountWindowBreaker', 'size', o.size, 100, { min: 1, max: 1_000_000 });
    this.failureRateThreshold = rateOption('CountWindowBreaker', o.failureRateThreshold, 0.5);
    this.minimumCalls = intOption('CountWindowBreaker', 'minimumCalls', o.minimumCalls, Math.min(10, this.size), { min: 1 });
    if (this.minimumCalls > this.size) throw optionError('CountWindowBreaker', 'minimumCalls', `<= size (${this.size})`, this.minimumCalls);
    this.#ring = new Uint8Array(this.size);
  }

  #record(failed: 0 | 1): void {
    if (this.#count === this.size) this.#failures -= this.#ring[this.#next] as number;
    else this.#count++;
    this.#ring[this.#next] = failed;
    this.#failures += failed;
    this.#next = (this.#next + 1) % this.size;
  }

  success(): void {
    this.#record(0);
  }

  failure(): boolean {
    this.#record(1);
    return this.#count >= this.minimumCalls && this.#failures / this.#count >= this.failureRateThreshold;
  }

  reset(): void {
    this.#ring.fill(0);
    this.#next = this.#count = this.#failures = 0;
  }

  toJSON(): { outcomes: number[] } {
    const outcomes: number[] = [];
    const start = this.#count === this.size ? this.#next : 0;
    for (let i = 0; i < this.#count; i++) outcomes.push(this.#ring[(start + i) % this.size] as number);
    return { outcomes };
  }

  restore(snapshot: unknown): void {
    const outcomes = (snapshot as { outcomes?: unknown } | undefined)?.outcomes;
    if (!Array.isArray(outcomes)) return;
    this.reset();
    for (const o of outcomes.slice(-this.size)) this.#record(o === 1 ? 1 : 0);
  }
}
