/**
 * A circuit breaker: closed → open → half-open → closed. It starts no timers: whether an
 * open breaker may probe is decided on the next call by comparing the clock to `openUntil`,
 * so an idle breaker holds nothing alive and needs no close().
 */

import type { BreakerCreatedMessage, BreakerState } from '../channels.ts';
import { CHANNELS, channel } from '../channels.ts';
import type { Clock } from '../clock.ts';
import {
  clockOption,
  durationOption,
  functionOption,
  intOption,
  numberOption,
  objectOptions,
  optionError,
  stringOption,
} from '../internal/options.ts';
import { ConsecutiveBreaker } from './breakers/consecutive.ts';
import type { BreakerStrategy } from './breakers/strategy.ts';
import { classify } from './classify.ts';
import type { ExecuteContext, ExecuteOptions } from './context.ts';
import { toContext } from './context.ts';
import { BrokenCircuitError } from './errors.ts';
import type { Policy, Work } from './policy.ts';
import type { BreakerSnapshot, BreakerStateStore } from './state-store.ts';
import { isBreakerSnapshot } from './state-store.ts';

export interface CircuitBreakerOptions {
  /** Name in errors, telemetry and the state store. Default `'breaker'`. */
  name?: string;
  /** When to open. Default `new ConsecutiveBreaker(5)`. */
  strategy?: BreakerStrategy;
  /** How long the breaker stays open before admitting probes, in ms. Default `10_000`. */
  halfOpenAfterMs?: number;
  /** Each trip without closing in between multiplies the open time by `openBackoffFactor`, up to this. Default: `halfOpenAfterMs` (no growth). */
  maxHalfOpenAfterMs?: number;
  /** Growth factor of the open time on repeated trips. Default `2`. */
  openBackoffFactor?: number;
  /** Probes admitted in half-open; all must succeed to close, one failure reopens. Default `1`. */
  halfOpenProbes?: number;
  /** Calls slower than this (ms) count as failures even if they succeed. Default `Infinity` (off). */
  slowCallMs?: number;
  /** Which errors count as failures. Default: all but `classify(err).severity === 'low'` (4xx, aborts). */
  isFailure?: (error: unknown) => boolean;
  /** Called on every state change (after the diagnostics channel event). */
  onStateChange?: (from: BreakerState, to: BreakerState) => void;
  /** Saves a snapshot on every transition; see {@link CircuitBreaker.load}. Default: none. */
  store?: BreakerStateStore;
  /** Default: the real clock. */
  clock?: Clock;
}

// The shortest time before a probe still running is presumed stuck and its slot given to a
// new probe. Without a floor, `halfOpenAfterMs: 0` presumed every probe stuck at once and
// admitted every call (5 probes where `halfOpenProbes` was 1).
const MIN_PROBE_RESCUE_MS = 1_000;

/**
 * Stops calling a failing dependency for a while, then probes it.
 *
 * @example
 * ```ts
 * import { CircuitBreaker, CountWindowBreaker } from 'keel/resilience';
 * const breaker = new CircuitBreaker({ name: 'users-api', strategy: new CountWindowBreaker({ size: 20 }), halfOpenAfterMs: 5_000 });
 * const user = await breaker.execute(({ signal }) => fetch(`${base}/users/1`, { signal }));
 * ```
 */
export class CircuitBreaker implements Policy {
  readonly name: string;
  readonly #strategy: BreakerStrategy;
  readonly #halfOpenAfterMs: number;
  readonly #maxHalfOpenAfterMs: number;
  readonly #factor: number;
  readonly #probes: number;
  readonly #slowCallMs: number;
  readonly #timed: boolean;
  readonly #isFailure: (error: unknown) => boolean;
  readonly #onStateChange: ((from: BreakerState, to: BreakerState) => void) | undefined;
  readonly #store: BreakerStateStore | undefined;
  readonly #clock: Clock;
  readonly #stateCh = channel(CHANNELS.resilience.breakerState);
  readonly #rejectCh = channel(CHANNELS.resilience.breakerRejected);
  #state: BreakerState = 'closed';
  #openUntil = 0;
  #trips = 0;
  #admitted = 0;
  #halfOpenAt = 0;
  // The length of the current (or last) open period.
  #openMs = 0;
  #succeeded = 0;
  // Bumped by every transition and every stuck-probe rescue. A probe counts only while its
  // generation is current: one whose slot was given away, or that outlived its half-open
  // period, must not free a slot or close the breaker for probes it no longer belongs to.
  #gen = 0;

