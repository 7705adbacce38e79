import { intOption } from '../../internal/options.ts';
import type { BreakerStrategy } from './strategy.ts';

/**
 * Opens after `threshold` failures in a row; any success resets the count.
 *
 * @example
 * ```ts
 * import { CircuitBreaker, ConsecutiveBreaker } from 'keel/resilience';
 * const b = new CircuitBreaker({ strategy: new ConsecutiveBreaker(5) });
 * ```
 */
export class ConsecutiveBreaker implements BreakerStrategy {
  readonly timed = false;
  readonly threshold: number;
  #failures = 0;

  constructor(threshold = 5) {
    this.threshold = intOption('ConsecutiveBreaker', 'threshold', threshold, 5, { min: 1 });
  }

  success(): void {
    this.#failures = 0;
  }

  failure(): boolean {
    return ++this.#failures >= this.threshold;
  }

  reset(): void {
    this.#failures = 0;
  }

  toJSON(): { failures: number } {
    return { failures: this.#failures };
  }

  restore(snapshot: unknown): void {
    const f = (snapshot as { failures?: unknown } | undefined)?.failures;
    if (typeof f === 'number' && Number.isInteger(f) && f >= 0) this.#failures = f;
  }
}
