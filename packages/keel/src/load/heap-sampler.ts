/**
 * How `keel soak` reads a target's heap. Two ways, both after a forced full GC:
 * - HTTP: the target (run with `--expose-gc`) mounts {@link heapAdminHandler}, which serves
 *   `GET /__keel/heap` (`{ heapUsed, arrayBuffers, handles, gc }`) and `GET /__keel/heap-snapshot`;
 * - inspector: the target runs with `--inspect=PORT`; the sampler drives the DevTools protocol
 *   (`HeapProfiler.collectGarbage`, `Runtime.evaluate`, `HeapProfiler.takeHeapSnapshot`).
 * Every call is bounded by a timeout: a target that stops answering fails the sample instead
 * of hanging the soak.
 */
import { createWriteStream } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { getHeapSnapshot } from 'node:v8';
import { Client } from 'undici';
import type { Clock } from '../clock.ts';
import { clockOption, durationOption, objectOptions } from '../internal/options.ts';
import { withDeadline } from './deadline.ts';
import { WebSocket } from './ws.ts';

/** One heap reading. */
export interface HeapSample {
  heapUsed: number;
  /**
   * Bytes of ArrayBuffers and Buffers (`process.memoryUsage().arrayBuffers`): memory outside
   * the V8 heap, where heapUsed sees only each Buffer's small object (a 1 KB-per-request
   * Buffer leak read 317 B/cycle in heapUsed). Optional for custom samplers.
   */
  arrayBuffers?: number;
  handles: number;
  /**
   * False when the sample was taken without a forced GC (the target lacks `--expose-gc`):
   * the soak then gives no verdict. A custom sampler may leave it out; it then vouches for the GC.
   */
  gc?: boolean;
}

/** Reads the target's heap after a forced GC and writes heap snapshots. */
export interface HeapSampler {
  sample(): Promise<HeapSample>;
  snapshot(file: string): Promise<void>;
  close(): Promise<void>;
}

/** Options of {@link httpHeapSampler} and {@link inspectorHeapSampler}. */
export interface HeapSamplerOptions {
  /** Bound on one sample (and on connecting, for the inspector), in ms. Default 10000. */
  timeoutMs?: number;
  /** Bound on writing one heap snapshot, in ms. Default 120000. */
  snapshotTimeoutMs?: number;
  /** Default the real clock. */
  clock?: Clock;
}

function samplerOptions(owner: string, options: HeapSamplerOptions | undefined) {
  const o = objectOptions(owner, options);
  return {
    timeoutMs: durationOption(owner, 'timeoutMs', o.timeoutMs, 10_000, 1),
    snapshotTimeoutMs: durationOption(owner, 'snapshotTimeoutMs', o.snapshotTimeoutMs, 120_000, 1),
    clock: clockOption(owner, o.clock),
  };
}

/**
 * A request handler for the target's admin routes; returns false for other paths. The
 * target must run with `--expose-gc`: without it the sample says `gc: false` and the soak
 * refuses a verdict (a heap read without a GC holds garbage and is noise).
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
    const m = process.memoryUsage();
    const body = JSON.stringify({
      heapUsed: m.heapUsed,
      arrayBuffers: m.arrayBuffers,
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
 * const sampler = httpHeapSampler('http://127.0.0.1:3000', { timeoutMs: 5000 });
 * console.log(await sampler.sample()); // { heapUsed: 8123456, arrayBuffers: 17000, handles: 4, gc: true }
 * await sampler.close();
 * ```
 */
export function httpHeapSampler(baseUrl: string, options?: HeapSamplerOptions): HeapSampler {
  const { timeoutMs, snapshotTimeoutMs, clock } = samplerOptions('httpHeapSampler', options);
  const url = new URL(baseUrl);
  const client = new Client(url.origin);
  return {
    sample: () =>
      withDeadline(
        async (signal) => {
          const res = await client.request({ method: 'GET', path: '/__keel/heap', signal });
          if (res.statusCode !== 200) {
            await res.body.dump();
            throw new Error(`keel soak: GET ${url.origin}/__keel/heap answered ${res.statusCode}; mount heapAdminHandler in the target`);
          }
          const s = (await res.body.json()) as HeapSample;
          // Only a route that says it forced a GC is taken at its word.
          return { ...s, gc: s.gc === true };
        },
        timeoutMs,
        clock,
        'heap sample',
      ),
    snapshot: (file) =>
      withDeadline(
        async (signal) => {
          const res = await client.request({ method: 'GET', path: '/__keel/heap-snapshot', signal });
          await pipeline(res.body, createWriteStream(file), { signal });
        },
        snapshotTimeoutMs,
        clock,
        'heap snapshot',
      ),
    close: () => client.close(),
  };
}

