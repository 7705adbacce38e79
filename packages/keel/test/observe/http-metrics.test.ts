import { performance } from 'node:perf_hooks';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Metrics, type MetricsOptions } from '../../src/observe/metrics.ts';
import { FakeClock } from '../../src/testing/fake-clock.ts';

const open: Metrics[] = [];
function metrics(options: MetricsOptions = {}): { m: Metrics; clock: FakeClock } {
  const clock = new FakeClock();
  const m = new Metrics({ processMetrics: false, channels: false, scrapeCacheMs: 0, clock, ...options });
  open.push(m);
  return { m, clock };
}
// Durations come from performance.now(): frozen here, so a request marked `ago(120)` took 120 ms
// exactly. On the real clock, a CI machine's 7 ms pause pushed one past the 0.127 s edge.
const NOW = 1_000_000;
beforeEach(() => {
  vi.spyOn(performance, 'now').mockReturnValue(NOW);
});
afterEach(async () => {
  vi.restoreAllMocks();
  await Promise.all(open.splice(0).map((m) => m.close()));
});

/** A start mark `ms` before the frozen now, so `end()` records a request that took exactly that long. */
function ago(ms: number): number {
  return NOW - ms;
}

function sample(body: string, line: string): number | undefined {
  const found = body.split('\n').find((l) => l.startsWith(`${line} `));
  return found === undefined ? undefined : Number(found.slice(line.length + 1));
}

