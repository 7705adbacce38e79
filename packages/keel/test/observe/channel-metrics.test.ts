import { channel, hasSubscribers } from 'node:diagnostics_channel';
import { afterEach, describe, expect, it } from 'vitest';
import { CHANNELS } from '../../src/channels.ts';
import { Metrics, type MetricsOptions } from '../../src/observe/metrics.ts';
import { LoadShedder } from '../../src/observe/pressure.ts';
import { ConsecutiveBreaker } from '../../src/resilience/breakers/consecutive.ts';
import { circuitBreaker } from '../../src/resilience/circuit-breaker.ts';
import { FakeClock } from '../../src/testing/fake-clock.ts';

const open: Metrics[] = [];
function metrics(options: MetricsOptions = {}): { m: Metrics; clock: FakeClock } {
  const clock = new FakeClock();
  const m = new Metrics({ processMetrics: false, scrapeCacheMs: 0, clock, ...options });
  open.push(m);
  return { m, clock };
}
afterEach(async () => {
  await Promise.all(open.splice(0).map((m) => m.close()));
});

function publish(name: string, message: object): void {
  channel(name).publish(message);
}

function sample(body: string, line: string): number | undefined {
  const found = body.split('\n').find((l) => l.startsWith(`${line} `));
  return found === undefined ? undefined : Number(found.slice(line.length + 1));
}

const r = CHANNELS.resilience;
const c = CHANNELS.cache;

