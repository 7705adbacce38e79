/**
 * The tiered cache: L1 in process (lru-cache), optional L2 in Redis, single flight per key
 * (and optionally across instances), stale-while-revalidate and fail-safe within a grace
 * period, tag invalidation fenced by stamps, and cross-instance L1 invalidation over a bus.
 *
 * The L1 hit path is one lru-cache get (its TTL on the cache clock, read at most once per
 * ms); tag invalidation deletes L1 keys eagerly, so hits check no tags. No timer, no
 * AbortController: `peek` returns the value, `get`/`getOrSet` one resolved promise
 * (benchmarks/cache.bench.ts).
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { type CacheHitMessage, CHANNELS, channel } from '../channels.ts';
import type { Clock, TimerHandle } from '../clock.ts';
import { Scope } from '../lifecycle/scope.ts';
import { Bus, BusEncoder, type BusMessage } from './bus.ts';
import { CacheClosedError } from './errors.ts';
import { type CachedBody, toCachedBody } from './http.ts';
import { Loads } from './loads.ts';
import { callOptionsError, type GetOrSetOptions, resolveOptions, type SetOptions, type TieredCacheOptions } from './options.ts';
import { LocalDeletes, PendingInvalidations } from './pending.ts';
import type { LoaderContext } from './single-flight.ts';
import { FlightMap } from './single-flight.ts';
import { badTag, TagStamps } from './tags.ts';
import { MemoryTier } from './tiers/memory.ts';
import { connectionOptions, RedisTier } from './tiers/redis.ts';

/** A loader: gets `{ signal }` (aborted at the hard timeout or on close), returns the value. */
export type Loader<T> = (context: LoaderContext) => PromiseLike<T> | T;

export interface BodyOptions extends GetOrSetOptions {
  /** Content type of the body. Default: JSON for values, text for strings, octet-stream for bytes. */
  contentType?: string;
}

/** A snapshot for health checks and dashboards. */
export interface CacheStats {
  l1Entries: number;
  l1Bytes: number;
  inFlight: number;
  /** `'none'` without L2; `'up'` when connected with the breaker closed; `'down'` otherwise. */
  l2: 'none' | 'up' | 'down';
  /** Bus subscribed (false without a bus). */
  bus: boolean;
  /** Invalidations waiting for Redis to come back. */
  pendingInvalidations: number;
}

/**
 * A tiered cache that never stampedes, never hangs on Redis, and serves stale rather than fail.
 *
 * @example
 * ```ts
 * import { TieredCache } from 'keel/cache';
 * const cache = new TieredCache({ name: 'topics', ttlMs: 30_000, graceMs: 300_000 });
 * const topics = await cache.getOrSet('forum:1:topics', () => repo.listTopics(1), { tags: ['forum:1'] });
 * await cache.invalidateTags(['forum:1']); // after a write
 * await cache.close();
 * ```
 */
