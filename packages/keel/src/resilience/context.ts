/**
 * The lazy per-call context every policy hands to `fn`.
 *
 * Why lazy: on this machine `new AbortController()` costs ≈ 3.2 µs, `AbortSignal.any` ≈ 11.5 µs
 * and an add+remove of an `abort` listener ≈ 1.6 µs (DESIGN.md), more than a whole policy.
 * Most calls never read `signal`, so a context only makes its controller when `signal` is
 * first read, and links to its parent only then (one listener, dropped when the call settles).
 * Policies pass contexts down as the options object, which {@link toContext} recognises, so a
 * pipeline never touches `.signal` on its own.
 */
import type { Clock, TimerHandle } from '../clock.ts';

/** What `fn` receives: the call's signal (created on first read) and the caller's key. */
export interface ExecuteContext {
  readonly signal: AbortSignal;
  /** The `key` given to `execute` (used by per-key rate limits), if any. */
  readonly key: string | undefined;
}

/** The second argument of every `execute`. */
export interface ExecuteOptions {
  /** The caller's signal; aborting it aborts the call and every policy's wait. */
  signal?: AbortSignal | undefined;
  /** A partition key, e.g. a host name for a per-host rate limit. */
  key?: string | undefined;
}

/** Something told when a context aborts. `handleEvent` so signals can take it without a closure. */
export interface AbortListener {
  handleEvent(): void;
}

/** Base of the internal contexts. Users see it as {@link ExecuteContext}. */
export abstract class CallContext implements ExecuteContext {
  abstract readonly key: string | undefined;
  abstract get signal(): AbortSignal;
  abstract get aborted(): boolean;
  abstract get reason(): unknown;
  /** Registers `l` to run once on abort; a no-op on contexts that can never abort. */
  abstract subscribe(l: AbortListener): void;
  abstract unsubscribe(l: AbortListener): void;
}

/** No caller signal: it can never abort, so it needs no listeners at all. */
class RootContext extends CallContext {
  readonly key: string | undefined;
  constructor(key: string | undefined) {
    super();
    this.key = key;
  }
  get signal(): AbortSignal {
    // A fresh never-aborting signal per read, not a shared one: a listener that `fn` adds and
    // never removes must die with the call, not pile up on a module-level object. The cost
    // (≈ 3 µs) is paid only by callers that read `signal`.
    return new AbortController().signal;
  }
  get aborted(): boolean {
    return false;
  }
  get reason(): unknown {
    return undefined;
  }
  subscribe(): void {}
  unsubscribe(): void {}
}

const ROOT = new RootContext(undefined);

/** Wraps the caller's own signal; it is handed to `fn` as is. */
class SignalContext extends CallContext {
  readonly key: string | undefined;
  readonly #signal: AbortSignal;
  constructor(signal: AbortSignal, key: string | undefined) {
    super();
    this.#signal = signal;
    this.key = key;
  }
  get signal(): AbortSignal {
    return this.#signal;
  }
  get aborted(): boolean {
    return this.#signal.aborted;
  }
  get reason(): unknown {
    return this.#signal.reason;
  }
  subscribe(l: AbortListener): void {
    this.#signal.addEventListener('abort', l);
  }
  unsubscribe(l: AbortListener): void {
    this.#signal.removeEventListener('abort', l);
  }
}

/**
 * A context a policy can abort (timeout, hedge). Aborts when its parent does. Owns a
 * controller only once `signal` is read, and a parent link only while something listens.
 * Call {@link ChildContext.dispose} when the call settles.
 */
export class ChildContext extends CallContext implements AbortListener {
  readonly key: string | undefined;
  readonly parent: CallContext;
  #controller: AbortController | undefined;
  #aborted = false;
  #reason: unknown;
  #linked = false;
  // One listener is the common case (the signal's controller or one sleeping retry).
  #one: AbortListener | undefined;
  #many: Set<AbortListener> | undefined;

