/**
 * The forum's observability through the real app: the token-protected Prometheus exposition
 * (checked by promtool), the health routes, request and trace ids on responses and log lines,
 * load shedding over a real socket, and error bodies that never leak a stack.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_PASSWORD } from '../../src/db/seed.ts';
import { bearer, createTestApp, register, type TestApp, waitFor } from '../helpers.ts';

const TOKEN = 'metrics-token-for-tests';
// Not what these tests are about: a loop stall on the shared machine must not shed them.
const calm = { maxEventLoopDelayMs: 60_000, maxInFlight: 1_000_000, maxHeapUsedRatio: 1 };

/** Runs `promtool check metrics` on `body`; resolves to its exit code and output. */
async function promtool(body: string): Promise<{ code: number | null; output: string }> {
  const child = spawn('/usr/bin/promtool', ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  const exited = once(child, 'close');
  child.stdin.end(body);
  const [code] = (await exited) as [number | null];
  return { code, output };
}

/** One request on a new connection (no keep-alive agent left holding sockets). */
function httpCall(
  port: number,
  path: string,
  payload?: unknown,
): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const data = payload === undefined ? undefined : JSON.stringify(payload);
    const headers: Record<string, string> = { connection: 'close' };
    if (data !== undefined) headers['content-type'] = 'application/json';
    const req = httpRequest({ host: '127.0.0.1', port, path, method: data ? 'POST' : 'GET', agent: false, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end(data);
  });
}

const STACK = /\bat [\w.<>]+ \(|\.ts:\d+|node:internal|\n\s+at /;

describe('/metrics', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp({ metricsToken: TOKEN, shedding: calm });
  });
  afterAll(() => t.close());

  it('is 401 without the token and with a wrong one', async () => {
    const none = await t.app.inject({ url: '/metrics' });
    expect(none.statusCode).toBe(401);
    expect(none.headers['www-authenticate']).toBe('Bearer');
    expect(none.body).not.toContain('keel_http');
    expect((await t.app.inject({ url: '/metrics', headers: bearer(`${TOKEN}x`) })).statusCode).toBe(401);
  });

  it('labels requests by route template, never by raw ids, and passes promtool check metrics', async () => {
    for (const url of ['/api/v1/topics/1', '/api/v1/topics/2', '/api/v1/topics/999999', '/api/v1/forums/3/topics', '/no/such/route/42'])
      await t.app.inject({ url });
    const res = await t.app.inject({ url: '/metrics', headers: bearer(TOKEN) });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(res.body).toMatch(/^keel_http_requests_total\{method="GET",route="\/api\/v1\/topics\/:id",status_class="2xx"\} 2$/m);
    expect(res.body).toMatch(/^keel_http_requests_total\{method="GET",route="\/api\/v1\/topics\/:id",status_class="4xx"\} 1$/m);
    expect(res.body).toMatch(/route="\/api\/v1\/forums\/:id\/topics"/);
    const routes = [...res.body.matchAll(/route="([^"]*)"/g)].map((m) => m[1] as string);
    expect(routes.length).toBeGreaterThan(0);
    for (const route of routes) {
      expect(route, 'a raw id in a route label').not.toMatch(/\/\d+(\/|$)/);
      expect(route).not.toContain('?');
    }
    const check = await promtool(res.body);
    expect(check.code, check.output).toBe(0);
  });
});

describe('health routes', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp({ shedding: calm });
  });
  afterAll(() => t.close());

  it('/health reports each check with status and latency, and is never cached', async () => {
    const res = await t.app.inject({ url: '/health' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['cache-control']).toBe('no-store');
    const body = res.json() as { status: string; checks: Record<string, { status: string; latency_ms: number }> };
    expect(body.status).toBe('healthy');
    expect(body.checks.sqlite).toMatchObject({ status: 'up', kind: 'critical' });
    expect(typeof body.checks.sqlite?.latency_ms).toBe('number');
    expect(Object.keys(body.checks)).toEqual(['sqlite', 'sqlite-storage']);
  });

  it('/health/live and /health/ready answer 200 {"status":"ok"}', async () => {
    for (const url of ['/health/live', '/health/ready']) {
      const res = await t.app.inject({ url });
      expect(res.statusCode, url).toBe(200);
      expect(res.json(), url).toEqual({ status: 'ok' });
    }
  });

  it('a failing optional check is degraded with 200; a failing critical one is 503 on /health and /health/ready, never on /health/live', async () => {
    t.app.keel.health!.register(
      'extra-optional',
      () => {
        throw new Error('optional dependency down');
      },
      { kind: 'optional' },
    );
    const degraded = await t.app.inject({ url: '/health' });
    expect(degraded.statusCode).toBe(200);
    expect((degraded.json() as { status: string }).status).toBe('degraded');
    expect((await t.app.inject({ url: '/health/ready' })).statusCode).toBe(200);

    t.app.keel.health!.register('extra-critical', () => {
      throw new Error('critical dependency down');
    });
    const down = await t.app.inject({ url: '/health' });
    expect(down.statusCode).toBe(503);
    const body = down.json() as { status: string; checks: Record<string, { status: string }> };
    expect(body.status).toBe('unhealthy');
    expect(body.checks.sqlite?.status).toBe('up');
    expect(down.body).not.toMatch(STACK);
    expect((await t.app.inject({ url: '/health/ready' })).statusCode).toBe(503);
    expect((await t.app.inject({ url: '/health/live' })).statusCode).toBe(200);
  });
});

