/**
 * Hedged requests: if no answer comes within `delayMs`, start another attempt (up to
 * `maxHedges` more). The first success wins and the others are aborted (the winner's signal
 * is left alone, so a streamed body can still be read). A failed attempt starts the next
 * hedge at once rather than waiting out the delay.
 */

import { CHANNELS, channel } from '../channels.ts';
import type { Clock, TimerHandle } from '../clock.ts';
import { clockOption, intOption, numberOption, objectOptions, stringOption } from '../internal/options.ts';
import type { AbortListener, CallContext, ExecuteContext, ExecuteOptions } from './context.ts';
import { ChildContext, MAX_TIMER_MS, toContext } from './context.ts';
import { PolicyClosedError } from './errors.ts';
import type { Policy, Work } from './policy.ts';

export interface HedgeOptions {
  /** Name in telemetry. Default `'hedge'`. */
  name?: string;
  /** Wait (ms) for an answer before starting the next attempt. Default `100`. */
  delayMs?: number;
  /** Extra attempts at most, 1–10. Default `1`. */
  maxHedges?: number;
  /** Default: the real clock. */
  clock?: Clock;
}

function lostRace(): Error {
  return new DOMException('keel: another hedged attempt won', 'AbortError');
}

class HedgedCall<T> implements AbortListener {
  readonly #owner: Hedge;
  readonly #fn: Work<T>;
  readonly #parent: CallContext;
  readonly #resolve: (v: T) => void;
  readonly #reject: (e: unknown) => void;
  readonly #attempts: ChildContext[] = [];
  #timer: TimerHandle | undefined;
  #running = 0;
  #done = false;
  readonly #onTimer = () => {
    this.#timer = undefined;
    this.#owner.published(this.#attempts.length + 1);
    this.#launch();
  };

  constructor(
    owner: Hedge,
    fn: Work<T>,
    parent: CallContext,
    resolve: (v: T) => void,
    reject: (e: unknown) => void,
    readonly registry: Set<{ close(e: unknown): void }>,
  ) {
    this.#owner = owner;
    this.#fn = fn;
    this.#parent = parent;
    this.#resolve = resolve;
    this.#reject = reject;
    parent.subscribe(this);
    registry.add(this);
    this.#launch();
  }

  /** The policy closed. */
  close(error: unknown): void {
    this.#finish(() => this.#reject(error));
  }

  #launch(): void {
    const ctx = new ChildContext(this.#parent);
    this.#attempts.push(ctx);
    this.#running++;
    if (this.#attempts.length <= this.#owner.maxHedges) this.#timer = this.#owner.clock.setTimeout(this.#onTimer, this.#owner.delayMs);
    let p: PromiseLike<T> | T;
    try {
      p = this.#fn(ctx);
    } catch (error) {
      queueMicrotask(() => this.#failed(error));
      return;
    }
    Promise.resolve(p).then(
      (v) => this.#finish(() => this.#resolve(v), ctx),
      (e) => this.#failed(e),
    );
  }

  #failed(error: unknown): void {
    if (this.#done) return;
    this.#running--;
    if (this.#attempts.length <= this.#owner.maxHedges && !this.#parent.aborted) {
      this.#clearTimer();
      this.#owner.published(this.#attempts.length + 1);
      this.#launch();
    } else if (this.#running === 0) this.#finish(() => this.#reject(error));
  }

  /** The caller aborted: stop waiting even if attempts ignore their signals. */
  handleEvent(): void {
    this.#finish(() => this.#reject(this.#parent.reason));
  }

  /** Ends the call; every attempt but `winner` is aborted. */
  #finish(settle: () => void, winner?: ChildContext): void {
    if (this.#done) return;
    this.#done = true;
    this.registry.delete(this);
    this.#clearTimer();
    this.#parent.unsubscribe(this);
    for (const a of this.#attempts) {
      // The winner's signal must stay live: a fetch Response's body is still streaming
      // under it, and aborting it fails `res.text()`. dispose() alone drops its links.
      if (a !== winner) a.abort(lostRace());
      a.dispose();
    }
    settle();
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) {
      this.#owner.clock.clearTimeout(this.#timer);
      this.#timer = undefined;
    }
  }
}

/**
 * Races a slow call against later copies of itself.
 *
 * Only hedge idempotent work (reads, GETs): every attempt may reach the server.
 *
 * @example
 * ```ts
 * import { Hedge } from 'keel/resilience';
 * const hedge = new Hedge({ delayMs: 50, maxHedges: 2 });
 * const res = await hedge.execute(({ signal }) => fetch(url, { signal }));
 * ```
 */
export class Hedge implements Policy {
  readonly name: string;
  readonly delayMs: number;
  readonly maxHedges: number;
  readonly clock: Clock;
  readonly #ch = channel(CHANNELS.resilience.hedge);
  readonly #calls = new Set<{ close(e: unknown): void }>();
  #closed = false;

  constructor(options?: HedgeOptions) {
    const o = objectOptions('hedge', options);
    this.name = stringOption('hedge', 'name', o.name, 'hedge');
    this.delayMs = numberOption('hedge', 'delayMs', o.delayMs, 100, { min: 0, max: MAX_TIMER_MS });
    this.maxHedges = intOption('hedge', 'maxHedges', o.maxHedges, 1, { min: 1, max: 10 });
    this.clock = clockOption('hedge', o.clock);
  }

  execute<T>(fn: Work<T>, options?: ExecuteOptions | ExecuteContext): Promise<T> {
    if (this.#closed) return Promise.reject(new PolicyClosedError(this.name));
    const parent = toContext(options);
    if (parent.aborted) return Promise.reject(parent.reason);
    return new Promise<T>((resolve, reject) => {
      new HedgedCall(this, fn, parent, resolve, reject, this.#calls);
    });
  }

  /**
   * Ends every hedged call in flight (they reject with PolicyClosedError and their attempts
   * are aborted), clears their timers and refuses new calls.
   *
   * @example
   * ```ts
   * await h.close();
   * ```
   */
  async close(): Promise<void> {
    this.#closed = true;
    const error = new PolicyClosedError(this.name);
    for (const c of [...this.#calls]) c.close(error);
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** @internal */
  published(attempt: number): void {
    if (this.#ch.hasSubscribers) this.#ch.publish({ name: this.name, attempt });
  }
}

/**
 * Shorthand for `new Hedge(options)`.
 *
 * @example
 * ```ts
 * const h = hedge({ delayMs: 200 });
 * ```
 */
export function hedge(options?: HedgeOptions): Hedge {
  return new Hedge(options);
}
