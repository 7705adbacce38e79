/**
 * `keel soak`: drive N cycles of an action against a target, sample its heap after a forced
 * GC every K cycles, fit a least-squares line through (cycle, heapUsed + arrayBuffers), and
 * fail when the slope exceeds `maxSlope` bytes per cycle, any cycle fails (an error, an
 * unexpected status or reply, a timeout), or a sample was taken without a forced GC. When the
 * slope fails, two heap snapshots `diffCycles` apart are written and the object types that
 * grew most are named.
 */
import { mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Clock } from '../clock.ts';
import {
  clockOption,
  durationOption,
  functionOption,
  intOption,
  numberOption,
  objectOptions,
  oneOfOption,
  optionError,
} from '../internal/options.ts';
import { TimeoutError } from '../resilience/errors.ts';
import { withDeadline } from './deadline.ts';
import { diffHeapSnapshots, type TypeGrowth } from './heap-diff.ts';
import type { HeapSample, HeapSampler } from './heap-sampler.ts';
import { type HttpSoakAction, httpCycle, type SoakCycle, type WsSoakAction, wsCycle } from './soak-actions.ts';
import { linearFit } from './stats.ts';

/** The action a cycle performs; a function gets the cycle's signal, aborted at its timeout. */
export type SoakAction = { http: HttpSoakAction } | { ws: WsSoakAction } | ((cycle: number, signal: AbortSignal) => Promise<void>);

/** What the verdict fits: V8 heap plus Buffer memory (the default), or the V8 heap alone. */
export type SoakFit = 'heapUsed+arrayBuffers' | 'heapUsed';

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
  /**
   * What the slope is fitted to. Default `'heapUsed+arrayBuffers'`: a Buffer leak lives
   * mostly outside the V8 heap (a 1 KB-per-request Buffer leak read 317 B/cycle in heapUsed
   * alone). A sampler that reports no `arrayBuffers` is fitted on heapUsed.
   */
  fit?: SoakFit;
  /**
   * A cycle still running after this many ms fails (and is aborted). Default 10000. Three
   * cycles timing out in a row end the soak without a verdict: the target stopped answering,
   * and waiting out every remaining cycle would take `cycles × cycleTimeoutMs`.
   */
  cycleTimeoutMs?: number;
  /** Where failure snapshots go. Default a new directory under the OS temp dir. */
  snapshotDir?: string;
  /** Cycles between the two failure snapshots. Default `2 * sampleEvery`. */
  diffCycles?: number;
  /** Called after each sample. */
  onSample?: (s: SoakSample) => void;
  /** Times the cycle timeout. Default the real clock. */
  clock?: Clock;
}

/** One sample. */
export interface SoakSample extends HeapSample {
  cycle: number;
}

/** What {@link runSoak} resolves to. */
export interface SoakResult {
  /** False when the slope exceeds `maxSlope`, any cycle failed, or a sample had no forced GC. */
  ok: boolean;
  /** Why the verdict failed, one line per cause (empty when ok). */
  reasons: string[];
  cycles: number;
  samples: SoakSample[];
  /** What was fitted: `fit`, or `'heapUsed'` when the sampler reported no arrayBuffers. */
  fit: SoakFit;
  /**
   * Growth of the fitted figure in bytes per cycle, and the fit's R². NaN when the soak gave
   * no verdict (a sample without a forced GC, or three cycles in a row timing out, end it at once).
   */
  slope: number;
  r2: number;
  /** heapUsed's own slope, and arrayBuffers' (undefined when the sampler reports none). */
  heapSlope: number;
  arrayBuffersSlope: number | undefined;
  /** Handle growth per cycle (sockets, timers the target keeps). */
  handleSlope: number;
  maxSlope: number;
  /** Failed cycles (the action threw, answered an unexpected status or reply, or timed out), warm-up included. */
  errors: number;
  /** When the slope failed: the two snapshot files and the types that grew most between them. */
  snapshots?: [string, string];
  grown?: TypeGrowth[];
}

function actionCycle(action: SoakAction): SoakCycle {
  if (typeof action === 'function') return { run: action, close: async () => {} };
  if (action && typeof action === 'object' && 'http' in action)
    return httpCycle(objectOptions('runSoak action', action.http) as HttpSoakAction);
  if (action && typeof action === 'object' && 'ws' in action) return wsCycle(objectOptions('runSoak action', action.ws) as WsSoakAction);
  throw optionError('runSoak', 'action', 'a function, { http: { url } } or { ws: { url } }', action);
}

/** Cycles timing out in a row that end the soak: the target has stopped answering. */
const STALLED_AFTER = 3;

