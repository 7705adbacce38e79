/**
 * Retry with backoff, Retry-After, a classifier and a retry budget.
 *
 * Fast path: a first attempt that succeeds costs one `await` and nothing else (no
 * allocation, no clock read unless a budget is set). Everything else lives in #retrying.
 */

import { CHANNELS, channel } from '../channels.ts';
import type { Clock } from '../clock.ts';
import { booleanOption, clockOption, durationOption, functionOption, intOption, objectOptions, stringOption } from '../internal/options.ts';
import type { Backoff, BackoffOptions } from './backoff.ts';
import { backoff, isBackoff } from './backoff.ts';
import { classify } from './classify.ts';
import type { CallContext, ExecuteContext, ExecuteOptions, Sleep } from './context.ts';
import { sleep, toContext } from './context.ts';
import { PolicyClosedError, RetryExhaustedError } from './errors.ts';
import type { Policy, Work } from './policy.ts';
import { retryAfterOf } from './retry-after.ts';
import type { RetryBudgetOptions } from './retry-budget.ts';
import { RetryBudget } from './retry-budget.ts';

export interface RetryOptions {
  /** Name in errors and telemetry. Default `'retry'`. */
  name?: string;
  /** Total attempts including the first, 1–100. Default `3`. */
  maxAttempts?: number;
  /** A {@link Backoff} or options for {@link backoff}. Default: decorrelated jitter, base 100 ms, max 30 s. */
  backoff?: Backoff | BackoffOptions;
  /** Which errors to retry. Default: `(err) => classify(err).transient`. */
  shouldRetry?: (error: unknown, attempt: number) => boolean;
  /** Retry on a result too, e.g. `(res) => res.status === 503`. Default: never. */
  retryOnResult?: (result: unknown) => boolean;
  /** Honour `Retry-After` on errors and retried results. Default `true`. */
  honorRetryAfter?: boolean;
  /** Cap on a `Retry-After` wait in ms; longer hints give up at once. Default `60_000`. */
  maxRetryAfterMs?: number;
  /** A shared {@link RetryBudget}, its options, or `false` for none. Default: a budget of its own (ratio 0.2, 10 min, 10 s). */
  budget?: RetryBudget | RetryBudgetOptions | false;
  /** Default: the real clock. */
  clock?: Clock;
}

/**
 * Retries transient failures.
 *
 * @example
 * ```ts
 * import { Retry } from 'keel/resilience';
 * const r = new Retry({ maxAttempts: 4, backoff: { kind: 'exponential', baseMs: 50 } });
 * const body = await r.execute(async ({ signal }) => (await fetch(url, { signal })).text());
 * ```
 */
export class Retry implements Policy {
  readonly name: string;
  readonly maxAttempts: number;
  readonly #backoff: Backoff;
  readonly #shouldRetry: (error: unknown, attempt: number) => boolean;
  readonly #retryOnResult: ((result: unknown) => boolean) | undefined;
  readonly #honorRetryAfter: boolean;
  readonly #maxRetryAfterMs: number;
  readonly #budget: RetryBudget | undefined;
  readonly #clock: Clock;
  readonly #retryCh = channel(CHANNELS.resilience.retry);
  readonly #exhaustedCh = channel(CHANNELS.resilience.retryExhausted);
  readonly #budgetCh = channel(CHANNELS.resilience.retryBudgetExceeded);
  // Backoff waits in progress, so close() can end them; empty unless a call is retrying.
  readonly #sleeps = new Set<Sleep>();
  #closed = false;

  constructor(options?: RetryOptions) {
    const o = objectOptions('retry', options);
    this.name = stringOption('retry', 'name', o.name, 'retry');
    this.maxAttempts = intOption('retry', 'maxAttempts', o.maxAttempts, 3, { min: 1, max: 100 });
    this.#clock = clockOption('retry', o.clock);
    this.#backoff = isBackoff(o.backoff) ? o.backoff : backoff(o.backoff as BackoffOptions | undefined);
    this.#shouldRetry = functionOption('retry', 'shouldRetry', o.shouldRetry, (err: unknown) => classify(err).transient);
    this.#retryOnResult = functionOption('retry', 'retryOnResult', o.retryOnResult);
    this.#honorRetryAfter = booleanOption('retry', 'honorRetryAfter', o.honorRetryAfter, true);
    this.#maxRetryAfterMs = durationOption('retry', 'maxRetryAfterMs', o.maxRetryAfterMs, 60_000);
    if (o.budget === false) this.#budget = undefined;
    else if (o.budget instanceof RetryBudget) this.#budget = o.budget;
    else if (o.budget === undefined || (typeof o.budget === 'object' && o.budget !== null)) {
      this.#budget = new RetryBudget({ clock: this.#clock, ...(o.budget ?? {}) });
    } else throw new TypeError(`keel: retry option "budget" must be a RetryBudget, its options, or false (got ${typeof o.budget})`);
  }

