/** The run's connection handling, counting and early stops, driven through runLoad. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { afterEach, describe, expect, it } from 'vitest';
import type { WindowStats } from '../../src/load/histogram.ts';
import { windowInput } from '../../src/load/run.ts';
import { runLoad } from '../../src/load/runner.ts';
import { delayed, startServer, type TestServer } from './servers.ts';

let server: TestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

/** Answers at once, except that requests arriving `from`..`to` ms after the first are held until `to`. */
function stallingBetween(from: number, to: number): (req: IncomingMessage, res: ServerResponse) => void {
  let t0: number | undefined;
  return (_req, res) => {
    t0 ??= performance.now();
    const t = performance.now() - t0;
    if (t < from || t >= to) return void res.end('ok');
    const timer = setTimeout(() => res.end('ok'), to - t);
    res.on('close', () => clearTimeout(timer));
  };
}

describe('runLoad, closed model', () => {
  it('keeps every connection busy and counts status codes separately', async () => {
    let n = 0;
    server = await startServer((_req, res) => {
      res.statusCode = ++n % 2 === 0 ? 500 : 200;
      res.end('x');
    });
    const before = Date.now();
    const r = await runLoad({ url: server.url, connections: 4, durationMs: 500 });
    expect(r.model).toBe('closed');
    // Windows count from startedAt, which is wall time between the call and the result.
    expect(r.startedAt).toBeGreaterThanOrEqual(before);
    expect(r.startedAt).toBeLessThanOrEqual(Date.now() - r.durationMs + 1);
    expect(r.statusCodes['200']! + r.statusCodes['500']!).toBe(r.completed);
    expect(r.errors.non2xx).toBe(r.statusCodes['500']);
    expect(r.errors.rate).toBeGreaterThan(0.4);
    expect(r.latency.count).toBe(r.completed);
  });

  it('pipelines requests on one connection', async () => {
    server = await startServer((_req, res) => res.end('ok'));
    const r = await runLoad({ url: server.url, connections: 1, pipelining: 8, durationMs: 300 });
    expect(r.completed).toBeGreaterThan(100);
    expect(r.errors.total).toBe(0);
  });

  it('counts timeouts apart from socket errors', async () => {
    server = await startServer(() => {});
    const r = await runLoad({ url: server.url, connections: 2, durationMs: 300, timeoutMs: 100 });
    expect(r.errors.timeouts).toBeGreaterThanOrEqual(2);
    expect(r.errors.socket).toBe(0);
  });

  it('counts refused connections as connection errors', async () => {
    const s = await startServer(() => {});
    const url = s.url;
    await s.close();
    const r = await runLoad({ url, connections: 1, durationMs: 200 });
    expect(r.completed).toBe(0);
    expect(r.errors.connections).toBeGreaterThan(0);
    expect(r.errors.timeouts).toBe(0);
  });

  it('fails rate and latency thresholds against a target that refuses every connection, judging its windows', async () => {
    const s = await startServer(() => {});
    const url = s.url;
    await s.close();
    const r = await runLoad({
      url,
      connections: 2,
      durationMs: 300,
      timeoutMs: 200,
      windowMs: 100,
      thresholds: ['rate<0.01', 'p(99)<500'],
    });
    expect(r.sent).toBe(0);
    expect(r.errors.unsent).toBeGreaterThan(0);
    expect(r.errors.rate).toBe(1);
    expect(r.ok).toBe(false);
    expect(r.thresholds[0]).toMatchObject({ ok: false, actual: 1 });
    expect(r.thresholds[0]!.failedWindows).toBeGreaterThan(0);
    expect(r.thresholds[1]).toMatchObject({ ok: false, actual: null });
    expect(r.warnings.join('\n')).toMatch(/no responses/);
  });

  it('reconnects after each Connection: close response without counting an error', async () => {
    server = await startServer((_req, res) => {
      res.writeHead(200, { connection: 'close', 'content-length': '2' });
      res.end('ok');
    });
    const r = await runLoad({ url: server.url, connections: 2, durationMs: 300 });
    expect(r.completed).toBeGreaterThan(10);
    expect(r.errors).toMatchObject({ total: 0, socket: 0, unsent: 0, connections: 0 });
  });

  it('completes bodies delimited by the close and reconnects without counting an error', async () => {
    server = await startServer((req, res) => {
      // No content-length, no chunking (HTTP/1.0 framing): the body ends when the server closes.
      res.socket!.end('HTTP/1.1 200 OK\r\n\r\nbody');
      req.resume();
    });
    const r = await runLoad({ url: server.url, connections: 2, durationMs: 300 });
    expect(r.completed).toBeGreaterThan(10);
    expect(r.statusCodes).toEqual({ '200': r.completed });
    expect(r.errors).toMatchObject({ total: 0, socket: 0, unsent: 0, connections: 0 });
  });

  it('fails the run when one window fails a threshold the whole run passes', async () => {
    // 400 ms held in 100 ms windows: whatever the windows' offset, some lie wholly inside the stall.
    server = await startServer(stallingBetween(200, 600));
    const r = await runLoad({ url: server.url, connections: 2, durationMs: 1000, windowMs: 100, thresholds: ['rps>200'] });
    expect(r.thresholds[0]!.actual).toBeGreaterThan(200);
    expect(r.thresholds[0]!.failedWindows).toBeGreaterThan(0);
    expect(r.thresholds[0]!.ok).toBe(false);
    expect(r.ok).toBe(false);
  });

  it('aborts at the first window that fails with abortOnFail, rps included', async () => {
    server = await startServer(stallingBetween(200, 600));
    const r = await runLoad({
      url: server.url,
      connections: 2,
      durationMs: 5000,
      windowMs: 100,
      thresholds: ['rps>200'],
      abortOnFail: true,
    });
    expect(r.aborted).toBe(true);
    expect(r.warnings).toContain('aborted early: a threshold failed (abort-on-fail)');
  });

  it('folds the responses drained after an abort into the window that failed, not a sliver window of its own', async () => {
    server = await startServer((_req, res) => res.end('ok'));
    const r = await runLoad({
      url: server.url,
      connections: 4,
      durationMs: 5000,
      windowMs: 200,
      thresholds: ['p(50)<0'],
      abortOnFail: true,
    });
    expect(r.aborted).toBe(true);
    expect(r.windows).toHaveLength(1);
    expect(r.windows[0]).toMatchObject({ t: 0, partial: true, count: r.completed });
    expect(r.thresholds[0]).toMatchObject({ failedWindows: 1, windows: 1 });
  });

  it('fails its thresholds and stops early with abortOnFail', async () => {
    server = await startServer(delayed(30));
    const r = await runLoad({
      url: server.url,
      connections: 2,
      durationMs: 5000,
      windowMs: 100,
      thresholds: ['p(95)<5'],
      abortOnFail: true,
    });
    expect(r.ok).toBe(false);
    expect(r.aborted).toBe(true);
    expect(r.durationMs).toBeLessThan(2000);
    expect(r.thresholds[0]!.failedWindows).toBeGreaterThan(0);
  });

  it('stops early when the signal aborts and still reports what it measured', async () => {
    server = await startServer((_req, res) => res.end('ok'));
    const ac = new AbortController();
    const running = runLoad({
      url: server.url,
      connections: 2,
      durationMs: 30_000,
      signal: ac.signal,
      onWindow: () => ac.abort(),
      windowMs: 100,
    });
    const r = await running;
    expect(r.aborted).toBe(true);
    expect(r.completed).toBeGreaterThan(0);
    expect(r.warnings).toContain('stopped early by the caller');
  });

  it('passes thresholds the service meets', async () => {
    server = await startServer((_req, res) => res.end('ok'));
    const r = await runLoad({ url: server.url, connections: 2, durationMs: 300, thresholds: ['p(99)<500', 'rate<0.01', 'rps>10'] });
    expect(r.thresholds.map((t) => t.ok)).toEqual([true, true, true]);
    expect(r.ok).toBe(true);
  });

  it('judges windows where every request timed out, and aborts on them', async () => {
    server = await startServer(() => {});
    const r = await runLoad({
      url: server.url,
      connections: 2,
      durationMs: 5000,
      timeoutMs: 100,
      windowMs: 100,
      thresholds: ['rate<0.5'],
      abortOnFail: true,
    });
    expect(r.completed).toBe(0);
    expect(r.thresholds[0]!.windows).toBeGreaterThan(0);
    expect(r.thresholds[0]!.failedWindows).toBeGreaterThan(0);
    expect(r.aborted).toBe(true);
  });

  it('rolls the last, partial window so the windows add up to every response', async () => {
    server = await startServer((_req, res) => res.end('ok'));
    const r = await runLoad({ url: server.url, connections: 2, rate: 50, durationMs: 900, windowMs: 1000 });
    expect(r.completed).toBeGreaterThan(0);
    expect(r.windows.reduce((n, w) => n + w.count, 0)).toBe(r.completed);
    expect(r.windows.at(-1)!.partial).toBe(true);
  });
});

