/**
 * The injectable clock. Everything in Keel with a TTL, window, backoff or deadline takes a
 * `clock` option so tests can drive time by hand (see `FakeClock` in `keel/testing`).
 */

/** An opaque timer handle returned by {@link Clock.setTimeout}. */
export type TimerHandle = { readonly __timer?: never } | object;

export interface Clock {
  /** Milliseconds since the Unix epoch (wall time; used for TTLs, windows and HTTP dates). */
  now(): number;
  /**
   * Milliseconds on a clock that only moves forward, from an arbitrary origin (the real
   * clock: `performance.now()`). Deadlines and queue waits are measured on it, so a wall
   * clock stepped by NTP or a VM resume neither delays nor hastens a timeout. Optional:
   * policies fall back to {@link Clock.now} for a clock without it. Never compare it with
   * `now()`, and never use it for TTLs, windows or HTTP dates, which are wall time.
   */
  monotonic?(): number;
  /** Calls `fn` once after `ms` milliseconds. The timer does not keep the process alive. */
  setTimeout(fn: () => void, ms: number): TimerHandle;
  /** Cancels a timer; a no-op for a timer that already fired or was cleared. */
  clearTimeout(handle: TimerHandle): void;
}

/**
 * The real clock: `Date.now()`, `performance.now()` (monotonic) and unref'd Node timers.
 *
 * Timers are unref'd because a pending deadline or backoff must never be the only thing
 * that keeps a process from exiting; the work it guards already holds the loop open.
 *
 * @example
 * ```ts
 * import { realClock } from 'keel/clock';
 * const t = realClock.setTimeout(() => console.log('tick'), 10);
 * realClock.clearTimeout(t);
 * ```
 */
export const realClock: Clock = Object.freeze({
  now: () => Date.now(),
  monotonic: () => performance.now(),
  setTimeout(fn: () => void, ms: number): TimerHandle {
    const t = setTimeout(fn, ms);
    t.unref();
    return t;
  },
  clearTimeout(handle: TimerHandle): void {
    clearTimeout(handle as NodeJS.Timeout);
  },
});
