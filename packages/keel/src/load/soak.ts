/**
 * `keel soak`: drive N cycles of an action against a target, sample its heap after a forced
 * GC every K cycles, fit a least-squares line through (cycle, heapUsed), and fail when the
 * slope exceeds `maxSlope` bytes per cycle or any cycle fails. When the slope fails, two heap
 * snapshots `diffCycles` apart are written and the object types that grew most are named.
 */
import { mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'undici';
import { functionOption, intOption, numberOption, objectOptions, optionError } from '../internal/options.ts';
import { diffHeapSnapshots, type TypeGrowth } from './heap-diff.ts';
import type { HeapSample, HeapSampler } from './heap-sampler.ts';
import { linearFit } from './stats.ts';
import { WebSocket } from './ws.ts';

/** The action a cycle performs. */
export type SoakAction =
  | { http: { url: string; method?: string; headers?: Record<string, string>; body?: string } }
  | { ws: { url: string; message?: string } }
  | ((cycle: number) => Promise<void>);

/** Options of {@link runSoak}. */
export interface SoakOptions {
  action: SoakAction;
  sampler: HeapSampler;
  /** Cycles to run. Default 1000. */
  cycles?: number;
  /** Sample every K cycles. Default 100. */
  sampleEvery?: number;
  /**
   * Cycles before the first sample, while the target's code and caches warm up (a fresh
   * node:http server grows ~70 B/request over its first ~2000 requests, then stays flat).
   * Default `max(sampleEvery, 1000)`.
   */
  warmup?: number;
  /** Concurrent cycles. Default 1. */
  concurrency?: number;
  /** The verdict: fail above this many bytes per cycle. Default 64. */
  maxSlope?: number;
  /** Where failure snapshots go. Default a new directory under the OS temp dir. */
  snapshotDir?: string;
  /** Cycles between the two failure snapshots. Default `2 * sampleEvery`. */
  diffCycles?: number;
  /** Called after each sample. */
  onSample?: (s: SoakSample) => void;
}

/** One sample. */
export interface SoakSample extends HeapSample {
  cycle: number;
}

/** What {@link runSoak} resolves to. */
export interface SoakResult {
  /** False when the slope exceeds `maxSlope` or any cycle failed. */
  ok: boolean;
  /** Why the verdict failed, one line per cause (empty when ok). */
  reasons: string[];
  cycles: number;
  samples: SoakSample[];
  /** Heap growth in bytes per cycle, and the fit's R². */
  slope: number;
  r2: number;
  /** Handle growth per cycle (sockets, timers the target keeps). */
  handleSlope: number;
  maxSlope: number;
  /** Failed cycles (the action threw), warm-up included. */
  errors: number;
  /** When the slope failed: the two snapshot files and the types that grew most between them. */
  snapshots?: [string, string];
  grown?: TypeGrowth[];
}

function actionFn(action: SoakAction): { run: (cycle: number) => Promise<void>; close: () => Promise<void> } {
  if (typeof action === 'function') return { run: action, close: async () => {} };
  if (action && typeof action === 'object' && 'http' in action) {
    const url = new URL(action.http.url);
    const client = new Client(url.origin, { pipelining: 1 });
    const req = {
      method: (action.http.method ?? 'GET') as 'GET',
      path: url.pathname + url.search,
      headers: action.http.headers,
      body: action.http.body,
    };
    return {
      run: async () => {
        const res = await client.request(req);
        await res.body.dump();
      },
      close: () => client.close(),
    };
  }
  if (action && typeof action === 'object' && 'ws' in action) {
    const { url, message } = action.ws;
    return {
      run: () =>
        new Promise<void>((resolve, reject) => {
          const ws = new WebSocket(url);
          ws.once('error', reject);
          ws.once('open', () => {
            if (message === undefined) ws.close();
            else {
              ws.send(message);
              ws.once('message', () => ws.close());
            }
          });
          ws.once('close', () => resolve());
        }),
      close: async () => {},
    };
  }
  throw optionError('runSoak', 'action', 'a function, { http: { url } } or { ws: { url } }', action);
}

/**
 * Runs a soak test.
 *
 * @example
 * ```ts
 * import { httpHeapSampler, runSoak } from 'keel/load';
 * const sampler = httpHeapSampler('http://127.0.0.1:3000');
 * const r = await runSoak({ action: { http: { url: 'http://127.0.0.1:3000/topics/1' } }, sampler, cycles: 5000, maxSlope: 64 });
 * console.log(r.ok, r.slope, r.r2, r.grown);
 * await sampler.close();
 * ```
 */
export async function runSoak(options: SoakOptions): Promise<SoakResult> {
  const o = objectOptions('runSoak', options);
  const sampler = o.sampler;
  if (!sampler || typeof sampler.sample !== 'function' || typeof sampler.snapshot !== 'function') {
    throw optionError('runSoak', 'sampler', 'a HeapSampler (sample, snapshot)', sampler);
  }
  const sampleEvery = intOption('runSoak', 'sampleEvery', o.sampleEvery, 100, { min: 1 });
  const cycles = intOption('runSoak', 'cycles', o.cycles, 1000, { min: 2 * sampleEvery });
  const warmup = intOption('runSoak', 'warmup', o.warmup, Math.max(sampleEvery, 1000));
  const concurrency = intOption('runSoak', 'concurrency', o.concurrency, 1, { min: 1, max: 1000 });
  const maxSlope = numberOption('runSoak', 'maxSlope', o.maxSlope, 64, { min: 0 });
  const diffCycles = intOption('runSoak', 'diffCycles', o.diffCycles, 2 * sampleEvery, { min: 1 });
  const onSample = functionOption('runSoak', 'onSample', o.onSample) as SoakOptions['onSample'];
  const action = actionFn(o.action as SoakAction);
  let errors = 0;
  let firstError: unknown;
  let cycle = 0;
  // Runs `n` cycles with `concurrency` workers; a failed cycle is counted, not fatal.
  const drive = async (n: number): Promise<void> => {
    const end = cycle + n;
    const worker = async (): Promise<void> => {
      while (cycle < end) {
        const c = cycle++;
        try {
          await action.run(c);
        } catch (err) {
          if (errors++ === 0) firstError = err;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
  };
  try {
    await drive(warmup);
    const samples: SoakSample[] = [];
    const take = async (): Promise<void> => {
      const s = { cycle: cycle - warmup, ...(await sampler.sample()) };
      samples.push(s);
      onSample?.(s);
    };
    await take();
    while (cycle - warmup < cycles) {
      await drive(Math.min(sampleEvery, cycles - (cycle - warmup)));
      await take();
    }
    const fit = linearFit(
      samples.map((s) => s.cycle),
      samples.map((s) => s.heapUsed),
    );
    const handles = linearFit(
      samples.map((s) => s.cycle),
      samples.map((s) => s.handles),
    );
    const reasons: string[] = [];
    const slopeOk = fit.slope <= maxSlope;
    if (!slopeOk) reasons.push(`heap grows ${fit.slope.toFixed(1)} B/cycle, above the limit of ${maxSlope}`);
    // A target that failed every cycle did no work and so grew no heap: its flat slope
    // passed. A failed cycle means the measurement is not of the action, so it fails.
    if (errors > 0) {
      const first = firstError instanceof Error ? firstError.message : String(firstError);
      reasons.push(`${errors} of ${warmup + cycles} cycles failed (first: ${first})`);
    }
    const result: SoakResult = {
      ok: reasons.length === 0,
      reasons,
      cycles,
      samples,
      slope: fit.slope,
      r2: fit.r2,
      handleSlope: handles.slope,
      maxSlope,
      errors,
    };
    if (!slopeOk) {
      const dir = o.snapshotDir ?? join(tmpdir(), `keel-soak-${process.pid}-${Date.now()}`);
      await mkdir(dir, { recursive: true });
      const a = join(dir, 'before.heapsnapshot');
      const b = join(dir, 'after.heapsnapshot');
      await sampler.snapshot(a);
      await drive(diffCycles);
      await sampler.snapshot(b);
      result.snapshots = [a, b];
      result.grown = await diffHeapSnapshots(a, b);
    }
    return result;
  } finally {
    await action.close();
  }
}
