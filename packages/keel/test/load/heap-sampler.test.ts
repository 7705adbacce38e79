import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { heapAdminHandler, httpHeapSampler, inspectorHeapSampler } from '../../src/load/heap-sampler.ts';
import { FakeClock } from '../../src/testing/fake-clock.ts';
import { startServer, type TestServer } from './servers.ts';

let server: TestServer | undefined;
let child: ChildProcess | undefined;
let dir: string | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
  if (child && child.exitCode === null) {
    const exited = new Promise((r) => child!.once('exit', r));
    child.kill();
    await exited;
  }
  child = undefined;
  if (dir) await rm(dir, { recursive: true, force: true });
  dir = undefined;
});

describe('heapAdminHandler + httpHeapSampler', () => {
  it('serves heap samples and heap snapshots over HTTP', async () => {
    server = await startServer((req, res) => {
      if (!heapAdminHandler(req, res)) res.end('app');
    });
    dir = await mkdtemp(join(tmpdir(), 'keel-sampler-'));
    const sampler = httpHeapSampler(server.url);
    try {
      const s = await sampler.sample();
      expect(s.heapUsed).toBeGreaterThan(1_000_000);
      expect(s.arrayBuffers).toBeGreaterThanOrEqual(0);
      expect(s.handles).toBeGreaterThan(0);
      await sampler.snapshot(join(dir, 'x.heapsnapshot'));
      const snap = JSON.parse(await readFile(join(dir, 'x.heapsnapshot'), 'utf8'));
      expect(snap.snapshot.meta.node_fields).toContain('self_size');
    } finally {
      await sampler.close();
    }
  }, 60_000);
});

describe('inspectorHeapSampler', () => {
  it('samples a target started with --inspect over the DevTools protocol', async () => {
    child = spawn(process.execPath, ['--inspect=127.0.0.1:0', '-e', 'setInterval(() => {}, 1000)'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const hostPort = await new Promise<string>((resolve) => {
      let err = '';
      child!.stderr!.on('data', (d: Buffer) => {
        err += d.toString();
        const m = /ws:\/\/([\d.]+:\d+)\//.exec(err);
        if (m) resolve(m[1]!);
      });
    });
    const sampler = await inspectorHeapSampler(hostPort);
    try {
      const s = await sampler.sample();
      expect(s.heapUsed).toBeGreaterThan(100_000);
      expect(s.arrayBuffers).toBeGreaterThanOrEqual(0);
      expect(s.handles).toBeGreaterThanOrEqual(1);
      expect(s.gc).toBe(true);
    } finally {
      await sampler.close();
    }
  });

  it('fails a call the inspector does not answer within timeoutMs', async () => {
    const clock = new FakeClock();
    // An inspector that accepts the connection and never answers a call.
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await new Promise<void>((r) => wss.on('listening', r));
    wss.on('connection', (ws: { on(e: string, f: () => void): void }) => ws.on('message', () => setImmediate(() => clock.advance(10_000))));
    server = await startServer((_req, res) =>
      res.end(JSON.stringify([{ webSocketDebuggerUrl: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}/x` }])),
    );
    try {
      const sampler = await inspectorHeapSampler(`127.0.0.1:${server.port}`, { clock });
      await expect(sampler.sample()).rejects.toThrow('keel: "inspector HeapProfiler.collectGarbage" timed out after 10000 ms');
      await sampler.close();
    } finally {
      for (const c of wss.clients) c.terminate();
      await new Promise<void>((r) => wss.close(() => r()));
    }
  });
});

describe('heap sampling without a forced GC', () => {
  it('reports gc: false from a target running without --expose-gc', async () => {
    const g = globalThis as { gc?: () => void };
    const saved = g.gc;
    delete g.gc;
    server = await startServer((req, res) => {
      if (!heapAdminHandler(req, res)) res.end('app');
    });
    const sampler = httpHeapSampler(server.url);
    try {
      expect(await sampler.sample()).toMatchObject({ gc: false });
    } finally {
      if (saved) g.gc = saved;
      await sampler.close();
    }
  });

  it('counts a route that does not confirm its GC as not forced', async () => {
    server = await startServer((_req, res) => res.end(JSON.stringify({ heapUsed: 1, handles: 1 })));
    const sampler = httpHeapSampler(server.url);
    try {
      expect(await sampler.sample()).toMatchObject({ heapUsed: 1, gc: false });
    } finally {
      await sampler.close();
    }
  });
});

describe('httpHeapSampler timeouts', () => {
  it('fails a sample the target does not answer within timeoutMs', async () => {
    const clock = new FakeClock();
    server = await startServer(() => setImmediate(() => clock.advance(2_000)));
    const sampler = httpHeapSampler(server.url, { timeoutMs: 2_000, clock });
    try {
      await expect(sampler.sample()).rejects.toThrow('keel: "heap sample" timed out after 2000 ms');
      expect(clock.pending).toBe(0);
    } finally {
      await sampler.close();
    }
  });

  it('rejects invalid options with a TypeError naming the option', () => {
    expect(() => httpHeapSampler('http://127.0.0.1:1', { timeoutMs: 0 })).toThrow(/"timeoutMs"/);
  });
});
