/**
 * The typed failures of `keel/resilience`. Each has a stable `code`; the `isXError` guards
 * check that code, so they work when two copies of Keel are installed side by side.
 */
import { guardFor, KeelError } from '../errors.ts';

/** The state a breaker was in when it rejected a call. */
export type RejectingState = 'open' | 'half-open' | 'isolated';

/**
 * Thrown by a circuit breaker that is open, isolated, or half-open with all probe slots taken.
 *
 * @example
 * ```ts
 * try { await breaker.execute(call); } catch (err) {
 *   if (isBrokenCircuitError(err)) console.log(err.state, err.retryAfterMs);
 * }
 * ```
 */
export class BrokenCircuitError extends KeelError {
  /** Why the call was refused. */
  readonly state: RejectingState;
  /** Milliseconds until the breaker admits a probe (0 when unknown, e.g. isolated). */
  readonly retryAfterMs: number;
  constructor(name: string, state: RejectingState, retryAfterMs: number) {
    super('KEEL_BROKEN_CIRCUIT', `keel: circuit "${name}" is ${state}`);
    this.state = state;
    this.retryAfterMs = retryAfterMs;
  }
}

/**
 * Thrown by a bulkhead when every slot and queue place is taken, or a queued call waited too long.
 *
 * @example
 * ```ts
 * if (isBulkheadRejectedError(err)) reply.code(503).send({ reason: err.reason });
 * ```
 */
export class BulkheadRejectedError extends KeelError {
  readonly reason: 'full' | 'queue-timeout';
  constructor(name: string, reason: 'full' | 'queue-timeout') {
    super('KEEL_BULKHEAD_REJECTED', `keel: bulkhead "${name}" rejected the call (${reason})`);
    this.reason = reason;
  }
}

/**
 * Thrown by a rate limiter when no token is free within its wait bound. `retryAfter` (seconds)
 * lets an outer retry policy wait exactly as long as needed.
 *
 * @example
 * ```ts
 * if (isRateLimitedError(err)) reply.header('retry-after', err.retryAfter).code(429).send();
 * ```
 */
export class RateLimitedError extends KeelError {
  /** Milliseconds until a token is free. */
  readonly retryAfterMs: number;
  /** The same wait in whole seconds, the unit of the HTTP `Retry-After` header. */
  readonly retryAfter: number;
  readonly key: string | undefined;
  constructor(name: string, retryAfterMs: number, key?: string) {
    super('KEEL_RATE_LIMITED', `keel: rate limit "${name}" exceeded${key === undefined ? '' : ` for key ${JSON.stringify(key)}`}`);
    this.retryAfterMs = retryAfterMs;
    this.retryAfter = Math.ceil(retryAfterMs / 1000);
    this.key = key;
  }
}

/**
 * Thrown when a call passes its deadline. `cause` holds what the work threw after it was
 * aborted (cooperative timeouts), if anything.
 *
 * @example
 * ```ts
 * if (isTimeoutError(err)) console.log(`gave up after ${err.timeoutMs} ms`);
 * ```
 */
export class TimeoutError extends KeelError {
  readonly timeoutMs: number;
  constructor(name: string, timeoutMs: number, options?: { cause?: unknown }) {
    super('KEEL_TIMEOUT', `keel: "${name}" timed out after ${timeoutMs} ms`, options);
    this.timeoutMs = timeoutMs;
  }
}

/**
 * Thrown when retries run out (`reason: 'attempts'`) or the retry budget refuses one
 * (`reason: 'budget'`). `causes` holds every failed attempt's error, oldest first; `cause` is
 * the last. `attempts` counts every attempt made, including those whose result
 * `retryOnResult` retried (they left no error in `causes`).
 *
 * @example
 * ```ts
 * if (isRetryExhaustedError(err)) for (const c of err.causes) console.log(c);
 * ```
 */
export class RetryExhaustedError extends KeelError {
  readonly attempts: number;
  readonly causes: readonly unknown[];
  readonly reason: 'attempts' | 'budget';
  constructor(name: string, causes: unknown[], reason: 'attempts' | 'budget', attempts = causes.length) {
    super('KEEL_RETRY_EXHAUSTED', `keel: "${name}" failed after ${attempts} attempt(s) (${reason})`, {
      cause: causes[causes.length - 1],
    });
    this.attempts = attempts;
    this.causes = causes;
    this.reason = reason;
  }
}

/**
 * Thrown by a policy that was closed: to calls made after close(), and to calls that were
 * waiting in it (a retry backoff, a bulkhead queue, a rate-limit wait, a deadline).
 *
 * @example
 * ```ts
 * await policy.close();
 * await policy.execute(work).catch((err) => isPolicyClosedError(err)); // true
 * ```
 */
export class PolicyClosedError extends KeelError {
  constructor(name: string) {
    super('KEEL_POLICY_CLOSED', `keel: policy "${name}" is closed`);
  }
}

/** @example `if (isBrokenCircuitError(err)) …` */
export const isBrokenCircuitError = guardFor<BrokenCircuitError>('KEEL_BROKEN_CIRCUIT');
/** @example `if (isBulkheadRejectedError(err)) …` */
export const isBulkheadRejectedError = guardFor<BulkheadRejectedError>('KEEL_BULKHEAD_REJECTED');
/** @example `if (isRateLimitedError(err)) …` */
export const isRateLimitedError = guardFor<RateLimitedError>('KEEL_RATE_LIMITED');
/** @example `if (isTimeoutError(err)) …` */
export const isTimeoutError = guardFor<TimeoutError>('KEEL_TIMEOUT');
/** @example `if (isRetryExhaustedError(err)) …` */
export const isRetryExhaustedError = guardFor<RetryExhaustedError>('KEEL_RETRY_EXHAUSTED');
/** @example `if (isPolicyClosedError(err)) …` */
export const isPolicyClosedError = guardFor<PolicyClosedError>('KEEL_POLICY_CLOSED');
