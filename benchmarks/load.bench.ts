/**
 * `npm run bench -- load [--duration 10] [--connections 50]`: keel load, autocannon and wrk
 * drive the same bare node:http hello-world server in the closed model, one after another
 * in one run. The server is pinned to core 1 and each generator to core 0 (when taskset
 * exists), so each generator has one core. Prints
 * `{"bench":"load","keel_rps":…,"autocannon_rps":…,"wrk_rps":…,…ratios}`.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
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

function run(cmd: string, args: string[]): string {
  const [c, a] = pinned(0, cmd, args);
  return execFileSync(c, a, { cwd: root, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, stdio: ['ignore', 'pipe', 'inherit'] });
}

const { child, url } = await startServer();
try {
  // Warm the server's JIT so the first generator is not penalised.
  if (has('wrk')) run('wrk', ['-t1', `-c${connections}`, '-d1s', url]);

  const keel = JSON.parse(
    run(process.execPath, [
      join(root, 'packages/keel/bin/keel.mjs'),
      'load',
      url,
      '-c',
      String(connections),
      '-d',
      `${seconds}s`,
      '--json',
      '-q',
    ]),
  ) as { rps: number; latency: { p99: number } };

  const ac = JSON.parse(
    run(join(root, 'node_modules/.bin/autocannon'), ['-c', String(connections), '-d', String(seconds), '--json', url]),
  ) as {
    requests: { total: number };
    duration: number;
  };
  const autocannonRps = ac.requests.total / ac.duration;

  let wrkRps = 0;
  if (has('wrk')) {
    const out = run('wrk', ['-t1', `-c${connections}`, `-d${seconds}s`, url]);
    wrkRps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 0);
  }

  report(
    'load',
    {
      keel_rps: keel.rps,
      autocannon_rps: autocannonRps,
      wrk_rps: wrkRps,
      keel_vs_autocannon: Math.round((keel.rps / autocannonRps) * 100) / 100,
      keel_vs_wrk: wrkRps ? Math.round((keel.rps / wrkRps) * 100) / 100 : 0,
    },
    { seconds, connections, pinned: taskset },
  );
} finally {
  child.kill();
}