describe('ChannelMetrics', () => {
  it.each([
    [r.retry, { name: 'users', attempt: 1, delayMs: 10, error: 1 }, 'keel_resilience_retries_total{name="users"}'],
    [r.retryExhausted, { name: 'users', attempts: 3, error: 1 }, 'keel_resilience_retries_exhausted_total{name="users"}'],
    [r.retryBudgetExceeded, { name: 'users', error: 1 }, 'keel_resilience_retry_budget_exceeded_total{name="users"}'],
    [r.timeout, { name: 'users', timeoutMs: 50 }, 'keel_resilience_timeouts_total{name="users"}'],
    [r.breakerRejected, { name: 'users' }, 'keel_resilience_breaker_rejections_total{name="users"}'],
    [r.bulkheadRejected, { name: 'users', reason: 'full' }, 'keel_resilience_bulkhead_rejections_total{name="users",reason="full"}'],
    [r.rateLimited, { name: 'users' }, 'keel_resilience_rate_limit_rejections_total{name="users"}'],
    [r.hedge, { name: 'users', attempt: 2 }, 'keel_resilience_hedges_total{name="users"}'],
    [r.fallback, { name: 'users', error: 1 }, 'keel_resilience_fallbacks_total{name="users"}'],
    [c.hit, { name: 'topics', tier: 'l2' }, 'keel_cache_hits_total{name="topics",tier="l2"}'],
    [c.miss, { name: 'topics' }, 'keel_cache_misses_total{name="topics"}'],
    [c.stale, { name: 'topics' }, 'keel_cache_stale_total{name="topics"}'],
    [c.load, { name: 'topics', durationMs: 20, ok: false }, 'keel_cache_loads_total{name="topics",result="error"}'],
    [c.loaderError, { name: 'topics', error: 1 }, 'keel_cache_loader_errors_total{name="topics"}'],
    [c.evict, { name: 'topics', reason: 'capacity' }, 'keel_cache_evictions_total{name="topics",reason="capacity"}'],
    [c.l2Error, { name: 'topics', error: 1 }, 'keel_cache_l2_errors_total{name="topics"}'],
    [c.busLag, { name: 'topics', lagMs: 3 }, 'keel_cache_bus_lag_seconds_count{name="topics"}'],
    [CHANNELS.db.query, { name: 'main', sql: 'SELECT 1', durationMs: 2 }, 'keel_db_query_duration_seconds_count{name="main"}'],
    [CHANNELS.http.shed, { name: 'http', reason: 'heap' }, 'keel_http_requests_shed_total{name="http",reason="heap"}'],
  ])('turns a %s message into a metric', async (channelName, message, line) => {
    const { m } = metrics();
    publish(channelName, message);
    publish(channelName, message);
    expect(sample((await m.scrape()).body, line)).toBe(2);
  });

  it('records durations in seconds', async () => {
    const { m } = metrics();
    publish(CHANNELS.db.query, { name: 'main', sql: 'SELECT * FROM posts', durationMs: 250 });
    const { body } = await m.scrape();
    expect(sample(body, 'keel_db_query_duration_seconds_sum{name="main"}')).toBe(0.25);
    expect(sample(body, 'keel_db_query_duration_seconds_bucket{name="main",le="0.1"}')).toBe(0);
    expect(body).not.toContain('SELECT');
  });

  it('maps unknown enum values to "other" and a missing name to "unknown"', async () => {
    const { m } = metrics();
    publish(c.hit, { name: 'topics', tier: `l${Math.random()}` });
    publish(r.bulkheadRejected, { reason: 'because' });
    const { body } = await m.scrape();
    expect(sample(body, 'keel_cache_hits_total{name="topics",tier="other"}')).toBe(1);
    expect(sample(body, 'keel_resilience_bulkhead_rejections_total{name="unknown",reason="other"}')).toBe(1);
  });

  it('ignores messages that are not objects', async () => {
    const { m } = metrics();
    publish(r.retry, 'oops' as never);
    expect((await m.scrape()).body).not.toMatch(/^keel_resilience_retries_total\{/m);
  });

  it('exports a real breaker opening as its state gauge and in the snapshot', async () => {
    const { m, clock } = metrics();
    const b = circuitBreaker({ name: 'search', strategy: new ConsecutiveBreaker(1), clock });
    await b.execute(async () => Promise.reject(Object.assign(new Error('x'), { status: 500 }))).catch(() => {});
    const { body } = await m.scrape();
    expect(sample(body, 'keel_resilience_breaker_state{name="search",state="open"}')).toBe(1);
    expect(sample(body, 'keel_resilience_breaker_state{name="search",state="closed"}')).toBe(0);
    expect(sample(body, 'keel_resilience_breaker_transitions_total{name="search",to="open"}')).toBe(1);
    expect(m.snapshot().breakers).toEqual([{ name: 'search', state: 'open', since: clock.now() }]);
  });

  it('exports a breaker that never changed state as closed, from its creation', async () => {
    const { m, clock } = metrics();
    circuitBreaker({ name: 'previews', clock });
    const { body } = await m.scrape();
    expect(sample(body, 'keel_resilience_breaker_state{name="previews",state="closed"}')).toBe(1);
    expect(sample(body, 'keel_resilience_breaker_state{name="previews",state="open"}')).toBe(0);
    expect(body).not.toMatch(/^keel_resilience_breaker_transitions_total\{name="previews"/m);
    expect(m.snapshot().breakers).toEqual([{ name: 'previews', state: 'closed', since: clock.now() }]);
  });

  it('keeps the reported state of a breaker name when another breaker of that name is created', async () => {
    const { m, clock } = metrics();
    const first = circuitBreaker({ name: 'search', strategy: new ConsecutiveBreaker(1), clock });
    await first.execute(async () => Promise.reject(Object.assign(new Error('x'), { status: 500 }))).catch(() => {});
    circuitBreaker({ name: 'search', clock });
    expect(sample((await m.scrape()).body, 'keel_resilience_breaker_state{name="search",state="open"}')).toBe(1);
  });

  it('summarises caches per name with a hit ratio', () => {
    const { m } = metrics();
    publish(c.hit, { name: 'topics', tier: 'l1' });
    publish(c.hit, { name: 'topics', tier: 'l1' });
    publish(c.hit, { name: 'topics', tier: 'l2' });
    publish(c.miss, { name: 'topics' });
    publish(c.stale, { name: 'topics' });
    publish(c.loaderError, { name: 'topics', error: 1 });
    publish(c.l2Error, { name: 'topics', error: 1 });
    expect(m.snapshot().cache).toEqual([
      { name: 'topics', l1Hits: 2, l2Hits: 1, misses: 1, stale: 1, loaderErrors: 1, l2Errors: 1, hitRatio: 0.75 },
    ]);
  });

  it('shows a shedder under pressure as 1 until it ends', async () => {
    const { m } = metrics();
    const under = 'keel_http_under_pressure{name="http"}';
    publish(CHANNELS.http.pressure, { name: 'http', underPressure: true, reason: 'event-loop-delay', shed: 0 });
    expect(sample((await m.scrape()).body, under)).toBe(1);
    publish(CHANNELS.http.pressure, { name: 'http', underPressure: false, reason: 'event-loop-delay', shed: 12 });
    expect(sample((await m.scrape()).body, under)).toBe(0);
  });

  it('exports a shedder as not under pressure from its creation', async () => {
    const { m, clock } = metrics();
    const shedder = new LoadShedder({ name: 'api', clock, sample: () => ({ delayMs: 0, utilization: 0, heapUsedRatio: 0 }) });
    try {
      expect(sample((await m.scrape()).body, 'keel_http_under_pressure{name="api"}')).toBe(0);
    } finally {
      await shedder.close();
    }
  });

  it('counts shed requests in total and over the last 10 s', () => {
    const { m, clock } = metrics();
    publish(CHANNELS.http.shed, { name: 'http', reason: 'in-flight' });
    clock.advance(11_000);
    publish(CHANNELS.http.shed, { name: 'http', reason: 'in-flight' });
    expect(m.snapshot().shed).toEqual({ total: 2, last10s: 1 });
  });

  it('keeps counting a series it holds after registry.resetMetrics()', async () => {
    const { m } = metrics();
    publish(c.hit, { name: 'topics', tier: 'l1' });
    m.registry.resetMetrics();
    publish(c.hit, { name: 'topics', tier: 'l1' });
    expect(sample((await m.scrape()).body, 'keel_cache_hits_total{name="topics",tier="l1"}')).toBe(1);
  });

  it('caps series from message names', async () => {
    const { m } = metrics({ seriesCap: 2 });
    for (let i = 0; i < 5; i++) publish(r.retry, { name: `retry-${i}`, attempt: 1, delayMs: 1, error: 1 });
    const { body } = await m.scrape();
    expect(body.match(/^keel_resilience_retries_total\{/gm)?.length).toBe(2);
    expect(sample(body, 'keel_metrics_series_dropped_total{metric="keel_resilience_retries_total"}')).toBe(3);
  });

  it('unsubscribes from every channel on close', async () => {
    const { m } = metrics();
    const names = [
      ...Object.values(CHANNELS.resilience),
      ...Object.values(CHANNELS.cache),
      CHANNELS.db.query,
      CHANNELS.http.shed,
      CHANNELS.http.pressure,
      CHANNELS.http.shedderCreated,
    ];
    expect(names.every((n) => hasSubscribers(n))).toBe(true);
    await m.close();
    expect(names.filter((n) => hasSubscribers(n))).toEqual([]);
  });

  it('subscribes to nothing when channels is off', () => {
    metrics({ channels: false });
    expect(hasSubscribers(CHANNELS.resilience.retry)).toBe(false);
  });
});
