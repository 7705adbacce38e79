/**
 * Shared measurement helpers for the micro-benchmarks. Each scenario is warmed up, then
 * timed in several rounds; the median round is reported, so one GC pause or a noisy
 * neighbour moves the result less than a mean would.
 */
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

export interface MeasureOptions {
  /** Calls per round. Default 200,000. */
  iterations?: number;
  /** Timed rounds; the median is reported. Default 5. */
  rounds?: number;
  /** Untimed calls first, so the JIT has settled. Default: one round's worth. */
  warmup?: number;
}

export interface Measurement {
  opsPerSec: number;
  nsPerOp: number;
  rounds: number[];
}

/**
 * CPU seconds a process has used so far, all its threads (utime + stime from Linux `/proc`, in
 * clock ticks of 10 ms); NaN where `/proc` is missing. On a shared machine req/s moves with the
 * generator and the neighbours; the server's CPU per request moves less, and its utilisation
 * says how near saturation an open-model phase ran.
 */
export function cpuSeconds(pid: number | undefined): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return Number.NaN;
  }
}

/**
 * Seconds the hypervisor has stolen from core `core` so far (`''`: all cores summed): time the
 * vCPU was ready to run and the host ran something else (`/proc/stat`'s steal); NaN without it.
 * On a halting guest (`guest_halt_poll_ns` 0) every wake-up from idle can wait here.
 */
function stealSeconds(core: number | ''): number {
  try {
    const line = readFileSync('/proc/stat', 'utf8')
      .split('\n')
      .find((l) => l.startsWith(`cpu${core} `));
    return Number(line?.trim().split(/\s+/)[8]) / 100;
  } catch {
    return Number.NaN;
  }
}

/**
 * Starts counting steal on `core`; the returned function gives the share of the wall time since
 * then that was stolen, in % with one decimal (NaN without `/proc/stat`).
 */
export function stealMeter(core: number | ''): () => number {
  const before = stealSeconds(core);
  const started = performance.now();
  return () => Math.round(((stealSeconds(core) - before) * 1e6) / (performance.now() - started)) / 10;
}

/** `cpuidle-haltpoll`'s setting for this guest (root may write it). */
export const HALT_POLL_FILE = '/sys/module/haltpoll/parameters/guest_halt_poll_ns';

/**
 * How long an idle vCPU of this Linux guest polls before it halts (`cpuidle-haltpoll`'s
 * `guest_halt_poll_ns`, the kernel's default 200,000), or -1 where that driver is absent. At 0
 * every wake-up from idle goes through the hypervisor: a server whose requests arrive one at a
 * time (an open-model phase) pays it on each, a saturated one (a closed-model phase) barely.
 */
export function guestHaltPollNs(): number {
  try {
    return Number(readFileSync(HALT_POLL_FILE, 'utf8').trim());
  } catch {
    return -1;
  }
}

export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/**
 * Runs each of `keys` once per round, `rounds` times, rotating the order each round so that a
 * machine whose speed drifts over a minute weighs on every key alike. Returns each key's
 * results in round order.
 */
export function inRotatingRounds<K, R>(rounds: number, keys: readonly K[], run: (key: K) => R): Map<K, R[]> {
  const out = new Map<K, R[]>(keys.map((k) => [k, []]));
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < keys.length; i++) {
      const key = keys[(round + i) % keys.length] as K;
      out.get(key)!.push(run(key));
    }
  }
  return out;
}

/** Times `fn` called sequentially (each call awaited) and returns the median ops/s. */
export async function measureAsync(fn: (i: number) => unknown, options: MeasureOptions = {}): Promise<Measurement> {
  const iterations = options.iterations ?? 200_000;
  const roundsCount = options.rounds ?? 5;
  const warmup = options.warmup ?? iterations;
  for (let i = 0; i < warmup; i++) await fn(i);
  const rounds: number[] = [];
  for (let r = 0; r < roundsCount; r++) {
    const start = performance.now();
    for (let i = 0; i < iterations; i++) await fn(i);
    const ms = performance.now() - start;
    rounds.push((iterations / ms) * 1000);
  }
  const opsPerSec = median(rounds);
  return { opsPerSec, nsPerOp: 1e9 / opsPerSec, rounds };
}

/** Times a synchronous `fn`. */
export function measureSync(fn: (i: number) => unknown, options: MeasureOptions = {}): Measurement {
  const iterations = options.iterations ?? 1_000_000;
  const roundsCount = options.rounds ?? 5;
  const warmup = options.warmup ?? iterations;
  let sink: unknown;
  for (let i = 0; i < warmup; i++) sink = fn(i);
  const rounds: number[] = [];
  for (let r = 0; r < roundsCount; r++) {
    const start = performance.now();
    for (let i = 0; i < iterations; i++) sink = fn(i);
    const ms = performance.now() - start;
    rounds.push((iterations / ms) * 1000);
  }
  if (sink === Symbol.for('never')) console.log(sink);
  const opsPerSec = median(rounds);
  return { opsPerSec, nsPerOp: 1e9 / opsPerSec, rounds };
}

/** Prints a human table to stderr and the final JSON line to stdout. */
export function report(bench: string, figures: Record<string, number | string | boolean>, notes: Record<string, unknown> = {}): void {
  for (const [k, v] of Object.entries(figures)) {
    process.stderr.write(`${k.padEnd(28)} ${typeof v === 'number' ? Math.round(v).toLocaleString('en-US') : v}\n`);
  }
  for (const [k, v] of Object.entries(notes)) process.stderr.write(`${k.padEnd(28)} ${JSON.stringify(v)}\n`);
  process.stdout.write(`${JSON.stringify({ bench, ...roundFigures(figures) })}\n`);
}

function roundFigures(figures: Record<string, number | string | boolean>): Record<string, number | string | boolean> {
  const out: Record<string, number | string | boolean> = {};
  for (const [k, v] of Object.entries(figures)) out[k] = typeof v === 'number' ? Math.round(v * 100) / 100 : v;
  return out;
}
