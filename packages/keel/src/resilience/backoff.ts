/**
 * Backoff schedules. Every schedule is finite and bounded by `maxDelayMs` for any attempt
 * count: exponents are capped before `2 ** n` (2 ** 1100 is Infinity, and Infinity * 0 is
 * the NaN other libraries' jitter turns into), and jitter draws stay within [base, max].
 */
import { durationOption, functionOption, objectOptions, oneOfOption, optionError } from '../internal/options.ts';

/** A delay schedule. `next(attempt, previousMs)` gives the wait before retry number `attempt` (1-based). */
export interface Backoff {
  next(attempt: number, previousMs: number): number;
}

export interface BackoffOptions {
  /** `'constant'`, `'exponential'` or `'decorrelated'` (exponential with decorrelated jitter). Default `'decorrelated'`. */
  kind?: 'constant' | 'exponential' | 'decorrelated';
  /** First (and for constant, every) delay in ms. Default `100`. */
  baseMs?: number;
  /** Cap on any delay in ms. Default `30_000` (or `baseMs` if larger). */
  maxDelayMs?: number;
  /** Uniform random in [0, 1), injectable for tests. Default `Math.random`. */
  random?: () => number;
}

// 2 ** 40 ms is ~35 years: far above any cap, far below Infinity.
const MAX_EXPONENT = 40;

/**
 * Builds a {@link Backoff}.
 *
 * `decorrelated` is AWS's "decorrelated jitter": `min(max, random(base, previous * 3))`. It
 * spreads retries of many clients apart while still growing roughly exponentially.
 *
 * @example
 * ```ts
 * import { backoff } from 'keel/resilience';
 * const b = backoff({ kind: 'exponential', baseMs: 50, maxDelayMs: 1_000 });
 * b.next(1, 0); // 50
 * b.next(10, 0); // 1000 (capped)
 * ```
 */
export function backoff(options?: BackoffOptions): Backoff {
  const o = objectOptions('backoff', options);
  const kind = oneOfOption('backoff', 'kind', o.kind, ['constant', 'exponential', 'decorrelated'] as const, 'decorrelated');
  const base = durationOption('backoff', 'baseMs', o.baseMs, 100);
  // The default cap grows with a large base rather than rejecting it.
  const max = durationOption('backoff', 'maxDelayMs', o.maxDelayMs, Math.max(30_000, base));
  if (max < base) throw optionError('backoff', 'maxDelayMs', `>= baseMs (${base})`, max);
  const random = functionOption<() => number>('backoff', 'random', o.random, Math.random);
  if (kind === 'constant') return { next: () => base };
  if (kind === 'exponential') {
    return { next: (attempt) => Math.min(max, base * 2 ** Math.min(Math.max(attempt - 1, 0), MAX_EXPONENT)) };
  }
  return {
    next(_attempt, previousMs) {
      const prev = Number.isFinite(previousMs) && previousMs >= base ? previousMs : base;
      const hi = Math.min(max, prev * 3);
      let r = random();
      // A broken random source must not become a NaN or a negative wait.
      if (!(r >= 0 && r < 1)) r = 0;
      return Math.min(max, base + r * (hi - base));
    },
  };
}

/** True for an object shaped like a {@link Backoff}. */
export function isBackoff(value: unknown): value is Backoff {
  return typeof value === 'object' && value !== null && typeof (value as Backoff).next === 'function';
}
