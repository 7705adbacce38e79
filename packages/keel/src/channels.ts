/**
 * The catalogue of Keel's `node:diagnostics_channel` channels: the one contract between the
 * parts that publish telemetry (resilience policies, cache tiers, pools, the load generator)
 * and `keel/observe`, which turns it into metrics. No publisher imports `observe`.
 *
 * Publishers check `channel.hasSubscribers` before building a message, so telemetry costs a
 * property read when nobody listens. Messages are plain objects; `name` is the instance's
 * configured name (bounded by the user), never a per-call value, so metrics built from it
 * keep a bounded label set.
 *
 * @example
 * ```ts
 * import { subscribe } from 'node:diagnostics_channel';
 * import { CHANNELS } from 'keel/channels';
 * subscribe(CHANNELS.resilience.breakerState, (m) => console.log(m));
 * ```
 */
import { channel } from 'node:diagnostics_channel';

export const CHANNELS = Object.freeze({
  resilience: Object.freeze({
    /** {@link RetryMessage}: a retry was scheduled. */
    retry: 'keel:resilience:retry',
    /** {@link RetryExhaustedMessage}: the last attempt failed. */
    retryExhausted: 'keel:resilience:retry-exhausted',
    /** {@link NamedErrorMessage}: the retry budget refused a retry. */
    retryBudgetExceeded: 'keel:resilience:retry-budget-exceeded',
    /** {@link TimeoutMessage}: a call passed its deadline. */
    timeout: 'keel:resilience:timeout',
    /** {@link BreakerStateMessage}: a breaker changed state. */
    breakerState: 'keel:resilience:breaker-state',
    /**
     * {@link BreakerCreatedMessage}: a breaker was constructed (published once, with its
     * initial state), so a breaker that never changes state is still known to subscribers.
     */
    breakerCreated: 'keel:resilience:breaker-created',
    /** {@link NamedMessage}: a breaker rejected a call. */
    breakerRejected: 'keel:resilience:breaker-rejected',
    /** {@link BulkheadRejectedMessage}: the bulkhead was full or the queue wait expired. */
    bulkheadRejected: 'keel:resilience:bulkhead-rejected',
    /** {@link NamedMessage}: the rate limiter rejected a call. */
    rateLimited: 'keel:resilience:rate-limited',
    /** {@link HedgeMessage}: a hedged attempt was started. */
    hedge: 'keel:resilience:hedge',
    /** {@link NamedErrorMessage}: a fallback served a degraded result. */
    fallback: 'keel:resilience:fallback',
  }),
  cache: Object.freeze({
    /** {@link CacheHitMessage} */
    hit: 'keel:cache:hit',
    /** {@link NamedMessage} */
    miss: 'keel:cache:miss',
    /** {@link NamedMessage}: a stale value was served (grace or fail-safe). */
    stale: 'keel:cache:stale',
    /** {@link CacheLoadMessage}: the loader ran. */
    load: 'keel:cache:load',
    /** {@link NamedErrorMessage}: the loader failed. */
    loaderError: 'keel:cache:loader-error',
    /** {@link CacheEvictMessage} */
    evict: 'keel:cache:evict',
    /** {@link NamedErrorMessage}: an L2 (Redis) call failed or timed out. */
    l2Error: 'keel:cache:l2-error',
    /** {@link CacheBusLagMessage}: an invalidation arrived from another instance. */
    busLag: 'keel:cache:bus-lag',
  }),
  db: Object.freeze({
    /** {@link DbQueryMessage}: a statement ran (publishers may sample). */
    query: 'keel:db:query',
  }),
  http: Object.freeze({
    /** {@link NamedMessage}: a request was shed under pressure. */
    shed: 'keel:http:shed',
    /** `PressureMessage` (keel/observe): shedding started or ended. */
    pressure: 'keel:http:pressure',
    /** {@link NamedMessage}: a load shedder was constructed (not under pressure yet). */
    shedderCreated: 'keel:http:shedder-created',
  }),
});

export interface NamedMessage {
  name: string;
}
export interface NamedErrorMessage extends NamedMessage {
  error: unknown;
}
export interface RetryMessage extends NamedMessage {
  attempt: number;
  delayMs: number;
  error: unknown;
}
export interface RetryExhaustedMessage extends NamedMessage {
  attempts: number;
  error: unknown;
}
export interface TimeoutMessage extends NamedMessage {
  timeoutMs: number;
}
export type BreakerState = 'closed' | 'open' | 'half-open' | 'isolated';
export interface BreakerStateMessage extends NamedMessage {
  from: BreakerState;
  to: BreakerState;
}
/** Published once per breaker, at construction; not a transition. */
export interface BreakerCreatedMessage extends NamedMessage {
  state: BreakerState;
}
export interface BulkheadRejectedMessage extends NamedMessage {
  reason: 'full' | 'queue-timeout';
}
export interface HedgeMessage extends NamedMessage {
  attempt: number;
}
export interface CacheHitMessage extends NamedMessage {
  tier: 'l1' | 'l2';
}
export interface CacheLoadMessage extends NamedMessage {
  durationMs: number;
  ok: boolean;
}
export interface CacheEvictMessage extends NamedMessage {
  reason: string;
}
export interface CacheBusLagMessage extends NamedMessage {
  lagMs: number;
}
export interface DbQueryMessage extends NamedMessage {
  sql: string;
  durationMs: number;
}

/**
 * The channel object for a name. Node caches channels by name, so publishers call this
 * once at construction and keep the result.
 */
export { channel };
