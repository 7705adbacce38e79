/**
 * Who had the server's core during a load phase's worst second. A child process samples Linux
 * `/proc` every 50 ms while the phase runs: the server core's steal time (the hypervisor ran
 * something else on it), its idle time, and the server's CPU time (all threads, and the main
 * thread alone). Lined up with `keel load`'s windows (`startedAt` + `t`), it tells a stall the
 * service made (its main thread busy through it) from one the host made (steal) or one where
 * the service was not running at all (the core idle). The bench's own loop is blocked while a
 * phase runs (`spawnSync`), so the sampler is a process of its own; it writes on SIGTERM.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';

/** One sample: wall time (ms), then counters in clock ticks (10 ms each). */
interface Sample {
  at: number;
  steal: number;
  idle: number;
  proc: number;
  main: number;
}

// Plain JS for `node -e`: no TypeScript loader in the sampler's own start-up.
const SAMPLER = `
const fs = require('node:fs');
const [core, pid, file] = process.argv.slice(1);
const out = [];
const ticks = (path) => {
  try {
    const s = fs.readFileSync(path, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]);
  } catch { return -1; }
};
const sample = () => {
  const line = fs.readFileSync('/proc/stat', 'utf8').split('\\n').find((l) => l.startsWith('cpu' + core + ' '));
  const f = line.trim().split(/\\s+/).map(Number);
  out.push([Date.now(), f[8], f[4] + f[5], ticks('/proc/' + pid + '/stat'), ticks('/proc/' + pid + '/task/' + pid + '/stat')].join(' '));
  if (out.length > 72000) out.shift();
};
sample();
const timer = setInterval(sample, 50);
process.on('SIGTERM', () => { clearInterval(timer); sample(); fs.writeFileSync(file, out.join('\\n')); process.exit(0); });
// The bench holds this pipe open; if it dies without stopping us, its end closes and so do we.
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
console.log('sampling');
`;

export interface HostSampler {
  /** Stops sampling and returns the samples. */
  stop(): Promise<Sample[]>;
}

/**
 * Starts sampling core `core` (`''`: all cores together) and process `pid`, the sampler itself
 * started through `pin` (taskset onto the generator's core); resolves once the first sample is
 * taken. Without `/proc` the samples come back empty.
 */
export async function startHostSampler(
  core: number | '',
  pid: number,
  file: string,
  pin: (cmd: string, args: string[]) => [string, string[]],
): Promise<HostSampler> {
  const [cmd, args] = pin(process.execPath, ['-e', SAMPLER, String(core), String(pid), file]);
  const child: ChildProcess = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'inherit'] });
  const started = await new Promise<boolean>((resolve) => {
    child.stdout!.once('data', () => resolve(true));
    child.once('exit', () => resolve(false));
  });
  return {
    async stop(): Promise<Sample[]> {
      if (!started) return [];
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
      try {
        return readFileSync(file, 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((l) => {
            const [at, steal, idle, proc, main] = l.split(' ').map(Number) as [number, number, number, number, number];
            return { at, steal, idle, proc, main };
          });
      } finally {
        rmSync(file, { force: true });
      }
    },
  };
}

/** Where the server core's time went over a span, in ms. */
export interface CoreSpan {
  from_s: number;
  span_ms: number;
  steal_ms: number;
  idle_ms: number;
  server_cpu_ms: number;
  server_main_ms: number;
}

/** Counter deltas between the samples bracketing [from, to] (wall ms). */
export function coreSpan(samples: Sample[], from: number, to: number, startedAt: number): CoreSpan | undefined {
  const first = samples.findLast((s) => s.at <= from) ?? samples[0];
  const last = samples.find((s) => s.at >= to) ?? samples.at(-1);
  if (!first || !last || last.at <= first.at) return undefined;
  const ms = (k: keyof Sample): number => (last[k] - first[k]) * 10;
  return {
    from_s: Math.round((first.at - startedAt) / 100) / 10,
    span_ms: last.at - first.at,
    steal_ms: ms('steal'),
    idle_ms: ms('idle'),
    server_cpu_ms: ms('proc'),
    server_main_ms: ms('main'),
  };
}

interface Window {
  t: number;
  p99: number;
  max: number;
}

/**
 * The phase's worst window by max latency, and the core's time over the span its slowest
 * request waited (from `max` ms before the window's start to the window's end; capped at 5 s),
 * with the phase's total steal and the most steal any one second had.
 */
export function worstWindow(
  samples: Sample[],
  result: { startedAt: number; durationMs: number; windows: Window[] },
  windowMs = 1000,
): Record<string, unknown> | undefined {
  if (samples.length < 2 || result.windows.length === 0) return undefined;
  const worst = result.windows.reduce((a, b) => (b.max > a.max ? b : a));
  const end = result.startedAt + worst.t + windowMs;
  const from = result.startedAt + worst.t - Math.min(worst.max, 5000);
  const whole = coreSpan(samples, result.startedAt, result.startedAt + result.durationMs, result.startedAt);
  let maxStealPerSecond = 0;
  for (let t = 0; t + windowMs <= result.durationMs; t += windowMs) {
    const s = coreSpan(samples, result.startedAt + t, result.startedAt + t + windowMs, result.startedAt);
    if (s) maxStealPerSecond = Math.max(maxStealPerSecond, s.steal_ms);
  }
  return {
    window_t_s: Math.round(worst.t / 100) / 10,
    window_p99_ms: worst.p99,
    window_max_ms: worst.max,
    waited: coreSpan(samples, from, end, result.startedAt),
    phase_steal_ms: whole?.steal_ms,
    phase_idle_ms: whole?.idle_ms,
    max_steal_ms_in_1s: maxStealPerSecond,
  };
}
