/**
 * `npm run bench -- load [--duration 10] [--connections 50]`: keel load, autocannon and wrk
 * drive the same bare node:http hello-world server in the closed model, one after another
 * in one run. The server is pinned to core 1 and each generator to core 0 (when taskset
 * exists), so each generator has one core. Prints
 * `{"bench":"load","keel_rps":…,"autocannon_rps":…,"wrk_rps":…,…ratios}`.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { report } from './lib/measure.ts';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const { values } = parseArgs({ options: { duration: { type: 'string', default: '10' }, connections: { type: 'string', default: '50' } } });
const seconds = Number(values.duration);
const connections = Number(values.connections);

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

const { child, url } = await startServer();
try {
  // Warm the server's JIT so the first generator is not penalised.
  if (has('wrk')) run('wrk', ['-t1', `-c${connections}`, '-d1s', url]);

  const keelArgs = ['load', url, '-c', String(connections), '-d', `${seconds}s`, '--json', '-q'];
  const k = run(process.execPath, [join(root, 'packages/keel/bin/keel.mjs'), ...keelArgs]);
  const keel = JSON.parse(k.out) as { rps: number; completed: number };

  const acArgs = ['-c', String(connections), '-d', String(seconds), '--json', url];
  const a = run(join(root, 'node_modules/.bin/autocannon'), acArgs);
  const ac = JSON.parse(a.out) as { requests: { total: number }; duration: number };
  const autocannonRps = ac.requests.total / ac.duration;

  let wrkRps = 0;
  let wrkPerCpu = 0;
  if (has('wrk')) {
    const w = run('wrk', ['-t1', `-c${connections}`, `-d${seconds}s`, url]);
    wrkRps = Number(/Requests\/sec:\s+([\d.]+)/.exec(w.out)?.[1] ?? 0);
    wrkPerCpu = w.cpu ? (wrkRps * seconds) / w.cpu : 0;
  }

  report(
    'load',
    {
      keel_rps: keel.rps,
      autocannon_rps: autocannonRps,
      wrk_rps: wrkRps,
      keel_vs_autocannon: Math.round((keel.rps / autocannonRps) * 100) / 100,
      keel_vs_wrk: wrkRps ? Math.round((keel.rps / wrkRps) * 100) / 100 : 0,
      // Requests per CPU-second of the generator (keel's includes its tsx start-up).
      keel_req_per_cpu_s: k.cpu ? keel.completed / k.cpu : 0,
      autocannon_req_per_cpu_s: a.cpu ? ac.requests.total / a.cpu : 0,
      wrk_req_per_cpu_s: wrkPerCpu,
    },
    { seconds, connections, pinned: taskset },
  );
} finally {
  child.kill();
}
