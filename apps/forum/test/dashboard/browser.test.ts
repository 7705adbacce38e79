/**
 * The dashboard in real headless Chromium against a real forum under real load: the charts
 * fill, the figures are live, and stopping Redis turns on the degraded banner.
 */

import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import keelFastify from 'keel/adapters/fastify';
import { TieredCache } from 'keel/cache';
import { runLoad } from 'keel/load';
import { Health, Metrics } from 'keel/observe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { launchBrowser, outputPath } from '../../../../test-support/browser.ts';
import { type RedisServer, startRedis } from '../../../../test-support/redis.ts';
import { dashboardRoutes } from '../../src/dashboard/routes.ts';
import type { DashboardSnapshot } from '../../src/dashboard/sources.ts';
import { createTestApp } from '../helpers.ts';

const TOKEN = 'browser-test-token-0123456789';

/** What the page exposes for tests (public/dashboard.js). */
declare global {
  interface Window {
    __dashboard?: {
      events: number;
      points: number;
      last: DashboardSnapshot | null;
      plotted(): Record<string, number>;
      lengths(): Record<string, number>;
    };
  }
}

let redis: RedisServer;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis.close();
});

/** PING over a fresh TCP connection; rejects if Redis does not answer. */
function pingRedis(port: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1' });
    const fail = (err: Error) => {
      socket.destroy();
      reject(err);
    };
    signal.addEventListener('abort', () => fail(new Error('timed out')), { once: true });
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (data) => {
      socket.destroy();
      if (data.toString().startsWith('+PONG')) resolve();
      else reject(new Error(`unexpected reply ${JSON.stringify(data.toString())}`));
    });
    socket.once('error', fail);
  });
}

/** Reads of the forum's API plus a cached read, weighted like a browsing user. */
const MIX = {
  requests: [
    { path: '/api/v1/forums', weight: 3 },
    { path: '/api/v1/forums/{{1..4}}/topics', weight: 4 },
    { path: '/api/v1/topics/{{1..50}}', weight: 2 },
    { path: '/api/v1/search?q=lorem', weight: 1 },
    { path: '/test/cached/topics/{{1..200}}', weight: 3 },
  ],
};