describe('runLoad, open model failures', () => {
  it('fails the requests that come due while no connection can be made', async () => {
    const s = await startServer(() => {});
    const url = s.url;
    await s.close();
    const r = await runLoad({ url, connections: 4, rate: 50, durationMs: 300, timeoutMs: 200, thresholds: ['rate<0.01'] });
    expect(r.sent).toBe(0);
    expect(r.errors.unsent).toBeGreaterThan(0);
    expect(r.errors.unsent + r.missed).toBe(r.expected);
    expect(r.errors.rate).toBe(1);
    expect(r.ok).toBe(false);
  });

  it('reconnects after each Connection: close response without counting an error', async () => {
    server = await startServer((_req, res) => {
      res.writeHead(200, { connection: 'close', 'content-length': '2' });
      res.end('ok');
    });
    const r = await runLoad({ url: server.url, connections: 2, rate: 100, durationMs: 500 });
    expect(r.completed).toBe(r.sent);
    expect(r.completed).toBeGreaterThan(10);
    expect(r.errors).toMatchObject({ total: 0, socket: 0, unsent: 0, connections: 0 });
  });
});

describe('windowInput', () => {
  const w: WindowStats = {
    t: 0,
    count: 2,
    attempts: 4,
    errors: 2,
    rps: 2,
    min: 3,
    mean: 7,
    p50: 5,
    p90: 9,
    p95: 10,
    p99: 11,
    max: 11,
    extra: {},
    partial: false,
  };

  it('divides the error rate by attempts, timeouts included', () => {
    expect(windowInput(w).rate).toBe(0.5);
    expect(windowInput({ ...w, count: 0, attempts: 2, errors: 2 }).rate).toBe(1);
  });

  it("tests min and avg against the window's own min and mean", () => {
    expect(windowInput(w)).toMatchObject({ min: 3, avg: 7, med: 5 });
  });
});
