/**
 * A token bucket, shared or per key. Waiting calls reserve their token up front (the
 * bucket goes negative), so the wait each call is told is exact and `maxWaitMs` bounds
 * how far ahead reservations can go.
 */

import { CHANNELS, channel } from '../channels.ts';
import type { Clock } from '../clock.ts';
import { booleanOption, clockOption, durationOption, intOption, numberOption, objectOptions, stringOption } from '../internal/options.ts';
import type { ExecuteContext, ExecuteOptions, Sleep } from './context.ts';
import { sleep, toContext } from './context.ts';
import { PolicyClosedError, RateLimitedError } from './errors.ts';
import type { Policy, Work } from './policy.ts';

export interface RateLimitOptions {
  /** Name in errors and telemetry. Default `'rate-limit'`. */
  name?: string;
  /** Tokens added per `intervalMs`. Default `10`. */
  tokensPerInterval?: number;
  /** Refill interval in ms. Default `1_000`. */
  intervalMs?: number;
  /** Bucket capacity (largest burst), at least 1. Default: `max(1, tokensPerInterval)`. */
  burst?: number;
  /** Longest a call may wait for a token (ms); longer waits reject with RateLimitedError. Default `0` (never wait). */
  maxWaitMs?: number;
  /** Keep one bucket per `key` given to `execute` (calls without a key share one bucket). Default `false`. */
  perKey?: boolean;
  /** Most keys kept; the least recently used is dropped beyond it. Default `10_000`. */
  maxKeys?: number;
  /** Default: the real clock. */
  clock?: Clock;
}

interface Bucket {
  tokens: number;
  at: number;
}

/**
 * Limits the call rate.
 *
 * @example
 * ```ts
 * import { RateLimit } from 'keel/resilience';
 * const perHost = new RateLimit({ tokensPerInterval: 2, intervalMs: 1_000, perKey: true, maxWaitMs: 500 });
 * await perHost.execute(({ signal }) => fetch(url, { signal }), { key: new URL(url).host });
 * ```
 */
export class RateLimit implements Policy {
  readonly name: string;
  readonly #rate: number;
  readonly #burst: number;
  readonly #maxWaitMs: number;
  readonly #perKey: boolean;
  readonly #maxKeys: number;
  readonly #clock: Clock;
  readonly #ch = channel(CHANNELS.resilience.rateLimited);
  readonly #shared: Bucket;
  // Map keeps insertion order: re-inserting on use makes the first key the least recently used.
  readonly #keys = new Map<string, Bucket>();
  readonly #sleeps = new Set<Sleep>();
  #closed = false;

  constructor(options?: RateLimitOptions) {
    const o = objectOptions('rateLimit', options);
    this.name = stringOption('rateLimit', 'name', o.name, 'rate-limit');
    const tokens = numberOption('rateLimit', 'tokensPerInterval', o.tokensPerInterval, 10, { min: Number.MIN_VALUE });
    const interval = durationOption('rateLimit', 'intervalMs', o.intervalMs, 1_000, 1);
    this.#rate = tokens / interval;
    // A call takes a whole token, so a bucket smaller than 1 (say 0.5 per second) would
    // never hold one and would reject every call for ever.
    this.#burst = numberOption('rateLimit', 'burst', o.burst, Math.max(1, tokens), { min: 1 });
    this.#maxWaitMs = durationOption('rateLimit', 'maxWaitMs', o.maxWaitMs, 0);
    this.#perKey = booleanOption('rateLimit', 'perKey', o.perKey, false);
    this.#maxKeys = intOption('rateLimit', 'maxKeys', o.maxKeys, 10_000, { min: 1 });
    this.#clock = clockOption('rateLimit', o.clock);
    this.#shared = { tokens: this.#burst, at: this.#clock.now() };
  }

  /** Keys with a bucket now (at most `maxKeys`). */
  get keys(): number {
    return this.#keys.size;
  }

  #bucket(key: string | undefined, now: number): Bucket {
    if (!this.#perKey || key === undefined) return this.#shared;
    let b = this.#keys.get(key);
    if (b) this.#keys.delete(key);
    else {
      b = { tokens: this.#burst, at: now };
      if (this.#keys.size >= this.#maxKeys) this.#keys.delete(this.#keys.keys().next().value as string);
    }
    this.#keys.set(key, b);
    return b;
  }

  /** Takes a token: 0 when one is free now, else the wait in ms (the token is reserved). Throws RateLimitedError beyond `maxWaitMs`. */
  #take(key: string | undefined): number {
    const now = this.#clock.now();
    const b = this.#bucket(key, now);
    b.tokens = Math.min(this.#burst, b.tokens + (now - b.at) * this.#rate);
    b.at = now;
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    const wait = (1 - b.tokens) / this.#rate;
    if (wait > this.#maxWaitMs) {
      if (this.#ch.hasSubscribers) this.#ch.publish({ name: this.name });
      throw new RateLimitedError(this.name, Math.ceil(wait), this.#perKey ? key : undefined);
    }
    b.tokens -= 1;
    return wait;
  }

  async execute<T>(fn: Work<T>, options?: ExecuteOptions | ExecuteContext): Promise<T> {
    if (this.#closed) throw new PolicyClosedError(this.name);
    const ctx = toContext(options);
    const wait = this.#take(ctx.key);
    if (wait > 0) {
      try {
        await sleep(this.#clock, wait, ctx, this.#sleeps);
      } catch (error) {
        // An abandoned reservation goes back to the bucket.
        const b = this.#perKey && ctx.key !== undefined ? this.#keys.get(ctx.key) : this.#shared;
        if (b) b.tokens += 1;
        throw error;
      }
    }
    return await fn(ctx);
  }

  /**
   * Ends every wait for a token (those calls reject with PolicyClosedError), refuses new
   * calls and drops all buckets.
   *
   * @example
   * ```ts
   * await limiter.close();
   * ```
   */
  async close(): Promise<void> {
    this.#closed = true;
    const error = new PolicyClosedError(this.name);
    for (const s of [...this.#sleeps]) s.cancel(error);
    this.#keys.clear();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * Shorthand for `new RateLimit(options)`.
 *
 * @example
 * ```ts
 * const rl = rateLimit({ tokensPerInterval: 100, intervalMs: 60_000 });
 * ```
 */
export function rateLimit(options?: RateLimitOptions): RateLimit {
  return new RateLimit(options);
}
