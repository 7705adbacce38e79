/**
 * L1: an lru-cache bounded by entry count and by bytes (the serialized size of each value).
 *
 * The hit path reads nothing but lru-cache's own arrays: lru-cache holds, per key, the value
 * itself, and its TTL (typed arrays, on the cache's clock) says whether it is still fresh.
 * Measured on this machine (benchmarks/cache.bench.ts, 100,000 keys read in random order),
 * dereferencing one more object per hit (an entry to read its expiry, or a promise carrying
 * the entry) cut a synchronous read from ≈ 7M to ≈ 2.5M ops/s: every random read misses the
 * CPU cache on each object it touches. So the {@link Entry} (expiry, grace, tags, backoff)
 * lives in a side map, read on the slow path only.
 *
 * Tag invalidation deletes L1 keys eagerly through a tag → keys index, so hits need no tag
 * check either.
 */
import { LRUCache } from 'lru-cache';
import type { Entry } from '../entry.ts';

export interface MemoryTierOptions {
  maxEntries: number;
  maxBytes: number;
  /** The clock reading lru-cache's TTL uses (the cache's, cached per millisecond). */
  now: () => number;
  /** Called for capacity evictions only (not for deletes or overwrites). */
  onEvict: (() => void) | undefined;
  /** False for an L2-only cache: nothing is stored, so every read misses. Default true. */
  enabled?: boolean;
}

export class MemoryTier {
  // key → value. lru-cache cannot hold undefined, which the cache never stores (see set).
  readonly #lru: LRUCache<string, NonNullable<unknown>>;
  // key → its entry, for exactly the keys in #lru (removed in dispose).
  readonly #entries = new Map<string, Entry>();
  readonly #now: () => number;
  readonly #enabled: boolean;
  // tag → keys in L1 under it; bounded by L1 itself (entries leave the index on dispose).
  readonly #byTag = new Map<string, Set<string>>();
  readonly #status: LRUCache.Status<string, NonNullable<unknown>> = {};

  constructor(options: MemoryTierOptions) {
    const onEvict = options.onEvict;
    this.#now = options.now;
    this.#enabled = options.enabled ?? true;
    this.#lru = new LRUCache<string, NonNullable<unknown>>({
      // An L2-only cache stores nothing; a one-slot lru keeps every call site the same.
      max: this.#enabled ? options.maxEntries : 1,
      maxSize: options.maxBytes,
      perf: { now: options.now },
      // The clock is already cached per millisecond; lru-cache's own caching uses real timers.
      ttlResolution: 0,
      noDeleteOnStaleGet: true,
      dispose: (_value: unknown, key: string, reason: LRUCache.DisposeReason) => {
        const e = this.#entries.get(key);
        if (e !== undefined) {
          this.#entries.delete(key);
          this.#unindex(key, e.tags);
        }
        if (reason === 'evict') onEvict?.();
      },
    });
  }

  /** The hit path: the value of a fresh entry (before its refresh point), or undefined. */
  fresh(key: string): unknown {
    return this.#lru.get(key);
  }

  /** Any entry held for `key`, fresh or not (the slow path decides what to do with it). */
  entry(key: string): Entry | undefined {
    // Touches the key's recency like a hit, so a stale entry being served is not evicted first.
    if (this.#lru.get(key, { allowStale: true }) === undefined) return undefined;
    return this.#entries.get(key);
  }

  /** Stores the entry, fresh until its `refreshAt`. One larger than maxBytes is not stored. */
  set(key: string, entry: Entry): void {
    if (entry.value === undefined || !this.#enabled) {
      this.#lru.delete(key);
      return;
    }
    const now = this.#now();
    // lru-cache calls an entry stale once now - start > ttl; with start one ms back, a ttl of
    // refreshAt - now keeps it fresh exactly while now < refreshAt (integer clocks).
    const left = Math.ceil(entry.refreshAt - now);
    const status = this.#status;
    status.maxEntrySizeExceeded = undefined;
    const value = entry.value as NonNullable<unknown>;
    const size = entry.size > 0 ? entry.size : 1;
    if (left >= 1) this.#lru.set(key, value, { size, ttl: left, start: now - 1, status });
    else this.#lru.set(key, value, { size, ttl: 1, start: now - 2, status });
    // An overwrite disposes the old entry, unless the value is the very same object.
    const old = this.#entries.get(key);
    if (old !== undefined && old !== entry) this.#unindex(key, old.tags);
    if (status.maxEntrySizeExceeded) {
      this.#entries.delete(key);
      return;
    }
    this.#entries.set(key, entry);
    for (const tag of entry.tags) {
      let keys = this.#byTag.get(tag);
      if (keys === undefined) {
        keys = new Set();
        this.#byTag.set(tag, keys);
      }
      keys.add(key);
    }
  }

  delete(key: string): void {
    this.#lru.delete(key);
  }

  /** Deletes the key only while it still holds `entry` (not a later one stored since). */
  deleteEntry(key: string, entry: Entry): void {
    if (this.#entries.get(key) === entry) this.#lru.delete(key);
  }

  /** Deletes every key under any of `tags`. */
  deleteTags(tags: readonly string[]): void {
    for (const tag of tags) {
      const keys = this.#byTag.get(tag);
      if (keys === undefined) continue;
      for (const key of [...keys]) this.#lru.delete(key);
      this.#byTag.delete(tag);
    }
  }

  clear(): void {
    this.#lru.clear();
    this.#entries.clear();
    this.#byTag.clear();
  }

  #unindex(key: string, tags: readonly string[]): void {
    for (const tag of tags) {
      const keys = this.#byTag.get(tag);
      if (keys === undefined) continue;
      keys.delete(key);
      if (keys.size === 0) this.#byTag.delete(tag);
    }
  }

  get entries(): number {
    return this.#lru.size;
  }

  get bytes(): number {
    return this.#lru.calculatedSize;
  }

  /** Distinct tags indexed (for tests: the index must shrink with L1). */
  get indexedTags(): number {
    return this.#byTag.size;
  }
}
