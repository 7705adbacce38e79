/**
 * How a circuit breaker decides to open. A strategy only counts; the breaker owns states,
 * timing and probes. Strategies are plain counters so their state snapshots to JSON.
 */
export interface BreakerStrategy {
  /** True when `success`/`failure` need the time (so the breaker reads the clock only then). */
  readonly timed: boolean;
  /** Records a successful call that finished at `now`. */
  success(now: number): void;
  /** Records a failed (or slow) call; returns true when the circuit should open. */
  failure(now: number): boolean;
  /** Forgets everything (the breaker calls it when it closes). */
  reset(): void;
  /** Serialisable counters, for breaker snapshots. */
  toJSON(): unknown;
  /** Restores counters from {@link toJSON}'s output; ignores shapes it does not recognise. */
  restore(snapshot: unknown): void;
}

/** Validates a failure-rate threshold in (0, 1]. */
export function rateOption(owner: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !(value > 0 && value <= 1)) {
    throw new TypeError(`keel: ${owner} option "failureRateThreshold" must be a number in (0, 1] (got ${String(value)})`);
  }
  return value;
}
