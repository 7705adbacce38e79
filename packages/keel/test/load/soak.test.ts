import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { httpHeapSampler } from '../../src/load/heap-sampler.ts';
import { runSoak } from '../../src/load/soak.ts';

const fixture = join(import.meta.dirname, 'fixtures', 'soak-target.ts');
let child: ChildProcess | undefined;
let dir: string | undefined;

afterEach(async () => {
  if (child && child.exitCode === null) {
    const exited = new Promise((r) => child!.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  }
  child = undefined;
  if (dir) await rm(dir, { recursive: true, force: true });
  dir = undefined;
});

async function startTarget(leak: boolean): Promise<string> {
  child = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', fixture], {
    env: { ...process.env, LEAK: leak ? '1' : '0' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const port = await new Promise<string>((resolve, reject) => {
    child!.stdout!.once('data', (d: Buffer) => resolve(d.toString().trim()));
    child!.once('exit', (code) => reject(new Error(`target exited ${code}`)));
  });
  return `http://127.0.0.1:${port}`;
}

describe('runSoak', () => {
  it('fails a server that leaks 1 KB per request and names the type that grew', async () => {
    const url = await startTarget(true);
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
    const { WebSocketServer } = createRequire(import.meta.url)('ws') as {
      WebSocketServer: new (o: {
        port: number;
        host: string;
      }) => {
        on(e: string, f: (...a: never[]) => void): void;
        address(): AddressInfo;
        clients: Set<{ terminate(): void }>;
        close(cb: () => void): void;
      };
    };
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
        action: { ws: { url: `ws://127.0.0.1:${wss.address().port}`, message: 'subscribe' } },
        sampler,
        cycles: 20,
        sampleEvery: 10,
        warmup: 0,
      });
      expect(r.errors).toBe(0);
      expect(subscribed).toBe(20);
    } finally {
      for (const c of wss.clients) c.terminate();
      await new Promise<void>((r) => wss.close(r));
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
});
