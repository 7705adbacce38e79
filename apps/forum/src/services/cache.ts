/**
 * The forum's caches and the rules that keep them honest.
 *
 * - `pages` holds pre-serialized JSON bodies of the read routes (topic lists, topics, wiki
 *   pages, revisions, search), sent as bytes with a strong ETag.
 * - `sessions` holds session lookups (token hash → user), read synchronously on every
 *   authenticated request.
 *
 * Every write invalidates by tag as soon as it commits (the domain events below); the L1 part
 * of an invalidation is synchronous, and a mutating request's reply waits for the L2 part
 * (see {@link ForumCaches.settle}), so the writer's next read on this instance sees the write,
 * and other instances' L1 drop the old value when the bus delivers the invalidation.
 * Search results are the exception: a write touches the FTS index of every matching query, so
 * they live `searchTtlMs` and are bypassed for a user who wrote within that window instead.
 */
import { TieredCache } from 'keel/cache';
import type { ForumEventBus, ForumEvents } from './events.ts';

export interface CacheConfig {
  /** Logical TTL of cached bodies, ms. Writes invalidate by tag; the TTL only bounds a missed invalidation. */
  ttlMs: number;
  /** Past the TTL, how long a stale body may still be served while a refresh runs or when the database fails, ms. */
  graceMs: number;
  /** TTL of cached search results, ms (not invalidated per write). */
  searchTtlMs: number;
  /** L1 bounds. */
  maxEntries: number;
  maxBytes: number;
  /** Redis for L2 and cross-instance invalidation; unset for L1 only. */
  redisUrl: string | undefined;
  /** Deadline of one L2 call, ms. */
  l2TimeoutMs: number;
}

/** Users who wrote recently, so their searches bypass the search cache (bounded, oldest dropped first). */
class RecentWriters {
  readonly #at = new Map<number, number>();
  readonly #max: number;
  readonly #windowMs: number;
  constructor(windowMs: number, max = 10_000) {
    this.#windowMs = windowMs;
    this.#max = max;
  }
  add(userId: number, now: number): void {
    this.#at.delete(userId);
    this.#at.set(userId, now);
    if (this.#at.size > this.#max) this.#at.delete(this.#at.keys().next().value as number);
  }
  has(userId: number, now: number): boolean {
    const at = this.#at.get(userId);
    return at !== undefined && now - at < this.#windowMs;
  }
}

export const tags = {
  forums: 'forums',
  forum: (id: number) => `forum:${id}`,
  topic: (id: number) => `topic:${id}`,
  page: (namespace: string, title: string) => `page:${namespace}:${title}`,
  user: (id: number) => `user:${id}`,
};

export class ForumCaches implements AsyncDisposable {
  readonly pages: TieredCache;
  readonly sessions: TieredCache;
  readonly searchTtlMs: number;
  readonly #writers: RecentWriters;
  readonly #pending = new Set<Promise<void>>();
  readonly #off: Array<() => void> = [];

  constructor(config: CacheConfig, events: ForumEventBus) {
    const l2 = config.redisUrl ? { redis: config.redisUrl, timeoutMs: config.l2TimeoutMs } : undefined;
    this.pages = new TieredCache({
      name: 'pages',
      ttlMs: config.ttlMs,
      graceMs: config.graceMs,
      l1: { maxEntries: config.maxEntries, maxBytes: config.maxBytes },
      ...(l2 ? { l2, lock: true } : {}),
    });
    // 15 s bounds how long another instance may still accept a logged-out token if the bus is
    // down (normally the bus drops it within milliseconds); a lookup per session per 15 s is cheap.
    this.sessions = new TieredCache({
      name: 'sessions',
      ttlMs: 15_000,
      l1: { maxEntries: 50_000, maxBytes: 16 * 1024 * 1024 },
      ...(l2 ? { l2 } : {}),
    });
    this.searchTtlMs = config.searchTtlMs;
    this.#writers = new RecentWriters(config.searchTtlMs);

    const listen = <K extends keyof ForumEvents>(event: K, fn: (...args: ForumEvents[K]) => void): void => {
      events.on(event, fn as never);
      this.#off.push(() => events.off(event, fn as never));
    };
    listen('topic.created', ({ topic }) => this.invalidate([tags.forums, tags.forum(topic.forumId)]));
    listen('post.created', ({ topicId, forumId, post }) => {
      this.#writers.add(post.author.id, Date.now());
      this.invalidate([tags.forum(forumId), tags.topic(topicId)]);
    });
    listen('post.updated', ({ topicId, forumId, post }) => {
      this.#writers.add(post.author.id, Date.now());
      this.invalidate([tags.forum(forumId), tags.topic(topicId)]);
    });
    listen('post.deleted', ({ topicId, forumId }) => this.invalidate([tags.forum(forumId), tags.topic(topicId)]));
    listen('page.updated', ({ namespace, title }) => this.invalidate([tags.page(namespace, title)]));
  }

  /** Expires `tagList` now in this instance's L1; the L2 and bus part is tracked until {@link settle}. */
  invalidate(tagList: string[]): void {
    const p = this.pages.invalidateTags(tagList).catch(() => {});
    this.#pending.add(p);
    void p.finally(() => this.#pending.delete(p));
  }

  /** Whether an invalidation is still on its way to L2. */
  get hasPending(): boolean {
    return this.#pending.size > 0;
  }

  /** Resolves once every invalidation started so far has reached L2 (each is bounded by the L2 timeout). */
  async settle(): Promise<void> {
    if (this.#pending.size > 0) await Promise.all(this.#pending);
  }

  /** Whether `userId` wrote within the search TTL (their searches skip the cache). */
  wroteRecently(userId: number): boolean {
    return this.#writers.has(userId, Date.now());
  }

  /** Marks a write by `userId` that no domain event carries (e.g. a wiki edit). */
  noteWriter(userId: number): void {
    this.#writers.add(userId, Date.now());
  }

  async close(): Promise<void> {
    for (const off of this.#off.splice(0)) off();
    await this.settle();
    await Promise.all([this.pages.close(), this.sessions.close()]);
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
