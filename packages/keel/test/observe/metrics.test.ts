import { spawnSync } from 'node:child_process';
import { channel, hasSubscribers } from 'node:diagnostics_channel';
import { setImmediate as tick } from 'node:timers/promises';
import { register as defaultRegistry, Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { CHANNELS } from '../../src/channels.ts';
import { EventLoopMonitor } from '../../src/observe/event-loop.ts';
import { Metrics, type MetricsOptions } from '../../src/observe/metrics.ts';
import { FakeClock } from '../../src/testing/fake-clock.ts';

const open: Array<{ close(): Promise<void> }> = [];
function metrics(options: MetricsOptions = {}): { m: Metrics; clock: FakeClock } {
  const clock = new FakeClock();
  const m = new Metrics({ clock, ...options });
  open.push(m);
  return { m, clock };
}
afterEach(async () => {
  await Promise.all(open.splice(0).map((m) => m.close()));
});

function sample(body: string, line: string): number | undefined {
  const found = body.split('\n').find((l) => l.startsWith(`${line} `));
  return found === undefined ? undefined : Number(found.slice(line.length + 1));
}

describe('Metrics', () => {
  it('returns the same scrape within scrapeCacheMs and a fresh one after', async () => {
    const { m, clock } = metrics({ scrapeCacheMs: 1_000, processMetrics: false });
    const first = await m.scrape();
    m.http.end(m.http.start(), 'GET', '/', 200);
    clock.advance(999);
    expect(await m.scrape()).toBe(first);
    clock.advance(1);
    const fresh = await m.scrape();
    expect(fresh.body).not.toBe(first.body);
    expect(fresh.body).toContain('keel_http_requests_total{method="GET",route="/",status_class="2xx"} 1');
  });

  it('renders once for concurrent scrapes', async () => {
    const { m } = metrics({ scrapeCacheMs: 0, processMetrics: false });
    const [a, b] = await Promise.all([m.scrape(), m.scrape()]);
    expect(a).toBe(b);
    expect(await m.scrape()).not.toBe(a);
  });

  it('exports its own scrape duration', async () => {
    const { m } = metrics({ scrapeCacheMs: 0 });
    await m.scrape();
    const { body } = await m.scrape();
    expect(sample(body, 'keel_metrics_scrape_duration_seconds')).toBeGreaterThan(0);
  });

  it('serves the Prometheus text content type', async () => {
    const { m } = metrics({ processMetrics: false });
    expect((await m.scrape()).contentType).toBe('text/plain; version=0.0.4; charset=utf-8');
  });

  it('uses a registry of its own and never the prom-client default registry', async () => {
    const before = (await defaultRegistry.getMetricsAsJSON()).length;
    const { m } = metrics();
    const { m: other } = metrics();
    expect(m.registry).not.toBe(defaultRegistry);
    expect(m.registry).not.toBe(other.registry);
    expect((await defaultRegistry.getMetricsAsJSON()).length).toBe(before);
  });

  it('applies the prefix to every metric name', async () => {
    const { m } = metrics({ prefix: 'forum_', scrapeCacheMs: 0 });
    const names = [...(await m.scrape()).body.matchAll(/^# TYPE (\S+)/gm)].map((x) => x[1] as string);
    expect(names.length).toBeGreaterThan(20);
    expect(names.filter((n) => !n.startsWith('forum_'))).toEqual([]);
  });

  it('registers in a given registry and unregisters on close, so a new Metrics can take its place', async () => {
    const registry = new Registry();
    const clock = new FakeClock();
    const a = new Metrics({ registry, clock, processMetrics: false });
    expect(registry.getSingleMetric('keel_http_requests_total')).toBeDefined();
    expect(() => new Metrics({ registry, clock, processMetrics: false })).toThrow(/already been registered/);
    await a.close();
    expect(registry.getMetricsAsArray()).toEqual([]);
    const b = new Metrics({ registry, clock, processMetrics: false });
    await b.close();
  });

  it('always includes 0.127 in custom HTTP buckets', async () => {
    const { m } = metrics({ httpBuckets: [0.1, 1], processMetrics: false });
    m.http.end(m.http.start(), 'GET', '/', 200);
    const { body } = await m.scrape();
    const edges = [...body.matchAll(/^keel_http_request_duration_seconds_bucket\{.*le="([^"]+)"\}/gm)].map((x) => x[1]);
    expect(edges).toEqual(['0.1', '0.127', '1', '+Inf']);
  });

  it('takes a snapshot with every section the dashboard reads', () => {
    const { m, clock } = metrics();
    m.http.end(m.http.start(), 'GET', '/api/v1/forums', 200);
    const s = m.snapshot();
    expect(s.at).toBe(clock.now());
    expect(Object.keys(s.windows)).toEqual(['10s', '1m', '5m']);
    expect(s.windows['10s']).toEqual({
      count: 1,
      rps: 1,
      errorRate: 0,
      p50Ms: expect.any(Number),
      p95Ms: expect.any(Number),
      p99Ms: expect.any(Number),
    });
    expect(Object.keys(s.process).sort()).toEqual(
      [
        'activeHandles',
        'eventLoopDelayP50Ms',
        'eventLoopDelayP99Ms',
        'eventLoopUtilization',
        'gcPauseMs10s',
        'heapTotalBytes',
        'heapUsedBytes',
        'inFlight',
        'rssBytes',
      ].sort(),
    );
    expect(s.shed).toEqual({ total: 0, last10s: 0 });
    expect(s.cache).toEqual([]);
    expect(s.breakers).toEqual([]);
    expect(s.routes).toEqual([{ method: 'GET', route: '/api/v1/forums', count: 1, p50Ms: expect.any(Number), p99Ms: expect.any(Number) }]);
    expect(JSON.parse(JSON.stringify(s))).toEqual(s);
  });

  it('leaves no timer, subscription or registered metric after close', async () => {
    const clock = new FakeClock();
    const m = new Metrics({ clock });
    expect(clock.pending).toBe(1); // the event-loop window
    await m.close();
    expect(clock.pending).toBe(0);
    expect(hasSubscribers(CHANNELS.resilience.retry)).toBe(false);
    expect(m.registry.getMetricsAsArray()).toEqual([]);
    expect(m.eventLoop.closed).toBe(true);
    await m.close();
  });

  it('shares a given EventLoopMonitor without closing it', async () => {
    const clock = new FakeClock();
    const loop = new EventLoopMonitor({ clock });
    open.push(loop);
    const m = new Metrics({ clock, eventLoop: loop, processMetrics: false });
    expect(m.eventLoop).toBe(loop);
    await m.close();
    expect(loop.closed).toBe(false);
  });

  it.each([
    [{ prefix: '1bad' }, 'prefix'],
    [{ prefix: 'has space_' }, 'prefix'],
    [{ seriesCap: 0 }, 'seriesCap'],
    [{ seriesCap: 1.5 }, 'seriesCap'],
    [{ scrapeCacheMs: -1 }, 'scrapeCacheMs'],
    [{ processMetrics: 'yes' }, 'processMetrics'],
    [{ channels: 1 }, 'channels'],
    [{ httpBuckets: [] }, 'httpBuckets'],
    [{ httpBuckets: [1, 0.5] }, 'httpBuckets'],
    [{ httpBuckets: [0, 1] }, 'httpBuckets'],
    [{ routeStatsLimit: -1 }, 'routeStatsLimit'],
    [{ registry: {} }, 'registry'],
    [{ eventLoop: 5 }, 'eventLoop'],
    [{ eventLoop: { windowMs: 1 } }, 'windowMs'],
    [{ clock: Date }, 'clock'],
  ])('rejects %o with a TypeError naming %s', (options, name) => {
    expect(() => new Metrics(options as never)).toThrow(TypeError);
    expect(() => new Metrics(options as never)).toThrow(name);
    expect(hasSubscribers(CHANNELS.resilience.retry)).toBe(false);
  });

  it('passes promtool check metrics with every metric family populated', async () => {
    const { m } = metrics({ seriesCap: 4, scrapeCacheMs: 0 });
    m.http.start();
    m.http.end(m.http.start(), 'GET', '/api/v1/topics/:id', 200);
    m.http.end(m.http.start(), 'POST', '<unmatched>', 503);
    for (let i = 0; i < 6; i++) m.http.end(m.http.start(), 'GET', `/r/${i}`, 200); // over the cap: dropped
    const messages: Array<[string, object]> = [
      [CHANNELS.resilience.retry, { name: 'a', attempt: 1, delayMs: 1, error: 1 }],
      [CHANNELS.resilience.retryExhausted, { name: 'a', attempts: 2, error: 1 }],
      [CHANNELS.resilience.retryBudgetExceeded, { name: 'a', error: 1 }],
      [CHANNELS.resilience.timeout, { name: 'a', timeoutMs: 1 }],
      [CHANNELS.resilience.breakerState, { name: 'a', from: 'closed', to: 'half-open' }],
      [CHANNELS.resilience.breakerRejected, { name: 'a' }],
      [CHANNELS.resilience.bulkheadRejected, { name: 'a', reason: 'queue-timeout' }],
      [CHANNELS.resilience.rateLimited, { name: 'a' }],
      [CHANNELS.resilience.hedge, { name: 'a', attempt: 2 }],
      [CHANNELS.resilience.fallback, { name: 'a', error: 1 }],
      [CHANNELS.cache.hit, { name: 'c "quoted"\\', tier: 'l1' }],
      [CHANNELS.cache.miss, { name: 'c' }],
      [CHANNELS.cache.stale, { name: 'c' }],
      [CHANNELS.cache.load, { name: 'c', durationMs: 130, ok: true }],
      [CHANNELS.cache.loaderError, { name: 'c', error: 1 }],
      [CHANNELS.cache.evict, { name: 'c', reason: 'expire' }],
      [CHANNELS.cache.l2Error, { name: 'c', error: 1 }],
      [CHANNELS.cache.busLag, { name: 'c', lagMs: 4 }],
      [CHANNELS.db.query, { name: 'main', sql: 'SELECT 1', durationMs: 0.3 }],
      [CHANNELS.http.shed, { name: 'http', reason: 'event-loop-delay' }],
      [CHANNELS.http.pressure, { name: 'http', underPressure: true, reason: 'event-loop-delay', shed: 0 }],
    ];
    for (const [name, message] of messages) channel(name).publish(message);
    // A GC pause, so the GC histogram has a series.
    for (let round = 0; round < 200 && (m.snapshot().process.gcPauseMs10s ?? 0) === 0; round++) {
      let keep: unknown[] = [];
      for (let i = 0; i < 20_000; i++) keep.push({ i });
      keep = [];
      await tick();
    }
    await m.scrape();
    const { body } = await m.scrape();

    const families = [...body.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((x) => x[1] as string);
    expect(families.length).toBeGreaterThanOrEqual(35);
    const empty = families.filter((f) => !new RegExp(`^${f}(_bucket|_sum|_count)?[{ ]`, 'm').test(body));
    expect(empty).toEqual([]);

    const result = spawnSync('/usr/bin/promtool', ['check', 'metrics'], { input: body, encoding: 'utf8' });
    expect(`${result.stdout}${result.stderr}`).toBe('');
    expect(result.status).toBe(0);
  });

  it('is caught by promtool when the exposition is wrong (the check can fail)', () => {
    const result = spawnSync('/usr/bin/promtool', ['check', 'metrics'], {
      input: '# HELP x_ms x\n# TYPE x_ms counter\nx_ms 1\n',
      encoding: 'utf8',
    });
    expect(result.status).not.toBe(0);
  });
});
