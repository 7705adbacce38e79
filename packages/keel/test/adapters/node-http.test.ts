import { createServer, type RequestListener, type Server } from 'node:http';
import { type AddressInfo, connect as connectSocket } from 'node:net';
import connect from 'connect';
import express from 'express';
import { afterEach, describe, expect, it } from 'vitest';
import { keelHandler, keelMiddleware, traceOf } from '../../src/adapters/node-http.ts';
import { Health, LoadShedder, Metrics, type PressureSample, Tracing } from '../../src/observe/index.ts';
import { FakeClock } from '../../src/testing/index.ts';

const TP = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

async function serve(handler: RequestListener): Promise<string> {
  const server: Server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string; headers: Headers }> {
  const res = await fetch(url, { headers: { connection: 'close', ...headers } });
  return { status: res.status, body: await res.text(), headers: res.headers };
}

describe('keelMiddleware with Express 5', () => {
  it('gives route handlers the caller trace and records the Express route template', async () => {
    const tracing = new Tracing();
    const metrics = new Metrics({ processMetrics: false });
    closers.push(() => metrics.close());
    const app = express();
    app.use(keelMiddleware({ tracing, metrics }));
    const router = express.Router();
    router.get('/:id', async (_req, res) => {
      await new Promise<void>((resolve) => setImmediate(resolve));
      res.json({ trace: tracing.current()?.traceId, requestId: tracing.current()?.requestId });
    });
    app.use('/topics', router);
    const base = await serve(app);
    const res = await get(`${base}/topics/9`, { traceparent: TP, 'x-request-id': 'ex-1' });
    expect(JSON.parse(res.body)).toEqual({ trace: '4bf92f3577b34da6a3ce929d0e0e4736', requestId: 'ex-1' });
    expect(res.headers.get('x-request-id')).toBe('ex-1');
    await get(`${base}/missing`);
    const { body } = await metrics.scrape();
    expect(body).toMatch(/route="\/topics\/:id",status_class="2xx"\} 1/);
    expect(body).toMatch(/route="<unmatched>",status_class="4xx"\} 1/);
    expect(metrics.http.inFlight).toBe(0);
  });

  it('serves health routes and a token-guarded /metrics', async () => {
    const metrics = new Metrics({ processMetrics: false });
    closers.push(() => metrics.close());
    const health = new Health();
    health.register('cache', () => Promise.reject(new Error('down')), { kind: 'optional' });
    const app = express();
    app.use(keelMiddleware({ metrics, health, metricsRoute: { token: 't0k' } }));
    const base = await serve(app);
    expect((await get(`${base}/health/live`)).status).toBe(200);
    expect((await get(`${base}/health/ready`)).status).toBe(200);
    const report = await get(`${base}/health`);
    expect(report.status).toBe(200);
    expect(JSON.parse(report.body)).toMatchObject({ status: 'degraded' });
    expect((await get(`${base}/metrics`)).status).toBe(401);
    const ok = await get(`${base}/metrics`, { authorization: 'Bearer t0k' });
    expect(ok.status).toBe(200);
    expect(ok.body).toContain('keel_http_request_duration_seconds_bucket');
  });
});

describe('keelMiddleware and hang-ups', () => {
  it('counts a request whose client hung up as 499, so in-flight returns to zero', async () => {
    const metrics = new Metrics({ processMetrics: false });
    closers.push(() => metrics.close());
    let arrived!: () => void;
    const started = new Promise<void>((resolve) => (arrived = resolve));
    const app = express();
    app.use(keelMiddleware({ metrics }));
    app.get('/slow', (_req, res) => {
      arrived();
      setTimeout(() => res.end('late'), 100);
    });
    const base = await serve(app);
    const socket = connectSocket(Number(new URL(base).port), '127.0.0.1');
    socket.write('GET /slow HTTP/1.1\r\nhost: x\r\n\r\n');
    await started;
    expect(metrics.http.inFlight).toBe(1);
    socket.destroy();
    const until = Date.now() + 5_000;
    while (metrics.http.inFlight !== 0 && Date.now() < until) await new Promise<void>((resolve) => setTimeout(resolve, 10));
    expect(metrics.http.inFlight).toBe(0);
    expect((await metrics.scrape()).body).toMatch(/route="\/slow",status_class="4xx"\} 1/);
    await new Promise<void>((resolve) => setTimeout(resolve, 120));
  });
});

describe('keelMiddleware with Connect', () => {
  it('traces and sheds with Retry-After, sparing exempt paths', async () => {
    const clock = new FakeClock();
    let sample: PressureSample = { delayMs: 500, utilization: 0.1, heapUsedRatio: 0.1 };
    const shedder = new LoadShedder({ clock, sample: () => sample, intervalMs: 10, coolDownMs: 0 });
    closers.push(() => shedder.close());
    const tracing = new Tracing();
    const app = connect();
    app.use(keelMiddleware({ tracing, shedder, exempt: ['/internal/*'] }));
    app.use((req, res) => {
      res.end(`${traceOf(req)?.traceId === tracing.current()?.traceId}`);
    });
    const base = await serve(app);
    clock.advance(20); // two intervals over in a row
    const shed = await get(`${base}/x`);
    expect(shed.status).toBe(503);
    expect(shed.headers.get('retry-after')).toBe('1');
    expect((await get(`${base}/internal/jobs`)).body).toBe('true');
    sample = { delayMs: 1, utilization: 0.1, heapUsedRatio: 0.1 };
    clock.advance(10);
    expect(await get(`${base}/x`)).toMatchObject({ status: 200, body: 'true' });
  });
});

describe('keelHandler with plain node:http', () => {
  it('serves a lone request at maxInFlight 1 (the cap counts the requests already in flight)', async () => {
    const metrics = new Metrics({ processMetrics: false });
    const shedder = new LoadShedder({ clock: new FakeClock(), inFlight: () => metrics.http.inFlight, maxInFlight: 1 });
    closers.push(
      () => metrics.close(),
      () => shedder.close(),
    );
    const base = await serve(keelHandler({ metrics, shedder }, (_req, res) => res.end('ok')));
    expect(await get(`${base}/x`)).toMatchObject({ status: 200, body: 'ok' });
    expect(shedder.shedCount).toBe(0);
  });

  it('wraps a handler and uses the route function for metrics', async () => {
    const metrics = new Metrics({ processMetrics: false });
    closers.push(() => metrics.close());
    const tracing = new Tracing();
    const base = await serve(
      keelHandler({ tracing, metrics, route: (req) => (req.url?.startsWith('/users/') ? '/users/:id' : undefined) }, (_req, res) => {
        res.end(tracing.current()?.requestId);
      }),
    );
    expect((await get(`${base}/users/1`, { 'x-request-id': 'plain' })).body).toBe('plain');
    const { body } = await metrics.scrape();
    expect(body).toMatch(/route="\/users\/:id",status_class="2xx"\} 1/);
  });
});

describe('keelMiddleware options', () => {
  it('names healthRoutes when it is neither a boolean nor { prefix }', () => {
    expect(() => keelMiddleware({ healthRoutes: 'yes' as never, health: new Health() })).toThrow(/option "healthRoutes"/);
  });
});
