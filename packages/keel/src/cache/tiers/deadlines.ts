/**
 * Deadlines for L2 calls. Every call of a tier has the same timeout, so calls expire in the
 * order they were made: a FIFO and one timer, re-armed lazily, serve them all. The generic
 * Timeout policy clears its timer when its queue empties, so a reader with one call in flight
 * at a time (an L2 hit awaited in a request) armed and cleared a timer per call; here a busy
 * tier arms at most one timer per `ms`, and a settled call only unlinks itself.
 */
import type { Clock, TimerHandle } from '../../clock.ts';
import { PolicyClosedError, TimeoutError } from '../../resilience/errors.ts';

const noop = (): void => {};

class Pending {
  readonly deadline: number;
  readonly reject: (error: unknown) => void;
  prev: Pending | undefined = undefined;
  next: Pending | undefined = undefined;
  linked = true;

  constructor(deadline: number, reject: (error: unknown) => void) {
    this.deadline = deadline;
    this.reject = reject;
  }
}

export class CallDeadlines {
  readonly #clock: Clock;
  readonly #ms: number;
  readonly #name: string;
  #head: Pending | undefined;
  #tail: Pending | undefined;
  #timer: TimerHandle | undefined;
  #closed = false;
  readonly #fire = (): void => this.#sweep();

  constructor(clock: Clock, ms: number, name: string) {
    this.#clock = clock;
    this.#ms = ms;
    this.#name = name;
  }

  /** Settles like `work`, or rejects with a TimeoutError once `ms` has passed (work is not cancelled). */
  race<T>(work: Promise<T>): Promise<T> {
    if (this.#closed) {
      // The command was issued before this call: once the connection is gone it rejects too,
      // and without a handler that rejection is unhandled and ends the process (a lease
      // released after close(), r11 in the cache audit).
      work.catch(noop);
      return Promise.reject(new PolicyClosedError(this.#name));
    }
    return new Promise<T>((resolve, reject) => {
      const p = new Pending(this.#clock.now() + this.#ms, reject);
      this.#link(p);
      work.then(
        (v) => {
          this.#unlink(p);
          resolve(v);
        },
        (e) => {
          this.#unlink(p);
          reject(e);
        },
      );
    });
  }

  /** Rejects every call in flight and releases the timer. */
  close(): void {
    this.#closed = true;
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    const error = new PolicyClosedError(this.#name);
    for (let p = this.#head; p !== undefined; p = this.#head) {
      this.#unlink(p);
      p.reject(error);
    }
  }

  #link(p: Pending): void {
    p.prev = this.#tail;
    if (this.#tail !== undefined) this.#tail.next = p;
    else this.#head = p;
    this.#tail = p;
    this.#timer ??= this.#clock.setTimeout(this.#fire, this.#ms);
  }

  #unlink(p: Pending): void {
    if (!p.linked) return;
    p.linked = false;
    if (p.prev !== undefined) p.prev.next = p.next;
    else this.#head = p.next;
    if (p.next !== undefined) p.next.prev = p.prev;
    else this.#tail = p.prev;
    p.prev = p.next = undefined;
  }

  #sweep(): void {
    this.#timer = undefined;
    const now = this.#clock.now();
    for (let p = this.#head; p !== undefined && p.deadline <= now; p = this.#head) {
      this.#unlink(p);
      p.reject(new TimeoutError(this.#name, this.#ms));
    }
    // Idle: no timer until the next call. Otherwise wake at the oldest call's deadline.
    if (this.#head !== undefined) this.#timer = this.#clock.setTimeout(this.#fire, Math.max(1, this.#head.deadline - now));
  }
}
