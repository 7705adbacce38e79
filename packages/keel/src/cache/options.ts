/** TieredCache options: the public shapes, their defaults, and validation at construction. */
import type { Redis } from 'ioredis';
import type { Clock } from '../clock.ts';
import { booleanOption, clockOption, intOption, numberOption, objectOptions, optionError, stringOption } from '../internal/options.ts';
import { CircuitBreaker, type CircuitBreakerOptions, ConsecutiveBreaker } from '../resilience/index.ts';
import { jsonSerializer, type Serializer } from './serializer.ts';

const OWNER = 'TieredCache';

export interface L1Options {
  /** Most entries held in memory. Default `10_000`. */
  maxEntries?: number;
  /** Most bytes held in memory, measured on each value's serialized form. Default `64 MiB`. */
  maxBytes?: number;
  /** How long L1 trusts an entry before re-reading L2 (≤ the entry's TTL). Default: the entry's `ttlMs`. */
  ttlMs?: number;
}

export interface L2Options {
  /** An ioredis instance (not closed by the cache) or a URL (the cache connects and closes it). */
  redis: Redis | string;
  /** Deadline of each Redis call, in ms. Default `150`. */
  timeoutMs?: number;
  /** Overrides for the L2 breaker. Default: opens after 3 consecutive failures, half-opens after 1 s (up to 4 s). */
  breaker?: CircuitBreakerOptions;
  /**
   * How long tag and delete stamps live in Redis to fence slow loads: a load that started
   * before an invalidation and finishes after it is not written. Loads older than this skip
   * the L2 write. Default `60_000` (and at least `hardTimeoutMs`).
   */
  fenceMs?: number;
}

export interface LockOptions {
  /** Lease of the cross-instance load lock, in ms (the holder's load should finish within it). Default `5_000`. */
  leaseMs?: number;
  /** How long a non-holder polls L2 before loading itself, and at most half of what is left of the load's hard timeout (so it still has time to load). Default: `leaseMs`. */
  waitMs?: number;
  /** Poll interval of a non-holder, in ms. Default `20`. */
  pollMs?: number;
}

export interface TieredCacheOptions {
  /** Telemetry label (bounded: one per cache, never per key). Default `'cache'`. */
  name?: string;
  /** Prefix of every Redis key and of the bus channel. Default: `keel:<name>`. */
  namespace?: string;
  /** Logical TTL of an entry, in ms. Default `60_000`. */
  ttlMs?: number;
  /** How long past its TTL a stale value may still be served (SWR and fail-safe). Default `0`. */
  graceMs?: number;
  /** With a stale value at hand, wait this long for a fresh one before serving stale. Default `0` (serve stale at once, refresh in background). */
  softTimeoutMs?: number;
  /** Bound on a whole load (L2 lookup, lock wait, loader), from the first caller's miss. Default `10_000`. */
  hardTimeoutMs?: number;
  /** Refresh in the background once this fraction of the TTL has passed and the entry is read, in (0, 1). Default: off. */
  eagerRefresh?: number;
  /** First pause after a failed refresh before the next attempt (doubles per failure). Default `1_000`. */
  retryBackoffMs?: number;
  /** Longest such pause. Default `30_000`. */
  maxRetryBackoffMs?: number;
  /**
   * The in-process tier, or `false` for an L2-only cache (needs `l2`): every read consults
   * Redis, so other instances' writes and invalidations are seen without the bus's delay.
   * Default: on, with the defaults of {@link L1Options}.
   */
  l1?: L1Options | false;
  /** Redis. Without it the cache is L1 only. */
  l2?: L2Options;
  /** Cross-instance L1 invalidation over Redis pub/sub (needs `l2`). Default `true` with `l2`. */
  bus?: boolean;
  /** Cross-instance single flight through a Redis lease (needs `l2`); `true` for defaults. Default: off. */
  lock?: LockOptions | boolean;
  /** Default: JSON. */
  serializer?: Serializer;
  /** L2 payloads at least this large (bytes) are deflated. Default `4096`; `Infinity` turns it off. */
  compressThreshold?: number;
  /** Tag stamps remembered in memory; beyond it, the oldest are folded into one conservative floor. Default `10_000`. */
  maxTags?: number;
  /** Default: the real clock. */
  clock?: Clock;
}

