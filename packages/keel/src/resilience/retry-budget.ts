/**
 * A retry budget: retries may be at most `ratio` of calls (plus `minRetries`) over a sliding
 * window. Without one, every client retrying 3 times turns an outage into 3× the load just
 * when the service can least take it (Finagle's and gRPC's retry budgets work this way).
 */
import type { Clock } from '../clock.ts';
import { clockOption, durationOption, intOption, numberOption, objectOptions } from '../internal/options.ts';

export interface RetryBudgetOptions {
  /** Retries allowed per call made in the window. Default `0.2`. */
  ratio?: number;
  /** Retries always allowed per window, so a quiet service can still retry. Default `10`. */
  minRetries?: number;
  /** Window length in ms. Default `10_000`. */
  windowMs?: number;
  /** Default: the real clock. */
  clock?: Clock;
}

const BUCKETS = 10;

/**
 * Counts calls and retries in 10 buckets over the window.
 *
 * @example
 * ```ts
 * import { RetryBudget, retry } from 'keel/resilience';
 * const budget = new RetryBudget({ ratio: 0.1 });
 * const a = retry({ budget });
 * const b = retry({ budget }); // one budget can be shared by several policies
 * ```
 */
export class RetryBudget {
  readonly ratio: number;
  readonly minRetries: number;
  readonly windowMs: number;
  readonly #clock: Clock;
  readonly #bucketMs: number;
  readonly #calls = new Float64Array(BUCKETS);
  readonly #retries = new Float64Array(BUCKETS);
  #slot = 0;
  #slotStart = 0;
  #pending = 0;
  #callTotal = 0;
  #retryTotal = 0;

  constructor(options?: RetryBudgetOptions) {
    const o = objectOptions('RetryBudget', options);
    this.ratio = numberOption('RetryBudget', 'ratio', o.ratio, 0.2, { min: 0, max: 1000 });
    this.minRetries = intOption('RetryBudget', 'minRetries', o.minRetries, 10);
    this.windowMs = durationOption('RetryBudget', 'windowMs', o.windowMs, 10_000, BUCKETS);
    this.#clock = clockOption('RetryBudget', o.clock);
    this.#bucketMs = this.windowMs / BUCKETS;
    this.#slotStart = this.#clock.now();
  }

  // Calls are counted without reading the clock (a Date.now() per call was a third of the
  // retry fast path's cost), so when the budget next looks at the time it cannot tell when
  // the calls since its last look were made. It dates them all to that last look, the
  // earliest they can be: they may leave the window early, but never count in a window
  // they were not in. Spreading them evenly up to now instead let calls made before an idle
  // spell buy retries in an outage after it (1,052 retries where at most 210 were due).
  #advance(): void {
    // The current bucket is the one of the last look: #rotate always leaves it there.
    this.#add(this.#pending);
    this.#pending = 0;
    this.#rotate(this.#clock.now());
  }

  #rotate(now: number): void {
    const steps = Math.floor((now - this.#slotStart) / this.#bucketMs);
    // A wall clock stepped back: keep the buckets as they are until time catches up.
    if (steps <= 0) return;
    for (let i = 0; i < Math.min(steps, BUCKETS); i++) this.#step();
    this.#slotStart += steps * this.#bucketMs;
  }

  #step(): void {
    this.#slot = (this.#slot + 1) % BUCKETS;
    this.#callTotal -= this.#calls[this.#slot] as number;
    this.#retryTotal -= this.#retries[this.#slot] as number;
    this.#calls[this.#slot] = 0;
    this.#retries[this.#slot] = 0;
  }

  #add(calls: number): void {
    this.#calls[this.#slot]! += calls;
    this.#callTotal += calls;
  }

  /** Records a first attempt: one increment, no clock read. */
  recordCall(): void {
    this.#pending++;
  }

  /** Takes one retry from the budget; false when the budget is spent. */
  tryRetry(): boolean {
    this.#advance();
    if (this.#retryTotal + 1 > this.minRetries + this.ratio * this.#callTotal) return false;
    this.#retries[this.#slot]! += 1;
    this.#retryTotal++;
    return true;
  }

  /** Calls and retries counted in the current window. */
  get usage(): { calls: number; retries: number } {
    this.#advance();
    return { calls: this.#callTotal, retries: this.#retryTotal };
  }
}