type Reply = { result?: { result?: { value?: unknown } }; error?: { message: string } };

/**
 * Samples over the inspector protocol of a target started with `--inspect=host:port`. The
 * GC is forced through the protocol, so the target needs no `--expose-gc`.
 *
 * @example
 * ```ts
 * const sampler = await inspectorHeapSampler('127.0.0.1:9229', { timeoutMs: 5000 });
 * ```
 */
export async function inspectorHeapSampler(hostPort: string, options?: HeapSamplerOptions): Promise<HeapSampler> {
  const { timeoutMs, snapshotTimeoutMs, clock } = samplerOptions('inspectorHeapSampler', options);
  const client = new Client(`http://${hostPort}`);
  let targets: { webSocketDebuggerUrl: string }[];
  try {
    targets = await withDeadline(
      async (signal) => (await (await client.request({ method: 'GET', path: '/json/list', signal })).body.json()) as typeof targets,
      timeoutMs,
      clock,
      'inspector target list',
    );
  } finally {
    await client.close();
  }
  const wsUrl = targets[0]?.webSocketDebuggerUrl;
  if (!wsUrl) throw new Error(`keel soak: no inspector target at ${hostPort}`);
  const ws = new WebSocket(wsUrl, { perMessageDeflate: false, maxPayload: 2 ** 31 - 1 });
  try {
    await withDeadline(
      () =>
        new Promise<void>((resolve, reject) => {
          ws.once('open', resolve);
          ws.once('error', reject);
        }),
      timeoutMs,
      clock,
      'inspector connect',
    );
  } catch (err) {
    ws.terminate();
    throw err;
  }
  let id = 0;
  const waiting = new Map<number, (r: Reply) => void>();
  let chunkSink: ((chunk: string) => void) | undefined;
  ws.on('message', (data) => {
    const msg = JSON.parse(String(data)) as { id?: number; method?: string; params?: { chunk: string } };
    if (msg.method === 'HeapProfiler.addHeapSnapshotChunk') chunkSink?.(msg.params!.chunk);
    else if (msg.id !== undefined) waiting.get(msg.id)?.(msg as never);
  });
  // Each call is bounded; a call that timed out leaves no entry behind to answer later.
  const call = (method: string, params: object, ms: number) => {
    const n = ++id;
    return withDeadline(
      (signal) =>
        new Promise<Reply>((resolve, reject) => {
          signal.addEventListener('abort', () => waiting.delete(n), { once: true });
          waiting.set(n, (r) => {
            waiting.delete(n);
            if (r.error) reject(new Error(`keel soak: inspector ${method}: ${r.error.message}`));
            else resolve(r);
          });
          ws.send(JSON.stringify({ id: n, method, params }));
        }),
      ms,
      clock,
      `inspector ${method}`,
    );
  };
  return {
    async sample() {
      await call('HeapProfiler.collectGarbage', {}, timeoutMs);
      const r = await call(
        'Runtime.evaluate',
        {
          expression:
            'JSON.stringify({ heapUsed: process.memoryUsage().heapUsed, arrayBuffers: process.memoryUsage().arrayBuffers, handles: process.getActiveResourcesInfo().length })',
          returnByValue: true,
        },
        timeoutMs,
      );
      return { ...(JSON.parse(String(r.result?.result?.value)) as HeapSample), gc: true };
    },
    async snapshot(file) {
      const out = createWriteStream(file);
      chunkSink = (c) => out.write(c);
      try {
        await call('HeapProfiler.takeHeapSnapshot', { reportProgress: false }, snapshotTimeoutMs);
      } finally {
        chunkSink = undefined;
        await new Promise<void>((r) => out.end(r));
      }
    },
    close: () =>
      withDeadline(
        () =>
          new Promise<void>((resolve) => {
            ws.once('close', () => resolve());
            ws.close();
          }),
        timeoutMs,
        clock,
        'inspector close',
      ).catch(() => ws.terminate()),
  };
}