  constructor(options?: CircuitBreakerOptions) {
    const o = objectOptions('CircuitBreaker', options);
    this.name = stringOption('CircuitBreaker', 'name', o.name, 'breaker');
    const s = o.strategy ?? new ConsecutiveBreaker(5);
    if (typeof s !== 'object' || s === null || typeof s.success !== 'function' || typeof s.failure !== 'function') {
      throw optionError('CircuitBreaker', 'strategy', 'a BreakerStrategy', s);
    }
    this.#strategy = s;
    this.#halfOpenAfterMs = durationOption('CircuitBreaker', 'halfOpenAfterMs', o.halfOpenAfterMs, 10_000);
    this.#maxHalfOpenAfterMs = durationOption(
      'CircuitBreaker',
      'maxHalfOpenAfterMs',
      o.maxHalfOpenAfterMs,
      this.#halfOpenAfterMs,
      this.#halfOpenAfterMs,
    );
    this.#factor = numberOption('CircuitBreaker', 'openBackoffFactor', o.openBackoffFactor, 2, { min: 1, max: 100 });
    this.#probes = intOption('CircuitBreaker', 'halfOpenProbes', o.halfOpenProbes, 1, { min: 1, max: 1000 });
    this.#slowCallMs = numberOption('CircuitBreaker', 'slowCallMs', o.slowCallMs, Number.POSITIVE_INFINITY, { min: 0 });
    this.#isFailure = functionOption('CircuitBreaker', 'isFailure', o.isFailure, (err: unknown) => classify(err).severity !== 'low');
    this.#onStateChange = functionOption('CircuitBreaker', 'onStateChange', o.onStateChange);
    const store = o.store;
    if (
      store !== undefined &&
      (typeof store !== 'object' || store === null || typeof store.load !== 'function' || typeof store.save !== 'function')
    ) {
      throw optionError('CircuitBreaker', 'store', 'a BreakerStateStore (load, save)', store);
    }
    this.#store = store;
    this.#clock = clockOption('CircuitBreaker', o.clock);
    this.#timed = s.timed || Number.isFinite(this.#slowCallMs);
    // Transitions alone left a breaker that never tripped unknown to the metrics, so the
    // forum's dashboard said "No circuit breakers reported" beside a closed preview breaker.
    // Only a subscriber present now hears it: create the Metrics before the breakers.
    const created = channel(CHANNELS.resilience.breakerCreated);
    if (created.hasSubscribers) created.publish({ name: this.name, state: this.#state } satisfies BreakerCreatedMessage);
  }

  /** The current state. An open breaker whose time is up reports `'half-open'`. */
  get state(): BreakerState {
    if (this.#state === 'open' && this.#clock.now() >= this.#openUntil) return 'half-open';
    return this.#state;
  }

  async execute<T>(fn: Work<T>, options?: ExecuteOptions | ExecuteContext): Promise<T> {
    const ctx = toContext(options);
    if (this.#state !== 'closed') return this.#guarded(fn, ctx);
    const start = this.#timed ? this.#clock.now() : 0;
    let result: T;
    try {
      result = await fn(ctx);
    } catch (error) {
      if (this.#state === 'closed' && this.#isFailure(error)) this.#closedFailure(this.#timed ? this.#clock.now() : 0);
      throw error;
    }
    if (this.#state === 'closed') {
      if (!this.#timed) this.#strategy.success(0);
      else {
        const now = this.#clock.now();
        if (now - start >= this.#slowCallMs) this.#closedFailure(now);
        else this.#strategy.success(now);
      }
    }
    return result;
  }

  async #guarded<T>(fn: Work<T>, ctx: ExecuteContext): Promise<T> {
    const now = this.#clock.now();
    if (this.#state === 'open' && now >= this.#openUntil) this.#to('half-open');
    // A probe that never settles would hold the breaker half-open, rejecting everything,
    // for ever. After another open period (at least MIN_PROBE_RESCUE_MS), its slot is given
    // to a new probe.
    if (
      this.#state === 'half-open' &&
      this.#admitted >= this.#probes &&
      now - this.#halfOpenAt >= Math.max(this.#openMs, MIN_PROBE_RESCUE_MS)
    ) {
      this.#admitted = 0;
      this.#succeeded = 0;
      this.#halfOpenAt = now;
      this.#gen++;
    }
    if (this.#state === 'open' || this.#state === 'isolated' || (this.#state === 'half-open' && this.#admitted >= this.#probes)) {
      const state = this.#state as 'open' | 'isolated' | 'half-open';
      if (this.#rejectCh.hasSubscribers) this.#rejectCh.publish({ name: this.name });
      throw new BrokenCircuitError(this.name, state, state === 'isolated' ? 0 : Math.max(0, this.#openUntil - now));
    }
    if (this.#state === 'closed') return this.execute(fn, ctx);
    // A half-open probe.
    const gen = this.#gen;
    this.#admitted++;
    let result: T;
    try {
      result = await fn(ctx);
    } catch (error) {
      if (gen === this.#gen) {
        if (this.#isFailure(error)) this.#open(this.#clock.now());
        else this.#admitted--;
      }
      throw error;
    }
    if (gen === this.#gen) {
      if (this.#clock.now() - now >= this.#slowCallMs) this.#open(this.#clock.now());
      else if (++this.#succeeded >= this.#probes) this.#close();
    }
    return result;
  }

  #closedFailure(now: number): void {
    // `now` is 0 for untimed strategies; opening needs the real time.
    if (this.#strategy.failure(now)) this.#open(this.#clock.now());
  }

  #open(now: number): void {
    this.#trips++;
    this.#openMs = this.#openDuration();
    this.#openUntil = now + this.#openMs;
    this.#to('open');
  }

  #openDuration(): number {
    const grown = this.#halfOpenAfterMs * this.#factor ** Math.min(Math.max(this.#trips - 1, 0), 64);
    return Math.min(this.#maxHalfOpenAfterMs, grown);
  }

  #close(): void {
    this.#trips = 0;
    this.#strategy.reset();
    this.#to('closed');
  }

  #to(next: BreakerState): void {
    const from = this.#state;
    this.#state = next;
    this.#admitted = 0;
    this.#succeeded = 0;
    this.#gen++;
    if (next === 'half-open') this.#halfOpenAt = this.#clock.now();
    if (from === next) return;
    if (this.#stateCh.hasSubscribers) this.#stateCh.publish({ name: this.name, from, to: next });
    try {
      this.#onStateChange?.(from, next);
    } catch {
      // A throwing listener must neither replace the outcome of the call that changed the
      // state nor stop the transition (the store below still saves it).
    }
    if (this.#store) {
      try {
        Promise.resolve(this.#store.save(this.name, this.toJSON())).catch(() => {});
      } catch {
        // A failing store must not fail the call that changed the state.
      }
    }
  }

  /**
   * Holds the breaker open until {@link reset}, whatever the calls do (maintenance, a kill switch).
   *
   * @example
   * ```ts
   * breaker.isolate(); // every call now fails with BrokenCircuitError (state 'isolated')
   * ```
   */
  isolate(): void {
    this.#to('isolated');
  }

  /**
   * Closes the breaker and forgets its counts.
   *
   * @example
   * ```ts
   * breaker.reset();
   * ```
   */
  reset(): void {
    this.#close();
  }

  /**
   * A serialisable snapshot of the state (times are epoch ms).
   *
   * @example
   * ```ts
   * const saved = JSON.stringify(breaker);
   * ```
   */
  toJSON(): BreakerSnapshot {
    return { version: 1, state: this.#state, openUntil: this.#openUntil, trips: this.#trips, strategy: this.#strategy.toJSON() };
  }

  /**
   * Restores a snapshot from {@link toJSON}. A half-open snapshot restores as open-and-due,
   * so probes start afresh. Throws a TypeError for a malformed snapshot.
   *
   * @example
   * ```ts
   * breaker.restore(JSON.parse(saved));
   * ```
   */
  restore(snapshot: BreakerSnapshot): void {
    if (!isBreakerSnapshot(snapshot)) throw new TypeError('keel: CircuitBreaker.restore needs a snapshot from toJSON()');
    this.#trips = snapshot.trips;
    this.#openUntil = snapshot.openUntil;
    this.#openMs = this.#openDuration();
    this.#strategy.reset();
    this.#strategy.restore(snapshot.strategy);
    const state = snapshot.state === 'half-open' ? 'open' : snapshot.state;
    this.#to(state);
  }

  /**
   * Loads and restores this breaker's snapshot from its store; false when there is none.
   *
   * @example
   * ```ts
   * const breaker = new CircuitBreaker({ name: 'api', store });
   * await breaker.load();
   * ```
   */
  async load(): Promise<boolean> {
    if (!this.#store) return false;
    const snapshot = await this.#store.load(this.name);
    if (snapshot === undefined) return false;
    this.restore(snapshot);
    return true;
  }
}

/**
 * Shorthand for `new CircuitBreaker(options)`.
 *
 * @example
 * ```ts
 * const b = circuitBreaker({ halfOpenAfterMs: 30_000 });
 * ```
 */
export function circuitBreaker(options?: CircuitBreakerOptions): CircuitBreaker {
  return new CircuitBreaker(options);
}