describe('request and trace ids', () => {
  let t: TestApp;
  const lines: Array<Record<string, unknown>> = [];
  beforeAll(async () => {
    t = await createTestApp(
      { shedding: calm, logLevel: 'info' },
      { logger: true, logStream: { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) } },
    );
    // A route of the test's own, registered on the real app, so a request logs on the forum's logger.
    t.app.get('/test/log', async (request) => {
      request.log.info('inside the request');
      await new Promise((r) => setImmediate(r));
      request.log.info('after an await');
      return { ok: true };
    });
  });
  afterAll(() => t.close());

  it('echoes an incoming x-request-id and generates one when absent', async () => {
    const echoed = await t.app.inject({ url: '/api/v1/forums', headers: { 'x-request-id': 'req-abc-123' } });
    expect(echoed.headers['x-request-id']).toBe('req-abc-123');
    const a = await t.app.inject({ url: '/api/v1/forums' });
    const b = await t.app.inject({ url: '/api/v1/forums' });
    expect(a.headers['x-request-id']).toMatch(/^[0-9a-f]{16,32}$/);
    expect(b.headers['x-request-id']).not.toBe(a.headers['x-request-id']);
  });

  it('keeps a valid incoming traceparent’s trace id on every log line of that request', async () => {
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    lines.length = 0;
    const res = await t.app.inject({
      url: '/test/log',
      headers: { traceparent: `00-${traceId}-00f067aa0ba902b7-01`, 'x-request-id': 'trace-me' },
    });
    expect(res.statusCode).toBe(200);
    const mine = lines.filter((l) => l.msg === 'inside the request' || l.msg === 'after an await');
    expect(mine).toHaveLength(2);
    for (const line of mine) {
      expect(line).toMatchObject({ trace_id: traceId, request_id: 'trace-me' });
      // A span of its own inside the caller's trace.
      expect(line.span_id).toMatch(/^[0-9a-f]{16}$/);
      expect(line.span_id).not.toBe('00f067aa0ba902b7');
    }
  });

  it('starts a new trace for an all-zero traceparent', async () => {
    lines.length = 0;
    await t.app.inject({ url: '/test/log', headers: { traceparent: `00-${'0'.repeat(32)}-00f067aa0ba902b7-01` } });
    const line = lines.find((l) => l.msg === 'inside the request');
    expect(line?.trace_id).toMatch(/^[0-9a-f]{32}$/);
    expect(line?.trace_id).not.toBe('0'.repeat(32));
  });

  it('logs an unexpected failure with its stack and trace id, and answers it with no detail', async () => {
    const traceId = 'aaaabbbbccccddddeeeeffff00001111';
    const { token } = await register(t.app, 'observer');
    // A real failure inside a real route: the table a statement reads has gone.
    t.app.services.repos!.db.exec('ALTER TABLE forums RENAME TO forums_gone');
    try {
      lines.length = 0;
      const res = await t.app.inject({ url: '/api/v1/forums?limit=3', headers: { traceparent: `00-${traceId}-00f067aa0ba902b7-01` } });
      expect(res.statusCode).toBe(500);
      expect(res.json()).toEqual({ error: 'internal', message: 'internal error' });
      expect(res.body).not.toMatch(STACK);
      const logged = lines.find((l) => l.msg === 'unhandled error');
      expect(logged).toMatchObject({ trace_id: traceId, level: 50 });
      expect(JSON.stringify(logged)).toMatch(/forums/);
      expect((logged?.err as { stack?: string } | undefined)?.stack).toMatch(/\n\s+at /);
    } finally {
      t.app.services.repos!.db.exec('ALTER TABLE forums_gone RENAME TO forums');
    }
    // Other failures keep to the error shape too.
    const answers = [
      await t.app.inject({ url: '/no/such/route' }),
      await t.app.inject({
        method: 'POST',
        url: '/api/v1/topics/1/posts',
        headers: { ...bearer(token), 'content-type': 'application/json' },
        payload: '{bad',
      }),
      await t.app.inject({ method: 'POST', url: '/api/v1/topics/1/posts', headers: bearer(token), payload: { body: 'x'.repeat(70_000) } }),
      await t.app.inject({ url: '/api/v1/topics/not-a-number' }),
      await t.app.inject({ url: '/api/v1/auth/me' }),
    ];
    expect(answers.map((r) => r.statusCode)).toEqual([404, 400, 413, 400, 401]);
    for (const r of answers) {
      expect(r.body).not.toMatch(STACK);
      expect(Object.keys(r.json() as object)).toContain('error');
    }
  });
});

