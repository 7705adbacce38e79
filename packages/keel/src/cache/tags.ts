/**
 * Invalidation bookkeeping: unique stamps and per-tag invalidation stamps. L1 drops tagged
 * entries eagerly (tiers/memory.ts); the stamps fence what may still enter L1 and L2 later
 * (loads that started before an invalidation, L2 reads that raced it).
 *
 * An entry is invalid when any of its tags (or `clear()`) was stamped at or after the entry's
 * `born` stamp (when its load started). Comparing against the load's *start* is what makes a
 * slow load that began before an invalidation unable to resurrect the old data.
 */
import type { Clock } from '../clock.ts';

/** Why a tag or key is refused, or undefined when fine. Separators would corrupt L2 records. */
export function badTag(tag: unknown): string | undefined {
  if (typeof tag !== 'string' || tag.length === 0) return 'tags must be non-empty strings';
  if (/[,|\n]/.test(tag)) return `tag ${JSON.stringify(tag)} must not contain ",", "|" or a newline`;
  return undefined;
}

export class TagStamps {
  readonly #clock: Clock;
  readonly #max: number;
  #last = 0;
  // Insertion order = age; an update re-inserts, so the first key is the oldest stamp.
  #stamps = new Map<string, number>();
  // Stamps forgotten to stay bounded: an entry with tags born at or before it counts as invalid.
  #floor = Number.NEGATIVE_INFINITY;
  #clearedAt = Number.NEGATIVE_INFINITY;

  constructor(clock: Clock, maxTags: number) {
    this.#clock = clock;
    this.#max = maxTags;
  }

  /** A strictly increasing stamp near wall time (ms, with sub-ms steps for ties). */
  stamp(): number {
    const now = this.#clock.now();
    this.#last = now > this.#last ? now : this.#last + 0.001;
    return this.#last;
  }

  /** Records an invalidation (local or from the bus); keeps the later stamp per tag. */
  invalidate(tags: readonly string[], stamp: number): void {
    for (const tag of tags) {
      const old = this.#stamps.get(tag);
      if (old !== undefined && old >= stamp) continue;
      this.#stamps.delete(tag);
      this.#stamps.set(tag, stamp);
    }
    while (this.#stamps.size > this.#max) {
      const [oldest, at] = this.#stamps.entries().next().value as [string, number];
      this.#stamps.delete(oldest);
      if (at > this.#floor) this.#floor = at;
    }
    // Remote stamps may be ahead of this clock; later local stamps must still sort after them.
    if (stamp > this.#last) this.#last = stamp;
  }

  clear(stamp: number): void {
    if (stamp > this.#clearedAt) this.#clearedAt = stamp;
    if (stamp > this.#last) this.#last = stamp;
  }

  /** True when a value born at `born` with `tags` survives every invalidation seen so far. */
  valid(born: number, tags: readonly string[]): boolean {
    if (born <= this.#clearedAt) return false;
    if (tags.length === 0) return true;
    if (born <= this.#floor) return false;
    for (const tag of tags) {
      const at = this.#stamps.get(tag);
      if (at !== undefined && born <= at) return false;
    }
    return true;
  }

  /** True when any of `tags` is among `other` (used to detach in-flight loads). */
  static intersects(tags: readonly string[], other: readonly string[]): boolean {
    for (const t of tags) if (other.includes(t)) return true;
    return false;
  }
}
