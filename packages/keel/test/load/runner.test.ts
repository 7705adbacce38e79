import { performance } from 'node:perf_hooks';
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

  it('sends every request of a ramp to an idle server, the last one included', async () => {
    server = await startServer((_req, res) => res.end('ok'));
    const r = await runLoad({ url: server.url, stages: [{ durationMs: 1000, target: 10 }], connections: 2 });
    expect(r).toMatchObject({ sent: 5, expected: 5, missed: 0 });
    expect(r.warnings.filter((w) => w.includes('target rate'))).toEqual([]);
  });

  it('warns when the target rate is not reached because every connection is busy', async () => {
    server = await startServer(delayed(100));
    const r = await runLoad({ url: server.url, rate: 200, durationMs: 1000, connections: 2 });
    expect(r.warnings.join('\n')).toMatch(/target rate not reached/);
    expect(r.missed).toBeGreaterThan(0);
  });
});

describe('runLoad headers', () => {
  it('adds headers to every scenario request, a header the scenario sets itself winning', async () => {
    const seen: { path: string; auth?: string; extra?: string }[] = [];
    server = await startServer((req, res) => {
      seen.push({ path: req.url!, auth: req.headers.authorization, extra: req.headers['x-extra'] as string | undefined });
      res.end('ok');
    });
    await runLoad({
      url: server.url,
      connections: 1,
      durationMs: 200,
      headers: { Authorization: 'Bearer cli', 'x-extra': '1' },
      scenario: { requests: [{ path: '/own', headers: { authorization: 'Bearer own' } }, { path: '/plain' }] },
    });
    expect(seen.find((s) => s.path === '/own')).toEqual({ path: '/own', auth: 'Bearer own', extra: '1' });
    expect(seen.find((s) => s.path === '/plain')).toEqual({ path: '/plain', auth: 'Bearer cli', extra: '1' });
  });
});

describe('runLoad options', () => {
  it('rejects invalid options with a TypeError naming the option', () => {
    expect(() => runLoad({ url: 'ftp://x' })).toThrow(/"url"/);
    expect(() => runLoad({ url: 'http://127.0.0.1:1/', connections: 0 })).toThrow(/"connections"/);
    expect(() => runLoad({ url: 'http://127.0.0.1:1/', rate: -1 })).toThrow(/"rate"/);
    expect(() => runLoad({ url: 'http://127.0.0.1:1/', thresholds: ['p95<1'] })).toThrow(/invalid threshold/);
    expect(() => runLoad({ url: 'http://127.0.0.1:1/', warmupMs: -1 })).toThrow(/"warmupMs"/);
    expect(() => runLoad({ url: 'http://127.0.0.1:1/', warmupMs: 1000, stages: [{ durationMs: 1000, target: 10 }] })).toThrow(
      /"warmupMs" does not combine with "stages"/,
    );
  });
});

describe('runLoad warm-up', () => {
  /** Answers after 150 ms until 600 ms after its first request, then at once: a cold start. */
  function coldStart(): (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => void {
    let first: number | undefined;
    const slow = delayed(150);
    return (req, res) => {
      first ??= performance.now();
      if (performance.now() - first < 600) slow(req, res);
      else res.end('ok');
    };
  }

  it('runs the same open-model load first and leaves it out of the result: a cold start shows in the warm-up, not the run', async () => {
    server = await startServer(coldStart());
    const r = await runLoad({ url: server.url, rate: 200, durationMs: 1000, warmupMs: 1000, connections: 50 });
    expect(r.warmup).toBeDefined();
    expect(r.warmup!.completed).toBeGreaterThan(150);
    expect(r.warmup!.p99).toBeGreaterThanOrEqual(100);
    expect(r.latency.p99).toBeLessThan(100);
    expect(r.completed).toBeGreaterThan(150);
    // Every request the server saw is in exactly one of the two.
    expect(server.arrivals.length).toBe(r.warmup!.completed + r.completed);
    expect(r.expected).toBe(200);
    expect(formatReport(r)).toMatch(/warm-up {4}1\.0 s before the run, not counted/);
  });

  it('warms up the closed model too, and reports no warm-up without one', async () => {
    server = await startServer(coldStart());
    const r = await runLoad({ url: server.url, durationMs: 500, warmupMs: 1000, connections: 4 });
    expect(r.model).toBe('closed');
    expect(r.warmup!.completed).toBeGreaterThan(0);
    expect(r.latency.p99).toBeLessThan(100);
    expect(server.arrivals.length).toBe(r.warmup!.completed + r.completed);
    const plain = await runLoad({ url: server.url, durationMs: 200, connections: 1 });
    expect(plain.warmup).toBeUndefined();
  });
});
