import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyInstance } from 'fastify';
import { FakeClock, flushMicrotasks } from 'keel/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { type DashboardOptions, dashboardRoutes } from '../../src/dashboard/routes.ts';
import type { DashboardSnapshot, DashboardSources } from '../../src/dashboard/sources.ts';
import { waitFor } from '../helpers.ts';
import { metricsSnapshot, openStream, TOKEN } from './fixtures.ts';

let app: FastifyInstance | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

const bearer = { authorization: `Bearer ${TOKEN}` };

async function start(options: Partial<DashboardOptions> = {}, listen = false): Promise<FastifyInstance> {
  app = Fastify();
  const sources: DashboardSources = { metrics: () => metricsSnapshot() };
  await app.register(dashboardRoutes({ token: TOKEN, sources, ...options }));
  if (listen) await app.listen({ port: 0, host: '127.0.0.1' });
  else await app.ready();
  return app;
}

const portOf = (a: FastifyInstance) => (a.server.address() as AddressInfo).port;

describe('dashboardRoutes options', () => {
  it('rejects bad options, naming the option', () => {
    const sources = { metrics: () => metricsSnapshot() };
    expect(() => dashboardRoutes({ token: 'short', sources })).toThrow(/"token"/);
    expect(() => dashboardRoutes({ token: TOKEN, sources: {} as DashboardSources })).toThrow(/"sources"/);
    expect(() => dashboardRoutes({ token: TOKEN, sources: { ...sources, health: 1 as never } })).toThrow(/"sources.health"/);
    expect(() => dashboardRoutes({ token: TOKEN, sources, intervalMs: 0 })).toThrow(/"intervalMs"/);
    expect(() => dashboardRoutes({ token: TOKEN, sources, maxStreams: 1.5 })).toThrow(/"maxStreams"/);
    for (const errorRateSlo of [0, 1.5, Number.NaN, '0.01' as never])
      expect(() => dashboardRoutes({ token: TOKEN, sources, errorRateSlo })).toThrow(/"errorRateSlo"/);
  });
});

describe('logUrl', () => {
  it('logs the page URL with its token once the server listens', async () => {
    const lines: string[] = [];
    app = Fastify({ logger: { level: 'info', stream: { write: (line: string) => lines.push(line) } } });
    await app.register(dashboardRoutes({ token: TOKEN, sources: { metrics: () => metricsSnapshot() }, logUrl: true }));
    await app.listen({ port: 0, host: '127.0.0.1' });
    const urls = lines.map((l) => (JSON.parse(l) as { msg: string }).msg).filter((m) => m.startsWith('dashboard: '));
    expect(urls).toEqual([`dashboard: http://127.0.0.1:${portOf(app)}/dashboard?token=${TOKEN}`]);
  });
});

describe('token protection', () => {
  it('answers 401 JSON on the page, data and stream without a token', async () => {
    const a = await start();
    for (const url of ['/dashboard', '/dashboard/data', '/dashboard/stream']) {
      const res = await a.inject({ url });
      expect(res.statusCode).toBe(401);
      expect(res.headers['www-authenticate']).toMatch(/^Bearer/);
      expect(res.json()).toMatchObject({ error: 'unauthorized' });
    }
  });

  it('answers 401 to a wrong bearer token and a wrong ?token=', async () => {
    const a = await start();
    expect((await a.inject({ url: '/dashboard/data', headers: { authorization: `Bearer ${TOKEN}x` } })).statusCode).toBe(401);
    const res = await a.inject({ url: '/dashboard?token=nope' });
    expect(res.statusCode).toBe(401);
    expect(res.headers['set-cookie']).toBeUndefined();
  });

  it('trades ?token= for an HttpOnly SameSite=Strict cookie and a redirect that drops the token', async () => {
    const a = await start();
    const res = await a.inject({ url: `/dashboard?token=${TOKEN}` });
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toBe('/dashboard');
    const cookie = String(res.headers['set-cookie']);
    expect(cookie).toMatch(/^keel_dashboard=[\w-]+; Path=\/dashboard; Max-Age=28800; HttpOnly; SameSite=Strict$/);
    // The cookie carries a derivative, never the token itself.
    expect(cookie).not.toContain(TOKEN);
    const jar = cookie.split(';')[0]!;
    for (const url of ['/dashboard', '/dashboard/data']) {
      expect((await a.inject({ url, headers: { cookie: `other=1; ${jar}` } })).statusCode).toBe(200);
    }
  });

  it('marks the cookie Secure over HTTPS', async () => {
    const a = await start();
    const res = await a.inject({ url: `/dashboard?token=${TOKEN}`, headers: { 'x-forwarded-proto': 'https' } });
    // Without trustProxy the request is plain HTTP: no Secure flag to a client that could not send it back.
    expect(String(res.headers['set-cookie'])).not.toMatch(/Secure/);
  });

  it('rejects a forged cookie', async () => {
    const a = await start();
    const res = await a.inject({ url: '/dashboard/data', headers: { cookie: `keel_dashboard=${TOKEN}` } });
    expect(res.statusCode).toBe(401);
  });
});