  async execute<T>(fn: Work<T>, options?: ExecuteOptions | ExecuteContext): Promise<T> {
    if (this.#closed) throw new PolicyClosedError(this.name);
    const ctx = toContext(options);
    this.#budget?.recordCall();
    let result: T;
    try {
      result = await fn(ctx);
    } catch (error) {
      return this.#retrying(fn, ctx, error, false);
    }
    if (this.#retryOnResult === undefined || this.maxAttempts === 1 || !this.#retryOnResult(result)) return result;
    return this.#retrying(fn, ctx, result, true);
  }

  async #retrying<T>(fn: Work<T>, ctx: CallContext, outcome: unknown, isResult: boolean): Promise<T> {
    const causes: unknown[] = [];
    let previousMs = 0;
    for (let attempt = 1; ; attempt++) {
      if (!isResult) {
        causes.push(outcome);
        if (ctx.aborted || !this.#shouldRetry(outcome, attempt)) throw outcome;
      }
      if (attempt >= this.maxAttempts) return this.#exhausted(outcome, isResult, causes, 'attempts', attempt);
      // close() ends the backoff waits it finds; one that would start after it (the attempt
      // was running at close time) must not start at all, or a timer outlives the policy.
      if (this.#closed) throw new PolicyClosedError(this.name);
      let delay = this.#backoff.next(attempt, previousMs);
      previousMs = delay;
      if (this.#honorRetryAfter) {
        const hinted = retryAfterOf(outcome, this.#clock.now());
        if (hinted !== undefined) {
          if (hinted > this.#maxRetryAfterMs) return this.#exhausted(outcome, isResult, causes, 'attempts', attempt);
          delay = Math.max(delay, hinted);
        }
      }
      if (this.#budget !== undefined && !this.#budget.tryRetry()) {
        if (this.#budgetCh.hasSubscribers) this.#budgetCh.publish({ name: this.name, error: outcome });
        return this.#exhausted(outcome, isResult, causes, 'budget', attempt);
      }
      if (this.#retryCh.hasSubscribers) this.#retryCh.publish({ name: this.name, attempt, delayMs: delay, error: outcome });
      if (delay > 0) await sleep(this.#clock, delay, ctx, this.#sleeps);
      if (this.#closed) throw new PolicyClosedError(this.name);
      else if (ctx.aborted) throw ctx.reason;
      try {
        outcome = await fn(ctx);
        isResult = true;
        if (this.#retryOnResult === undefined || !this.#retryOnResult(outcome)) return outcome as T;
      } catch (error) {
        outcome = error;
        isResult = false;
      }
    }
  }

  /**
   * Ends every backoff wait (those calls reject with PolicyClosedError) and refuses new calls.
   *
   * @example
   * ```ts
   * await using r = retry(); // closed when the block ends
   * ```
   */
  async close(): Promise<void> {
    this.#closed = true;
    const error = new PolicyClosedError(this.name);
    for (const s of [...this.#sleeps]) s.cancel(error);
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #exhausted<T>(outcome: unknown, isResult: boolean, causes: unknown[], reason: 'attempts' | 'budget', attempts: number): T {
    if (this.#exhaustedCh.hasSubscribers) this.#exhaustedCh.publish({ name: this.name, attempts, error: outcome });
    // A retried result (say a 503 Response) is returned as is: the caller can still read it.
    if (isResult) return outcome as T;
    // `attempts`, not causes.length: an attempt whose result was retried left no cause.
    throw new RetryExhaustedError(this.name, causes, reason, attempts);
  }
}

/**
 * Shorthand for `new Retry(options)`.
 *
 * @example
 * ```ts
 * const r = retry({ maxAttempts: 3, retryOnResult: (res) => (res as Response).status === 503 });
 * ```
 */
export function retry(options?: RetryOptions): Retry {
  return new Retry(options);
}
