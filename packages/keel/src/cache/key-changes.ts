/**
 * Per-key change generations, so an L2 read that raced a write or delete of its key is not
 * put into L1 (where the old value would outlive the change).
 */

/** Per-key change generations in a bounded map; an evicted key's generation raises a floor. */
export class KeyChanges {
  readonly #max: number;
  readonly #byKey = new Map<string, number>();
  #floor = 0;
  /** The current generation (capture it before a read). */
  now = 0;

  constructor(max: number) {
    this.#max = max;
  }

  touch(key: string): void {
    this.now++;
    this.#byKey.delete(key);
    this.#byKey.set(key, this.now);
    if (this.#byKey.size > this.#max) {
      const [oldest, at] = this.#byKey.entries().next().value as [string, number];
      this.#byKey.delete(oldest);
      this.#floor = at;
    }
  }

  /** Every key changed (clear). */
  touchAll(): void {
    this.now++;
    this.#byKey.clear();
    this.#floor = this.now;
  }

  changedSince(key: string, gen: number): boolean {
    if (this.#floor > gen) return true;
    const at = this.#byKey.get(key);
    return at !== undefined && at > gen;
  }
}
