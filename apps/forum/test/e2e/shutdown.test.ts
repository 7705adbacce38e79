/**
 * SIGTERM under load against the real forum process: every request that started before the
 * signal succeeds, readiness turns 503 at once, live sockets get 1001 instead of holding the
 * drain, and the process exits 0.
 */
import { once } from 'node:events';
import { Agent, request } from 'undici';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { waitFor } from '../helpers.ts';
import { startForum } from './process.ts';

describe('the forum process on SIGTERM', () => {
  it('fails none of the requests accepted before SIGTERM under load, ends live sockets with 1001 and exits 0', async () => {
    const forum = await startForum({ SHUTDOWN_DELAY_MS: '300', SHUTDOWN_DEADLINE_MS: '10000' });
    const agent = new Agent({ connections: 8, keepAliveTimeout: 10_000 });
    try {
      const ws = new WebSocket(`ws://127.0.0.1:${forum.port}/api/v1/live`);
      await once(ws, 'open');
      const closed = once(ws, 'close') as Promise<[number, Buffer]>;

      const records: { started: number; ok: boolean }[] = [];
      let stop = false;
      const paths = ['/api/v1/forums', '/api/v1/forums/1/topics', '/api/v1/topics/1', '/api/v1/search?q=latency'];
      const worker = async (w: number): Promise<void> => {
        for (let i = w; !stop; i++) {
          const started = performance.now();
          try {
            const res = await request(`${forum.base}${paths[i % paths.length]}`, { dispatcher: agent });
            await res.body.text();
            records.push({ started, ok: res.statusCode === 200 });
          } catch {
            records.push({ started, ok: false });
            await new Promise<void>((resolve) => setTimeout(resolve, 5));
          }
        }
      };
      const workers = Array.from({ length: 8 }, (_, w) => worker(w));
      await waitFor(() => records.length >= 200, 20_000, '200 requests');
      const signalledAt = performance.now();
      forum.child.kill('SIGTERM');
      await waitFor(() => forum.output().includes('shutting down'), 5_000, 'the shutdown to start');
      const ready = await request(`${forum.base}/health/ready`, { dispatcher: agent });
      await ready.body.text();
      const code = await forum.exited;
      stop = true;
      await Promise.all(workers);

      const before = records.filter((r) => r.started < signalledAt);
      expect(before.length).toBeGreaterThanOrEqual(200);
      expect(before.filter((r) => !r.ok)).toEqual([]);
      expect(ready.statusCode).toBe(503);
      const [closeCode] = await closed;
      expect(closeCode).toBe(1001);
      expect(code).toBe(0);
      expect(forum.output()).toContain('shutdown complete');
    } finally {
      await agent.close();
      await forum.cleanup();
    }
  }, 60_000);
});
