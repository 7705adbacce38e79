/**
 * Turns the `keel:*` diagnostics channels into metrics.
 *
 * Publishers (policies, caches, pools, the shedder) never import `observe`; they publish on
 * the channels in `channels.ts` and pay nothing while no one listens. Labels come only from
 * a message's `name` (the instance name the user configured) and from closed enums such as
 * a cache tier or a breaker state, so the series count stays bounded; the family cap backs
 * that up if a user names instances per request by mistake.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { type BreakerState, CHANNELS } from '../channels.ts';
import type { Clock } from '../clock.ts';
import { RollingCounter } from './rolling.ts';
import { CounterFamily, type CounterSeries, GaugeFamily, HistogramFamily, type SeriesLimit } from './series-cap.ts';

const BREAKER_STATES: readonly BreakerState[] = ['closed', 'open', 'half-open', 'isolated'];
// Closed sets: a reason outside them is reported as 'other', so a publisher's new reason
// cannot open an unbounded label.
const EVICT_REASONS = new Set(['capacity', 'bytes', 'size', 'evict', 'expire', 'set', 'delete', 'fetch', 'clear', 'invalidate', 'tag']);
const SHED_REASONS = new Set(['event-loop-delay', 'event-loop-utilization', 'heap', 'in-flight']);
const QUERY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
const LOAD_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.127, 0.25, 0.5, 1, 2.5, 5, 10];
const LAG_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5];

type Message = Record<string, unknown>;
type Handler = (message: unknown, name: string | symbol) => void;

/** Cache counters per cache name, as the dashboard shows them. */
export interface CacheStats {
  name: string;
  l1Hits: number;
  l2Hits: number;
  misses: number;
  stale: number;
  loaderErrors: number;
  l2Errors: number;
  /** (l1 + l2 hits) / (hits + misses); 0 before any lookup. */
  hitRatio: number;
}

/** A breaker's current state and since when (clock ms). */
export interface BreakerStats {
  name: string;
  state: BreakerState;
  since: number;
}

function nameOf(m: Message): string {
  return typeof m.name === 'string' && m.name.length > 0 ? m.name : 'unknown';
}

/** @internal What {@link Metrics} hands its `ChannelMetrics`. */
export interface ChannelMetricsParts {
  prefix: string;
  limit: SeriesLimit;
  clock: Clock;
}

/**
 * The `keel:*` subscriptions of {@link Metrics}; created by it when `channels` is on.
 *
 * @example
 * ```ts
 * import { channel } from 'node:diagnostics_channel';
 * import { Metrics } from 'keel/observe';
 * await using metrics = new Metrics({ processMetrics: false });
 * channel('keel:resilience:retry').publish({ name: 'payments', attempt: 1, delayMs: 100, error: new Error('x') });
 * ```
 */