describe('HttpMetrics', () => {
  it('has a latency bucket edge at 0.127 s', async () => {
    const { m } = metrics();
    m.http.end(ago(120), 'GET', '/slo', 200);
    m.http.end(ago(140), 'GET', '/slo', 200);
    const { body } = await m.scrape();
    const labels = 'method="GET",route="/slo",status_class="2xx"';
    expect(sample(body, `keel_http_request_duration_seconds_bucket{${labels},le="0.127"}`)).toBe(1);
    expect(sample(body, `keel_http_request_duration_seconds_bucket{${labels},le="+Inf"}`)).toBe(2);
  });

  it('labels requests by route template, method and status class', async () => {
    const { m } = metrics();
    m.http.end(m.http.start(), 'GET', '/api/v1/topics/:id', 200);
    m.http.end(m.http.start(), 'GET', '/api/v1/topics/:id', 204);
    m.http.end(m.http.start(), 'GET', '/api/v1/topics/:id', 404);
    const { body } = await m.scrape();
    expect(sample(body, 'keel_http_requests_total{method="GET",route="/api/v1/topics/:id",status_class="2xx"}')).toBe(2);
    expect(sample(body, 'keel_http_requests_total{method="GET",route="/api/v1/topics/:id",status_class="4xx"}')).toBe(1);
    expect(body).not.toContain('status_class="200"');
  });

  it('folds non-standard methods into OTHER and impossible status codes into unknown', async () => {
    const { m } = metrics();
    m.http.end(m.http.start(), 'BREW', '<unmatched>', 418);
    m.http.end(m.http.start(), 'GET', '<unmatched>', 0);
    const { body } = await m.scrape();
    expect(sample(body, 'keel_http_requests_total{method="OTHER",route="<unmatched>",status_class="4xx"}')).toBe(1);
    expect(sample(body, 'keel_http_requests_total{method="GET",route="<unmatched>",status_class="unknown"}')).toBe(1);
  });

  it('records the duration in seconds', async () => {
    const { m } = metrics();
    m.http.end(ago(300), 'POST', '/x', 201);
    const { body } = await m.scrape();
    const sum = sample(body, 'keel_http_request_duration_seconds_sum{method="POST",route="/x",status_class="2xx"}') ?? 0;
    expect(sum).toBeGreaterThanOrEqual(0.3);
    expect(sum).toBeLessThan(30);
  });

  it('counts requests in flight between start and end', async () => {
    const { m } = metrics();
    const a = m.http.start();
    m.http.start();
    expect(m.http.inFlight).toBe(2);
    expect(sample((await m.scrape()).body, 'keel_http_requests_in_flight')).toBe(2);
    m.http.end(a, 'GET', '/', 200);
    expect(m.http.inFlight).toBe(1);
  });

  it('never lets in-flight go below zero when end() is called without start()', () => {
    const { m } = metrics();
    m.http.end(performance.now(), 'GET', '/', 200);
    expect(m.http.inFlight).toBe(0);
  });

  it('drops series beyond the cap, counts them, and keeps its route map bounded', async () => {
    const { m } = metrics({ seriesCap: 3 });
    for (let i = 0; i < 50; i++) m.http.end(m.http.start(), 'GET', `/raw/url/${i}`, 200);
    const { body } = await m.scrape();
    expect(body.match(/^keel_http_requests_total\{/gm)?.length).toBe(3);
    expect(sample(body, 'keel_metrics_series_dropped_total{metric="keel_http_request_duration_seconds"}')).toBe(47);
    expect(m.http.slowestRoutes(100).length).toBe(3);
    // The dropped requests still count in the process-wide rolling window.
    expect(m.http.window(10_000).count).toBe(50);
  });

  it('counts a sample the cap refused as dropped for http_requests_total too', async () => {
    const { m } = metrics({ seriesCap: 3 });
    for (let i = 0; i < 50; i++) m.http.end(m.http.start(), 'GET', `/raw/url/${i}`, 200);
    const { body } = await m.scrape();
    expect(sample(body, 'keel_metrics_series_dropped_total{metric="keel_http_requests_total"}')).toBe(47);
  });

  it('keeps exporting a route seen before registry.resetMetrics(), counting from zero', async () => {
    const { m } = metrics();
    m.http.end(m.http.start(), 'GET', '/a', 200);
    m.registry.resetMetrics();
    expect(sample((await m.scrape()).body, 'keel_http_requests_total{method="GET",route="/a",status_class="2xx"}')).toBe(0);
    m.http.end(m.http.start(), 'GET', '/a', 200);
    m.http.end(m.http.start(), 'GET', '/a', 200);
    expect(sample((await m.scrape()).body, 'keel_http_requests_total{method="GET",route="/a",status_class="2xx"}')).toBe(2);
  });

  it('reports req/s and the 5xx share over the rolling windows', () => {
    const { m, clock } = metrics();
    clock.advance(60_000);
    for (let i = 0; i < 10; i++) m.http.end(m.http.start(), 'GET', '/', i < 3 ? 503 : 200);
    clock.advance(1_000);
    const w = m.http.window(10_000);
    expect(w.count).toBe(10);
    expect(w.errorRate).toBe(0.3);
    clock.advance(10_000);
    expect(m.http.window(10_000).count).toBe(0);
    expect(m.http.window(60_000).count).toBe(10);
  });

  it('lists the slowest routes by p99 over the last minute, per method', () => {
    const { m, clock } = metrics();
    m.http.end(ago(5), 'GET', '/fast', 200);
    m.http.end(ago(400), 'GET', '/slow', 200);
    m.http.end(ago(50), 'POST', '/slow', 201);
    const routes = m.http.slowestRoutes();
    expect(routes.map((r) => `${r.method} ${r.route}`)).toEqual(['GET /slow', 'POST /slow', 'GET /fast']);
    expect(routes[0]?.p99Ms).toBeGreaterThanOrEqual(370);
    expect(routes[0]?.count).toBe(1);
    clock.advance(70_000);
    expect(m.http.slowestRoutes()).toEqual([]);
  });

  it('keeps rolling route stats only for the first routeStatsLimit pairs', () => {
    const { m } = metrics({ routeStatsLimit: 2 });
    for (const route of ['/a', '/b', '/c']) m.http.end(m.http.start(), 'GET', route, 200);
    expect(m.http.slowestRoutes().length).toBe(2);
  });
});
