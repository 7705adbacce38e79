/**
 * Invalidations Redis missed (it was down or timed out), replayed on the first successful
 * call after it answers again. Bounded: past `max` keys and tags, everything folds into one
 * clear stamp, which invalidates at least as much (conservative, one round trip).
 */
import type { BusMessage } from './bus.ts';
import type { RedisTier } from './tiers/redis.ts';

export class PendingInvalidations {
  readonly #l2: RedisTier;
  readonly #stamp: () => number;
  readonly #message: (stamp: number, part: Partial<BusMessage>) => string;
  readonly #max: number;
  #keys = new Set<string>();
  #tags = new Map<string, number>();
  #clear = 0;
  #flushing = false;

  constructor(l2: RedisTier, stamp: () => number, message: (stamp: number, part: Partial<BusMessage>) => string, max = 10_000) {
    this.#l2 = l2;
    this.#stamp = stamp;
    this.#message = message;
    this.#max = max;
  }

  get size(): number {
    return this.#keys.size + this.#tags.size + (this.#clear > 0 ? 1 : 0);
  }

  addKey(key: string): void {
    this.#keys.add(key);
    this.#bound();
  }

  addTags(tags: readonly string[], stamp: number): void {
    for (const t of tags) this.#tags.set(t, Math.max(this.#tags.get(t) ?? 0, stamp));
    this.#bound();
  }

  addClear(stamp: number): void {
    this.#clear = Math.max(this.#clear, stamp);
  }

  #bound(): void {
    if (this.#keys.size + this.#tags.size <= this.#max) return;
    this.#clear = Math.max(this.#clear, this.#stamp());
    this.#keys.clear();
    this.#tags.clear();
  }

  /** Replays everything; what Redis refuses again stays pending. Never rejects. */
  async flush(): Promise<void> {
    if (this.#flushing || this.size === 0) return;
    this.#flushing = true;
    try {
      if (this.#clear > 0) {
        const stamp = this.#clear;
        if ((await this.#l2.clear(stamp, this.#message(stamp, { c: 1 }))) && this.#clear === stamp) this.#clear = 0;
      }
      if (this.#tags.size > 0) {
        const tags = [...this.#tags.keys()];
        // One stamp for all: the latest, which invalidates at least as much as each original.
        let stamp = 0;
        for (const s of this.#tags.values()) if (s > stamp) stamp = s;
        if (await this.#l2.invalidateTags(tags, stamp, this.#message(stamp, { g: tags }))) for (const t of tags) this.#tags.delete(t);
      }
      if (this.#keys.size > 0) {
        const keys = [...this.#keys];
        const stamp = this.#stamp();
        if (await this.#l2.delete(keys, stamp, this.#message(stamp, { k: keys }))) for (const k of keys) this.#keys.delete(k);
      }
    } finally {
      this.#flushing = false;
    }
  }
}
