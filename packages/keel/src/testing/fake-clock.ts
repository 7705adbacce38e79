import type { Clock, TimerHandle } from '../clock.ts';

interface FakeTimer {
  id: number;
  at: number;
  fn: () => void;
}

/**
 * A manual clock for tests. Time moves only when the test says so, and timers fire in
 * deadline order (ties in creation order).
 *
 * @example
 * ```ts
 * import { FakeClock } from 'keel/testing';
 * const clock = new FakeClock();
 * let fired = false;
 * clock.setTimeout(() => { fired = true; }, 100);
 * clock.advance(100); // fired === true
 * ```
 */
export class FakeClock implements Clock {
  #now: number;
  #seq = 0;
  #timers = new Map<number, FakeTimer>();

  constructor(startMs = 1_700_000_000_000) {
    this.#now = startMs;
  }

  now(): number {
    return this.#now;
  }

  /**
   * The same value as {@link now}: fake time moves only when the test moves it, so the two
   * advance together. To test a wall-clock step, wrap the fake and offset only `now()`.
   */
  monotonic(): number {
    return this.#now;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const id = ++this.#seq;
    this.#timers.set(id, { id, at: this.#now + Math.max(0, ms), fn });
    return { id };
  }

  clearTimeout(handle: TimerHandle): void {
    const id = (handle as { id?: number } | undefined)?.id;
    if (id !== undefined) this.#timers.delete(id);
  }

  /** Timers scheduled and not yet fired or cleared. */
  get pending(): number {
    return this.#timers.size;
  }

  #next(limit: number): FakeTimer | undefined {
    let best: FakeTimer | undefined;
    for (const t of this.#timers.values()) {
      if (t.at <= limit && (!best || t.at < best.at || (t.at === best.at && t.id < best.id))) best = t;
    }
    return best;
  }

  /** Moves time forward by `ms`, firing due timers synchronously, in order. */
  advance(ms: number): void {
    const target = this.#now + ms;
    for (let t = this.#next(target); t; t = this.#next(target)) {
      this.#timers.delete(t.id);
      this.#now = t.at;
      t.fn();
    }
    this.#now = target;
  }

  /**
   * Like {@link advance}, but lets promise callbacks run after each timer fires, so async
   * code scheduled by one timer can set the next before time moves on.
   */
  async advanceAsync(ms: number): Promise<void> {
    const target = this.#now + ms;
    await flushMicrotasks();
    for (let t = this.#next(target); t; t = this.#next(target)) {
      this.#timers.delete(t.id);
      this.#now = t.at;
      t.fn();
      await flushMicrotasks();
    }
    this.#now = target;
    await flushMicrotasks();
  }

  /** Sets the wall time without firing timers (for jumps such as a restored process). */
  set(ms: number): void {
    this.#now = ms;
  }
}

/** Lets queued promise callbacks run (a few macrotask turns' worth of microtasks). */
export async function flushMicrotasks(rounds = 20): Promise<void> {
  for (let i = 0; i < rounds; i++) await Promise.resolve();
}
