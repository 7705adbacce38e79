/**
 * L2: Redis through ioredis, every call under a timeout and a circuit breaker, so a slow or
 * dead Redis costs a bounded wait (then nothing, once the breaker opens) and never an error:
 * each method resolves to a result or to "no result". The breaker half-opens by itself, so
 * L2 comes back without anyone acting once Redis answers again.
 */
import type { Redis, RedisOptions } from 'ioredis';
import { CHANNELS, channel } from '../../channels.ts';
import type { Clock } from '../../clock.ts';
import type { Scope } from '../../lifecycle/scope.ts';
import type { CircuitBreaker } from '../../resilience/circuit-breaker.ts';
import { type CircuitBreakerOptions, circuitBreaker, isBrokenCircuitError, isTimeoutError } from '../../resilience/index.ts';
import { CallDeadlines } from './deadlines.ts';
import { CLEAR, DELETE, INVALIDATE, type Script, UNLOCK, WRITE } from './scripts.ts';

/**
 * Options for connections the cache creates from a URL. No offline queue: a command sent while
 * disconnected fails at once instead of waiting in an unbounded queue for a reconnect. No
 * ioredis `commandTimeout`: the keel timeout already bounds each caller, and a second timer
 * per command cost ≈ 1 µs on every L2 hit; against a blackholed Redis the breaker stops
 * sending after 3 timeouts, so at most one probe per half-open period waits in ioredis.
 */
export function connectionOptions(timeoutMs: number): RedisOptions {
  return {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    // No INFO round trip before 'ready': against a blackhole it never answers and the
    // connection would sit in 'connect' for ever, failing every command without a timeout
    // that could trigger the reconnect below.
    enableReadyCheck: false,
    // Nor CLIENT SETINFO before 'ready' (ioredis ≥ 5.4 waits for it): same trap, two round trips.
    disableClientInfo: true,
    // Never resend the commands that were in flight when the connection dropped: their callers
    // already gave up (the keel timeout), and after a byte-dropping blackhole a resent command
    // lost again would take the reply of the next one, so the first probe after Redis returns
    // would time out and the breaker stay open for another full period (test/e2e/faults.test.ts).
    autoResendUnfulfilledCommands: false,
    connectTimeout: Math.max(1_000, timeoutMs * 4),
    // Reconnect quickly at first, then every second: recovery should not wait on a long backoff.
    retryStrategy: (times: number) => Math.min(50 * 2 ** Math.min(times, 5), 1_000),
  };
}

export interface RedisTierOptions {
  name: string;
  redis: Redis;
  owned: boolean;
  namespace: string;
  timeoutMs: number;
  breaker: CircuitBreakerOptions;
  fenceMs: number;
  clock: Clock;
  scope: Scope;
}

const NONE: unique symbol = Symbol('none');

export class RedisTier {
  readonly redis: Redis;
  readonly channelName: string;
  readonly #owned: boolean;
  readonly #name: string;
  readonly #valuePrefix: string;
  readonly #tagPrefix: string;
  readonly #indexPrefix: string;
  readonly #deletePrefix: string;
  readonly #clearKey: string;
  readonly #lockPrefix: string;
  readonly #fence: string;
  readonly #breaker: CircuitBreaker;
  readonly #deadlines: CallDeadlines;
  readonly #errCh = channel(CHANNELS.cache.l2Error);

  constructor(o: RedisTierOptions) {
    this.redis = o.redis;
    this.#owned = o.owned;
    this.#name = o.name;
    this.#valuePrefix = `${o.namespace}:v:`;
    this.#tagPrefix = `${o.namespace}:t:`;
    this.#indexPrefix = `${o.namespace}:i:`;
    this.#deletePrefix = `${o.namespace}:d:`;
    this.#clearKey = `${o.namespace}:c`;
    this.#lockPrefix = `${o.namespace}:l:`;
    this.channelName = `${o.namespace}:bus`;
    this.#fence = String(Math.ceil(o.fenceMs));
    this.#deadlines = new CallDeadlines(o.clock, o.timeoutMs, `${o.name}:l2`);
    // Defaults and validation in options.ts (l2Breaker), before any connection is opened.
    this.#breaker = circuitBreaker(o.breaker);
    o.scope.add(() => {
      this.#closed = true;
      this.#deadlines.close();
    });
    if (this.#owned) {
      // An owned connection's errors are expected (that is what the breaker is for); without a
      // listener ioredis would print every reconnect failure.
      o.scope.on(this.redis, 'error', () => {});
      o.scope.on(this.redis, 'ready', () => {
        this.#dropping = false;
      });
      o.scope.add(() => this.redis.disconnect());
    }
  }

  /** True while the connection is up and the breaker lets calls through. */
  get healthy(): boolean {
    return this.redis.status === 'ready' && this.#breaker.state !== 'open';
  }

  get breakerState(): string {
    return this.#breaker.state;
  }