const slopeOf = (samples: SoakSample[], y: (s: SoakSample) => number): { slope: number; r2: number } =>
  linearFit(
    samples.map((s) => s.cycle),
    samples.map(y),
  );

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
  const cycleTimeoutMs = durationOption('runSoak', 'cycleTimeoutMs', o.cycleTimeoutMs, 10_000, 1);
  const fitOption = oneOfOption('runSoak', 'fit', o.fit, ['heapUsed+arrayBuffers', 'heapUsed'] as const, 'heapUsed+arrayBuffers');
  const clock = clockOption('runSoak', o.clock);
  const onSample = functionOption('runSoak', 'onSample', o.onSample) as SoakOptions['onSample'];
  const action = actionCycle(o.action as SoakAction);
  let errors = 0;
  let firstError: unknown;
  let cycle = 0;
  let timeoutsInARow = 0;
  let stalled = false;
  // Runs `n` cycles with `concurrency` workers; a failed cycle is counted, not fatal, but a
  // target that stopped answering ends the run (each cycle would wait out its timeout).
  const drive = async (n: number): Promise<void> => {
    const end = cycle + n;
    const worker = async (): Promise<void> => {
      while (!stalled && cycle < end) {
        const c = cycle++;
        try {
          await withDeadline((signal) => action.run(c, signal), cycleTimeoutMs, clock, 'soak cycle');
          timeoutsInARow = 0;
        } catch (err) {
          if (errors++ === 0) firstError = err;
          timeoutsInARow = err instanceof TimeoutError ? timeoutsInARow + 1 : 0;
          if (timeoutsInARow >= STALLED_AFTER) stalled = true;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
  };
  const cycleReason = (): string => {
    const first = firstError instanceof Error ? firstError.message : String(firstError);
    return `${errors} of ${cycle} cycles failed (first: ${first})`;
  };
  try {
    await drive(warmup);
    const samples: SoakSample[] = [];
    // Returns false for a sample taken without a forced GC: the soak stops, without a verdict.
    const take = async (): Promise<boolean> => {
      const s = { cycle: cycle - warmup, ...(await sampler.sample()) };
      samples.push(s);
      onSample?.(s);
      return s.gc !== false;
    };
    let forced = stalled || (await take());
    while (forced && !stalled && cycle - warmup < cycles) {
      await drive(Math.min(sampleEvery, cycles - (cycle - warmup)));
      if (!stalled) forced = await take();
    }
    if (!forced || stalled) {
      // Measuring the rest would take the whole soak to produce a number that means nothing.
      const reasons = [
        stalled
          ? `no verdict: ${STALLED_AFTER} cycles in a row timed out (after ${cycleTimeoutMs} ms each), so the target stopped answering; the soak stopped at cycle ${cycle}`
          : 'no verdict: the target sampled its heap without a forced GC (gc: false), so the heap holds garbage and the slope is noise; run the target with --expose-gc (node --expose-gc server.js), or sample over --inspect',
      ];
      if (errors > 0) reasons.push(cycleReason());
      return {
        ok: false,
        reasons,
        cycles,
        samples,
        fit: fitOption,
        slope: Number.NaN,
        r2: Number.NaN,
        heapSlope: Number.NaN,
        arrayBuffersSlope: undefined,
        handleSlope: Number.NaN,
        maxSlope,
        errors,
      };
    }
    const buffers = samples.every((s) => typeof s.arrayBuffers === 'number');
    const fit: SoakFit = buffers ? fitOption : 'heapUsed';
    const fitted = slopeOf(samples, fit === 'heapUsed' ? (s) => s.heapUsed : (s) => s.heapUsed + s.arrayBuffers!);
    const reasons: string[] = [];
    const slopeOk = fitted.slope <= maxSlope;
    if (!slopeOk) reasons.push(`${fit} grows ${fitted.slope.toFixed(1)} B/cycle, above the limit of ${maxSlope}`);
    // A target that failed every cycle did no work and so grew no heap: its flat slope
    // passed. A failed cycle means the measurement is not of the action, so it fails.
    if (errors > 0) reasons.push(cycleReason());
    const result: SoakResult = {
      ok: reasons.length === 0,
      reasons,
      cycles,
      samples,
      fit,
      slope: fitted.slope,
      r2: fitted.r2,
      heapSlope: slopeOf(samples, (s) => s.heapUsed).slope,
      arrayBuffersSlope: buffers ? slopeOf(samples, (s) => s.arrayBuffers!).slope : undefined,
      handleSlope: slopeOf(samples, (s) => s.handles).slope,
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
