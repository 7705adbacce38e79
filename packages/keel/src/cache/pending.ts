/**
 * Invalidations Redis missed (it was down or timed out), replayed on the first successful
 * call after it answers again. Bounded: past `max` keys and tags, everything folds into one
 * clear stamp, which invalidates at least as much (conservative, one round trip).
 *
 * And the local side of deletes: until Redis has a delete, it still holds the old value, and
 * the next read here would put it back into L1 (r12 in the cache audit). Tag invalidations
 * and clears need nothing of the kind: their stamps are kept locally and checked on every
 * L2 read (tags.ts); a delete's stamp is kept here only while Redis may lack it.
 */
import type { BusMessage } from './bus.ts';
import type { RedisTier } from './tiers/redis.ts';

/**
 * Per key, the stamp of this instance's latest delete that Redis has not confirmed (in
 * flight, or pending replay). An L2 record born at or before it is hidden. Bounded: past
 * `max` keys the oldest is forgotten into a floor that hides every record born at or before
 * it, which is conservative (such records load again) and ends with the next confirmed clear.
 */
export class LocalDeletes {
  readonly #max: number;
  // Insertion order = age: a re-delete re-inserts, so the first key is the oldest.
  readonly #byKey = new Map<string, number>();
  #floor = Number.NEGATIVE_INFINITY;

  constructor(max: number) {
    this.#max = max;
  }

  get size(): number {
    return this.#byKey.size;
  }

  /** A delete of `key` stamped `stamp` was called here. */
  mark(key: string, stamp: number): void {
    this.#byKey.delete(key);
    this.#byKey.set(key, stamp);
    if (this.#byKey.size > this.#max) {
      const [oldest, at] = this.#byKey.entries().next().value as [string, number];
      this.#byKey.delete(oldest);
      if (at > this.#floor) this.#floor = at;
    }
  }

  /** Redis took a delete of `key` stamped `stamp`: it covers every delete here stamped no later. */
  confirm(key: string, stamp: number): void {
    const at = this.#byKey.get(key);
    if (at !== undefined && at <= stamp) this.#byKey.delete(key);
  }

  /** Redis took a clear stamped `stamp`: reads compare it, so it covers every delete before it. */
  confirmClear(stamp: number): void {
    if (this.#floor <= stamp) this.#floor = Number.NEGATIVE_INFINITY;
    for (const [key, at] of this.#byKey) if (at <= stamp) this.#byKey.delete(key);
  }

  /** True when a record of `key` born at `born` predates a delete Redis may not have. */
  hides(key: string, born: number): boolean {
    if (born <= this.#floor) return true;
    if (this.#byKey.size === 0) return false;
    const at = this.#byKey.get(key);
    return at !== undefined && born <= at;
  }
}

export class PendingInvalidations {
  readonly #l2: RedisTier;
  readonly #stamp: () => number;
  readonly #message: (stamp: number, part: Partial<BusMessage>) => string;
  readonly #deletes: LocalDeletes | undefined;
  readonly #max: number;
  // key → stamp of its latest missed delete; tag → stamp of its latest missed invalidation.
  #keys = new Map<string, number>();
  #tags = new Map<string, number>();
  #clear = 0;
  #flushing = false;

  constructor(
    l2: RedisTier,
    stamp: () => number,
    message: (stamp: number, part: Partial<BusMessage>) => string,
    deletes?: LocalDeletes,
    max = 10_000,
  ) {
    this.#l2 = l2;
    this.#stamp = stamp;
    this.#message = message;
    this.#deletes = deletes;
    this.#max = max;
  }

  get size(): number {
    return this.#keys.size + this.#tags.size + (this.#clear > 0 ? 1 : 0);
  }

  addKey(key: string, stamp: number): void {
    this.#keys.set(key, Math.max(this.#keys.get(key) ?? 0, stamp));
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

  /**
   * Replays everything; what Redis refuses again stays pending. Never rejects. A key or tag
   * added again while its replay was in flight (a later invalidation that failed too) stays
   * pending: only what is unchanged since the replay began is dropped, as for the clear (r6).
   */
  async flush(): Promise<void> {
    if (this.#flushing || this.size === 0) return;
    this.#flushing = true;
    try {
      if (this.#clear > 0) {
        const stamp = this.#clear;
        if (await this.#l2.clear(stamp, this.#message(stamp, { c: 1 }))) {
          if (this.#clear === stamp) this.#clear = 0;
          this.#deletes?.confirmClear(stamp);
        }
      }
      if (this.#tags.size > 0) {
        const sent = [...this.#tags];
        const tags = sent.map(([t]) => t);
        // One stamp for all: the latest, which invalidates at least as much as each original.
        let stamp = 0;
        for (const [, s] of sent) if (s > stamp) stamp = s;
        if (await this.#l2.invalidateTags(tags, stamp, this.#message(stamp, { g: tags }))) {
          for (const [t, s] of sent) if (this.#tags.get(t) === s) this.#tags.delete(t);
        }
      }
      if (this.#keys.size > 0) {
        const sent = [...this.#keys];
        const keys = sent.map(([k]) => k);
        const stamp = this.#stamp();
        if (await this.#l2.delete(keys, stamp, this.#message(stamp, { k: keys }))) {
          for (const [k, s] of sent) {
            if (this.#keys.get(k) === s) this.#keys.delete(k);
            this.#deletes?.confirm(k, stamp);
          }
        }
      }
    } finally {
      this.#flushing = false;
    }
  }
}
