/**
 * Where circuit breakers keep their snapshots, so a breaker's state survives a restart or
 * (with a shared store, e.g. Redis) is shared by instances. Both methods may be sync or async.
 */
import type { BreakerState } from '../channels.ts';

/** A breaker's serialisable state (`breaker.toJSON()`). Times are epoch ms. */
export interface BreakerSnapshot {
  version: 1;
  state: BreakerState;
  /** When an open breaker admits its first probe. */
  openUntil: number;
  /** Trips since the breaker last closed (grows the open duration). */
  trips: number;
  strategy: unknown;
}

/**
 * @example
 * ```ts
 * const store: BreakerStateStore = { load: (name) => redisLoad(name), save: (name, s) => redisSave(name, s) };
 * ```
 */
export interface BreakerStateStore {
  load(name: string): BreakerSnapshot | undefined | Promise<BreakerSnapshot | undefined>;
  save(name: string, snapshot: BreakerSnapshot): void | Promise<void>;
}

/**
 * The default store: a Map in this process (snapshots survive re-creating the breaker,
 * not the process).
 *
 * @example
 * ```ts
 * const store = new MemoryStateStore();
 * const a = new CircuitBreaker({ name: 'api', store });
 * ```
 */
export class MemoryStateStore implements BreakerStateStore {
  readonly #map = new Map<string, BreakerSnapshot>();
  load(name: string): BreakerSnapshot | undefined {
    const s = this.#map.get(name);
    return s && structuredClone(s);
  }
  save(name: string, snapshot: BreakerSnapshot): void {
    this.#map.set(name, structuredClone(snapshot));
  }
}

const STATES: readonly BreakerState[] = ['closed', 'open', 'half-open', 'isolated'];

/** True for a value shaped like a {@link BreakerSnapshot}. */
export function isBreakerSnapshot(value: unknown): value is BreakerSnapshot {
  const s = value as Partial<BreakerSnapshot> | null;
  return (
    typeof s === 'object' &&
    s !== null &&
    s.version === 1 &&
    STATES.includes(s.state as BreakerState) &&
    typeof s.openUntil === 'number' &&
    Number.isFinite(s.openUntil) &&
    typeof s.trips === 'number' &&
    Number.isInteger(s.trips) &&
    s.trips >= 0
  );
}
