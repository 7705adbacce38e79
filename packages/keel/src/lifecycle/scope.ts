import type { EventEmitter } from 'node:events';
import type { Clock, TimerHandle } from '../clock.ts';
import { KeelError } from '../errors.ts';
import { clockOption, objectOptions, stringOption } from '../internal/options.ts';

/** Anything a {@link Scope} can own and release. */
export type Resource =
  | { close(): unknown }
  | { [Symbol.asyncDispose](): PromiseLike<void> }
  | { [Symbol.dispose](): void }
  | (() => unknown);

export interface ScopeOptions {
  /** Shown in errors and diagnostics. Default: `'scope'`. */
  name?: string;
  /** Clock for {@link Scope.setTimeout} and {@link Scope.setInterval}. Default: the real clock. */
  clock?: Clock;
}

/** Thrown when something is added to a scope that is closing or closed. */
export class ScopeClosedError extends KeelError {
  constructor(name: string) {
    super('KEEL_SCOPE_CLOSED', `keel: scope "${name}" is closed`);
  }
}

type Release = () => unknown;

function ignore(): void {}

function releaseOf(resource: Resource): Release {
  if (typeof resource === 'function') return resource;
  const r = resource as Record<string | symbol, unknown>;
  if (typeof r[Symbol.asyncDispose] === 'function') return () => (r[Symbol.asyncDispose] as () => unknown).call(resource);
  if (typeof r.close === 'function') return () => (r.close as () => unknown).call(resource);
  if (typeof r[Symbol.dispose] === 'function') return () => (r[Symbol.dispose] as () => unknown).call(resource);
  throw new TypeError('keel: Scope.add needs a function, or an object with close(), [Symbol.asyncDispose]() or [Symbol.dispose]()');
}

/**
 * Owns timers, intervals, listeners and closable resources, and releases them all, newest
 * first, when closed. Components hold one scope each, so closing a component can leave no
 * handle behind however it was used.
 *
 * @example
 * ```ts
 * import { Scope } from 'keel/lifecycle';
 * await using scope = new Scope({ name: 'poller' });
 * scope.setInterval(() => console.log('poll'), 1_000);
 * scope.on(process, 'SIGUSR2', () => console.log('dump'));
 * // leaving the block clears the interval and removes the listener
 * ```
 */
export class Scope implements AsyncDisposable {
  readonly name: string;
  readonly #clock: Clock;
  // Insertion-ordered; released in reverse. A Set keeps removal O(1) for timers that fire.
  #releases = new Set<Release>();
  #closing: Promise<void> | undefined;
  /**
   * Set by close() before the first release runs. Not `#closing !== undefined`: the newest
   * release runs synchronously inside #closeAll, before its promise is assigned, and whatever
   * it added then went into a set already emptied and was never released.
   */
  #closed = false;

  constructor(options?: ScopeOptions) {
    const o = objectOptions('Scope', options);
    this.name = stringOption('Scope', 'name', o.name, 'scope');
    this.#clock = clockOption('Scope', o.clock);
  }

  /** True once {@link close} has been called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** How many resources the scope still owns. */
  get size(): number {
    return this.#releases.size;
  }