export class ChannelMetrics {
  readonly families: Array<CounterFamily | GaugeFamily | HistogramFamily> = [];
  readonly #clock: Clock;
  readonly #limit: SeriesLimit;
  readonly #subscriptions: Array<[string, Handler]> = [];
  readonly #breakers = new Map<string, BreakerStats>();
  readonly #shed: RollingCounter;
  readonly #cache: {
    hits: CounterFamily;
    misses: CounterFamily;
    stale: CounterFamily;
    loaderErrors: CounterFamily;
    l2Errors: CounterFamily;
  };

  /** @internal Created by {@link Metrics}. */
  constructor(parts: ChannelMetricsParts) {
    const p = parts.prefix;
    this.#clock = parts.clock;
    this.#limit = parts.limit;
    this.#shed = new RollingCounter({ clock: parts.clock, bucketMs: 1_000, buckets: 10 });
    const r = CHANNELS.resilience;
    this.#count(r.retry, `${p}resilience_retries_total`, 'Retries scheduled, by policy name.');
    this.#count(r.retryExhausted, `${p}resilience_retries_exhausted_total`, 'Calls whose last retry failed, by policy name.');
    this.#count(r.retryBudgetExceeded, `${p}resilience_retry_budget_exceeded_total`, 'Retries refused by the retry budget.');
    this.#count(r.timeout, `${p}resilience_timeouts_total`, 'Calls that passed their deadline, by policy name.');
    this.#count(r.breakerRejected, `${p}resilience_breaker_rejections_total`, 'Calls rejected by an open breaker.');
    this.#count(
      r.bulkheadRejected,
      `${p}resilience_bulkhead_rejections_total`,
      'Calls rejected by a bulkhead, by reason.',
      'reason',
      (m) => (m.reason === 'full' || m.reason === 'queue-timeout' ? m.reason : 'other'),
    );
    this.#count(r.rateLimited, `${p}resilience_rate_limit_rejections_total`, 'Calls rejected by a rate limiter.');
    this.#count(r.hedge, `${p}resilience_hedges_total`, 'Hedged attempts started.');
    this.#count(r.fallback, `${p}resilience_fallbacks_total`, 'Degraded results served by a fallback.');
    const state = this.#family(
      new GaugeFamily(
        {
          name: `${p}resilience_breaker_state`,
          help: 'Breaker state: 1 for the current state, 0 for the others.',
          labelNames: ['name', 'state'],
        },
        this.#limit,
      ),
    );
    const transitions = this.#family(
      new CounterFamily(
        { name: `${p}resilience_breaker_transitions_total`, help: 'Breaker state changes, by new state.', labelNames: ['name', 'to'] },
        this.#limit,
      ),
    );
    const stateOf = (v: unknown): BreakerState => (BREAKER_STATES.includes(v as BreakerState) ? (v as BreakerState) : 'closed');
    const record = (name: string, to: BreakerState): void => {
      for (const s of BREAKER_STATES) state.set([name, s], s === to ? 1 : 0);
      const known = this.#breakers.get(name);
      if (known) {
        known.state = to;
        known.since = this.#clock.now();
      } else if (this.#breakers.size < this.#limit.cap) {
        this.#breakers.set(name, { name, state: to, since: this.#clock.now() });
      }
    };
    this.#on(r.breakerState, (m) => {
      const name = nameOf(m);
      const to = stateOf(m.to);
      record(name, to);
      transitions.inc([name, to]);
    });
    // A breaker's birth is not a transition: not counted, and a name already reported keeps
    // its state (a second breaker of that name starting closed must not hide an open one).
    this.#on(r.breakerCreated, (m) => {
      const name = nameOf(m);
      if (!this.#breakers.has(name)) record(name, stateOf(m.state));
    });

    const c = CHANNELS.cache;
    this.#cache = {
      hits: this.#count(c.hit, `${p}cache_hits_total`, 'Cache hits, by cache name and tier.', 'tier', (m) =>
        m.tier === 'l1' || m.tier === 'l2' ? m.tier : 'other',
      ),
      misses: this.#count(c.miss, `${p}cache_misses_total`, 'Cache misses (the loader was needed).'),
      stale: this.#count(c.stale, `${p}cache_stale_total`, 'Stale values served (grace period or fail-safe).'),
      loaderErrors: this.#count(c.loaderError, `${p}cache_loader_errors_total`, 'Loader failures.'),
      l2Errors: this.#count(c.l2Error, `${p}cache_l2_errors_total`, 'L2 (Redis) calls that failed or timed out.'),
    };
    this.#count(c.evict, `${p}cache_evictions_total`, 'Entries evicted, by reason.', 'reason', (m) =>
      typeof m.reason === 'string' && EVICT_REASONS.has(m.reason) ? m.reason : 'other',
    );
    this.#count(c.load, `${p}cache_loads_total`, 'Loader runs, by result.', 'result', (m) => (m.ok === false ? 'error' : 'ok'));
    this.#seconds(c.load, `${p}cache_load_duration_seconds`, 'Loader run time.', LOAD_BUCKETS, 'durationMs');
    this.#seconds(c.busLag, `${p}cache_bus_lag_seconds`, 'Delay of invalidations arriving from other instances.', LAG_BUCKETS, 'lagMs');
    this.#seconds(
      CHANNELS.db.query,
      `${p}db_query_duration_seconds`,
      'Database statement time, by pool or database name.',
      QUERY_BUCKETS,
      'durationMs',
    );
    this.#count(
      CHANNELS.http.shed,
      `${p}http_requests_shed_total`,
      'Requests refused with 503 under pressure, by reason.',
      'reason',
      (m) => (typeof m.reason === 'string' && SHED_REASONS.has(m.reason) ? m.reason : 'other'),
    );
    this.#on(CHANNELS.http.shed, () => this.#shed.add(1));
    const pressure = this.#family(
      new GaugeFamily(
        { name: `${p}http_under_pressure`, help: 'Load shedding: 1 while a shedder is under pressure, else 0.', labelNames: ['name'] },
        this.#limit,
      ),
    );
    this.#on(CHANNELS.http.pressure, (m) => pressure.set([nameOf(m)], m.underPressure === true ? 1 : 0));
    // series() creates the gauge at 0 and leaves one that exists alone.
    this.#on(CHANNELS.http.shedderCreated, (m) => void pressure.series(nameOf(m)));
  }

  #family<F extends CounterFamily | GaugeFamily | HistogramFamily>(family: F): F {
    this.families.push(family);
    return family;
  }

  #on(channelName: string, fn: (m: Message) => void): void {
    const handler: Handler = (message) => {
      if (typeof message === 'object' && message !== null) fn(message as Message);
    };
    this.#subscriptions.push([channelName, handler]);
  }

  #count(channelName: string, metric: string, help: string, label?: string, labelOf?: (m: Message) => string): CounterFamily {
    const labelNames = label ? ['name', label] : ['name'];
    const family = this.#family(new CounterFamily({ name: metric, help, labelNames }, this.#limit));
    if (labelOf) {
      // Two-label series are looked up in nested maps, not by a joined key: a cache hit
      // publishes per request, and the join's allocation was most of its cost
      // (publish included, measured: ≈ 95 ns → ≈ 27 ns).
      // Only admitted series are kept here, so this is bounded by the family's cap.
      const byName = new Map<string, Map<string, CounterSeries>>();
      this.#on(channelName, (m) => {
        const name = nameOf(m);
        const label = labelOf(m);
        let inner = byName.get(name);
        let s = inner?.get(label);
        if (s === undefined) {
          s = family.series(name, label);
          if (s === undefined) return;
          if (inner === undefined) {
            inner = new Map();
            byName.set(name, inner);
          }
          inner.set(label, s);
        }
        s.value++;
      });
    } else {
      this.#on(channelName, (m) => {
        const s = family.series(nameOf(m));
        if (s) s.value++;
      });
    }
    return family;
  }

  #seconds(channelName: string, metric: string, help: string, buckets: number[], field: string): void {
    const family = this.#family(new HistogramFamily({ name: metric, help, labelNames: ['name'] }, this.#limit, buckets));
    this.#on(channelName, (m) => {
      const ms = m[field];
      if (typeof ms === 'number' && Number.isFinite(ms)) family.observe([nameOf(m)], ms / 1000);
    });
  }

  /** Shed requests: ever, and over the last 10 s. */
  shed(): { total: number; last10s: number } {
    return { total: this.#shed.total, last10s: this.#shed.sum(10_000) };
  }

  /** Breakers created or changed state since this subscribed, in first-seen order. */
  breakers(): BreakerStats[] {
    return [...this.#breakers.values()].map((b) => ({ ...b }));
  }

  /** Cache counters per cache name. */
  caches(): CacheStats[] {
    const byName = new Map<string, CacheStats>();
    const statsOf = (name: string): CacheStats => {
      let s = byName.get(name);
      if (!s) {
        s = { name, l1Hits: 0, l2Hits: 0, misses: 0, stale: 0, loaderErrors: 0, l2Errors: 0, hitRatio: 0 };
        byName.set(name, s);
      }
      return s;
    };
    const { hits, misses, stale, loaderErrors, l2Errors } = this.#cache;
    for (const h of hits.all()) {
      const s = statsOf(h.labels.name as string);
      if (h.labels.tier === 'l1') s.l1Hits += h.value;
      else if (h.labels.tier === 'l2') s.l2Hits += h.value;
    }
    for (const m of misses.all()) statsOf(m.labels.name as string).misses += m.value;
    for (const m of stale.all()) statsOf(m.labels.name as string).stale += m.value;
    for (const m of loaderErrors.all()) statsOf(m.labels.name as string).loaderErrors += m.value;
    for (const m of l2Errors.all()) statsOf(m.labels.name as string).l2Errors += m.value;
    for (const s of byName.values()) {
      const lookups = s.l1Hits + s.l2Hits + s.misses;
      s.hitRatio = lookups === 0 ? 0 : (s.l1Hits + s.l2Hits) / lookups;
    }
    return [...byName.values()];
  }

  /** Subscribes to every channel (separate from construction, so a failed registration subscribes nothing). */
  start(): void {
    for (const [name, handler] of this.#subscriptions) subscribe(name, handler);
  }

  /** Unsubscribes from every channel. Idempotent. */
  close(): void {
    for (const [name, handler] of this.#subscriptions.splice(0)) unsubscribe(name, handler);
  }
}