describe('GET /dashboard', () => {
  it('serves the page under a Content-Security-Policy with no inline script or style', async () => {
    const a = await start();
    const res = await a.inject({ url: '/dashboard', headers: bearer });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    const csp = String(res.headers['content-security-policy']);
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(res.headers['x-frame-options']).toBe('DENY');
    expect(res.headers['referrer-policy']).toBe('no-referrer');
    const html = res.body;
    expect(html.match(/<script\b[^>]*>/g)?.every((tag) => / src="\/dashboard\/assets\/[\w.-]+\?v=[0-9a-f]{12}"/.test(tag))).toBe(true);
    expect(html).not.toMatch(/<style\b|\sstyle="|\son\w+="/);
    expect(html).not.toContain('{{');
  });
});

describe('GET /dashboard/data', () => {
  it('answers one snapshot with every source', async () => {
    const a = await start({
      sloMs: 100,
      sources: {
        metrics: () => metricsSnapshot(7),
        health: async () => ({
          status: 'degraded',
          checks: { redis: { status: 'down', latency_ms: 3, detail: new Error('ECONNREFUSED') } },
        }),
        slowSql: () => [{ name: 'a', sql: 'SELECT 1', count: 1, totalMs: 1, p50Ms: 1, p99Ms: 1, maxMs: 1, plan: ['SCAN t'] }],
        live: () => ({ connections: 3, rooms: 2, subscriptions: 4 }),
      },
    });
    const res = await a.inject({ url: '/dashboard/data', headers: bearer });
    expect(res.statusCode).toBe(200);
    expect(res.headers['cache-control']).toBe('no-store');
    const body = res.json() as DashboardSnapshot;
    expect(body).toMatchObject({
      intervalMs: 1000,
      sloMs: 100,
      viewers: 0,
      metrics: { windows: { '10s': { rps: 7 } } },
      health: { status: 'degraded', checks: { redis: { status: 'down', latency_ms: 3, detail: 'Error: ECONNREFUSED' } } },
      slowSql: [{ name: 'a', plan: ['SCAN t'] }],
      live: { connections: 3, rooms: 2, subscriptions: 4 },
      errors: [],
    });
    expect(typeof body.at).toBe('number');
  });

  it('carries the error-rate objective, 1 % unless configured', async () => {
    const byDefault = (await (await start()).inject({ url: '/dashboard/data', headers: bearer })).json() as DashboardSnapshot;
    expect(byDefault.errorRateSlo).toBe(0.01);
    await app?.close();
    const configured = (await (await start({ errorRateSlo: 0.001 })).inject({ url: '/dashboard/data', headers: bearer })).json();
    expect((configured as DashboardSnapshot).errorRateSlo).toBe(0.001);
  });

  it('reports a failing source instead of failing the snapshot', async () => {
    const a = await start({
      sources: {
        metrics: () => {
          throw new Error('metrics exploded');
        },
        live: () => ({ connections: 1, rooms: 0, subscriptions: 0 }),
      },
    });
    const body = (await a.inject({ url: '/dashboard/data', headers: bearer })).json() as DashboardSnapshot;
    expect(body.metrics).toBeNull();
    expect(body.live).toEqual({ connections: 1, rooms: 0, subscriptions: 0 });
    expect(body.health).toBeNull();
    expect(body.errors).toEqual([{ source: 'metrics', message: 'metrics exploded' }]);
  });

  it('answers within healthTimeoutMs when the health source hangs', async () => {
    const clock = new FakeClock();
    const a = await start({
      clock,
      healthTimeoutMs: 500,
      sources: { metrics: () => metricsSnapshot(), health: () => new Promise(() => {}) },
    });
    const pending = a.inject({ url: '/dashboard/data', headers: bearer });
    await waitFor(() => clock.pending > 0, 2_000, 'the health timeout');
    clock.advance(500);
    const body = (await pending).json() as DashboardSnapshot;
    expect(body.health).toBeNull();
    expect(body.metrics).not.toBeNull();
  });
});

