/**
 * A real PostgreSQL server for tests: a throwaway cluster (`initdb`) in a temporary directory,
 * listening on a free loopback port, with disk flushes off (fsync) because
 * nothing in it outlives the suite. Start it in `beforeAll`, close it in `afterAll`;
 * `stop()`/`start()` kill and restart it on the same port inside a test (to script an outage).
 * The processes are exempt from the leak check because the suite's `afterAll` owns them.
 *
 * PostgreSQL refuses to run as root, so as root the cluster belongs to the `postgres` user
 * that Debian's package creates (`apt-get install postgresql`; `npm test` installs it).
 *
 * @example
 * ```ts
 * let pg: PostgresServer;
 * beforeAll(async () => { pg = await startPostgres(); });
 * afterAll(() => pg.close());
 * // new pg.Client({ connectionString: pg.url }), or a database per test:
 * // const url = await pg.database('store');
 * ```
 */
import { spawn, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freePort } from './redis.ts';
import { serverProcess } from './server-process.ts';

export interface PostgresServer {
  readonly port: number;
  /** `postgres://keel@127.0.0.1:<port>/keel` (trust authentication: no password). */
  readonly url: string;
  /** True while the server process runs. */
  readonly running: boolean;
  /** Stops the server at once (immediate shutdown, as in a crash: the next start recovers from the WAL). */
  stop(): Promise<void>;
  /** Starts it again on the same port; resolves once it accepts connections. */
  start(): Promise<void>;
  /**
   * Creates a database for one test, named `<prefix>_<n>` (unique on this server; a copy of
   * `template` when given), and returns its URL.
   */
  database(prefix: string, template?: string): Promise<string>;
  /** Drops a database `database` made (its open connections are ended). */
  dropDatabase(url: string): Promise<void>;
  /** Stops it for good and deletes its cluster. */
  close(): Promise<void>;
}

/** The directory of the newest installed PostgreSQL's server binaries (Debian's layout). */
export function postgresBinDir(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .filter((v) => existsSync(join(root, v, 'bin', 'postgres')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] === undefined ? undefined : join(root, versions[0], 'bin');
}

/** uid and gid of the `postgres` account when running as root (PostgreSQL refuses root). */
function serverAccount(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('postgres:'));
  if (!line) throw new Error('running as root, but there is no postgres account to run PostgreSQL as (apt-get install postgresql)');
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

/**
 * Whether the server takes connections: a startup packet gets AuthenticationOk ('R'). While it
 * starts or recovers it answers an error instead ('E', 57P03), though it already listens.
 */
async function accepting(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = createConnection({ port, host: '127.0.0.1' });
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(500, () => done(false));
    sock.once('error', () => done(false));
    sock.once('connect', () => {
      const params = Buffer.from('user\0keel\0database\0postgres\0\0');
      const head = Buffer.alloc(8);
      head.writeInt32BE(8 + params.length, 0);
      head.writeInt32BE(196608, 4); // protocol 3.0
      sock.write(Buffer.concat([head, params]));
    });
    sock.once('data', (d) => done(d[0] === 0x52));
  });
}

export async function startPostgres(): Promise<PostgresServer> {
  const bin = postgresBinDir();
  if (!bin) throw new Error('PostgreSQL is not installed (apt-get install postgresql)');
  const account = serverAccount();
  const dir = mkdtempSync(join(tmpdir(), 'keel-pg-'));
  const data = join(dir, 'data');
  if (account) chownSync(dir, account.uid, account.gid);
  const init = spawnSync(
    join(bin, 'initdb'),
    ['-D', data, '-U', 'keel', '--auth=trust', '-E', 'UTF8', '--locale=C', '--no-sync', '--no-instructions'],
    { encoding: 'utf8', ...(account ?? {}) },
  );
  if (init.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`initdb failed (exit ${init.status}): ${init.stderr}`);
  }
  const port = await freePort();
  const args = ['-D', data, '-p', String(port), '-k', dir, '-c', 'listen_addresses=127.0.0.1'];
  // synchronous_commit stays on: with it off, a commit is acknowledged before its WAL is even
  // written, so stop() (an immediate shutdown) lost the last commits and a restarted server
  // lacked tables and rows a test had just made. With fsync off a written commit still costs no
  // disk flush, and survives the process being killed (only an OS crash would lose it).
  for (const setting of ['fsync=off', 'full_page_writes=off', 'max_connections=50', 'shared_buffers=16MB']) {
    args.push('-c', setting);
  }
  const server = serverProcess({
    name: 'postgres',
    spawn: () => spawn(join(bin, 'postgres'), args, { stdio: 'ignore', ...(account ?? {}) }),
    ready: () => accepting(port),
    readyWithinMs: 20_000,
    exitHint: `data directory ${data}`,
    // SIGQUIT, not SIGKILL: the postmaster takes its backends down before it exits, so a restart
    // on the same data directory never finds the old shared memory still in use.
    stopSignal: 'SIGQUIT',
  });
  const start = async (): Promise<void> => {
    await server.start();
    // The database the URL names (initdb makes only postgres, template0 and template1).
    if (!existsSync(join(dir, '.created'))) {
      const made = spawnSync(join(bin, 'createdb'), ['-h', '127.0.0.1', '-p', String(port), '-U', 'keel', 'keel'], { encoding: 'utf8' });
      if (made.status !== 0) throw new Error(`createdb failed: ${made.stderr}`);
      writeFileSync(join(dir, '.created'), '');
    }
  };
  await start();
  const url = `postgres://keel@127.0.0.1:${port}/keel`;
  let databases = 0;
  return {
    port,
    url,
    database: (prefix, template) => createDatabase(url, `${identifier(prefix)}_${++databases}`, template),
    dropDatabase: (dbUrl) => maintenance(url, `DROP DATABASE ${identifier(new URL(dbUrl).pathname.slice(1))} WITH (FORCE)`),
    get running() {
      return server.running;
    },
    stop: server.stop,
    start,
    async close() {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Creates the database `name` on the server (a copy of `template` when given) and returns its
 * URL. `name` must be a plain identifier: it is checked, since CREATE DATABASE takes no parameters.
 *
 * @example
 * ```ts
 * const url = await createDatabase(pg.url, 'contract_template');
 * ```
 */
export async function createDatabase(serverUrl: string, name: string, template?: string): Promise<string> {
  for (const id of [name, template ?? 'x']) identifier(id);
  await maintenance(serverUrl, `CREATE DATABASE ${name}${template ? ` TEMPLATE ${template}` : ''}`);
  return databaseUrl(serverUrl, name);
}

function identifier(id: string): string {
  if (!/^[a-z_][a-z0-9_]*$/.test(id)) throw new TypeError(`createDatabase: ${JSON.stringify(id)} is not a plain identifier`);
  return id;
}

function databaseUrl(serverUrl: string, name: string): string {
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

/** One statement on a connection of its own (CREATE/DROP DATABASE cannot run in a pool's transaction). */
async function maintenance(serverUrl: string, sql: string): Promise<void> {
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  try {
    await admin.query(sql);
  } finally {
    await admin.end();
  }
}