describe('load shedding', () => {
  const many = (n: number, call: () => ReturnType<typeof httpCall>) => Promise.all(Array.from({ length: n }, call));

  it('past maxInFlight, concurrent requests over a socket get a fast 503 with Retry-After; health is never shed', async () => {
    // Logins are the slow route: each waits for scrypt on the libuv pool, so they overlap.
    const t = await createTestApp({ shedding: { ...calm, maxInFlight: 4 }, loginIpLimit: 100_000 });
    try {
      const address = await t.app.listen({ port: 0, host: '127.0.0.1' });
      const port = Number(new URL(address).port);
      const login = () => httpCall(port, '/api/v1/auth/login', { username: 'user1', password: DEMO_PASSWORD });
      const [logins, live, ready, report] = await Promise.all([
        many(32, login),
        // Sent while the logins are in flight.
        new Promise<void>((r) => setTimeout(r, 5)).then(() => many(16, () => httpCall(port, '/health/live'))),
        new Promise<void>((r) => setTimeout(r, 5)).then(() => many(16, () => httpCall(port, '/health/ready'))),
        new Promise<void>((r) => setTimeout(r, 5)).then(() => many(16, () => httpCall(port, '/health'))),
      ]);
      const shed = logins.filter((r) => r.status === 503);
      expect(shed.length).toBeGreaterThan(0);
      expect(logins.filter((r) => r.status === 200).length).toBeGreaterThan(0);
      expect(logins.every((r) => r.status === 200 || r.status === 503)).toBe(true);
      for (const r of shed) {
        expect(r.headers['retry-after']).toBe('1');
        expect(JSON.parse(r.body)).toMatchObject({ code: 'KEEL_OVERLOADED' });
      }
      for (const r of [...live, ...ready, ...report]) expect(r.status).toBe(200);
      expect(t.app.keel.shedder?.shedCount).toBe(shed.length);
      if (process.env.OBSERVE_TEST_REPORT) console.log(JSON.stringify({ shed: shed.length, served: 32 - shed.length }));
    } finally {
      await t.close();
    }
  });

  it('sheds while the event loop is stalled and stops once it recovers, logging both; /health/live is still answered', async () => {
    const lines: Array<Record<string, unknown>> = [];
    const t = await createTestApp(
      { shedding: { ...calm, maxEventLoopDelayMs: 50 }, logLevel: 'info' },
      { logger: true, logStream: { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) } },
    );
    try {
      expect((await t.app.inject({ url: '/api/v1/forums' })).statusCode).toBe(200);
      const shedder = t.app.keel.shedder!;
      // Block the loop well past the threshold, as a CPU-bound handler would.
      await waitFor(
        () => {
          const until = Date.now() + 150;
          while (Date.now() < until) {}
          return shedder.isUnderPressure();
        },
        5_000,
        'shedding to start',
      );
      const shed = await t.app.inject({ url: '/api/v1/forums' });
      expect(shed.statusCode).toBe(503);
      expect(shed.headers['retry-after']).toBe('1');
      expect((await t.app.inject({ url: '/health/live' })).statusCode).toBe(200);
      expect((await t.app.inject({ url: '/health/ready' })).statusCode).toBe(200);
      await waitFor(() => !shedder.isUnderPressure(), 10_000, 'shedding to stop');
      expect((await t.app.inject({ url: '/api/v1/forums' })).statusCode).toBe(200);
      const logged = lines.filter((l) => String(l.msg).startsWith('load shedding'));
      expect(logged[0]).toMatchObject({ level: 40, msg: 'load shedding started', reason: 'event-loop-delay' });
      expect((logged[0]?.sample as { delayMs: number } | undefined)?.delayMs).toBeGreaterThan(50);
      expect(logged.at(-1)).toMatchObject({ level: 30, msg: 'load shedding ended', reason: 'event-loop-delay' });
      expect(logged.at(-1)?.shed).toBeGreaterThanOrEqual(1);
    } finally {
      await t.close();
    }
  });
});
