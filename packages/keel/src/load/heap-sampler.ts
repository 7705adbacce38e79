/**
 * How `keel soak` reads a target's heap. Two ways, both after a forced full GC:
 * - HTTP: the target (run with `--expose-gc`) mounts {@link heapAdminHandler}, which serves
 *   `GET /__keel/heap` (`{ heapUsed, handles }`) and `GET /__keel/heap-snapshot`;
 * - inspector: the target runs with `--inspect=PORT`; the sampler drives the DevTools protocol
 *   (`HeapProfiler.collectGarbage`, `Runtime.evaluate`, `HeapProfiler.takeHeapSnapshot`).
 */
import { createWriteStream } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { getHeapSnapshot } from 'node:v8';
import { Client } from 'undici';
import { WebSocket } from './ws.ts';

/** One heap reading. */
export interface HeapSample {
  heapUsed: number;
  handles: number;
}

/** Reads the target's heap after a forced GC and writes heap snapshots. */
export interface HeapSampler {
  sample(): Promise<HeapSample>;
  snapshot(file: string): Promise<void>;
  close(): Promise<void>;
}

/**
 * A request handler for the target's admin routes; returns false for other paths. The
 * target must run with `--expose-gc` (without it the sample is taken without a GC and is noisy).
 *
 * @example
 * ```ts
 * http.createServer((req, res) => { if (!heapAdminHandler(req, res)) app(req, res); });
 * ```
 */
export function heapAdminHandler(req: IncomingMessage, res: ServerResponse): boolean {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (req.url === '/__keel/heap') {
    gc?.();
    const body = JSON.stringify({
      heapUsed: process.memoryUsage().heapUsed,
      handles: process.getActiveResourcesInfo().length,
      gc: gc !== undefined,
    });
    res.writeHead(200, { 'content-type': 'application/json' }).end(body);
    return true;
  }
  if (req.url === '/__keel/heap-snapshot') {
    gc?.();
    res.writeHead(200, { 'content-type': 'application/json' });
    getHeapSnapshot().pipe(res);
    return true;
  }
  return false;
}

/**
 * Samples through the target's {@link heapAdminHandler} at `baseUrl`.
 *
 * @example
 * ```ts
 * const sampler = httpHeapSampler('http://127.0.0.1:3000');
 * console.log(await sampler.sample()); // { heapUsed: 8123456, handles: 4 }
 * await sampler.close();
 * ```
 */
export function httpHeapSampler(baseUrl: string): HeapSampler {
  const url = new URL(baseUrl);
  const client = new Client(url.origin);
  const get = (path: string) => client.request({ method: 'GET', path });
  return {
    async sample() {
      const res = await get('/__keel/heap');
      if (res.statusCode !== 200) {
        await res.body.dump();
        throw new Error(`keel soak: GET ${url.origin}/__keel/heap answered ${res.statusCode}; mount heapAdminHandler in the target`);
      }
      return (await res.body.json()) as HeapSample;
    },
    async snapshot(file) {
      const res = await get('/__keel/heap-snapshot');
      await pipeline(res.body, createWriteStream(file));
    },
    close: () => client.close(),
  };
}

/**
 * Samples over the inspector protocol of a target started with `--inspect=host:port`.
 *
 * @example
 * ```ts
 * const sampler = await inspectorHeapSampler('127.0.0.1:9229');
 * ```
 */
export async function inspectorHeapSampler(hostPort: string): Promise<HeapSampler> {
  const client = new Client(`http://${hostPort}`);
  const res = await client.request({ method: 'GET', path: '/json/list' });
  const targets = (await res.body.json()) as { webSocketDebuggerUrl: string }[];
  await client.close();
  const wsUrl = targets[0]?.webSocketDebuggerUrl;
  if (!wsUrl) throw new Error(`keel soak: no inspector target at ${hostPort}`);
  const ws = new WebSocket(wsUrl, { perMessageDeflate: false, maxPayload: 2 ** 31 - 1 });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  let id = 0;
  const waiting = new Map<number, (r: { result?: { result?: { value?: unknown } }; error?: { message: string } }) => void>();
  let chunkSink: ((chunk: string) => void) | undefined;
  ws.on('message', (data) => {
    const msg = JSON.parse(String(data)) as { id?: number; method?: string; params?: { chunk: string } };
    if (msg.method === 'HeapProfiler.addHeapSnapshotChunk') chunkSink?.(msg.params!.chunk);
    else if (msg.id !== undefined) waiting.get(msg.id)?.(msg as never);
  });
  const call = (method: string, params: object = {}) =>
    new Promise<{ result?: { result?: { value?: unknown } } }>((resolve, reject) => {
      const n = ++id;
      waiting.set(n, (r) => {
        waiting.delete(n);
        if (r.error) reject(new Error(`keel soak: inspector ${method}: ${r.error.message}`));
        else resolve(r);
      });
      ws.send(JSON.stringify({ id: n, method, params }));
    });
  return {
    async sample() {
      await call('HeapProfiler.collectGarbage');
      const r = await call('Runtime.evaluate', {
        expression: 'JSON.stringify({ heapUsed: process.memoryUsage().heapUsed, handles: process.getActiveResourcesInfo().length })',
        returnByValue: true,
      });
      return JSON.parse(String(r.result?.result?.value)) as HeapSample;
    },
    async snapshot(file) {
      const out = createWriteStream(file);
      chunkSink = (c) => out.write(c);
      try {
        await call('HeapProfiler.takeHeapSnapshot', { reportProgress: false });
      } finally {
        chunkSink = undefined;
        await new Promise<void>((r) => out.end(r));
      }
    },
    close: () =>
      new Promise<void>((resolve) => {
        ws.once('close', () => resolve());
        ws.close();
      }),
  };
}
