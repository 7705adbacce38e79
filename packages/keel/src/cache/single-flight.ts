/**
 * Per-key single flight: concurrent misses on one key share one load. A flight that an
 * invalidation overtakes is *detached*: its callers still get its result (their reads began
 * before the invalidation), but it is not stored and later callers start a new flight.
 */
import type { Entry } from './entry.ts';
import { TagStamps } from './tags.ts';

/** What a loader receives. `signal` aborts at the hard timeout or when the cache closes. */
export interface LoaderContext {
  readonly signal: AbortSignal;
}

export class Flight implements LoaderContext {
  promise!: Promise<Entry>;
  detached = false;
  /** An eager refresh: an L2 copy no newer than `stale` does not count as a hit. */
  force = false;
  readonly tags: readonly string[];
  /** The stale entry to fall back on (from L1 at the start, or found in L2). */
  stale: Entry | undefined;
  /** Ends the flight's load phase at once (set while it loads; used by close). */
  kill: ((reason: unknown) => void) | undefined;
  /** The soft deadline stale callers race against (made by the first one that waits). */
  soft: Promise<void> | undefined;
  #controller: AbortController | undefined;

  constructor(tags: readonly string[], stale: Entry | undefined) {
    this.tags = tags;
    this.stale = stale;
  }

  // Created on first read: an AbortController costs ≈ 3 µs and most loaders never look.
  get signal(): AbortSignal {
    this.#controller ??= new AbortController();
    return this.#controller.signal;
  }

  abort(reason: unknown): void {
    this.#controller?.abort(reason);
  }
}

export class FlightMap {
  readonly #flights = new Map<string, Flight>();

  get size(): number {
    return this.#flights.size;
  }

  get(key: string): Flight | undefined {
    return this.#flights.get(key);
  }

  set(key: string, f: Flight): void {
    this.#flights.set(key, f);
  }

  /** Removes the flight when it is still the current one for its key. */
  settle(key: string, f: Flight): void {
    if (this.#flights.get(key) === f) this.#flights.delete(key);
  }

  detachKey(key: string): void {
    const f = this.#flights.get(key);
    if (!f) return;
    f.detached = true;
    this.#flights.delete(key);
  }

  detachTags(tags: readonly string[]): void {
    for (const [key, f] of this.#flights) {
      if (TagStamps.intersects(f.tags, tags)) {
        f.detached = true;
        this.#flights.delete(key);
      }
    }
  }

  detachAll(reason?: unknown): void {
    for (const f of this.#flights.values()) {
      f.detached = true;
      if (reason !== undefined) {
        f.abort(reason);
        f.kill?.(reason);
      }
    }
    this.#flights.clear();
  }
}
