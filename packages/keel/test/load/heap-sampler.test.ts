import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { heapAdminHandler, httpHeapSampler, inspectorHeapSampler } from '../../src/load/heap-sampler.ts';
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
      expect(s.handles).toBeGreaterThanOrEqual(1);
    } finally {
      await sampler.close();
    }
  });
});
