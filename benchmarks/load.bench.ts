/**
 * `npm run bench -- load [--duration 10] [--connections 50] [--rounds 3]`: keel load,
 * autocannon and wrk drive the same bare node:http hello-world server in the closed model,
 * one after another in one run, for `rounds` rounds in rotating order; each reports its
 * median round. The server is pinned to core 1 and each generator to core 0 (when taskset
 * exists), so each generator has one core. Prints
 * `{"bench":"load","keel_rps":…,"autocannon_rps":…,"wrk_rps":…,…ratios}`.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { inRotatingRounds, median, report, stealMeter } from './lib/measure.ts';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    connections: { type: 'string', default: '50' },
    rounds: { type: 'string', default: '3' },
  },
});
const seconds = Number(values.duration);
const connections = Number(values.connections);
const rounds = Number(values.rounds);
for (const [name, v] of [
  ['duration', seconds],
  ['connections', connections],
  ['rounds', rounds],
] as const) {
  if (!Number.isInteger(v) || v < 1) throw new TypeError(`--${name} must be a positive integer, got ${values[name]}`);
}

const has = (bin: string): boolean => spawnSync('sh', ['-c', `command -v ${bin}`]).status === 0;
const taskset = has('taskset');
const pinned = (core: number, cmd: string, args: string[]): [string, string[]] =>
  taskset ? ['taskset', ['-c', String(core), cmd, ...args]] : [cmd, args];

const HELLO = `require('node:http').createServer((req, res) => res.end('hello world')).listen(0, '127.0.0.1', function () { console.log(this.address().port); });`;

async function startServer(): Promise<{ child: ChildProcess; url: string }> {
  const [cmd, args] = pinned(1, process.execPath, ['-e', HELLO]);
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<string>((resolve) => child.stdout!.once('data', (d: Buffer) => resolve(d.toString().trim())));
  return { child, url: `http://127.0.0.1:${port}/` };
}

/**
 * Runs a generator pinned to core 0 and returns its stdout and the CPU seconds it used (bash's
 * `times` for its children). On a shared machine the server is often the bottleneck, so
 * requests per CPU-second says more about a generator's efficiency than req/s alone.
 */
function run(cmd: string, args: string[]): { out: string; cpu: number } {
  const [c, a] = pinned(0, cmd, args);
  const r = spawnSync('bash', ['-c', '"$@"; code=$?; times >&2; exit $code', '_', c, ...a], {
    cwd: root,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.status !== 0) throw new Error(`${cmd} failed (${r.status}): ${r.stderr}`);
  const m = /(\d+)m([\d.]+)s (\d+)m([\d.]+)s\s*$/.exec(r.stderr);
  const cpu = m ? Number(m[1]) * 60 + Number(m[2]) + Number(m[3]) * 60 + Number(m[4]) : 0;
  return { out: r.stdout, cpu };
}

type Gen = 'keel' | 'autocannon' | 'wrk';
interface Sample {
  rps: number;
  perCpu: number;
  /** % of the round the hypervisor stole from the server's core, and from the generator's. */
  steal?: [number, number];
}

/** `drive` with the steal on both cores over the round (a slow round on a busy host shows here). */
function driveCounted(gen: Gen, url: string): Sample {
  const server = stealMeter(taskset ? 1 : '');
  const generator = stealMeter(taskset ? 0 : '');
  const sample = drive(gen, url);
  return { ...sample, steal: [server(), generator()] };
}

/** One timed run of one generator against `url`. */
function drive(gen: Gen, url: string): Sample {
  if (gen === 'keel') {
    const args = ['load', url, '-c', String(connections), '-d', `${seconds}s`, '--json', '-q'];
    const r = run(process.execPath, [join(root, 'packages/keel/bin/keel.mjs'), ...args]);
    const j = JSON.parse(r.out) as { rps: number; completed: number };
    // keel's CPU includes its tsx start-up.
    return { rps: j.rps, perCpu: r.cpu ? j.completed / r.cpu : 0 };
  }
  if (gen === 'autocannon') {
    const r = run(join(root, 'node_modules/.bin/autocannon'), ['-c', String(connections), '-d', String(seconds), '--json', url]);
    const j = JSON.parse(r.out) as { requests: { total: number }; duration: number };
    return { rps: j.requests.total / j.duration, perCpu: r.cpu ? j.requests.total / r.cpu : 0 };
  }
  const r = run('wrk', ['-t1', `-c${connections}`, `-d${seconds}s`, url]);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(r.out)?.[1] ?? 0);
  return { rps, perCpu: r.cpu ? (rps * seconds) / r.cpu : 0 };
}

const gens: Gen[] = has('wrk') ? ['keel', 'autocannon', 'wrk'] : ['keel', 'autocannon'];
const { child, url } = await startServer();
try {
  // Warm the server's JIT so the first generator is not penalised.
  if (has('wrk')) run('wrk', ['-t1', `-c${connections}`, '-d1s', url]);
  // The server is the bottleneck, and its rate drifts by ±10% over a minute on this machine
  // (one keel/autocannon pair measured 0.91x, 1.06x and 1.04x back to back). So each round
  // rotates the order, and each generator reports its median round.
  const samples: Map<Gen, Sample[]> = inRotatingRounds(rounds, gens, (gen) => driveCounted(gen, url));
  const rps = (g: Gen): number => (samples.has(g) ? median(samples.get(g)!.map((s) => s.rps)) : 0);
  const perCpu = (g: Gen): number => (samples.has(g) ? median(samples.get(g)!.map((s) => s.perCpu)) : 0);
  const ratio = (a: number, b: number): number => (b ? Math.round((a / b) * 100) / 100 : 0);
  const keelRps = rps('keel');
  const autocannonRps = rps('autocannon');
  const wrkRps = rps('wrk');
  report(
    'load',
    {
      keel_rps: keelRps,
      autocannon_rps: autocannonRps,
      wrk_rps: wrkRps,
      keel_vs_autocannon: ratio(keelRps, autocannonRps),
      keel_vs_wrk: ratio(keelRps, wrkRps),
      keel_req_per_cpu_s: perCpu('keel'),
      autocannon_req_per_cpu_s: perCpu('autocannon'),
      wrk_req_per_cpu_s: perCpu('wrk'),
      keel_rounds: samples
        .get('keel')!
        .map((s) => Math.round(s.rps))
        .join('/'),
      autocannon_rounds: samples
        .get('autocannon')!
        .map((s) => Math.round(s.rps))
        .join('/'),
      wrk_rounds: (samples.get('wrk') ?? []).map((s) => Math.round(s.rps)).join('/'),
    },
    {
      seconds,
      connections,
      rounds,
      pinned: taskset,
      // server core % / generator core %, per round: a round the host slowed is not the generator's.
      steal_pct_rounds: Object.fromEntries([...samples].map(([g, ss]) => [g, ss.map((x) => x.steal?.join('/')).join(' ')])),
    },
  );
} finally {
  child.kill();
}
