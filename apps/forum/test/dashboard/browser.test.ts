/**
 * The dashboard in real headless Chromium against a real forum under real load: the charts
 * fill, the figures are live, and stopping Redis turns on the degraded banner.
 */

import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import { runLoad } from 'keel/load';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser, outputPath } from '../../../../test-support/browser.ts';
import { type RedisServer, startRedis } from '../../../../test-support/redis.ts';
import { dashboardRoutes } from '../../src/dashboard/routes.ts';
import type { DashboardSnapshot, HealthSummary } from '../../src/dashboard/sources.ts';
import { createTestApp } from '../helpers.ts';
import { RequestMetrics } from './request-metrics.ts';

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

/** PING over a fresh TCP connection, bounded by `timeoutMs`. */
function pingRedis(port: number, timeoutMs: number): Promise<number> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1' });
    const timer = setTimeout(() => socket.destroy(new Error(`no answer in ${timeoutMs} ms`)), timeoutMs);
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (data) => {
      clearTimeout(timer);
      socket.destroy();
      if (data.toString().startsWith('+PONG')) resolve(performance.now() - started);
      else reject(new Error(`unexpected reply ${JSON.stringify(data.toString())}`));
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    });
  });
}

describe('the dashboard in headless Chromium', () => {
  it('charts real traffic while load runs and shows the degraded banner when Redis goes down', async () => {
    const forum = await createTestApp({ previews: { enabled: false } });
    const metrics = new RequestMetrics(forum.app);
    const db = forum.app.services.repos.db;
    const health = async (): Promise<HealthSummary> => {
      const t0 = performance.now();
      db.prepare('SELECT 1').get();
      const sqlite = { status: 'up', kind: 'critical', latency_ms: performance.now() - t0 };
      const redisCheck = await pingRedis(redis.port, 300).then(
        (ms) => ({ status: 'up', kind: 'optional', latency_ms: ms }),
        (err: Error) => ({ status: 'down', kind: 'optional', latency_ms: 0, detail: err.message }),
      );
      return { status: redisCheck.status === 'up' ? 'healthy' : 'degraded', checks: { sqlite, redis: redisCheck } };
    };
    await forum.app.register(
      dashboardRoutes({
        token: TOKEN,
        intervalMs: 250,
        sources: { metrics: () => metrics.snapshot(), health, slowSql: () => forum.app.services.repos.statements.stats.top() },
      }),
    );
    await forum.app.listen({ port: 0, host: '127.0.0.1' });
    const base = `http://127.0.0.1:${(forum.app.server.address() as AddressInfo).port}`;
    const browser = await launchBrowser();
    try {
      const page = await browser.newPage({ viewport: { width: 1440, height: 900 }, deviceScaleFactor: 1 });
      const problems: string[] = [];
      page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
      page.on('console', (msg) => {
        if (msg.type() === 'error' || msg.type() === 'warning') problems.push(`${msg.type()}: ${msg.text()}`);
      });
      // The token is traded for a cookie and leaves the URL.
      await page.goto(`${base}/dashboard?token=${TOKEN}`);
      expect(new URL(page.url()).search).toBe('');
      await page.waitForFunction(() => (window.__dashboard?.events ?? 0) >= 1);

      const load = runLoad({
        url: `${base}/api/v1/forums`,
        connections: 4,
        durationMs: 3_000,
        scenario: {
          requests: [
            { path: '/api/v1/forums', weight: 3 },
            { path: '/api/v1/forums/{{1..4}}/topics', weight: 4 },
            { path: '/api/v1/topics/{{1..50}}', weight: 2 },
            { path: '/api/v1/search?q=lorem', weight: 1 },
          ],
        },
      });
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
          routes: document.querySelectorAll('#table-routes tbody tr').length,
          sql: document.querySelectorAll('#table-sql tbody tr').length,
          plan: document.querySelector('#table-sql tbody pre')?.textContent ?? '',
          health: document.getElementById('health-pill')?.textContent,
          bannerHidden: (document.getElementById('banner') as HTMLElement).hidden,
        };
      });
      for (const chart of ['rps', 'latency', 'errors', 'loop', 'memory']) expect(state.plotted[chart]).toBeGreaterThanOrEqual(4);
      expect(Number.parseFloat(state.rps)).toBeGreaterThan(0);
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
      await page.screenshot({ path: outputPath('dashboard-degraded.png') });
      expect(problems).toEqual([]);
    } finally {
      await browser.close();
      await forum.close();
      await metrics[Symbol.asyncDispose]();
    }
  }, 30_000);
});
