/**
 * Deadlines for Redis commands that share one timeout. Every command gets the same `ms`, so
 * they expire in the order they were sent: a FIFO and one timer re-armed lazily serve them all,
 * instead of a timer per publish (≈460 ns each, DESIGN.md). Used by the live fan-out, whose
 * publishes lost in a blackhole would otherwise hold their in-flight slot for ever.
 */
import type { Clock, TimerHandle } from 'keel/clock';

interface Entry {
  readonly deadline: number;
  readonly onTimeout: () => void;
  pending: boolean;
}

/**
 * @example
 * ```ts
 * const deadlines = new ReplyDeadlines(realClock, 1_000);
 * const settle = deadlines.add(() => console.log('no reply within 1 s'));
 * redis.ping().then(() => settle() && console.log('answered in time'));
 * deadlines.close();
 * ```
 */
export class ReplyDeadlines {
  readonly #clock: Clock;
  readonly #ms: number;
  readonly #queue: Entry[] = [];
  /** Index of the oldest entry still in #queue (shifting an array of thousands costs a copy each). */
  #head = 0;
  #timer: TimerHandle | undefined;
  #closed = false;
  readonly #fire = (): void => this.#sweep();

  constructor(clock: Clock, ms: number) {
    this.#clock = clock;
    this.#ms = ms;
  }

  /**
   * Starts a deadline; `onTimeout` runs once `ms` passes without `settle()`. `settle` returns
   * true only the first time, before the deadline: the caller's reply handler then knows
   * whether the slot is still its own to give back.
   */
  add(onTimeout: () => void): () => boolean {
    if (this.#closed) return () => false;
    const entry: Entry = { deadline: this.#clock.now() + this.#ms, onTimeout, pending: true };
    this.#queue.push(entry);
    this.#timer ??= this.#clock.setTimeout(this.#fire, this.#ms);
    return () => {
      if (!entry.pending) return false;
      entry.pending = false;
      this.#trim();
      return true;
    };
  }

  /** Stops the timer; pending entries never time out (their connection is being closed). */
  close(): void {
    this.#closed = true;
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    for (let i = this.#head; i < this.#queue.length; i++) this.#queue[i]!.pending = false;
    this.#queue.length = 0;
    this.#head = 0;
  }

  /** Drops settled entries from the front; replies come in order, so that is where they are. */
  #trim(): void {
    while (this.#head < this.#queue.length && !this.#queue[this.#head]!.pending) this.#head++;
    if (this.#head === this.#queue.length) {
      this.#queue.length = 0;
      this.#head = 0;
    } else if (this.#head > 1_024 && this.#head * 2 > this.#queue.length) {
      this.#queue.splice(0, this.#head);
      this.#head = 0;
    }
  }

  #sweep(): void {
    this.#timer = undefined;
    const now = this.#clock.now();
    while (this.#head < this.#queue.length) {
      const entry = this.#queue[this.#head]!;
      if (entry.pending && entry.deadline > now) break;
      this.#head++;
      if (!entry.pending) continue;
      entry.pending = false;
      entry.onTimeout();
      if (this.#closed) return;
    }
    this.#trim();
    // An onTimeout that sent a command (a probe) armed a timer for its full `ms`; the oldest
    // entry may be due sooner, so that timer is replaced.
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    // Idle: no timer until the next command. Otherwise wake at the oldest one's deadline.
    const oldest = this.#queue[this.#head];
    if (oldest) this.#timer = this.#clock.setTimeout(this.#fire, Math.max(1, oldest.deadline - now));
  }
}
