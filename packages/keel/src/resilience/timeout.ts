/**
 * Deadlines for calls. All calls of one Timeout share one clock timer (see deadline-queue.ts):
 * cockatiel's timeout spends ≈ 14 µs per call on its own timer and AbortController, which is
 * 70× the retry it usually wraps. Here a call costs one small object and two list links; the
 * controller is only created if `fn` reads `signal`.
 */

import { CHANNELS, channel } from '../channels.ts';
import type { Clock } from '../clock.ts';
import { clockOption, numberOption, objectOptions, oneOfOption, stringOption } from '../internal/options.ts';
import type { ExecuteContext, ExecuteOptions } from './context.ts';
import { ChildContext, toContext } from './context.ts';
import type { DeadlineEntry } from './deadline-queue.ts';
import { DeadlineQueue } from './deadline-queue.ts';
import { PolicyClosedError, TimeoutError } from './errors.ts';
import type { Policy, Work } from './policy.ts';

export interface TimeoutOptions {
  /** Name in errors and telemetry. Default `'timeout'`. */
  name?: string;
  /** `'cooperative'` aborts the signal and waits for `fn`; `'aggressive'` also rejects at once. Default `'cooperative'`. */
  strategy?: 'cooperative' | 'aggressive';
  /** Default: the real clock. */
  clock?: Clock;
}

/** One call under a deadline: its abortable context and its place in the deadline queue. */
class TimedCall extends ChildContext implements DeadlineEntry {
  deadline = 0;
  prev: DeadlineEntry | undefined = undefined;
  next: DeadlineEntry | undefined = undefined;
  queued = false;
  timedOut = false;
  readonly owner: Timeout;
  /** Aggressive mode only: rejects the caller's promise at the deadline. */
  reject: ((e: unknown) => void) | undefined = undefined;

  constructor(parent: ChildContext['parent'], owner: Timeout) {
    super(parent);
    this.owner = owner;
  }

  expire(): void {
    this.timedOut = true;
    const error = this.owner.timeoutError();
    // abort() also drops the link to the caller's signal: in aggressive mode `fn` may never
    // settle, and the link must not wait for it.
    this.abort(error);
    this.owner.published();
    this.reject?.(error);
  }

  /** The caller aborted. Aggressive mode stops waiting for `fn` then too, as at the deadline. */
  override handleEvent(): void {
    super.handleEvent();
    if (this.reject !== undefined) {
      this.owner.release(this);
      this.reject(this.parent.reason);
    }
  }

  /** The policy closed: stop the work now, whatever the strategy. */
  close(error: PolicyClosedError): void {
    this.abort(error);
    this.reject?.(error);
  }
}

/**
 * Rejects with {@link TimeoutError} when a call runs past `ms`, and aborts the call's signal.
 *
 * - cooperative (default): `fn` sees its signal abort and should stop; the call settles when
 *   `fn` does. If `fn` then fails, the failure is a `TimeoutError` (its `cause` is `fn`'s
 *   error); if `fn` still returns a value, the value is returned.
 * - aggressive: the call rejects at the deadline even if `fn` ignores the signal; `fn`'s late
 *   result is dropped.
 *
 * @example
 * ```ts
 * import { Timeout } from 'keel/resilience';
 * const t = new Timeout(2_000);
 * const res = await t.execute(({ signal }) => fetch(url, { signal }));
 * ```
 */
export class Timeout implements Policy {
  readonly name: string;
  readonly ms: number;
  readonly strategy: 'cooperative' | 'aggressive';
  readonly #clock: Clock;
  readonly #queue: DeadlineQueue;
  readonly #ch = channel(CHANNELS.resilience.timeout);
  #closed = false;

  constructor(ms: number, options?: TimeoutOptions) {
    // Node timers overflow past 2^31 - 1 ms and fire at once, so that is the ceiling.
    this.ms = numberOption('timeout', 'ms', ms === undefined ? null : ms, 0, { min: 1, max: 2 ** 31 - 1 });
    const o = objectOptions('timeout', options);
    this.name = stringOption('timeout', 'name', o.name, 'timeout');
    this.strategy = oneOfOption('timeout', 'strategy', o.strategy, ['cooperative', 'aggressive'] as const, 'cooperative');
    this.#clock = clockOption('timeout', o.clock);
    this.#queue = new DeadlineQueue(this.#clock);
  }

  /** @internal */
  timeoutError(cause?: unknown): TimeoutError {
    return new TimeoutError(this.name, this.ms, cause === undefined ? undefined : { cause });
  }

  /** Takes a settled call off the deadline queue and drops its parent link. @internal */
  release(call: TimedCall): void {
    this.#queue.remove(call);
    call.dispose();
  }

  /** @internal */
  published(): void {
    if (this.#ch.hasSubscribers) this.#ch.publish({ name: this.name, timeoutMs: this.ms });
  }

  execute<T>(fn: Work<T>, options?: ExecuteOptions | ExecuteContext): Promise<T> {
    if (this.#closed) return Promise.reject(new PolicyClosedError(this.name));
    const call = new TimedCall(toContext(options), this);
    this.#queue.push(call, this.#queue.now(), this.ms);
    return this.strategy === 'cooperative' ? this.#cooperative(fn, call) : this.#aggressive(fn, call);
  }

  /**
   * Aborts every call in flight (their signals abort with PolicyClosedError; aggressive
   * calls reject at once), releases the shared timer and refuses new calls.
   *
   * @example
   * ```ts
   * await t.close();
   * ```
   */
  async close(): Promise<void> {
    this.#closed = true;
    const error = new PolicyClosedError(this.name);
    this.#queue.drain((e) => (e as TimedCall).close(error));
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #cooperative<T>(fn: Work<T>, call: TimedCall): Promise<T> {
    try {
      return await fn(call);
    } catch (error) {
      throw call.timedOut && error !== call.reason ? this.timeoutError(error) : error;
    } finally {
      this.release(call);
    }
  }

  #aggressive<T>(fn: Work<T>, call: TimedCall): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const settle = () => this.release(call);
      if (call.parent.aborted) {
        settle();
        reject(call.parent.reason);
        return;
      }
      call.reject = reject;
      // Hear a caller abort even if `fn` never reads its signal, so the call can reject at
      // once (an add + remove of a listener, ≈ 1.6 µs, only when the caller passed a signal).
      call.link();
      let p: PromiseLike<T> | T;
      try {
        p = fn(call);
      } catch (error) {
        settle();
        reject(error);
        return;
      }
      Promise.resolve(p).then(
        (v) => {
          settle();
          resolve(v);
        },
        (e) => {
          settle();
          reject(call.timedOut && e !== call.reason ? this.timeoutError(e) : e);
        },
      );
    });
  }
}

/**
 * Shorthand for `new Timeout(ms, options)`.
 *
 * @example
 * ```ts
 * const t = timeout(1_000, { strategy: 'aggressive' });
 * ```
 */
export function timeout(ms: number, options?: TimeoutOptions): Timeout {
  return new Timeout(ms, options);
}
