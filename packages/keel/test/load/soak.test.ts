import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { type HeapSample, heapAdminHandler, httpHeapSampler } from '../../src/load/heap-sampler.ts';
import { runSoak } from '../../src/load/soak.ts';
import { FakeClock } from '../../src/testing/fake-clock.ts';
import { startServer, type TestServer } from './servers.ts';

const fixture = join(import.meta.dirname, 'fixtures', 'soak-target.ts');
let child: ChildProcess | undefined;
let dir: string | undefined;
let server: TestServer | undefined;

/** A sampler that returns `samples` in turn (the last one repeated); its snapshots are empty. */
function scripted(...samples: HeapSample[]) {
  let i = 0;
  const empty = JSON.stringify({
    snapshot: { meta: { node_fields: ['type', 'name', 'self_size'], node_types: [['object']] } },
    nodes: [],
    strings: [],
  });
  return {
    sample: async () => samples[Math.min(i++, samples.length - 1)]!,
    snapshot: (file: string) => writeFile(file, empty),
    close: async () => {},
  };
}

type WsPeer = { on(e: string, f: (d: unknown) => void): void; send(s: string): void };

/** A WebSocket server on a free port; `onMessage` handles each message of each peer. */
async function startWss(onMessage: (ws: WsPeer, data: unknown) => void): Promise<{ url: string; close(): Promise<void> }> {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await new Promise<void>((r) => wss.on('listening', r));
  wss.on('connection', (ws: WsPeer) => ws.on('message', (d) => onMessage(ws, d)));
  return {
    url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`,
    close: async () => {
      for (const c of wss.clients) c.terminate();
      await new Promise<void>((r) => wss.close(() => r()));
    },
  };
}

afterEach(async () => {
  await server?.close();
  server = undefined;
  if (child && child.exitCode === null) {
    const exited = new Promise((r) => child!.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  }
  child = undefined;
  if (dir) await rm(dir, { recursive: true, force: true });
  dir = undefined;
});

async function startTarget(leak: boolean | 'buffer', flags = ['--expose-gc']): Promise<string> {
  child = spawn(process.execPath, [...flags, '--import', 'tsx', fixture], {
    env: { ...process.env, LEAK: leak === 'buffer' ? 'buffer' : leak ? '1' : '0' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const port = await new Promise<string>((resolve, reject) => {
    child!.stdout!.once('data', (d: Buffer) => resolve(d.toString().trim()));
    child!.once('exit', (code) => reject(new Error(`target exited ${code}`)));
  });
  return `http://127.0.0.1:${port}`;
}

/** 2,000 HTTP cycles against a target started with `leak`, sampled every 200, judged at 64 B. */
async function soakLeakingTarget(leak: Parameters<typeof startTarget>[0]) {
  const url = await startTarget(leak);
  dir = await mkdtemp(join(tmpdir(), 'keel-soak-test-'));
  const sampler = httpHeapSampler(url);
  try {
    const r = await runSoak({
      action: { http: { url: `${url}/` } },
      sampler,
      cycles: 2000,
      sampleEvery: 200,
      maxSlope: 64,
      snapshotDir: dir,
    });
    return { r, sampler };
  } catch (err) {
    await sampler.close();
    throw err;
  }
}

describe('runSoak', () => {
  it('fails a server that leaks 1 KB per request and names the type that grew', async () => {
    const { r, sampler } = await soakLeakingTarget(true);
    try {
      expect(r.ok).toBe(false);
      expect(r.slope).toBeGreaterThan(900);
      expect(r.r2).toBeGreaterThan(0.9);
      expect(r.snapshots).toHaveLength(2);
      expect(r.grown?.[0]?.type).toBe('(string)');
      expect(r.grown?.[0]?.countDelta).toBeGreaterThanOrEqual(400);
    } finally {
      await sampler.close();
    }
  });

  it('passes the same server without the leak', async () => {
    const url = await startTarget(false);
    const sampler = httpHeapSampler(url);
    try {
      // A fresh process grows while its code and caches warm up (measured: ~70 B/cycle over
      // its first 2000 requests, then flat), so this run warms up for 2000 cycles first.
      const r = await runSoak({
        action: { http: { url: `${url}/` } },
        sampler,
        cycles: 5000,
        sampleEvery: 500,
        warmup: 2000,
        maxSlope: 64,
      });
      expect(r.slope).toBeLessThan(64);
      expect(r.ok).toBe(true);
      expect(r.samples).toHaveLength(11);
      expect(r.snapshots).toBeUndefined();
    } finally {
      await sampler.close();
    }
  });

  it('drives WebSocket connect/subscribe/disconnect cycles', async () => {
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await new Promise<void>((r) => wss.on('listening', r));
    let subscribed = 0;
    wss.on('connection', (ws: { on(e: string, f: (d: unknown) => void): void; send(s: string): void }) =>
      ws.on('message', () => {
        subscribed++;
        ws.send('ok');
      }),
    );
    const sampler = { sample: async () => ({ heapUsed: 1, handles: 1 }), snapshot: async () => {}, close: async () => {} };
    try {
      const r = await runSoak({
        action: { ws: { url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`, message: 'subscribe' } },
        sampler,
        cycles: 20,
        sampleEvery: 10,
        warmup: 0,
      });
      expect(r.errors).toBe(0);
      expect(subscribed).toBe(20);
    } finally {
      for (const c of wss.clients) c.terminate();
      await new Promise<void>((r) => wss.close(() => r()));
    }
  });

  it('counts failed cycles of a custom action without stopping', async () => {
    const sampler = { sample: async () => ({ heapUsed: 1000, handles: 1 }), snapshot: async () => {}, close: async () => {} };
    const r = await runSoak({
      action: async (c) => {
        if (c % 2) throw new Error('x');
      },
      sampler,
      cycles: 20,
      sampleEvery: 10,
      warmup: 0,
    });
    expect(r.errors).toBe(10);
    expect(r.slope).toBe(0);
  });

  it('fails the verdict when cycles fail, saying how many and why', async () => {
    const sampler = { sample: async () => ({ heapUsed: 1000, handles: 1 }), snapshot: async () => {}, close: async () => {} };
    const r = await runSoak({
      action: async () => {
        throw new Error('connect ECONNREFUSED');
      },
      sampler,
      cycles: 4,
      sampleEvery: 2,
      warmup: 0,
    });
    expect(r.slope).toBe(0);
    expect(r.ok).toBe(false);
    expect(r.reasons).toEqual(['4 of 4 cycles failed (first: connect ECONNREFUSED)']);
    expect(r.snapshots).toBeUndefined();
  });

  it('rejects invalid options with a TypeError naming the option', async () => {
    const sampler = { sample: async () => ({ heapUsed: 0, handles: 0 }), snapshot: async () => {}, close: async () => {} };
    await expect(runSoak({ action: async () => {}, sampler, sampleEvery: 0 })).rejects.toThrow(/"sampleEvery"/);
    await expect(runSoak({ action: 'x' as never, sampler })).rejects.toThrow(/"action"/);
    await expect(runSoak({ action: async () => {}, sampler: {} as never })).rejects.toThrow(/"sampler"/);
  });

  it('fails a server that leaks a 1 KB Buffer per request, counting the memory outside the V8 heap', async () => {
    const { r, sampler } = await soakLeakingTarget('buffer');
    try {
      expect(r.fit).toBe('heapUsed+arrayBuffers');
      expect(r.ok).toBe(false);
      expect(r.arrayBuffersSlope).toBeGreaterThan(900);
      expect(r.slope).toBeGreaterThan(r.heapSlope + 900);
    } finally {
      await sampler.close();
    }
  });

  it('gives no verdict, and says to use --expose-gc, when the target samples without a forced GC', async () => {
    const url = await startTarget(false, []);
    const sampler = httpHeapSampler(url);
    try {
      const r = await runSoak({ action: { http: { url: `${url}/` } }, sampler, cycles: 20, sampleEvery: 10, warmup: 0 });
      expect(r.ok).toBe(false);
      expect(r.samples).toHaveLength(1);
      expect(Number.isNaN(r.slope)).toBe(true);
      expect(r.reasons[0]).toMatch(/without a forced GC.*--expose-gc/);
    } finally {
      await sampler.close();
    }
  });

  it('fits heapUsed plus arrayBuffers by default and reports each slope', async () => {
    dir = await mkdtemp(join(tmpdir(), 'keel-soak-test-'));
    const r = await runSoak({
      action: async () => {},
      sampler: scripted(
        { heapUsed: 1000, arrayBuffers: 0, handles: 1 },
        { heapUsed: 1100, arrayBuffers: 10_000, handles: 1 },
        { heapUsed: 1200, arrayBuffers: 20_000, handles: 1 },
      ),
      cycles: 20,
      sampleEvery: 10,
      warmup: 0,
      maxSlope: 1005,
      snapshotDir: dir,
    });
    expect(r).toMatchObject({ fit: 'heapUsed+arrayBuffers', heapSlope: 10, arrayBuffersSlope: 1000, ok: false });
    expect(r.slope).toBeCloseTo(1010, 6);
    expect(r.reasons[0]).toMatch(/heapUsed\+arrayBuffers grows 1010\.0 B\/cycle, above the limit of 1005/);
  });

  it('fits heapUsed alone with fit: heapUsed', async () => {
    const r = await runSoak({
      action: async () => {},
      sampler: scripted({ heapUsed: 1000, arrayBuffers: 0, handles: 1 }, { heapUsed: 1000, arrayBuffers: 10_000, handles: 1 }),
      cycles: 20,
      sampleEvery: 10,
      warmup: 0,
      fit: 'heapUsed',
    });
    expect(r).toMatchObject({ fit: 'heapUsed', slope: 0, ok: true });
    expect(r.arrayBuffersSlope).toBeGreaterThan(0);
  });

  it('fails HTTP cycles that answer 404 or 500, naming the status', async () => {
    server = await startServer((req, res) => {
      if (heapAdminHandler(req, res)) return;
      res.statusCode = req.url === '/err' ? 500 : 404;
      res.end('no');
    });
    const sampler = scripted({ heapUsed: 1000, handles: 1 });
    for (const [path, status] of [
      ['typo', 404],
      ['err', 500],
    ] as const) {
      const r = await runSoak({ action: { http: { url: `${server.url}${path}` } }, sampler, cycles: 4, sampleEvery: 2, warmup: 0 });
      expect(r.ok).toBe(false);
      expect(r.errors).toBe(4);
      expect(r.reasons).toEqual([`4 of 4 cycles failed (first: GET /${path} answered ${status} (expected 2xx or 3xx))`]);
    }
  });

  it('accepts the statuses expectStatus lists', async () => {
    server = await startServer((_req, res) => {
      res.statusCode = 404;
      res.end('gone');
    });
    const r = await runSoak({
      action: { http: { url: server.url, expectStatus: [404] } },
      sampler: scripted({ heapUsed: 1000, handles: 1 }),
      cycles: 4,
      sampleEvery: 2,
      warmup: 0,
    });
    expect(r.errors).toBe(0);
    expect(r.ok).toBe(true);
  });

  it('fails a WebSocket cycle whose subscribe gets no reply at the default 10 s cycle timeout', async () => {
    const clock = new FakeClock();
    // The server reads the subscribe and never answers; the test's clock then runs out the cycle.
    const wss = await startWss(() => setImmediate(() => clock.advance(10_000)));
    try {
      const r = await runSoak({
        action: { ws: { url: wss.url, message: 'subscribe' } },
        sampler: scripted({ heapUsed: 1, handles: 1 }),
        cycles: 2,
        sampleEvery: 1,
        warmup: 0,
        clock,
      });
      expect(r.errors).toBe(2);
      expect(r.ok).toBe(false);
      expect(r.reasons).toEqual(['2 of 2 cycles failed (first: keel: "soak cycle" timed out after 10000 ms)']);
      expect(clock.pending).toBe(0);
    } finally {
      await wss.close();
    }
  });

  it('aborts the signal of a custom cycle still running at cycleTimeoutMs and counts it failed', async () => {
    const clock = new FakeClock();
    const aborted: unknown[] = [];
    const r = await runSoak({
      action: (_c, signal) =>
        new Promise<void>(() => {
          signal.addEventListener('abort', () => aborted.push(signal.reason));
          setImmediate(() => clock.advance(50));
        }),
      sampler: scripted({ heapUsed: 1, handles: 1 }),
      cycles: 2,
      sampleEvery: 1,
      warmup: 0,
      cycleTimeoutMs: 50,
      clock,
    });
    expect(r.errors).toBe(2);
    expect(aborted).toHaveLength(2);
    expect(r.reasons[0]).toMatch(/timed out after 50 ms/);
  });

  it('stops without a verdict once three cycles in a row time out', async () => {
    const clock = new FakeClock();
    const r = await runSoak({
      action: () =>
        new Promise<void>(() => {
          setImmediate(() => clock.advance(10_000));
        }),
      sampler: scripted({ heapUsed: 1, handles: 1 }),
      cycles: 1000,
      sampleEvery: 100,
      warmup: 0,
      clock,
    });
    expect(r.errors).toBe(3);
    expect(r.ok).toBe(false);
    expect(Number.isNaN(r.slope)).toBe(true);
    expect(r.reasons[0]).toBe(
      'no verdict: 3 cycles in a row timed out (after 10000 ms each), so the target stopped answering; the soak stopped at cycle 3',
    );
  });

  it('completes a WebSocket cycle on the reply the reply predicate accepts, and fails on one it rejects', async () => {
    const wss = await startWss((ws, data) => {
      ws.send(JSON.stringify({ type: 'presence' }));
      ws.send(JSON.stringify({ type: String(data) === 'good' ? 'subscribed' : 'not_found' }));
    });
    const reply = (text: string): boolean | undefined => {
      const type = (JSON.parse(text) as { type: string }).type;
      return type === 'presence' ? undefined : type === 'subscribed';
    };
    const soak = (message: string) =>
      runSoak({
        action: { ws: { url: wss.url, message, reply } },
        sampler: scripted({ heapUsed: 1, handles: 1 }),
        cycles: 2,
        sampleEvery: 1,
        warmup: 0,
      });
    try {
      expect((await soak('good')).errors).toBe(0);
      const bad = await soak('bad');
      expect(bad.errors).toBe(2);
      expect(bad.reasons[0]).toMatch(/unexpected reply: \{"type":"not_found"\}/);
    } finally {
      await wss.close();
    }
  });
});
