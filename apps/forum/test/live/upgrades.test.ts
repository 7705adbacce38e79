/**
 * Upgrade requests answered over HTTP instead of becoming WebSockets (src/live/upgrades.ts), and
 * the long-lived connections kept out of keel's in-flight count. The real app on real sockets:
 * what matters is whether the server closes its side and what the shedder counts.
 */
import { get } from 'node:http';
import { connect } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { Metrics } from 'keel/observe';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openStream, TOKEN } from '../dashboard/fixtures.ts';
import { startForum } from '../e2e/process.ts';
import { createTestApp, type TestApp, waitFor } from '../helpers.ts';
import { LiveClient } from './client.ts';

const calm = { maxEventLoopDelayMs: 60_000, maxHeapUsedRatio: 1 };
/** The app's Metrics (the adapter's view of it is narrower): what the shedder counts. */
const metricsOf = (app: FastifyInstance) => app.keel.metrics as Metrics;

interface RawUpgrade {
  /** The status line's code. */
  status: number;
  /** Resolves once the server has closed the connection (the client never closes first). */
  closed: Promise<void>;
}

/** Sends one WebSocket upgrade request on a raw socket and reads the answer. */
function rawUpgrade(port: number, path: string, headers: Record<string, string> = {}): Promise<RawUpgrade> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let text = '';
    let isClosed = false;
    const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`);
    socket.on('connect', () =>
      socket.write(
        `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
          `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n${extra.join('')}\r\n`,
      ),
    );
    socket.on('error', () => {});
    socket.on('close', () => {
      isClosed = true;
    });
    socket.on('data', (chunk) => {
      const first = text === '';
      text += chunk;
      if (!first) return;
      const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
      if (!m) return reject(new Error(`not an HTTP answer: ${text.slice(0, 80)}`));
      resolve({ status: Number(m[1]), closed: waitFor(() => isClosed, 5_000, `the server to close the socket of ${path}`) });
    });
  });
}

/** A GET on a connection of its own, closed after the answer (no keep-alive socket outlives the test). */
function httpGet(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    get(url, { agent: false, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    }).on('error', reject);
  });
}
const status = async (url: string) => (await httpGet(url)).status;

/** A POST whose body never completes: keel counts it in flight from its headers on. */
function heldRequest(port: number): { release(): void } {
  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => {});
  socket.write('POST /api/v1/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{');
  return { release: () => socket.destroy() };
}

describe('upgrade requests answered over HTTP', () => {
  let t: TestApp;
  let port: number;
  const inFlight = () => metricsOf(t.app).http.inFlight;
  beforeAll(async () => {
    t = await createTestApp({ dashboardToken: TOKEN, shedding: { ...calm, maxInFlight: 1 } });
    port = Number(new URL(await t.app.listen({ port: 0, host: '127.0.0.1' })).port);
  });
  afterAll(() => t.close());
  afterEach(() => waitFor(() => inFlight() === 0, 5_000, 'in-flight back to 0'));

  it('closes the socket of an upgrade to any other path once answered, and in-flight returns to baseline', async () => {
    const answers: Record<string, number> = {};
    for (const path of ['/nope', '/api/v1/forums', '/dashboard/data', '/api/v1/li%ZZve']) {
      const res = await rawUpgrade(port, path);
      answers[path] = res.status;
      await res.closed;
      expect(inFlight()).toBe(0);
    }
    // The last one is refused by the router, before any hook runs (frameworkErrors).
    expect(answers).toEqual({ '/nope': 404, '/api/v1/forums': 200, '/dashboard/data': 401, '/api/v1/li%ZZve': 400 });
  });

  it('closes the socket of an upgrade to /api/v1/live refused with 401 (an unknown session)', async () => {
    const res = await rawUpgrade(port, '/api/v1/live', { authorization: `Bearer ${'x'.repeat(32)}` });
    expect(res.status).toBe(401);
    await res.closed;
    expect(inFlight()).toBe(0);
  });

  it('closes the socket of an upgrade to /api/v1/live that keel sheds, and in-flight returns to baseline', async () => {
    const held = heldRequest(port);
    try {
      await waitFor(() => inFlight() === 1, 5_000, 'the held request to count');
      const res = await rawUpgrade(port, '/api/v1/live');
      expect(res.status).toBe(503);
      await res.closed;
      expect(inFlight()).toBe(1);
    } finally {
      held.release();
    }
    await waitFor(() => inFlight() === 0, 5_000, 'in-flight back to 0');
    expect(await status(`http://127.0.0.1:${port}/api/v1/forums`)).toBe(200);
  });
});

describe('the forum process after upgrades answered over HTTP', () => {
  it('still serves at SHED_MAX_IN_FLIGHT=5 after six upgrades to /nope, and exits 0 on SIGTERM', async () => {
    const forum = await startForum({ SHED_MAX_IN_FLIGHT: '5', SHUTDOWN_DEADLINE_MS: '10000', DASHBOARD_TOKEN: TOKEN });
    try {
      for (let i = 0; i < 6; i++) {
        const res = await rawUpgrade(forum.port, '/nope');
        expect(res.status).toBe(404);
        await res.closed;
      }
      expect(await status(`${forum.base}/api/v1/forums`)).toBe(200);
      const data = await httpGet(`${forum.base}/dashboard/data`, { authorization: `Bearer ${TOKEN}` });
      // This request is the one in flight.
      expect((JSON.parse(data.body) as { metrics: { process: { inFlight: number } } }).metrics.process.inFlight).toBe(1);
      forum.child.kill('SIGTERM');
      // Before the fix, the drain waited for the six sockets until the deadline and exited 1.
      expect(await forum.exited).toBe(0);
      expect(forum.output()).toContain('shutdown complete');
    } finally {
      await forum.cleanup();
    }
  }, 60_000);
});

describe('long-lived connections and keel’s in-flight count', () => {
  it('keeps idle live sockets and a dashboard stream out of it, so they never shed HTTP requests', async () => {
    const t = await createTestApp({ dashboardToken: TOKEN, shedding: { ...calm, maxInFlight: 2 } });
    const clients: LiveClient[] = [];
    try {
      const base = await t.app.listen({ port: 0, host: '127.0.0.1' });
      for (let i = 0; i < 3; i++) {
        const c = await LiveClient.open(`${base.replace('http', 'ws')}/api/v1/live`);
        clients.push(c);
        await c.request({ type: 'ping' });
      }
      const stream = await openStream(Number(new URL(base).port), '/dashboard/stream', { authorization: `Bearer ${TOKEN}` });
      try {
        expect(stream.status).toBe(200);
        expect(metricsOf(t.app).http.inFlight).toBe(0);
        const statuses = [];
        for (let i = 0; i < 3; i++) statuses.push(await status(`${base}/api/v1/forums`));
        expect(statuses).toEqual([200, 200, 200]);
      } finally {
        stream.close();
      }
      // Nor is a socket's lifetime a latency sample once it has ended.
      await Promise.all(clients.map((c) => c.close()));
      const live = t.app.services.live;
      await waitFor(() => live.stats().connections === 0 && live.stats().closing === 0, 5_000, 'the live sockets to end');
      const routes = metricsOf(t.app).snapshot().routes;
      expect(routes.map((r) => r.route)).toEqual(['/api/v1/forums']);
    } finally {
      await Promise.all(clients.map((c) => c.close()));
      await t.close();
    }
  });
});