  #own(release: Release): () => void {
    if (this.#closed) {
      // The resource is released at once; its own failure, sync or async, is not the caller's
      // concern here (the caller gets ScopeClosedError), and must not become an unhandled rejection.
      try {
        const pending = release() as PromiseLike<unknown> | undefined;
        if (typeof pending?.then === 'function') pending.then(undefined, ignore);
      } catch {
        // as above
      }
      throw new ScopeClosedError(this.name);
    }
    this.#releases.add(release);
    return () => {
      this.#releases.delete(release);
    };
  }

  /**
   * Takes ownership of a resource; it is released when the scope closes. Returns the
   * resource. Call {@link release} to release one early.
   */
  add<T extends Resource>(resource: T): T {
    const release = releaseOf(resource);
    this.#own(release);
    this.#byResource.set(resource as object, release);
    return resource;
  }

  #byResource = new WeakMap<object, Release>();

  /** Releases one resource now (if this scope owns it) and forgets it. */
  async release(resource: Resource): Promise<void> {
    const release = this.#byResource.get(resource as object);
    if (!release || !this.#releases.delete(release)) return;
    await release();
  }

  /** Stops owning a resource without releasing it (ownership moves to the caller). */
  forget(resource: Resource): void {
    const release = this.#byResource.get(resource as object);
    if (release) this.#releases.delete(release);
  }

  /** A timer that is cleared when the scope closes. Returns a function that cancels it. */
  setTimeout(fn: () => void, ms: number): () => void {
    let handle: TimerHandle | undefined;
    const cancel = (): void => {
      if (handle !== undefined) this.#clock.clearTimeout(handle);
      handle = undefined;
      forget();
    };
    const forget = this.#own(cancel);
    handle = this.#clock.setTimeout(() => {
      handle = undefined;
      forget();
      fn();
    }, ms);
    return cancel;
  }

  /**
   * A repeating timer, cleared when the scope closes. Built from chained timeouts on the
   * scope's clock, so fake clocks drive it too. Returns a function that stops it.
   */
  setInterval(fn: () => void, ms: number): () => void {
    if (!(ms > 0)) throw new TypeError(`keel: Scope.setInterval needs ms > 0 (got ${ms})`);
    let handle: TimerHandle | undefined;
    let stopped = false;
    const stop = (): void => {
      stopped = true;
      if (handle !== undefined) this.#clock.clearTimeout(handle);
      handle = undefined;
      forget();
    };
    const forget = this.#own(stop);
    const tick = (): void => {
      if (stopped) return;
      handle = this.#clock.setTimeout(tick, ms);
      fn();
    };
    handle = this.#clock.setTimeout(tick, ms);
    return stop;
  }

  /**
   * Adds a listener that is removed when the scope closes. Works with Node
   * `EventEmitter`s and DOM-style `EventTarget`s (including `AbortSignal`).
   * Returns a function that removes it early.
   */
  on(target: EventEmitter | EventTarget, event: string | symbol, listener: (...args: never[]) => void): () => void {
    const fn = listener as (...args: unknown[]) => void;
    let off: () => void;
    if (typeof (target as EventEmitter).on === 'function' && typeof (target as EventEmitter).off === 'function') {
      const em = target as EventEmitter;
      em.on(event, fn);
      off = () => em.off(event, fn);
    } else {
      const et = target as EventTarget;
      et.addEventListener(event as string, fn as EventListener);
      off = () => et.removeEventListener(event as string, fn as EventListener);
    }
    const remove = (): void => {
      off();
      forget();
    };
    const forget = this.#own(remove);
    return remove;
  }

  /** A child scope, closed (newest first) with this one; closing the child alone detaches it. */
  child(name = `${this.name}/child`): Scope {
    const child = new Scope({ name, clock: this.#clock });
    const forget = this.#own(() => child.close());
    child.#onClose = forget;
    return child;
  }

  #onClose: (() => void) | undefined;

  /**
   * Releases everything, newest first, awaiting each. Errors are collected and thrown
   * together as an `AggregateError` after every resource had its turn. Idempotent: later
   * calls return the first call's promise.
   */
  close(): Promise<void> {
    if (this.#closing === undefined) {
      this.#closed = true;
      this.#closing = this.#closeAll();
    }
    return this.#closing;
  }

  async #closeAll(): Promise<void> {
    this.#onClose?.();
    const errors: unknown[] = [];
    const releases = [...this.#releases].reverse();
    this.#releases.clear();
    for (const release of releases) {
      try {
        await release();
      } catch (err) {
        errors.push(err);
      }
    }
    if (errors.length === 1) throw errors[0];
    if (errors.length > 1) throw new AggregateError(errors, `keel: ${errors.length} resources of scope "${this.name}" failed to close`);
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