describe('the dashboard in headless Chromium', () => {
  it('charts real traffic while load runs and shows the degraded banner when Redis goes down', async () => {
    const forum = await createTestApp({ previews: { enabled: false } });
    // The real observe parts, as the forum wires them: RED metrics from the Fastify adapter, and a
    // health registry where Redis is optional (down means degraded, not unhealthy).
    const metrics = new Metrics();
    const health = new Health({ ttlMs: 100, timeoutMs: 300 });
    const db = forum.app.services.repos.db;
    health.register('sqlite', () => {
      db.prepare('SELECT 1').get();
    });
    health.register('redis', (signal) => pingRedis(redis.port, signal), { kind: 'optional' });
    // A real tiered cache on the real Redis: L1 trusts entries for 300 ms, so reads also reach L2;
    // its events reach the dashboard through the keel:cache:* channels the Metrics subscribes to.
    const cache = new TieredCache({
      name: 'topics',
      ttlMs: 60_000,
      graceMs: 60_000,
      l1: { ttlMs: 300 },
      l2: { redis: redis.url, timeoutMs: 100 },
    });
    const repos = forum.app.services.repos;
    forum.app.get<{ Params: { id: string } }>('/test/cached/topics/:id', async (request) => {
      const id = Number(request.params.id);
      return cache.getOrSet(`topic:${id}`, () => repos.topics.byId(id) ?? null);
    });
    await forum.app.register(keelFastify, { metrics, health, healthRoutes: false });
    await forum.app.register(
      dashboardRoutes({
        token: TOKEN,
        intervalMs: 250,
        sources: {
          metrics: () => metrics.snapshot(),
          health: () => health.report(),
          slowSql: () => forum.app.services.repos.statements.stats.top(),
          live: () => forum.app.services.live.stats(),
        },
      }),
    );
    await forum.app.listen({ port: 0, host: '127.0.0.1' });
    const base = `http://127.0.0.1:${(forum.app.server.address() as AddressInfo).port}`;
    const sockets: WebSocket[] = [];
    const browser = await launchBrowser();
    try {
      // A few live-update clients, so the live panel has real connections and subscriptions.
      for (let i = 1; i <= 3; i++) {
        const ws = new WebSocket(`${base.replace('http', 'ws')}/api/v1/live`);
        sockets.push(ws);
        await once(ws, 'open');
        ws.send(JSON.stringify({ type: 'subscribe', topicId: i }));
      }
      const page = await browser.newPage({ viewport: { width: 1280, height: 800 }, deviceScaleFactor: 1 });
      const problems: string[] = [];
      page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
      page.on('console', (msg) => {
        if (msg.type() === 'error' || msg.type() === 'warning') problems.push(`${msg.type()}: ${msg.text()}`);
      });
      // The token is traded for a cookie and leaves the URL.
      await page.goto(`${base}/dashboard?token=${TOKEN}`);
      expect(new URL(page.url()).search).toBe('');
      await page.waitForFunction(() => (window.__dashboard?.events ?? 0) >= 1);

      const load = runLoad({ url: base, connections: 4, durationMs: 3_000, scenario: MIX });
      // Figures arrive while the load runs, not only after it.
      await page.waitForFunction(() => (window.__dashboard?.last?.metrics?.windows['10s'].rps ?? 0) > 10, undefined, { timeout: 5_000 });
      const result = await load;
      expect(result.completed).toBeGreaterThan(100);
      const before = await page.evaluate(() => window.__dashboard!.points);
      await page.waitForFunction((n) => window.__dashboard!.points >= n + 3, before);

      const state = await page.evaluate(() => {
        const d = window.__dashboard!;
        return {
          plotted: d.plotted(),
          lengths: d.lengths(),
          rps: document.getElementById('kpi-rps')?.textContent ?? '',
          live: document.getElementById('kpi-live')?.textContent ?? '',
          routes: document.querySelectorAll('#table-routes tbody tr').length,
          sql: document.querySelectorAll('#table-sql tbody tr').length,
          plan: document.querySelector('#table-sql tbody pre')?.textContent ?? '',
          health: document.getElementById('health-pill')?.textContent,
          bannerHidden: (document.getElementById('banner') as HTMLElement).hidden,
        };
      });
      for (const chart of ['rps', 'latency', 'errors', 'loop', 'memory', 'live']) expect(state.plotted[chart]).toBeGreaterThanOrEqual(4);
      expect(Number.parseFloat(state.rps)).toBeGreaterThan(0);
      expect(state.live).toBe('3');
      expect(state.routes).toBeGreaterThanOrEqual(3);
      expect(state.sql).toBeGreaterThanOrEqual(3);
      expect(state.plan).toMatch(/SEARCH|SCAN/);
      expect(state.health).toBe('healthy');
      expect(state.bannerHidden).toBe(true);
      // Open the slowest statement's plan for the screenshot.
      await page
        .locator('#table-sql tbody details')
        .first()
        .evaluate((d) => {
          (d as HTMLDetailsElement).open = true;
        });
      await page.screenshot({ path: outputPath('dashboard.png'), fullPage: true });

      await redis.stop();
      const banner = page.locator('#banner');
      await banner.waitFor({ state: 'visible', timeout: 5_000 });
      expect(await banner.textContent()).toMatch(/degraded.*redis down/is);
      expect(await page.locator('#health-pill').textContent()).toBe('degraded');
      // Traffic through the outage: the cache falls back to L1 and loader, and the page shows the L2 errors.
      const during = await runLoad({ url: base, connections: 4, durationMs: 1_500, scenario: MIX });
      expect(during.statusCodes['200']).toBeGreaterThan(0);
      await page.waitForFunction(() => (window.__dashboard?.last?.metrics?.cache[0]?.l2Errors ?? 0) > 0, undefined, { timeout: 5_000 });
      // The cache's L2 breaker opened, and the table says so in words as well as colour.
      await page.locator('#table-breakers tbody', { hasText: 'open' }).waitFor({ timeout: 5_000 });
      await page.screenshot({ path: outputPath('dashboard-degraded.png'), fullPage: true });
      expect(problems).toEqual([]);
    } finally {
      await browser.close();
      for (const ws of sockets) ws.terminate();
      await forum.close();
      await cache.close();
      await health.close();
      await metrics.close();
    }
  }, 30_000);
});
