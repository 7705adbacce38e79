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
 * Two exceptions, each bounded in time:
 * - Search results: a write touches the FTS index of every matching query, so they live
 *   `searchTtlMs`, then may be served stale for `searchGraceMs` (= the TTL) while one refresh
 *   runs, and are bypassed for a user who wrote within that whole window (TTL + grace) instead.
 *   A deleted post is the exception to the exception: deletes are rare and their text must go,
 *   so `post.deleted` drops every cached search at once.
 * - A reply's bump of its forum's topic list: coalesced per forum and applied at most
 *   `listRefreshMs` after the reply (the topic itself is invalidated at once). Under a steady
 *   reply rate every reply re-rendered its forum's list, at ~0.4 ms of event-loop time each (the
 *   forum bench: 650 replies/s cost 30 % of the core); coalesced, a busy forum's list re-renders
 *   at most 1000/listRefreshMs times a second. The writer reads past the list cache for
 *   that window ({@link ForumCaches.wroteWithin}), so they always see their own reply.
 */

import { TieredCache } from 'keel/cache';
import { type Clock, realClock } from 'keel/clock';
import { intOption } from '../options.ts';
import type { ForumEventBus, ForumEvents } from './events.ts';

export interface CacheConfig {
  /** Logical TTL of cached bodies, ms. Writes invalidate by tag; the TTL only bounds a missed invalidation. */
  ttlMs: number;
  /** Past the TTL, how long a stale body may still be served while a refresh runs or when the database fails, ms. */
  graceMs: number;
  /** TTL of cached search results, ms (not invalidated per write). */
  searchTtlMs: number;
  /** Longest a reply's bump of its forum's topic list waits to be coalesced with others, ms (0: at once). */
  listRefreshMs: number;
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
  has(userId: number, now: number, windowMs = this.#windowMs): boolean {
    const at = this.#at.get(userId);
    return at !== undefined && now - at < Math.min(windowMs, this.#windowMs);
  }
}

export const tags = {
  forums: 'forums',
  forum: (id: number) => `forum:${id}`,
  topic: (id: number) => `topic:${id}`,
  page: (namespace: string, title: string) => `page:${namespace}:${title}`,
  user: (id: number) => `user:${id}`,
  search: 'search',
};

export class ForumCaches implements AsyncDisposable {
  readonly pages: TieredCache;
  readonly sessions: TieredCache;
  readonly searchTtlMs: number;
  /** How long past `searchTtlMs` a cached search may be served stale while it refreshes (= the TTL). */
  readonly searchGraceMs: number;
  readonly listRefreshMs: number;
  readonly #writers: RecentWriters;
  readonly #clock: Clock;
  /** Forums whose topic list a reply changed, waiting for the coalesced invalidation. */
  readonly #dueLists = new Set<number>();
  #listTimer: ReturnType<Clock['setTimeout']> | undefined;
  readonly #pending = new Set<Promise<void>>();
  readonly #off: Array<() => void> = [];

  constructor(config: CacheConfig, events: ForumEventBus, clock: Clock = realClock) {
    this.listRefreshMs = intOption('ForumCaches', 'listRefreshMs', config.listRefreshMs, undefined);
    this.#clock = clock;
    const l2 = config.redisUrl ? { redis: config.redisUrl, timeoutMs: config.l2TimeoutMs } : undefined;
    this.pages = new TieredCache({
      name: 'pages',
      clock,
      ttlMs: config.ttlMs,
      graceMs: config.graceMs,
      l1: { maxEntries: config.maxEntries, maxBytes: config.maxBytes },
      ...(l2 ? { l2, lock: true } : {}),
    });
    // 15 s bounds how long another instance may still accept a logged-out token if the bus is
    // down (normally the bus drops it within milliseconds); a lookup per session per 15 s is cheap.
    this.sessions = new TieredCache({
      name: 'sessions',
      clock,
      ttlMs: 15_000,
      l1: { maxEntries: 50_000, maxBytes: 16 * 1024 * 1024 },
      ...(l2 ? { l2 } : {}),
    });
    this.searchTtlMs = config.searchTtlMs;
    // Stale search results are a fail-safe, not a feature: capped at the TTL, so an anonymous
    // reader sees a new post within 2 × searchTtlMs at worst (within the TTL while queries flow).
    this.searchGraceMs = config.searchTtlMs;
    // Remembered for the longer of the two bypass windows; each check passes its own.
    this.#writers = new RecentWriters(Math.max(this.searchTtlMs + this.searchGraceMs, this.listRefreshMs));

    const listen = <K extends keyof ForumEvents>(event: K, fn: (...args: ForumEvents[K]) => void): void => {
      events.on(event, fn as never);
      this.#off.push(() => events.off(event, fn as never));
    };
    listen('topic.created', ({ topic }) => this.invalidate([tags.forums, tags.forum(topic.forumId)]));
    listen('post.created', ({ topicId, forumId, post }) => {
      this.#writers.add(post.author.id, this.#clock.now());
      this.invalidate([tags.topic(topicId)]);
      this.#bumpList(forumId);
    });
    listen('post.updated', ({ topicId, forumId, post }) => {
      this.#writers.add(post.author.id, this.#clock.now());
      this.invalidate([tags.forum(forumId), tags.topic(topicId)]);
    });
    listen('post.deleted', ({ topicId, forumId, authorId }) => {
      this.#writers.add(authorId, this.#clock.now());
      // Deletes are rare: dropping every cached search costs less than filtering each hit.
      this.invalidate([tags.forum(forumId), tags.topic(topicId), tags.search]);
    });
    listen('page.updated', ({ namespace, title }) => this.invalidate([tags.page(namespace, title)]));
  }

  /** Invalidates `forumId`'s topic lists within `listRefreshMs`, one invalidation for every reply in that window. */
  #bumpList(forumId: number): void {
    if (this.listRefreshMs === 0) {
      this.invalidate([tags.forum(forumId)]);
      return;
    }
    this.#dueLists.add(forumId);
    // Bounded: forums are few, but a flood of distinct ids flushes at once rather than grow.
    if (this.#dueLists.size >= 10_000) this.#flushLists();
    else this.#listTimer ??= this.#clock.setTimeout(() => this.#flushLists(), this.listRefreshMs);
  }

  #flushLists(): void {
    if (this.#listTimer !== undefined) this.#clock.clearTimeout(this.#listTimer);
    this.#listTimer = undefined;
    if (this.#dueLists.size === 0) return;
    const due = [...this.#dueLists].map(tags.forum);
    this.#dueLists.clear();
    this.invalidate(due);
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

  /** Whether `userId` wrote within the search TTL + grace, all a cached search may be served for (their searches skip the cache). */
  wroteRecently(userId: number): boolean {
    return this.wroteWithin(userId, this.searchTtlMs + this.searchGraceMs);
  }

  /** Whether `userId` wrote within the last `ms` (at most the longer bypass window). */
  wroteWithin(userId: number, ms: number): boolean {
    return this.#writers.has(userId, this.#clock.now(), ms);
  }

  /** Marks a write by `userId` that no domain event carries (e.g. a wiki edit). */
  noteWriter(userId: number): void {
    this.#writers.add(userId, this.#clock.now());
  }

  async close(): Promise<void> {
    for (const off of this.#off.splice(0)) off();
    // Coalesced list bumps go out now: other instances must not keep a list that changed.
    this.#flushLists();
    await this.settle();
    await Promise.all([this.pages.close(), this.sessions.close()]);
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
