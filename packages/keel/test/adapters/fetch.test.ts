import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { type Context, Hono } from 'hono';
import { routePath } from 'hono/route';
import { afterEach, describe, expect, it } from 'vitest';
import { keelFetchMiddleware, pathOfUrl, withKeel } from '../../src/adapters/fetch.ts';
import { Health, LoadShedder, Metrics, type PressureSample, Tracing } from '../../src/observe/index.ts';
import { FakeClock } from '../../src/testing/index.ts';

const TP = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

function metricsFor(): Metrics {
  const m = new Metrics({ processMetrics: false });
  closers.push(() => m.close());
  return m;
}

describe('pathOfUrl', () => {
  it.each([
    ['http://h/a/b?x=1', '/a/b'],
    ['https://h:8080', '/'],
    ['http://h/a#frag', '/a'],
    ['/rel?q', '/rel'],
  ])('%s → %s', (url, path) => {
    expect(pathOfUrl(url)).toBe(path);
  });
});

describe('withKeel (Next.js-style route handlers)', () => {
  it('runs the handler in the caller trace, passes extra arguments and echoes the request id', async () => {
    const tracing = new Tracing();
    const metrics = metricsFor();
    const GET = withKeel(
      async (_req: Request, ctx: { params: { id: string } }) => Response.json({ id: ctx.params.id, trace: tracing.current()?.traceId }),
      { tracing, metrics, route: '/api/topics/[id]' },
    );
    const res = await GET(new Request('http://localhost/api/topics/3', { headers: { traceparent: TP, 'x-request-id': 'n-1' } }), {
      params: { id: '3' },
    });
    expect(await res.json()).toEqual({ id: '3', trace: '4bf92f3577b34da6a3ce929d0e0e4736' });
    expect(res.headers.get('x-request-id')).toBe('n-1');
    expect((await metrics.scrape()).body).toMatch(/route="\/api\/topics\/\[id\]",status_class="2xx"\} 1/);
  });

  it('copies a Response whose headers are immutable before adding the request id', async () => {
    const handler = withKeel(() => Response.redirect('http://localhost/elsewhere', 302));
    const res = await handler(new Request('http://localhost/old'));
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).toBe('http://localhost/elsewhere');
    expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f]{16}$/);
  });

  it('records a thrown handler as a 5xx and rethrows', async () => {
    const metrics = metricsFor();
    const handler = withKeel(
      () => {
        throw new Error('boom');
      },
      { metrics, route: '/boom' },
    );
    await expect(handler(new Request('http://localhost/boom'))).rejects.toThrow('boom');
    expect((await metrics.scrape()).body).toMatch(/route="\/boom",status_class="5xx"\} 1/);
    expect(metrics.http.inFlight).toBe(0);
  });

  it('sheds before the handler runs', async () => {
    const clock = new FakeClock();
    const sample: PressureSample = { delayMs: 1_000, utilization: 0, heapUsedRatio: 0 };
    const shedder = new LoadShedder({ clock, sample: () => sample, intervalMs: 10, retryAfterSeconds: 3 });
    closers.push(() => shedder.close());
    let ran = false;
    const handler = withKeel(
      () => {
        ran = true;
        return new Response('ok');
      },
      { shedder },
    );
    clock.advance(20); // two intervals over in a row
    const res = await handler(new Request('http://localhost/x'));
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('3');
    expect(ran).toBe(false);
  });
});

async function serveHono(app: Hono): Promise<string> {
  const server = await new Promise<Server>((resolve) => {
    const s = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(s as Server));
  });
  closers.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('keelFetchMiddleware with Hono on @hono/node-server', () => {
  it('serves a lone request at maxInFlight 1 (the cap counts the requests already in flight)', async () => {
    const metrics = metricsFor();
    const shedder = new LoadShedder({ clock: new FakeClock(), inFlight: () => metrics.http.inFlight, maxInFlight: 1 });
    closers.push(() => shedder.close());
    const app = new Hono();
    app.use(keelFetchMiddleware<Context>({ metrics, shedder }));
    app.get('/x', (c) => c.text('ok'));
    const base = await serveHono(app);
    const res = await fetch(`${base}/x`, { headers: { connection: 'close' } });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('ok');
    expect(shedder.shedCount).toBe(0);
  });

  it('with the health routes at the root, spares only /live, /ready and / from shedding', async () => {
    const clock = new FakeClock();
    const shedder = new LoadShedder({ clock, sample: () => ({ delayMs: 1_000, utilization: 0, heapUsedRatio: 0 }), intervalMs: 10 });
    closers.push(() => shedder.close());
    const health = new Health();
    const app = new Hono();
    app.use(keelFetchMiddleware<Context>({ shedder, health, healthRoutes: { prefix: '/' } }));
    app.get('/api/topics', (c) => c.text('topics'));
    const base = await serveHono(app);
    clock.advance(20); // two intervals over in a row
    const headers = { connection: 'close' };
    const statusOf = async (path: string): Promise<number> => {
      const res = await fetch(`${base}${path}`, { headers });
      await res.arrayBuffer();
      return res.status;
    };
    expect(await statusOf('/api/topics')).toBe(503);
    expect(await statusOf('/live')).toBe(200);
    expect(await statusOf('/ready')).toBe(200);
    expect(await statusOf('/')).toBe(200);
  });

  it('traces, records the Hono route template, and serves health and metrics over a real socket', async () => {
    const tracing = new Tracing();
    const metrics = metricsFor();
    const health = new Health();
    health.register('db', () => undefined);
    const app = new Hono();
    app.use(keelFetchMiddleware<Context>({ tracing, metrics, health, metricsRoute: { token: 'h' }, route: (c) => routePath(c, -1) }));
    app.get('/posts/:id', async (c) => {
      await new Promise<void>((resolve) => setImmediate(resolve));
      return c.json({ id: c.req.param('id'), trace: tracing.current()?.traceId });
    });
    const server = await new Promise<Server>((resolve) => {
      const s = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(s as Server));
    });
    closers.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const headers = { connection: 'close' };

    const res = await fetch(`${base}/posts/5`, { headers: { ...headers, traceparent: TP, 'x-request-id': 'hono-1' } });
    expect(await res.json()).toEqual({ id: '5', trace: '4bf92f3577b34da6a3ce929d0e0e4736' });
    expect(res.headers.get('x-request-id')).toBe('hono-1');

    const ready = await fetch(`${base}/health/ready`, { headers });
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ok' });

    expect((await fetch(`${base}/metrics`, { headers })).status).toBe(401);
    const scrape = await fetch(`${base}/metrics`, { headers: { ...headers, authorization: 'Bearer h' } });
    expect(scrape.status).toBe(200);
    expect(await scrape.text()).toMatch(/route="\/posts\/:id",status_class="2xx"\} 1/);
  });
});
