/** `keel/resilience`: composable, observable fault-tolerance policies. */
export type { Backoff, BackoffOptions } from './backoff.ts';
export { backoff } from './backoff.ts';
export { ConsecutiveBreaker } from './breakers/consecutive.ts';
export type { CountWindowOptions } from './breakers/count-window.ts';
export { CountWindowBreaker } from './breakers/count-window.ts';
export type { BreakerStrategy } from './breakers/strategy.ts';
export type { TimeWindowOptions } from './breakers/time-window.ts';
export { TimeWindowBreaker } from './breakers/time-window.ts';
export type { BulkheadOptions } from './bulkhead.ts';
export { Bulkhead, bulkhead } from './bulkhead.ts';
export type { CircuitBreakerOptions } from './circuit-breaker.ts';
export { CircuitBreaker, circuitBreaker } from './circuit-breaker.ts';
export type { Classification, Classifier, ClassifyRule, Severity } from './classify.ts';
export { classify, createClassifier, statusOf } from './classify.ts';
export type { ExecuteContext, ExecuteOptions } from './context.ts';
export type { RejectingState } from './errors.ts';
export {
  BrokenCircuitError,
  BulkheadRejectedError,
  isBrokenCircuitError,
  isBulkheadRejectedError,
  isPolicyClosedError,
  isRateLimitedError,
  isRetryExhaustedError,
  isTimeoutError,
  PolicyClosedError,
  RateLimitedError,
  RetryExhaustedError,
  TimeoutError,
} from './errors.ts';
export type { FallbackOptions, FallbackResult } from './fallback.ts';
export { Fallback, fallback } from './fallback.ts';
export type { HedgeOptions } from './hedge.ts';
export { Hedge, hedge } from './hedge.ts';
export { pipeline } from './pipeline.ts';
export type { Policy, Work } from './policy.ts';
export type { RateLimitOptions } from './rate-limit.ts';
export { RateLimit, rateLimit } from './rate-limit.ts';
export type { RetryOptions } from './retry.ts';
export { Retry, retry } from './retry.ts';
export { parseRetryAfter, retryAfterOf } from './retry-after.ts';
export type { RetryBudgetOptions } from './retry-budget.ts';
export { RetryBudget } from './retry-budget.ts';
export type { BreakerSnapshot, BreakerStateStore } from './state-store.ts';
export { MemoryStateStore } from './state-store.ts';
export type { TimeoutOptions } from './timeout.ts';
export { Timeout, timeout } from './timeout.ts';
