/**
 * L1: an lru-cache bounded by entry count and by bytes (the serialized size of each value).
 *
 * The hit path touches no entry object: lru-cache holds, per key, the already-resolved
 * promise that `get` returns, and its own TTL (typed arrays, on the cache's clock) says
 * whether the entry is still fresh. Measured on this machine, dereferencing one entry object
 * per hit (to read its expiry) cost more than the lru-cache get itself: 100,000 entries
 * scattered over the heap miss the CPU cache on every random read. The {@link Entry}
 * (expiry, grace, tags, backoff) hangs off the promise and is read on the slow path only.
 *
 * Tag invalidation deletes L1 keys eagerly through a tag → keys index, so hits need no tag
 * check either.
 */
import { LRUCache } from 'lru-cache';
import type { Entry } from '../entry.ts';

/** What L1 stores: the promise hits return, carrying its entry. */
export type Slot = Promise<unknown> & { entry: Entry };

export interface MemoryTierOptions {
  maxEntries: number;
  maxBytes: number;
  /** The clock reading lru-cache's TTL uses (the cache's, cached per millisecond). */
  now: () => number;
  /** Called for capacity evictions only (not for deletes or overwrites). */
  onEvict: (() => void) | undefined;
}

export class MemoryTier {
  readonly #lru: LRUCache<string, Slot>;
  readonly #now: () => number;
  // tag → keys in L1 under it; bounded by L1 itself (entries leave the index on dispose).
  readonly #byTag = new Map<string, Set<string>>();
  readonly #status: LRUCache.Status<string, Slot> = {};

  constructor(options: MemoryTierOptions) {
    const onEvict = options.onEvict;
    this.#now = options.now;
    this.#lru = new LRUCache<string, Slot>({
      max: options.maxEntries,
      maxSize: options.maxBytes,
      perf: { now: options.now },
      // The clock is already cached per millisecond; lru-cache's own caching uses real timers.
      ttlResolution: 0,
      noDeleteOnStaleGet: true,
      dispose: (slot: Slot, key: string, reason: LRUCache.DisposeReason) => {
        this.#unindex(key, slot.entry.tags);
        if (reason === 'evict') onEvict?.();
      },
    });
  }

  /** The hit path: the resolved promise of a fresh entry, or undefined. */
  fresh(key: string): Slot | undefined {
    return this.#lru.get(key);
  }

  /** Any entry held for `key`, fresh or not (the slow path decides what to do with it). */
  entry(key: string): Entry | undefined {
    return this.#lru.get(key, { allowStale: true })?.entry;
  }

  /** Stores the entry, fresh until its `refreshAt`. One larger than maxBytes is not stored. */
  set(key: string, entry: Entry): void {
    const slot = Promise.resolve(entry.value) as Slot;
    slot.entry = entry;
    const now = this.#now();
    // lru-cache calls an entry stale once now - start > ttl; with start one ms back, a ttl of
    // refreshAt - now keeps it fresh exactly while now < refreshAt (integer clocks).
    const left = Math.ceil(entry.refreshAt - now);
    const status = this.#status;
    status.maxEntrySizeExceeded = undefined;
    if (left >= 1) this.#lru.set(key, slot, { size: entry.size > 0 ? entry.size : 1, ttl: left, start: now - 1, status });
    else this.#lru.set(key, slot, { size: entry.size > 0 ? entry.size : 1, ttl: 1, start: now - 2, status });
    if (status.maxEntrySizeExceeded) return;
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