export class TieredCache implements AsyncDisposable {
  readonly name: string;
  readonly #clock: Clock;
  readonly #scope: Scope;
  readonly #l1: MemoryTier;
  readonly #tags: TagStamps;
  readonly #flights = new FlightMap();
  readonly #l2: RedisTier | undefined;
  readonly #bus: Bus | undefined;
  readonly #loads: Loads;
  readonly #id = randomUUID();
  readonly #encoder = new BusEncoder(this.#id);
  readonly #hitCh = channel(CHANNELS.cache.hit);
  // One frozen message per event kind: with observe subscribed, a hit publishes without allocating.
  readonly #l1Hit: CacheHitMessage;
  readonly #evictCh = channel(CHANNELS.cache.evict);
  readonly #pending: PendingInvalidations | undefined;
  readonly #deletes = new LocalDeletes(10_000);
  #closed = false;
  // The hit path's clock: read once, reused for 1 ms. Date.now() measured ≈ 70 ns on this
  // (busy) machine, a third of an lru-cache get; one timer per active millisecond is cheaper.
  #cachedNow = 0;
  #nowTimer: TimerHandle | undefined;
  readonly #resetNow = (): void => {
    this.#cachedNow = 0;
    this.#nowTimer = undefined;
  };

  constructor(options?: TieredCacheOptions) {
    const o = resolveOptions(options);
    this.name = o.name;
    this.#l1Hit = Object.freeze({ name: o.name, tier: 'l1' as const });
    this.#clock = o.clock;
    this.#scope = new Scope({ name: `cache:${o.name}`, clock: o.clock });
    this.#tags = new TagStamps(o.clock, o.maxTags);
    this.#l1 = new MemoryTier({
      maxEntries: o.l1.maxEntries,
      maxBytes: o.l1.maxBytes,
      enabled: o.l1.enabled,
      now: () => this.#now(),
      onEvict: () => {
        if (this.#evictCh.hasSubscribers) this.#evictCh.publish({ name: this.name, reason: 'capacity' });
      },
    });
    if (o.l2) {
      const owned = typeof o.l2.redis === 'string';
      const conn = connectionOptions(o.l2.timeoutMs);
      const redis = typeof o.l2.redis === 'string' ? new Redis(o.l2.redis, conn) : o.l2.redis;
      this.#l2 = new RedisTier({
        name: o.name,
        redis,
        owned,
        namespace: o.namespace,
        timeoutMs: o.l2.timeoutMs,
        breaker: o.l2.breaker,
        fenceMs: Math.max(o.l2.fenceMs, o.hardTimeoutMs),
        clock: o.clock,
        scope: this.#scope,
      });
      const pending = new PendingInvalidations(
        this.#l2,
        () => this.#tags.stamp(),
        (stamp, part) => this.#message(stamp, part),
        this.#deletes,
      );
      this.#pending = pending;
      this.#scope.on(redis, 'ready', () => void pending.flush());
      this.#l2.onRecover(() => void pending.flush());
      if (o.bus) {
        // The bus subscribes on every 'ready' itself; ioredis's own resubscribe would reject
        // unhandled when the connection drops again mid-way.
        const subConn = { ...conn, autoResubscribe: false };
        const subscriber = typeof o.l2.redis === 'string' ? new Redis(o.l2.redis, subConn) : o.l2.redis.duplicate(subConn);
        this.#bus = new Bus({
          name: o.name,
          subscriber,
          channel: this.#l2.channelName,
          instanceId: this.#id,
          clock: o.clock,
          scope: this.#scope,
          heartbeatMs: 1_000,
          owned: true,
          onMessage: (m) => this.#onBus(m),
          onReconnect: () => {
            // Messages may have been missed: loads in flight may predate one of them too.
            this.#l1.clear();
            this.#loads.changes.touchAll();
            this.#flights.detachAll();
          },
        });
      }
    }
    this.#loads = new Loads({
      o,
      l1: this.#l1,
      l2: this.#l2,
      tags: this.#tags,
      flights: this.#flights,
      scope: this.#scope,
      encoder: this.#bus ? this.#encoder : undefined,
      deletes: this.#deletes,
      isClosed: () => this.#closed,
    });
  }

  /**
   * The value for `key` when fresh in L1 or L2, else `undefined`. Never rejects.
   *
   * @example
   * ```ts
   * const user = await cache.get('user:1');
   * ```
   */
  get<T = unknown>(key: string): Promise<T | undefined> {
    const hit = this.#l1.fresh(key);
    if (hit !== undefined) {
      if (this.#hitCh.hasSubscribers) this.#hitCh.publish(this.#l1Hit);
      return Promise.resolve(hit as T);
    }
    return this.#loads.getSlow(key, this.#l1.entry(key)) as Promise<T | undefined>;
  }

  /**
   * The fresh value in L1, synchronously, or `undefined` (no L2 lookup, no stale values).
   * For hot paths that can fall back to `getOrSet` on a miss without paying an `await`.
   *
   * @example
   * ```ts
   * const session = cache.peek<Session>(`session:${id}`) ?? (await cache.getOrSet(`session:${id}`, () => sessions.find(id)));
   * ```
   */
  peek<T = unknown>(key: string): T | undefined {
    const hit = this.#l1.fresh(key);
    if (hit !== undefined && this.#hitCh.hasSubscribers) this.#hitCh.publish(this.#l1Hit);
    return hit as T | undefined;
  }

  /**
   * The cached value, or the loader's, run once per key however many callers ask. Within
   * grace a stale value is served (at once, or after `softTimeoutMs`) while a refresh runs;
   * a failing or slow loader serves stale too. Rejects only with the loader's own error, a
   * {@link CacheTimeoutError} (hard timeout, nothing stale), or {@link CacheClosedError}.
   * A loader result of `undefined` is returned but not cached.
   *
   * @example
   * ```ts
   * const page = await cache.getOrSet(`page:${id}`, ({ signal }) => wiki.load(id, { signal }), { tags: [`page:${id}`], ttlMs: 60_000 });
   * ```
   */
  getOrSet<T>(key: string, loader: Loader<T>, options?: GetOrSetOptions): Promise<T> {
    const hit = this.#l1.fresh(key);
    if (hit !== undefined) {
      if (this.#hitCh.hasSubscribers) this.#hitCh.publish(this.#l1Hit);
      return Promise.resolve(hit as T);
    }
    const e = this.#l1.entry(key);
    if (this.#closed) return Promise.reject(new CacheClosedError(this.name));
    const bad = callOptionsError(options) ?? this.#tagsError(options?.tags);
    if (bad) return Promise.reject(bad);
    return this.#loads.getOrSetSlow(key, loader, options, e, 'v') as Promise<T>;
  }

  /**
   * Like {@link getOrSet}, for HTTP bodies: the loader's result is encoded once (JSON for
   * values; strings and bytes as they are) and stored with its strong ETag, so a hit hands
   * back the same bytes and ETag without re-stringifying. L2 stores the raw bytes too. Pair
   * with `conditionalResponse()` for 304s. Use keys distinct from `getOrSet` keys.
   *
   * @example
   * ```ts
   * const cached = await cache.getOrSetBody(`topics:${id}`, () => repo.listTopics(id), { tags: [`forum:${id}`] });
   * reply.header('etag', cached.etag).type(cached.contentType).send(cached.body);
   * ```
   */
  getOrSetBody(key: string, loader: Loader<unknown>, options?: BodyOptions): Promise<CachedBody> {
    const hit = this.#l1.fresh(key);
    if (hit !== undefined) {
      if (this.#hitCh.hasSubscribers) this.#hitCh.publish(this.#l1Hit);
      return Promise.resolve(hit as CachedBody);
    }
    const e = this.#l1.entry(key);
    if (this.#closed) return Promise.reject(new CacheClosedError(this.name));
    const bad = callOptionsError(options) ?? this.#tagsError(options?.tags);
    if (bad) return Promise.reject(bad);
    const type = options?.contentType;
    const wrapped: Loader<CachedBody> = async (ctx) => toCachedBody(await loader(ctx), type);
    return this.#loads.getOrSetSlow(key, wrapped, options, e, 'b') as Promise<CachedBody>;
  }

  /**
   * Stores a value in L1 and L2 (and tells other instances to drop theirs).
   *
   * @example
   * ```ts
   * await cache.set('user:1', user, { ttlMs: 300_000, tags: ['user:1'] });
   * ```
   */
  set(key: string, value: unknown, options?: SetOptions): Promise<void> {
    if (this.#closed) return Promise.resolve();
    const bad = callOptionsError(options) ?? this.#tagsError(options?.tags);
    if (bad) return Promise.reject(bad);
    this.#flights.detachKey(key);
    return this.#loads.store(key, value, this.#tags.stamp(), options, undefined, 'v').then(() => undefined);
  }

  /**
   * Stores an HTTP body (see {@link getOrSetBody}) and returns it with its ETag.
   *
   * @example
   * ```ts
   * const cached = await cache.setBody('home', '<h1>hi</h1>', { contentType: 'text/html; charset=utf-8' });
   * ```
   */
  async setBody(key: string, content: unknown, options?: BodyOptions): Promise<CachedBody> {
    const body = toCachedBody(content, options?.contentType);
    if (this.#closed) return body;
    const bad = callOptionsError(options) ?? this.#tagsError(options?.tags);
    if (bad) throw bad;
    this.#flights.detachKey(key);
    await this.#loads.store(key, body, this.#tags.stamp(), options, undefined, 'b');
    return body;
  }

  /**
   * Removes a key from L1, L2 and every instance's L1. Never rejects; if Redis is down the
   * delete is replayed when it returns.
   *
   * @example
   * ```ts
   * await cache.delete('user:1');
   * ```
   */
  async delete(key: string): Promise<void> {
    this.#l1.delete(key);
    this.#loads.changes.touch(key);
    this.#flights.detachKey(key);
    if (!this.#l2 || this.#closed) return;
    const stamp = this.#tags.stamp();
    // Until Redis confirms it, Redis may still hold the old value: reads here must not take
    // it back into L1 (Consistency 1 in docs/cache.md; r12 in the cache audit).
    this.#deletes.mark(key, stamp);
    const ok = await this.#l2.delete([key], stamp, this.#message(stamp, { k: [key] }));
    if (ok) this.#deletes.confirm(key, stamp);
    else this.#pending?.addKey(key, stamp);
  }

  /**
   * Expires every entry under any of `tags`, here at once and in every instance (L2 stamps
   * and the bus). Loads that started before it are not stored. Never rejects.
   *
   * @example
   * ```ts
   * await cache.invalidateTags([`topic:${topicId}`, `forum:${forumId}`]);
   * ```
   */
  async invalidateTags(tags: readonly string[]): Promise<void> {
    const bad = Array.isArray(tags) ? this.#tagsError(tags) : new TypeError('keel: TieredCache.invalidateTags needs an array of tags');
    if (bad) throw bad;
    if (tags.length === 0) return;
    const stamp = this.#tags.stamp();
    this.#tags.invalidate(tags, stamp);
    this.#l1.deleteTags(tags);
    this.#flights.detachTags(tags);
    if (!this.#l2 || this.#closed) return;
    const ok = await this.#l2.invalidateTags(tags, stamp, this.#message(stamp, { g: [...tags] }));
    if (!ok) this.#pending?.addTags(tags, stamp);
  }

  /**
   * Empties the cache in this namespace: L1 here and everywhere, and L2 (by a clear stamp,
   * so it is one round trip however many keys there are). Never rejects.
   *
   * @example
   * ```ts
   * await cache.clear();
   * ```
   */
  async clear(): Promise<void> {
    this.#l1.clear();
    this.#loads.changes.touchAll();
    const stamp = this.#tags.stamp();
    this.#tags.clear(stamp);
    this.#flights.detachAll();
    if (!this.#l2 || this.#closed) return;
    const ok = await this.#l2.clear(stamp, this.#message(stamp, { c: 1 }));
    if (ok) this.#deletes.confirmClear(stamp);
    else this.#pending?.addClear(stamp);
  }

  /**
   * Resolves `true` once L2 (and the bus) are connected, or `false` after `timeoutMs`. The
   * cache works before that (L1 only); await this at start-up when you want L2 from the first call.
   *
   * @example
   * ```ts
   * const cache = new TieredCache({ l2: { redis: process.env.REDIS_URL! } });
   * await cache.ready();
   * ```
   */
  async ready(timeoutMs = 5_000): Promise<boolean> {
    if (!this.#l2) return true;
    const deadline = this.#clock.now() + timeoutMs;
    const up = (): boolean => this.#l2?.redis.status === 'ready' && (this.#bus === undefined || this.#bus.connected);
    while (!up()) {
      if (this.#closed || this.#clock.now() >= deadline) return false;
      await this.#loads.sleeper.sleep(10);
    }
    return true;
  }

  /**
   * Counts for health checks and dashboards.
   *
   * @example
   * ```ts
   * if (cache.stats().l2 === 'down') health.degraded('redis');
   * ```
   */
  stats(): CacheStats {
    return {
      l1Entries: this.#l1.entries,
      l1Bytes: this.#l1.bytes,
      inFlight: this.#flights.size,
      l2: this.#l2 ? (this.#l2.healthy ? 'up' : 'down') : 'none',
      bus: this.#bus?.connected ?? false,
      pendingInvalidations: this.#pending?.size ?? 0,
    };
  }

  /**
   * Aborts loads in flight, closes the connections the cache opened, and empties L1.
   * A client passed in as `l2.redis` is left open (its owner closes it). Idempotent.
   *
   * @example
   * ```ts
   * await cache.close();
   * ```
   */
  async close(): Promise<void> {
    if (this.#closed) return this.#scope.close();
    this.#closed = true;
    this.#flights.detachAll(new CacheClosedError(this.name));
    this.#loads.sleeper.wakeAll();
    this.#l1.clear();
    if (this.#nowTimer !== undefined) this.#clock.clearTimeout(this.#nowTimer);
    this.#resetNow();
    await this.#scope.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #now(): number {
    return this.#cachedNow !== 0 ? this.#cachedNow : this.#readNow();
  }

  #readNow(): number {
    const now = this.#clock.now();
    if (this.#closed) return now;
    this.#cachedNow = now;
    this.#nowTimer = this.#clock.setTimeout(this.#resetNow, 1);
    return now;
  }

  #tagsError(tags: readonly string[] | undefined): TypeError | undefined {
    if (tags === undefined) return undefined;
    for (const t of tags) {
      const why = badTag(t);
      if (why) return new TypeError(`keel: TieredCache ${why}`);
    }
    return undefined;
  }

  #message(stamp: number, part: Partial<BusMessage>): string {
    return this.#bus ? this.#encoder.encode(this.#clock.now(), stamp, part) : '';
  }

  #onBus(m: BusMessage): void {
    if (m.c === 1) {
      this.#l1.clear();
      this.#tags.clear(m.t);
      this.#flights.detachAll();
    }
    if (Array.isArray(m.g) && m.g.length > 0) {
      this.#tags.invalidate(m.g, m.t);
      this.#l1.deleteTags(m.g);
      this.#flights.detachTags(m.g);
    }
    if (m.c === 1) this.#loads.changes.touchAll();
    if (Array.isArray(m.k)) {
      for (const k of m.k) {
        this.#l1.delete(k);
        this.#loads.changes.touch(k);
        // A load here that began before the change must not store its result, nor put its
        // stale value back on failure (r1 in the cache audit).
        this.#flights.detachKey(k);
      }
    }
  }
}
