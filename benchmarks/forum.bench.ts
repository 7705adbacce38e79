/**
 * End-to-end figures of the forum: `npm run bench -- forum [--quick] [--db path] [--rounds 3] [--postgres]`.
 *
 * Seeds `large` once (reused from `benchmarks/.out/large.db`), copies it so every run starts
 * from the same data, then builds the forum (`npm run build`) and starts the bundle as a
 * production process (`node apps/forum/dist/server.js`, `NODE_ENV=production`) and a bare
 * `node:http` hello-world beside it, both pinned to core 1; `keel load` (bundled too, see
 * lib/keel-cli.ts) runs pinned to core 0 (when taskset exists). Scenarios, one after another:
 * - ceiling: the bare server, closed model, 50 connections
 * - cached read: `GET /api/v1/forums/:id/topics`, closed model, 50 connections
 * - mix: 60% topic lists, 25% topic reads (of the topics the lists show), 10% searches (eight
 *   common terms) and 5% authenticated replies (to any of the 50,000 topics), closed model
 * - half load: the mix in the open model at 50% of its measured max rate (60 s, after a 5 s
 *   warm-up at that rate that is not counted)
 * - many users: 5,000 keep-alive connections sending 2,500 req/s in total (60 s) while 1,000
 *   WebSocket clients are subscribed to topics
 * The ceiling, cached read and mix run in `--rounds` rounds (default 3; 1 with `--quick`),
 * rotating their order, and each figure is that phase's median round.
 * Prints `{"bench":"forum","bare_rps":…,"cached_read_rps":…,"mix_rps":…,"half_load_p99_ms":…,
 * "users5k_p95_ms":…,"users5k_errors":…,"rss_mb_peak":…,"half_load_cpu_pct":…,…,
 * "guest_halt_poll_ns":…}`; the notes above it add the forum's CPU per request in the mix and the
 * half phase (Linux `/proc`). `guest_halt_poll_ns` is how long this VM's idle vCPU polls before it
 * halts (-1: not a haltpoll guest). At 0 the half phase costs the forum ~13 µs more per request
 * and its p99 mostly misses; `--halt-poll-ns 200000` (root) runs with the kernel's default and
 * restores the setting after. The notes also give the hypervisor's steal on the servers' core per
 * phase (`steal_pct`), and for each open phase its worst second and where the core's time went
 * while that second's slowest request waited (`half_worst`, `users5k_worst`: the forum's main
 * thread, steal, idle).
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { closeSync, copyFileSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { openDatabase } from '../apps/forum/src/db/connection.ts';
import { startPostgres } from '../test-support/postgres.ts';
import { freePort } from '../test-support/redis.ts';
import { soakForum } from './lib/forum-soak.ts';
import { startHostSampler, worstWindow } from './lib/host-sampler.ts';
import { buildKeelCli } from './lib/keel-cli.ts';
import { cpuSeconds, guestHaltPollNs, HALT_POLL_FILE, inRotatingRounds, report, stealMeter } from './lib/measure.ts';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const out = join(here, '.out');
const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    db: { type: 'string', default: join(out, 'large.db') },
    skip5k: { type: 'boolean', default: false },
    rounds: { type: 'string', default: '3' },
    'soak-ws': { type: 'string' },
    'soak-http': { type: 'string' },
    'halt-poll-ns': { type: 'string' },
    postgres: { type: 'boolean', default: false },
  },
});
const quick = values.quick;
const closedSeconds = quick ? 5 : 10;
const rounds = quick ? 1 : Number(values.rounds);
if (!Number.isInteger(rounds) || rounds < 1) throw new TypeError(`--rounds must be a positive integer, got ${values.rounds}`);
const openSeconds = quick ? 15 : 60;

const has = (bin: string): boolean => spawnSync('sh', ['-c', `command -v ${bin}`]).status === 0;
const taskset = has('taskset') && (spawnSync('nproc').stdout?.toString().trim() ?? '1') !== '1';
const pinned = (core: number, cmd: string, args: string[]): [string, string[]] =>
  taskset ? ['taskset', ['-c', String(core), cmd, ...args]] : [cmd, args];

mkdirSync(out, { recursive: true });
// --postgres: the same phases with the forum on PostgreSQL (DATABASE_URL), on a throwaway server
// (test-support/postgres.ts: fsync off, 16 MB shared_buffers) seeded with the same `large` rows.
// Its processes are pinned to core 0, with the load generator, off the forum's core.
const pgServer = values.postgres ? await startPostgres() : undefined;
if (pgServer) {
  // Backends fork from the postmaster and inherit its CPU mask.
  const postmaster = spawnSync('pgrep', ['-f', `postgres -D .* -p ${new URL(pgServer.url).port} `], { encoding: 'utf8' }).stdout.trim();
  if (taskset && postmaster) for (const pid of postmaster.split('\n')) spawnSync('taskset', ['-apc', '0', pid]);
  process.stderr.write('seeding large into PostgreSQL (~1 min)…\n');
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'apps/forum/src/db/seed-cli.ts'), '--scale', 'large'], {
    stdio: 'inherit',
    env: { ...process.env, DATABASE_URL: pgServer.url },
  });
  if (r.status !== 0) {
    await pgServer.close();
    throw new Error('seeding PostgreSQL failed');
  }
} else if (!existsSync(values.db)) {
  process.stderr.write('seeding large (one-off, ~30 s)…\n');
  const r = spawnSync(
    process.execPath,
    ['--import', 'tsx', join(root, 'apps/forum/src/db/seed-cli.ts'), '--scale', 'large', '--db', values.db],
    {
      stdio: 'inherit',
    },
  );
  if (r.status !== 0) throw new Error('seeding failed');
}
const runDb = join(out, 'forum-run.db');
for (const suffix of ['', '-wal', '-shm']) rmSync(runDb + suffix, { force: true });
if (!pgServer) copyFileSync(values.db, runDb);

// Readers open what the topic lists show: the first page of each forum (20 forums x 20
// topics). Uniform reads over all 50,000 topics would model a crawler, not a forum's users.
const HOT_TOPICS_SQL =
  'SELECT id FROM (SELECT id, row_number() OVER (PARTITION BY forum_id ORDER BY updated_at DESC, id DESC) AS n FROM topics) hot WHERE n <= 20';
const hotTopics = pgServer
  ? await (async () => {
      const client = new pg.Client({ connectionString: pgServer.url });
      await client.connect();
      try {
        return (await client.query<{ id: number }>(HOT_TOPICS_SQL)).rows.map((r) => r.id).join('|');
      } finally {
        await client.end();
      }
    })()
  : (() => {
      const db = openDatabase(runDb);
      try {
        return (db.prepare(HOT_TOPICS_SQL).pluck().all() as number[]).join('|');
      } finally {
        db.close();
      }
    })();

async function startChild(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  ready: RegExp,
): Promise<{ child: ChildProcess; seen: string }> {
  const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let seen = '';
  await new Promise<void>((resolve, reject) => {
    const onData = (d: Buffer) => {
      seen += d.toString();
      if (ready.test(seen)) resolve();
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited (${code}) before it was ready:\n${seen}`)));
  });
  child.stdout!.resume();
  child.stderr!.resume();
  return { child, seen };
}

/**
 * A forum process writes its log to a file, not a pipe. The phases run `keel load` with
 * spawnSync, so nothing would read a pipe for up to a minute, and a burst of warnings (each
 * error with its stack) would fill the pipe's 64 KiB and block the forum's synchronous log
 * writes: a stall the bench itself made.
 */