  async #call<T>(op: () => Promise<T>): Promise<T | typeof NONE> {
    // Work that outlives close() (a lease released when a load ends) sends nothing: the
    // connection is gone, and an owned one would only fail.
    if (this.#closed) return NONE;
    try {
      const r = await this.#breaker.execute(() => this.#deadlines.race(op()));
      if (this.#failing) {
        this.#failing = false;
        this.#onRecover?.();
      }
      return r;
    } catch (error) {
      this.#failing = true;
      if (isTimeoutError(error)) this.#suspect();
      if (!isBrokenCircuitError(error) && this.#errCh.hasSubscribers) this.#errCh.publish({ name: this.#name, error });
      return NONE;
    }
  }

  /**
   * A command timed out on an open connection: replies may never come (a blackhole that
   * drops bytes), and ioredis matches replies to commands in order, so every later reply
   * would go to the wrong caller. An owned connection is dropped and reconnected.
   */
  #suspect(): void {
    // Once per connection: calls time out together, and each disconnect before the socket
    // has closed would add another 'close' listener (ioredis warned past 10 in the tests).
    if (this.#owned && this.redis.status === 'ready' && !this.#dropping) {
      this.#dropping = true;
      this.redis.disconnect(true);
    }
  }

  #dropping = false;
  #closed = false;

  #failing = false;
  #onRecover: (() => void) | undefined;

  /** Called on the first successful call after a failure (a reconnect, or a blackhole ending). */
  onRecover(fn: () => void): void {
    this.#onRecover = fn;
  }

  async #script(s: Script, keys: readonly string[], args: readonly (string | Buffer)[]): Promise<unknown> {
    try {
      return await this.redis.callBuffer('EVALSHA', [s.sha, keys.length, ...keys, ...args]);
    } catch (error) {
      if (!String((error as Error)?.message).startsWith('NOSCRIPT')) throw error;
      return this.redis.callBuffer('EVAL', [s.lua, keys.length, ...keys, ...args]);
    }
  }

  /**
   * The raw record and the namespace's clear stamp (0 if none), or undefined on a miss or any
   * failure. One MGET: entries under an invalidated tag are already deleted, so the only
   * check left to the caller is `born > clearedAt`.
   */
  async read(key: string): Promise<{ record: Buffer; clearedAt: number } | undefined> {
    const r = await this.#call(() => this.redis.mgetBuffer(this.#valuePrefix + key, this.#clearKey));
    if (r === NONE) return undefined;
    const [record, cleared] = r;
    if (!record) return undefined;
    return { record, clearedAt: cleared ? Number(cleared.toString('latin1')) : 0 };
  }

  /**
   * Writes a record unless Redis refuses it: an invalidation stamped at or after `born`, or a
   * record from a later load already there (scripts.ts). `'fenced'` when refused, `'failed'`
   * when Redis could not be asked.
   */
  async write(
    key: string,
    record: Buffer,
    pxMs: number,
    born: number,
    tags: readonly string[],
    message: string,
  ): Promise<'written' | 'fenced' | 'failed'> {
    const px = String(Math.max(1, Math.ceil(pxMs)));
    const args = [
      record,
      px,
      this.channelName,
      message,
      String(born),
      this.#tagPrefix,
      this.#indexPrefix,
      this.#clearKey,
      this.#deletePrefix + key,
      ...tags,
    ];
    const r = await this.#call(() => this.#script(WRITE, [this.#valuePrefix + key], args));
    return r === NONE ? 'failed' : r === 1 ? 'written' : 'fenced';
  }

  async delete(keys: readonly string[], stamp: number, message: string): Promise<boolean> {
    const args = [String(stamp), this.#fence, this.channelName, message, this.#indexPrefix, ...keys.map((k) => this.#deletePrefix + k)];
    const r = await this.#call(() =>
      this.#script(
        DELETE,
        keys.map((k) => this.#valuePrefix + k),
        args,
      ),
    );
    return r !== NONE;
  }

  async invalidateTags(tags: readonly string[], stamp: number, message: string): Promise<boolean> {
    const args = [this.#tagPrefix, this.#indexPrefix, String(stamp), this.#fence, this.channelName, message, ...tags];
    return (await this.#call(() => this.#script(INVALIDATE, [], args))) !== NONE;
  }

  async clear(stamp: number, message: string): Promise<boolean> {
    return (await this.#call(() => this.#script(CLEAR, [this.#clearKey], [String(stamp), this.channelName, message]))) !== NONE;
  }

  /** SET NX PX: `'acquired'` (this caller holds the lease), `'held'` (another does) or `'unavailable'`. */
  async lock(key: string, token: string, leaseMs: number): Promise<'acquired' | 'held' | 'unavailable'> {
    const r = await this.#call(() => this.redis.set(this.#lockPrefix + key, token, 'PX', Math.ceil(leaseMs), 'NX'));
    return r === 'OK' ? 'acquired' : r === NONE ? 'unavailable' : 'held';
  }

  async unlock(key: string, token: string): Promise<void> {
    await this.#call(() => this.#script(UNLOCK, [this.#lockPrefix + key], [token]));
  }
}
