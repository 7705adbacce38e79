/**
 * Caps concurrent executions, with a bounded FIFO queue whose waits expire. Queued calls
 * share one timer (the queue wait is fixed, so the FIFO is also deadline order).
 */

import { CHANNELS, channel } from '../channels.ts';
import type { Clock } from '../clock.ts';
import { clockOption, durationOption, intOption, objectOptions, stringOption } from '../internal/options.ts';
import type { AbortListener, CallContext, ExecuteContext, ExecuteOptions } from './context.ts';
import { toContext } from './context.ts';
import type { DeadlineEntry } from './deadline-queue.ts';
import { DeadlineQueue } from './deadline-queue.ts';
import { BulkheadRejectedError, PolicyClosedError } from './errors.ts';
import type { Policy, Work } from './policy.ts';

export interface BulkheadOptions {
  /** Name in errors and telemetry. Default `'bulkhead'`. */
  name?: string;
  /** Calls running at once. Default `10`. */
  maxConcurrent?: number;
  /** Calls waiting for a slot; more are rejected with reason `'full'`. Default `100`. */
  maxQueue?: number;
  /** How long a call may wait in the queue (ms) before it is rejected with reason `'queue-timeout'`. Default `10_000`. */
  queueTimeoutMs?: number;
  /** Default: the real clock. */
  clock?: Clock;
}

class Waiter implements DeadlineEntry, AbortListener {
  deadline = 0;
  prev: DeadlineEntry | undefined = undefined;
  next: DeadlineEntry | undefined = undefined;
  queued = false;
  constructor(
    readonly owner: Bulkhead,
    readonly ctx: CallContext,
    readonly start: () => void,
    readonly reject: (e: unknown) => void,
  ) {}
  expire(): void {
    this.ctx.unsubscribe(this);
    this.owner.rejected('queue-timeout');
    this.reject(new BulkheadRejectedError(this.owner.name, 'queue-timeout'));
  }
  handleEvent(): void {
    this.owner.dequeue(this);
    this.reject(this.ctx.reason);
  }
}

/**
 * Limits how many calls run at once; queues a bounded number more.
 *
 * @example
 * ```ts
 * import { Bulkhead } from 'keel/resilience';
 * const previews = new Bulkhead({ maxConcurrent: 4, maxQueue: 50, queueTimeoutMs: 2_000 });
 * await previews.execute(({ signal }) => fetch(url, { signal }));
 * ```
 */
export class Bulkhead implements Policy {
  readonly name: string;
  readonly maxConcurrent: number;
  readonly maxQueue: number;
  readonly queueTimeoutMs: number;
  readonly #clock: Clock;
  readonly #queue: DeadlineQueue;
  readonly #ch = channel(CHANNELS.resilience.bulkheadRejected);
  #active = 0;
  #closed = false;

  constructor(options?: BulkheadOptions) {
    const o = objectOptions('bulkhead', options);
    this.name = stringOption('bulkhead', 'name', o.name, 'bulkhead');
    this.maxConcurrent = intOption('bulkhead', 'maxConcurrent', o.maxConcurrent, 10, { min: 1 });
    this.maxQueue = intOption('bulkhead', 'maxQueue', o.maxQueue, 100, { max: 1_000_000 });
    // Node timers overflow past 2^31 - 1 ms and then fire at once.
    this.queueTimeoutMs = durationOption('bulkhead', 'queueTimeoutMs', o.queueTimeoutMs, 10_000, 1);
    if (this.queueTimeoutMs > 2 ** 31 - 1) throw new TypeError(`keel: bulkhead option "queueTimeoutMs" must be <= ${2 ** 31 - 1}`);
    this.#clock = clockOption('bulkhead', o.clock);
    this.#queue = new DeadlineQueue(this.#clock);
  }

  /** Calls running now. */
  get active(): number {
    return this.#active;
  }

  /** Calls waiting for a slot. */
  get queued(): number {
    return this.#queue.size;
  }

  execute<T>(fn: Work<T>, options?: ExecuteOptions | ExecuteContext): Promise<T> {
    if (this.#closed) return Promise.reject(new PolicyClosedError(this.name));
    const ctx = toContext(options);
    if (this.#active < this.maxConcurrent) {
      this.#active++;
      return this.#run(fn, ctx);
    }
    if (this.#queue.size >= this.maxQueue) {
      this.rejected('full');
      return Promise.reject(new BulkheadRejectedError(this.name, 'full'));
    }
    if (ctx.aborted) return Promise.reject(ctx.reason);
    return new Promise<T>((resolve, reject) => {
      const waiter = new Waiter(this, ctx, () => resolve(this.#run(fn, ctx)), reject);
      this.#queue.push(waiter, this.#queue.now(), this.queueTimeoutMs);
      ctx.subscribe(waiter);
    });
  }

  async #run<T>(fn: Work<T>, ctx: CallContext): Promise<T> {
    try {
      return await fn(ctx);
    } finally {
      this.#active--;
      const next = this.#queue.shift() as Waiter | undefined;
      if (next) {
        next.ctx.unsubscribe(next);
        this.#active++;
        next.start();
      }
    }
  }

  /**
   * Rejects every queued call with PolicyClosedError and refuses new calls. Calls already
   * running are left to finish (they hold no timer of the bulkhead's).
   *
   * @example
   * ```ts
   * await previews.close();
   * ```
   */
  async close(): Promise<void> {
    this.#closed = true;
    const error = new PolicyClosedError(this.name);
    this.#queue.drain((e) => {
      const w = e as Waiter;
      w.ctx.unsubscribe(w);
      w.reject(error);
    });
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** @internal */
  dequeue(waiter: Waiter): void {
    this.#queue.remove(waiter);
    waiter.ctx.unsubscribe(waiter);
  }

  /** @internal */
  rejected(reason: 'full' | 'queue-timeout'): void {
    if (this.#ch.hasSubscribers) this.#ch.publish({ name: this.name, reason });
  }
}

/**
 * Shorthand for `new Bulkhead(options)`.
 *
 * @example
 * ```ts
 * const b = bulkhead({ maxConcurrent: 2 });
 * ```
 */
export function bulkhead(options?: BulkheadOptions): Bulkhead {
  return new Bulkhead(options);
}