async function startLogging(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  ready: RegExp,
  logFile: string,
): Promise<{ child: ChildProcess; seen: string }> {
  const fd = openSync(logFile, 'w');
  const child = spawn(cmd, args, { env, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  let exited: number | null | undefined;
  child.once('exit', (code) => {
    exited = code;
  });
  for (const started = performance.now(); ; ) {
    const seen = readFileSync(logFile, 'utf8');
    if (ready.test(seen)) return { child, seen };
    if (exited !== undefined) throw new Error(`${args.join(' ')} exited (${exited}) before it was ready:\n${seen}`);
    if (performance.now() - started > 60_000) throw new Error(`${args.join(' ')} was not ready within 60 s:\n${seen}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The forum's own warnings and errors (load shedding, a failed search) logged past byte `from`, by message. */
function warningsIn(logFile: string, from: number): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const line of readFileSync(logFile).subarray(from).toString('utf8').split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const { level, msg } = JSON.parse(line) as { level: number; msg: string };
      if (level >= 40) counts[msg] = (counts[msg] ?? 0) + 1;
    } catch {
      // not a log line
    }
  }
  return counts;
}

/** WebSocket clients held subscribed through the many-users phase. */
const WS_CLIENTS = 1_000;

/** ws-clients.ts's first line: its clients once each is subscribed or has failed. */
interface WsReady {
  connected: number;
  subscribed: number;
  requested: number;
  failed: number;
  errors: number;
}

/** The first line of `out` that holds `key` and parses as JSON, or undefined. */
function jsonLine<T>(out: string, key: string): T | undefined {
  for (const line of out.split('\n')) {
    if (!line.includes(key)) continue;
    try {
      return JSON.parse(line) as T;
    } catch {
      // tsx or Node printed something of its own
    }
  }
  return undefined;
}

function wsReadyLine(out: string): WsReady {
  const parsed = jsonLine<Partial<WsReady>>(out, '"requested"');
  if (typeof parsed?.subscribed !== 'number') throw new Error(`ws-clients printed no subscribed count:\n${out}`);
  return parsed as WsReady;
}

/** The core both servers run on (`''`: unpinned, the whole machine's counters). */
const serverCore = taskset ? 1 : '';
const HELLO = `require('node:http').createServer((req, res) => res.end('hello world')).listen(0, '127.0.0.1', function () { console.log('port ' + this.address().port); });`;

interface KeelResult {
  rps: number;
  /** The forum's CPU seconds (all threads) during the phase, when it was the target. */
  serverCpuS?: number;
  /** The share of the phase (%) the hypervisor stole from the servers' core. */
  stealPct?: number;
  completed: number;
  errors: { total: number; non2xx: number; timeouts: number; socket: number; unsent?: number; rate: number };
  statusCodes: Record<string, number>;
  latency: { p50: number; p95: number; p99: number; max: number };
  /** Open model: latency from the actual send, without the coordinated-omission correction. */
  uncorrected?: { p99: number };
  /** With `--warmup`: what ran before the measured run (its requests are not in `completed`). */
  warmup?: { durationMs: number; completed: number; errors: number; p99: number };
  warnings: string[];
  startedAt: number;
  durationMs: number;
  windows: { t: number; p99: number; max: number }[];
}

function keelLoad(args: string[]): KeelResult {
  const [cmd, a] = pinned(0, process.execPath, [keelCli, 'load', ...args, '--json', '-q']);
  const steal = stealMeter(serverCore);
  const r = spawnSync(cmd, a, { cwd: root, encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  const stealPct = steal();
  if (r.status !== 0 && r.status !== 1) throw new Error(`keel load failed (${r.status}): ${r.stderr}`);
  return { ...(JSON.parse(r.stdout) as KeelResult), stealPct };
}

function rssPeakMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0);
  return Math.round(kb / 102.4) / 10;
}

// The forum runs as production runs it: the bundle from `npm run build` (plain Node, no
// TypeScript loader thread and its second heap in the process).
const built = spawnSync(process.execPath, [join(root, 'apps/forum/scripts/build.mjs')], { encoding: 'utf8' });
if (built.status !== 0) throw new Error(`npm run build failed:\n${built.stderr}`);
const forumServer = join(root, 'apps/forum/dist/server.js');
// The generator runs bundled too: tsx's loader thread shared its core (lib/keel-cli.ts).
const keelCli = await buildKeelCli();

const forumPort = await freePort();
const [hcmd, hargs] = pinned(1, process.execPath, ['-e', HELLO]);
const { child: bare, seen: bareOut } = await startChild(hcmd, hargs, process.env, /port \d+/);
const barePort = Number(/port (\d+)/.exec(bareOut)?.[1]);
const forumEnv = (port: number): NodeJS.ProcessEnv => ({
  ...process.env,
  NODE_ENV: 'production',
  PORT: String(port),
  HOST: '127.0.0.1',
  ...(pgServer ? { DATABASE_URL: pgServer.url } : { DATABASE_PATH: runDb }),
  SEED_ON_EMPTY: 'none',
  LOG_LEVEL: 'info',
  PREVIEWS: 'off',
  // The next phase starts a new process at once; nothing here needs the load-balancer delay.
  SHUTDOWN_DELAY_MS: '0',
  // The bench's generator is one client address: lift the per-IP login limit it would hit.
  LOGIN_IP_LIMIT: '100000',
});
const [fcmd, fargs] = pinned(1, process.execPath, [forumServer]);
const forumLog = join(out, 'forum-server.log');
const { child: forum } = await startLogging(fcmd, fargs, forumEnv(forumPort), /Server listening at/, forumLog);
/** The forum's warnings by phase (only phases that had any). */
const warningsBy: Record<string, Record<string, number>> = {};
const base = `http://127.0.0.1:${forumPort}`;

/** Runs a phase against the forum, recording the forum's CPU time and its warnings over it. */
function forumLoad(phase: string, args: string[]): KeelResult {
  const before = cpuSeconds(forum.pid);
  const logFrom = statSync(forumLog).size;
  const result = keelLoad(args);
  const serverCpuS = cpuSeconds(forum.pid) - before;
  for (const [msg, n] of Object.entries(warningsIn(forumLog, logFrom))) {
    const into = warningsBy[phase] ?? {};
    into[msg] = (into[msg] ?? 0) + n;
    warningsBy[phase] = into;
  }
  return { ...result, serverCpuS };
}
/** Each open phase's worst second, and where the forum's core went during it (host-sampler.ts). */
const worstBy: Record<string, unknown> = {};
/** `forumLoad` with the forum's core sampled throughout, for the open-model phases. */
async function sampledForumLoad(phase: string, args: string[]): Promise<KeelResult> {
  const sampler = await startHostSampler(serverCore, forum.pid!, join(out, `host-${phase}.txt`), (c, a) => pinned(0, c, a));
  let result: KeelResult | undefined;
  try {
    result = forumLoad(phase, args);
    return result;
  } finally {
    const samples = await sampler.stop();
    if (result) worstBy[phase] = worstWindow(samples, result);
  }
}
/** The forum's CPU per request over a phase, µs (NaN without /proc). */
const cpuUsPerReq = (r: KeelResult): number =>
  Math.round(((r.serverCpuS ?? Number.NaN) * 1e6) / (r.completed + (r.warmup?.completed ?? 0)));

// --halt-poll-ns N (root, a cpuidle-haltpoll guest): the idle vCPU polls up to N ns before it
// halts, for this run only (restored after). The kernel's default is 200000; some VMs ship 0.
const haltPollBefore = guestHaltPollNs();
if (values['halt-poll-ns'] !== undefined) {
  const ns = Number(values['halt-poll-ns']);
  if (!Number.isInteger(ns) || ns < 0) throw new TypeError(`--halt-poll-ns must be a non-negative integer, got ${values['halt-poll-ns']}`);
  if (haltPollBefore < 0) throw new Error('--halt-poll-ns: this machine has no cpuidle-haltpoll driver');
  writeFileSync(HALT_POLL_FILE, String(ns));
  const restore = () => writeFileSync(HALT_POLL_FILE, String(haltPollBefore));
  process.once('exit', restore);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      restore();
      process.exit(130);
    });
  }
}

try {
  // An account for the authenticated replies.
  const reg = await fetch(`${base}/api/v1/auth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: `bench${Date.now() % 1e9}`, password: 'bench-password-123' }),
  });
  const { token } = (await reg.json()) as { token: string };
  if (!token) throw new Error(`register failed: ${reg.status}`);

  const listPath = join(out, 'forum-list.json');
  writeFileSync(listPath, JSON.stringify({ requests: [{ name: 'topic list', path: '/api/v1/forums/{{1..20}}/topics' }] }));
  const scenarioPath = join(out, 'forum-mix.json');
  writeFileSync(
    scenarioPath,
    JSON.stringify({
      requests: [
        { name: 'topic list', path: '/api/v1/forums/{{1..20}}/topics', weight: 60 },
        { name: 'topic read', path: `/api/v1/topics/{{${hotTopics}}}?limit=10`, weight: 25 },
        {
          name: 'search',
          path: '/api/v1/search?q={{latency|cache|breaker|replica|histogram|canary|checkpoint|partition}}&limit=10',
          weight: 10,
        },
        {
          name: 'reply',
          method: 'POST',
          path: '/api/v1/topics/{{1..50000}}/posts',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: { body: 'bench reply {{seq}} about latency and caching' },
          weight: 5,
        },
      ],
    }),
  );

  // Warm both servers' JIT and the forum's caches and page cache.
  keelLoad([`http://127.0.0.1:${barePort}/`, '-c', '50', '-d', '2s']);
  forumLoad('warm-up', [base, '-s', scenarioPath, '-c', '50', '-d', quick ? '3s' : '5s']);

  // The closed phases run in rounds, rotating their order, and each reports its median round:
  // this machine's rate drifts by ±10% within a minute, and one pass of each, always in the
  // same order, put the drift into the ratios (runs 13–15 in RESULTS.md).
  const closed = {
    bare: () => keelLoad([`http://127.0.0.1:${barePort}/`, '-c', '50', '-d', `${closedSeconds}s`]),
    cached: () => forumLoad('cached', [base, '-s', listPath, '-c', '50', '-d', `${closedSeconds}s`]),
    mix: () => forumLoad('mix', [base, '-s', scenarioPath, '-c', '50', '-d', `${closedSeconds}s`]),
  };
  const phases = inRotatingRounds(rounds, ['bare', 'cached', 'mix'] as const, (phase) => closed[phase]());
  const byPhase = { bare: phases.get('bare')!, cached: phases.get('cached')!, mix: phases.get('mix')! };
  const medianRound = (rs: KeelResult[]): KeelResult => [...rs].sort((a, b) => a.rps - b.rps)[Math.floor(rs.length / 2)]!;
  const roundsOf = (rs: KeelResult[]): string => rs.map((r) => Math.round(r.rps)).join('/');
  const errorsOf = (rs: KeelResult[]): number => rs.reduce((n, r) => n + r.errors.total, 0);
  /** The rounds' failures by kind (a 5xx, a timeout, a socket error, a request never sent). */
  const errorKindsOf = (rs: KeelResult[]) =>
    rs.reduce(
      (k, r) => ({
        non2xx: k.non2xx + r.errors.non2xx,
        timeouts: k.timeouts + r.errors.timeouts,
        socket: k.socket + r.errors.socket,
        unsent: k.unsent + (r.errors.unsent ?? 0),
      }),
      { non2xx: 0, timeouts: 0, socket: 0, unsent: 0 },
    );
  const ceiling = medianRound(byPhase.bare);
  const cached = medianRound(byPhase.cached);
  const mix = medianRound(byPhase.mix);
  const halfRate = Math.max(1, Math.round(mix.rps / 2));
  // The measured 60 s follow a warm-up at the same rate on connections of their own, as wrk2
  // drops its first 10 s: the phase's first second was its worst in every run of days 13-14
  // (p99 188-381 ms against 10-15 ms uncorrected over the phase), and against a bare server
  // the generator's own first seconds read 13-100 ms (keel load docs). `half_warmup_p99_ms` is
  // the warm-up's p99, reported beside the figure.
  const halfWarmupS = quick ? 2 : 5;
  const half = await sampledForumLoad('half', [
    base,
    '-s',
    scenarioPath,
    '-c',
    '100',
    '--rate',
    String(halfRate),
    '-d',
    `${openSeconds}s`,
    '--warmup',
    `${halfWarmupS}s`,
  ]);
  // Half of the closed rate is not half of the core: evenly spaced arrivals cost the server
  // more per request than the closed model's back-to-back ones (fewer requests per wake-up),
  // so the phase runs at about half_cpu_us_per_req / (2 x mix_cpu_us_per_req) of the core,
  // 70-90% on this machine, and its p99 follows that utilisation steeply. Reported so each
  // run's p99 can be read against it.
  const halfCpuPct = Math.round(((half.serverCpuS ?? Number.NaN) / (openSeconds + halfWarmupS)) * 100);

  let users5k: KeelResult | undefined;
  let wsSummary: unknown;
  let wsReady: WsReady | undefined;
  let wsWarning: string | undefined;
  if (!values.skip5k) {
    const [wcmd, wargs] = pinned(0, process.execPath, [
      '--import',
      'tsx',
      join(here, 'lib/ws-clients.ts'),
      '--url',
      `ws://127.0.0.1:${forumPort}/api/v1/live`,
      '--count',
      String(WS_CLIENTS),
    ]);
    // The line comes once every client has its `subscribed` ack or has failed (ws-clients.ts).
    const { child: ws, seen: wsOut } = await startChild(wcmd, wargs, process.env, /"requested".*\n/);
    wsReady = wsReadyLine(wsOut);
    if (wsReady.subscribed < WS_CLIENTS) {
      // The phase is defined with all of them subscribed; its figures are kept, flagged.
      wsWarning = `only ${wsReady.subscribed} of ${WS_CLIENTS} WebSocket clients subscribed (${wsReady.failed} failed, ${wsReady.errors} socket errors): users5k_* is not the issue's many-users phase`;
      process.stderr.write(`WARNING: ${wsWarning}\n`);
    }
    users5k = await sampledForumLoad('users5k', [base, '-s', scenarioPath, '-c', '5000', '--rate', '2500', '-d', `${openSeconds}s`]);
    const closed = new Promise<string>((resolve) => {
      let s = '';
      ws.stdout!.on('data', (d: Buffer) => {
        s += d.toString();
      });
      ws.once('exit', () => resolve(s));
    });
    ws.kill('SIGTERM');
    wsSummary = (await closed).trim();
    // Clients dropped during the phase (a slow consumer, a heartbeat timeout) count against it too.
    const stillSubscribed = jsonLine<{ subscribed?: number }>(String(wsSummary), '"closed"')?.subscribed;
    if (wsWarning === undefined && stillSubscribed !== undefined && stillSubscribed < WS_CLIENTS) {
      wsWarning = `only ${stillSubscribed} of ${WS_CLIENTS} WebSocket clients were still subscribed when the many-users phase ended`;
      process.stderr.write(`WARNING: ${wsWarning}\n`);
    }
  }

  const rss = forum.pid ? rssPeakMb(forum.pid) : 0;
  forum.kill('SIGTERM');

  // Leaks: a fresh forum process with the inspector on, soaked with WebSocket cycles and then
  // mixed HTTP requests (the full counts unless --quick or --soak-ws/--soak-http).
  const soakPort = await freePort();
  const [scmd, sargs] = pinned(1, process.execPath, ['--inspect=127.0.0.1:0', forumServer]);
  const { child: soakChild, seen: soakOut } = await startLogging(
    scmd,
    sargs,
    forumEnv(soakPort),
    /Server listening at/,
    join(out, 'forum-soak.log'),
  );
  let soak: Awaited<ReturnType<typeof soakForum>>;
  try {
    const inspector = /ws:\/\/(127\.0\.0\.1:\d+)\//.exec(soakOut)?.[1];
    if (!inspector) throw new Error(`no inspector address in:\n${soakOut}`);
    const wsCycles = Number(values['soak-ws'] ?? (quick ? 2_000 : 10_000));
    const httpCycles = Number(values['soak-http'] ?? (quick ? 10_000 : 100_000));
    // A PostgreSQL pool keeps up to 10 idle connections (sockets and their timers) for its idle
    // timeout, 30 s (db/pg/client.ts): bounded warmth, not a leak, so the count may take that long.
    const settleMs = pgServer ? 31_000 : 2_000;
    soak = await soakForum(`http://127.0.0.1:${soakPort}`, inspector, token, wsCycles, httpCycles, settleMs);
  } finally {
    soakChild.kill('SIGTERM');
  }
  const mixCodes = mix.statusCodes;
  const haltPollNs = guestHaltPollNs();
  if (haltPollNs === 0) {
    process.stderr.write(
      'note: this VM halts an idle vCPU at once (guest_halt_poll_ns=0), so each request of the half-load phase\n' +
        '      that arrives alone wakes the forum through the hypervisor (see benchmarks/RESULTS.md, day 7;\n' +
        "      --halt-poll-ns 200000 runs with the kernel's default)\n",
    );
  }
  report(
    'forum',
    {
      database: pgServer ? 'postgres' : 'sqlite',
      bare_rps: Math.round(ceiling.rps),
      cached_read_rps: Math.round(cached.rps),
      mix_rps: Math.round(mix.rps),
      half_load_p99_ms: half.latency.p99,
      users5k_p95_ms: users5k ? users5k.latency.p95 : -1,
      users5k_errors: users5k ? users5k.errors.total : -1,
      // -1: the phase was skipped. Below 1,000 the phase did not run as specified (see users5k_ws_warning).
      users5k_ws_subscribed: wsReady ? wsReady.subscribed : -1,
      rss_mb_peak: rss,
      half_load_cpu_pct: halfCpuPct,
      cached_vs_bare: Math.round((cached.rps / ceiling.rps) * 100) / 100,
      mix_vs_bare: Math.round((mix.rps / ceiling.rps) * 100) / 100,
      soak_ws_slope_b: soak.ws_slope_b,
      soak_http_slope_b: soak.http_slope_b,
      soak_handles_delta: soak.handles_delta,
      soak_ok: soak.ok,
      guest_halt_poll_ns: haltPollNs,
    },
    {
      quick,
      pinned: taskset,
      half_rate: halfRate,
      half_errors: half.errors,
      half_codes: half.statusCodes,
      half_warnings: half.warnings,
      half_p50_ms: half.latency.p50,
      half_uncorrected_p99_ms: half.uncorrected?.p99,
      half_warmup_p99_ms: half.warmup?.p99,
      half_worst: worstBy.half,
      steal_pct: {
        bare: ceiling.stealPct,
        cached: cached.stealPct,
        mix: mix.stealPct,
        half: half.stealPct,
        users5k: users5k?.stealPct,
      },
      mix_cpu_us_per_req: cpuUsPerReq(mix),
      half_cpu_us_per_req: cpuUsPerReq(half),
      rounds,
      bare_rounds: roundsOf(byPhase.bare),
      cached_rounds: roundsOf(byPhase.cached),
      mix_rounds: roundsOf(byPhase.mix),
      mix_errors: errorsOf(byPhase.mix),
      mix_error_kinds: errorKindsOf(byPhase.mix),
      mix_codes: mixCodes,
      cached_errors: errorsOf(byPhase.cached),
      users5k_rps: users5k?.rps,
      users5k_warnings: users5k?.warnings,
      users5k_worst: worstBy.users5k,
      ws: wsSummary,
      ws_ready: wsReady,
      ...(wsWarning ? { users5k_ws_warning: wsWarning } : {}),
      soak,
      forum_warnings: warningsBy,
    },
  );
} finally {
  forum.kill('SIGTERM');
  bare.kill();
  await pgServer?.close();
}