  constructor(parent: CallContext) {
    super();
    this.parent = parent;
    this.key = parent.key;
  }

  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController();
      if (this.aborted) this.#controller.abort(this.reason);
      else this.link();
    }
    return this.#controller.signal;
  }

  get aborted(): boolean {
    return this.#aborted || this.parent.aborted;
  }

  get reason(): unknown {
    return this.#aborted ? this.#reason : this.parent.reason;
  }

  /** True if this context itself was aborted (not merely its parent). */
  get abortedHere(): boolean {
    return this.#aborted;
  }

  subscribe(l: AbortListener): void {
    if (this.#one === undefined && this.#many === undefined) this.#one = l;
    else {
      this.#many ??= new Set();
      if (this.#one !== undefined) {
        this.#many.add(this.#one);
        this.#one = undefined;
      }
      this.#many.add(l);
    }
    this.link();
  }

  unsubscribe(l: AbortListener): void {
    if (this.#one === l) this.#one = undefined;
    else this.#many?.delete(l);
  }

  /** The parent aborted. */
  handleEvent(): void {
    this.abort(this.parent.reason);
  }

  /** Aborts this call: its signal (if made) and everything listening. Idempotent. */
  abort(reason: unknown): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#reason = reason;
    // An aborted call has nothing left to hear from its parent. Unlinking now, not at
    // dispose(), matters when `fn` never settles (aggressive timeout): otherwise every such
    // call would leave a listener on a long-lived caller signal.
    this.#unlink();
    this.#controller?.abort(reason);
    const one = this.#one;
    const many = this.#many;
    this.#one = undefined;
    this.#many = undefined;
    one?.handleEvent();
    if (many) for (const l of many) l.handleEvent();
  }

  /** Drops the link to the parent, so nothing of this call stays on the caller's signal. */
  dispose(): void {
    this.#unlink();
    this.#one = undefined;
    this.#many = undefined;
  }

  /** Listens to the parent now, even if nothing has read `signal` or subscribed yet. */
  link(): void {
    if (this.#linked || this.#aborted) return;
    this.#linked = true;
    this.parent.subscribe(this);
  }

  #unlink(): void {
    if (this.#linked) {
      this.#linked = false;
      this.parent.unsubscribe(this);
    }
  }
}

/**
 * The context for an `execute` call: the one passed down by an outer policy, or a new one
 * for the caller's `{ signal, key }`. Reads `options.signal` only on objects that are not
 * already contexts, so pipelines never create a signal here.
 */
export function toContext(options: ExecuteOptions | ExecuteContext | undefined): CallContext {
  if (options === undefined) return ROOT;
  if (options instanceof CallContext) return options;
  const signal = options.signal;
  const key = options.key;
  if (signal != null) return new SignalContext(signal, key);
  return key === undefined ? ROOT : new RootContext(key);
}

/** The longest delay a Node timer honours. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** A pending {@link sleep}; `cancel` ends it early (used by a policy's close()). */
export interface Sleep {
  cancel(reason: unknown): void;
}

/**
 * Resolves after `ms` on `clock`, or rejects with the context's abort reason. While it
 * waits it sits in `registry` (if given), so the owning policy can cancel it on close().
 */
export function sleep(clock: Clock, ms: number, ctx: CallContext, registry?: Set<Sleep>): Promise<void> {
  if (ctx.aborted) return Promise.reject(ctx.reason);
  return new Promise<void>((resolve, reject) => {
    let timer: TimerHandle | undefined;
    const end = () => {
      ctx.unsubscribe(sleeper);
      registry?.delete(sleeper);
    };
    const sleeper: AbortListener & Sleep = {
      handleEvent() {
        sleeper.cancel(ctx.reason);
      },
      cancel(reason) {
        end();
        clock.clearTimeout(timer as TimerHandle);
        reject(reason);
      },
    };
    // Node timers overflow past 2^31 - 1 ms and fire at once; a longer wait is clamped.
    timer = clock.setTimeout(
      () => {
        end();
        resolve();
      },
      Math.min(ms, MAX_TIMER_MS),
    );
    ctx.subscribe(sleeper);
    registry?.add(sleeper);
  });
}