describe('GET /dashboard/stream', () => {
  it('sends a snapshot at once and one per interval', async () => {
    const clock = new FakeClock();
    const a = await start({ clock, intervalMs: 1000 }, true);
    const s = await openStream(portOf(a), '/dashboard/stream', bearer);
    try {
      expect(s.status).toBe(200);
      expect(s.headers['content-type']).toMatch(/^text\/event-stream/);
      const first = (await s.event(1)) as DashboardSnapshot;
      expect(first.metrics?.windows['10s'].rps).toBe(42);
      expect(first.viewers).toBe(1);
      clock.advance(1000);
      await s.event(2);
      clock.advance(1000);
      await s.event(3);
      expect(s.events).toHaveLength(3);
    } finally {
      s.close();
    }
  });

  it('accepts the dashboard cookie, as EventSource sends it', async () => {
    const a = await start({}, true);
    const login = await a.inject({ url: `/dashboard?token=${TOKEN}` });
    const cookie = String(login.headers['set-cookie']).split(';')[0]!;
    const s = await openStream(portOf(a), '/dashboard/stream', { cookie });
    try {
      expect(s.status).toBe(200);
      await s.event(1);
    } finally {
      s.close();
    }
  });

  it('stops its timer when the last client disconnects', async () => {
    const clock = new FakeClock();
    const a = await start({ clock }, true);
    const s = await openStream(portOf(a), '/dashboard/stream', bearer);
    await s.event(1);
    expect(clock.pending).toBe(1);
    s.close();
    await waitFor(async () => ((await a.inject({ url: '/dashboard/data', headers: bearer })).json() as DashboardSnapshot).viewers === 0);
    expect(clock.pending).toBe(0);
  });

  it('ends every open stream when the app closes', async () => {
    const clock = new FakeClock();
    const a = await start({ clock }, true);
    const streams = await Promise.all([1, 2].map(() => openStream(portOf(a), '/dashboard/stream', bearer)));
    await Promise.all(streams.map((s) => s.event(1)));
    await a.close();
    app = undefined;
    await Promise.all(streams.map((s) => s.ended));
    expect(clock.pending).toBe(0);
  });

  it('refuses streams beyond maxStreams with 503', async () => {
    const a = await start({ maxStreams: 1 }, true);
    const s = await openStream(portOf(a), '/dashboard/stream', bearer);
    try {
      await s.event(1);
      const res = await a.inject({ url: '/dashboard/stream', headers: bearer });
      expect(res.statusCode).toBe(503);
      expect(res.headers['retry-after']).toBe('5');
    } finally {
      s.close();
    }
  });

  it('starts no timer before a stream opens, nor for a HEAD request', async () => {
    const clock = new FakeClock();
    const a = await start({ clock });
    await flushMicrotasks();
    expect(clock.pending).toBe(0);
    expect((await a.inject({ method: 'HEAD', url: '/dashboard/stream', headers: bearer })).statusCode).toBe(404);
    expect(clock.pending).toBe(0);
  });
});
