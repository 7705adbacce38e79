/**
 * L1: an lru-cache bounded by entry count and by bytes (the serialized size of each value).
 * Expiry is not lru-cache's: the tiered cache compares its own stamps, so an entry past its
 * TTL can still be served stale within grace, and the hit path reads the clock once.
 */
import { LRUCache } from 'lru-cache';
import type { Entry } from '../entry.ts';

export interface MemoryTierOptions {
  maxEntries: number;
  maxBytes: number;
  /** Called for capacity evictions only (not for deletes or overwrites). */
  onEvict: (() => void) | undefined;
}

export class MemoryTier {
  readonly #lru: LRUCache<string, Entry>;

  constructor(options: MemoryTierOptions) {
    const onEvict = options.onEvict;
    this.#lru = new LRUCache<string, Entry>({
      max: options.maxEntries,
      maxSize: options.maxBytes,
      ...(onEvict
        ? {
            dispose: (_v: Entry, _k: string, reason: LRUCache.DisposeReason) => {
              if (reason === 'evict') onEvict();
            },
          }
        : {}),
    });
  }

  get(key: string): Entry | undefined {
    return this.#lru.get(key);
  }

  /** Stores the entry; one larger than maxBytes is not stored (lru-cache refuses it). */
  set(key: string, entry: Entry): void {
    this.#lru.set(key, entry, { size: entry.size > 0 ? entry.size : 1 });
  }

  delete(key: string): void {
    this.#lru.delete(key);
  }

  clear(): void {
    this.#lru.clear();
  }

  get entries(): number {
    return this.#lru.size;
  }

  get bytes(): number {
    return this.#lru.calculatedSize;
  }
}
