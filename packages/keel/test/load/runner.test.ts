import { afterEach, describe, expect, it } from 'vitest';
import { formatReport } from '../../src/load/report.ts';
import { runLoad } from '../../src/load/runner.ts';
import { delayed, stalling, startDelayedProcess, startServer, type TestServer } from './servers.ts';

let server: TestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

describe('runLoad, open model', () => {
  it('corrects for coordinated omission: a 1 s stall every 5 s shows in the corrected p99, not the uncorrected one, and the report says so', async () => {
    server = await startServer(stalling(5000, 1000));
    const r = await runLoad({ url: server.url, rate: 200, durationMs: 10_000, connections: 4 });
    expect(r.latency.p99).toBeGreaterThanOrEqual(500);
    expect(r.uncorrected.p99).toBeLessThan(50);
    expect(r.delayed).toBeGreaterThan(100);
    expect(r.warnings.join('\n')).toMatch(/coordinated omission/);
    expect(formatReport(r)).toMatch(/coordinated omission/);
  });

  it('measures a steady 20 ms server at p50 within 2 ms of 20 ms', async () => {
    const target = await startDelayedProcess(20);
    try {
      const r = await runLoad({ url: target.url, rate: 100, durationMs: 3000, connections: 10 });
      expect(r.completed).toBeGreaterThan(250);
      expect(Math.abs(r.latency.p50 - 20)).toBeLessThanOrEqual(2);
    } finally {
      await target.close();
    }
  });

  it('sends 1000 req/s for 10 s as 10,000 ± 1% requests with no 100 ms window above 1.2x the average', async () => {
    server = await startServer((_req, res) => res.end('ok'));
    const r = await runLoad({ url: server.url, rate: 1000, durationMs: 10_000, connections: 10 });
    const arrivals = server.arrivals;
    expect(arrivals.length).toBeGreaterThanOrEqual(9900);
    expect(arrivals.length).toBeLessThanOrEqual(10_100);
    const start = arrivals[0]!;
    const buckets = new Array<number>(100).fill(0);
    for (const a of arrivals) {
      const b = Math.floor((a - start) / 100);
      if (b < 100) buckets[b]!++;
    }
    expect(Math.max(...buckets)).toBeLessThanOrEqual(120);
    expect(r.warnings.filter((w) => w.includes('target rate'))).toEqual([]);
  });

  it('warns when the target rate is not reached because every connection is busy', async () => {
    server = await startServer(delayed(100));
    const r = await runLoad({ url: server.url, rate: 200, durationMs: 1000, connections: 2 });
    expect(r.warnings.join('\n')).toMatch(/target rate not reached/);
    expect(r.missed).toBeGreaterThan(0);
  });
});

describe('runLoad, closed model', () => {
  it('keeps every connection busy and counts status codes separately', async () => {
    let n = 0;
    server = await startServer((_req, res) => {
      res.statusCode = ++n % 2 === 0 ? 500 : 200;
      res.end('x');
    });
    const r = await runLoad({ url: server.url, connections: 4, durationMs: 500 });
    expect(r.model).toBe('closed');
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

  it('rejects invalid options with a TypeError naming the option', () => {
    expect(() => runLoad({ url: 'ftp://x' })).toThrow(/"url"/);
    expect(() => runLoad({ url: 'http://127.0.0.1:1/', connections: 0 })).toThrow(/"connections"/);
    expect(() => runLoad({ url: 'http://127.0.0.1:1/', rate: -1 })).toThrow(/"rate"/);
    expect(() => runLoad({ url: 'http://127.0.0.1:1/', thresholds: ['p95<1'] })).toThrow(/invalid threshold/);
  });
});