export interface ResolvedOptions {
  name: string;
  namespace: string;
  ttlMs: number;
  graceMs: number;
  softTimeoutMs: number;
  hardTimeoutMs: number;
  eagerRefresh: number;
  retryBackoffMs: number;
  maxRetryBackoffMs: number;
  l1: { enabled: boolean; maxEntries: number; maxBytes: number; ttlMs: number | undefined };
  l2: { redis: Redis | string; timeoutMs: number; breaker: CircuitBreakerOptions; fenceMs: number } | undefined;
  bus: boolean;
  lock: { leaseMs: number; waitMs: number; pollMs: number } | undefined;
  serializer: Serializer;
  compressThreshold: number;
  maxTags: number;
  clock: Clock;
}

// Timers overflow past 2^31 - 1 ms; TTLs only need to be finite (lru-cache and Redis PX take integers).
const MAX_MS = 2 ** 31 - 1;
const MAX_TTL_MS = 10 * 365 * 86_400_000;

export function resolveOptions(options: TieredCacheOptions | undefined): ResolvedOptions {
  const o = objectOptions(OWNER, options);
  const name = stringOption(OWNER, 'name', o.name, 'cache');
  const clock = clockOption(OWNER, o.clock);
  const ttlMs = numberOption(OWNER, 'ttlMs', o.ttlMs, 60_000, { min: 1, max: MAX_TTL_MS });
  const l1Off = o.l1 === false;
  const l1o = objectOptions(`${OWNER} l1`, l1Off ? undefined : (o.l1 as L1Options | undefined));
  const l1 = {
    enabled: !l1Off,
    maxEntries: intOption(OWNER, 'l1.maxEntries', l1o.maxEntries, 10_000, { min: 1 }),
    maxBytes: intOption(OWNER, 'l1.maxBytes', l1o.maxBytes, 64 * 1024 * 1024, { min: 1 }),
    ttlMs: l1o.ttlMs === undefined ? undefined : numberOption(OWNER, 'l1.ttlMs', l1o.ttlMs, ttlMs, { min: 1, max: MAX_TTL_MS }),
  };
  let l2: ResolvedOptions['l2'];
  if (o.l2 !== undefined) {
    const l2o = objectOptions(`${OWNER} l2`, o.l2);
    const redis = l2o.redis;
    const isClient = typeof redis === 'object' && redis !== null && typeof (redis as Redis).callBuffer === 'function';
    if (!isClient && !(typeof redis === 'string' && /^rediss?:\/\//.test(redis))) {
      throw optionError(OWNER, 'l2.redis', 'an ioredis client or a redis:// URL', redis);
    }
    if (isClient && (redis as Redis).options?.keyPrefix) {
      // Scripts build keys from arguments, which ioredis does not prefix: use `namespace`.
      throw optionError(OWNER, 'l2.redis', 'a client without keyPrefix (use the namespace option)', (redis as Redis).options.keyPrefix);
    }
    l2 = {
      redis: redis as Redis | string,
      timeoutMs: numberOption(OWNER, 'l2.timeoutMs', l2o.timeoutMs, 150, { min: 1, max: MAX_MS }),
      breaker: l2Breaker(name, clock, l2o.breaker),
      fenceMs: numberOption(OWNER, 'l2.fenceMs', l2o.fenceMs, 60_000, { min: 1_000, max: MAX_TTL_MS }),
    };
  }
  if (l1Off && !l2) throw optionError(OWNER, 'l1', 'an object, or false only with l2 (without either nothing is cached)', o.l1);
  const bus = booleanOption(OWNER, 'bus', o.bus, l2 !== undefined && !l1Off);
  if (bus && !l2) throw optionError(OWNER, 'bus', 'false without l2 (the bus runs over Redis)', o.bus);
  let lock: ResolvedOptions['lock'];
  if (o.lock !== undefined && o.lock !== false) {
    if (!l2) throw optionError(OWNER, 'lock', 'unset without l2 (the lock lives in Redis)', o.lock);
    const lo = o.lock === true ? {} : objectOptions(`${OWNER} lock`, o.lock);
    const leaseMs = numberOption(OWNER, 'lock.leaseMs', lo.leaseMs, 5_000, { min: 1, max: MAX_MS });
    lock = {
      leaseMs,
      waitMs: numberOption(OWNER, 'lock.waitMs', lo.waitMs, leaseMs, { min: 0, max: MAX_MS }),
      pollMs: numberOption(OWNER, 'lock.pollMs', lo.pollMs, 20, { min: 1, max: MAX_MS }),
    };
  }
  const serializer = o.serializer ?? jsonSerializer;
  if (typeof serializer !== 'object' || typeof serializer.serialize !== 'function' || typeof serializer.deserialize !== 'function') {
    throw optionError(OWNER, 'serializer', 'a Serializer (serialize, deserialize)', serializer);
  }
  const retryBackoffMs = numberOption(OWNER, 'retryBackoffMs', o.retryBackoffMs, 1_000, { min: 0, max: MAX_TTL_MS });
  const eager = o.eagerRefresh === undefined ? 1 : numberOption(OWNER, 'eagerRefresh', o.eagerRefresh, 1, { min: 0.01, max: 0.99 });
  return {
    name,
    namespace: stringOption(OWNER, 'namespace', o.namespace, `keel:${name}`),
    ttlMs,
    graceMs: numberOption(OWNER, 'graceMs', o.graceMs, 0, { min: 0, max: MAX_TTL_MS }),
    softTimeoutMs: numberOption(OWNER, 'softTimeoutMs', o.softTimeoutMs, 0, { min: 0, max: MAX_MS }),
    hardTimeoutMs: numberOption(OWNER, 'hardTimeoutMs', o.hardTimeoutMs, 10_000, { min: 1, max: MAX_MS }),
    eagerRefresh: eager,
    retryBackoffMs,
    maxRetryBackoffMs: numberOption(OWNER, 'maxRetryBackoffMs', o.maxRetryBackoffMs, Math.max(30_000, retryBackoffMs), {
      min: retryBackoffMs,
      max: MAX_TTL_MS,
    }),
    l1,
    l2,
    bus,
    lock,
    serializer,
    compressThreshold: numberOption(OWNER, 'compressThreshold', o.compressThreshold, 4096, { min: 0, max: Number.POSITIVE_INFINITY }),
    maxTags: intOption(OWNER, 'maxTags', o.maxTags, 10_000, { min: 1 }),
    clock,
  };
}

/**
 * The L2 breaker's options: the cache's defaults under the user's overrides, checked here
 * by building a breaker (it starts no timers and holds nothing). Checked in the tier, a bad
 * one threw after the cache had opened its Redis connection, which then stayed open (r9).
 */
function l2Breaker(name: string, clock: Clock, given: CircuitBreakerOptions | undefined): CircuitBreakerOptions {
  const overrides = given === undefined ? {} : objectOptions(`${OWNER} l2.breaker`, given);
  const breaker: CircuitBreakerOptions = {
    name: `${name}:l2`,
    strategy: new ConsecutiveBreaker(3),
    halfOpenAfterMs: 1_000,
    // Capped at 4 s so L2 is probed, and back, within ~4.2 s of Redis returning after an
    // outage of any length (the forum's fault test asks for 5 s).
    maxHalfOpenAfterMs: 4_000,
    clock,
    ...overrides,
  };
  try {
    void new CircuitBreaker(breaker);
  } catch (error) {
    if (!(error instanceof TypeError)) throw error;
    throw new TypeError(error.message.replace(/^keel: CircuitBreaker option "/, `keel: ${OWNER} option "l2.breaker.`));
  }
  return breaker;
}

/** Per-call options of `getOrSet` and `set`. */
export interface SetOptions {
  /** Overrides the cache's `ttlMs`. */
  ttlMs?: number;
  /** Overrides the cache's `graceMs`. */
  graceMs?: number;
  /** Tags to invalidate the entry by. Non-empty strings without `,`, `|` or newlines. */
  tags?: readonly string[];
}

export interface GetOrSetOptions extends SetOptions {
  /** Overrides the cache's `softTimeoutMs`. */
  softTimeoutMs?: number;
  /** Overrides the cache's `hardTimeoutMs`. */
  hardTimeoutMs?: number;
}

/** Checks per-call options on the miss path; returns an error rather than throwing. */
export function callOptionsError(o: GetOrSetOptions | undefined): TypeError | undefined {
  if (o === undefined) return undefined;
  if (typeof o !== 'object' || o === null) return new TypeError('keel: TieredCache call options must be an object');
  for (const k of ['ttlMs', 'graceMs', 'softTimeoutMs', 'hardTimeoutMs'] as const) {
    const v = o[k];
    const max = k === 'ttlMs' || k === 'graceMs' ? MAX_TTL_MS : MAX_MS;
    // The constructor's bounds: a TTL or a hard timeout under 1 ms is refused there too.
    const min = k === 'ttlMs' || k === 'hardTimeoutMs' ? 1 : 0;
    if (v !== undefined && !(typeof v === 'number' && v >= min && v <= max)) {
      return new TypeError(`keel: TieredCache call option "${k}" must be a number of ms >= ${min} (got ${String(v)})`);
    }
  }
  if (o.tags !== undefined && !Array.isArray(o.tags)) return new TypeError('keel: TieredCache call option "tags" must be an array');
  return undefined;
}
