import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { intOption } from '../options.ts';
import { QueryStats } from './query-stats.ts';

export type Db = Database.Database;
export type Statement = Database.Statement;

export interface PreparedInfo {
  name: string;
  sql: string;
  /** Plan findings this statement is allowed, with the reason (checked by the EXPLAIN test). */
  allow: readonly string[];
}

/**
 * Opens the database with the settings the service relies on and a registry of every
 * statement prepared through {@link Statements}, so a test can EXPLAIN each one.
 */
export interface OpenOptions {
  /** How long a write waits for a lock another connection holds, ms. Default 5,000. */
  busyTimeoutMs?: number;
}

export function openDatabase(path: string, options: OpenOptions = {}): Db {
  const busyTimeoutMs = intOption('openDatabase', 'busyTimeoutMs', options.busyTimeoutMs, 5_000);
  let db: Db | undefined;
  try {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    db = new Database(path);
    configure(db, busyTimeoutMs);
    // Reads the schema page and takes (and drops) the write lock: a directory, a file that is not
    // SQLite, or a read-only file fails here, with its path, rather than deep in a migration.
    db.prepare('SELECT count(*) FROM sqlite_master').get();
    db.exec('BEGIN IMMEDIATE; ROLLBACK');
    return db;
  } catch (err) {
    if (db?.open) db.close();
    const code = (err as { code?: unknown }).code;
    throw new Error(
      `cannot open the SQLite database at DATABASE_PATH=${path}: ${(err as Error).message}${typeof code === 'string' ? ` (${code})` : ''}`,
      { cause: err },
    );
  }
}

function configure(db: Db, busyTimeoutMs: number): void {
  // WAL lets readers run while a write commits; NORMAL is durable across process crashes in WAL
  // mode (only an OS crash can lose the last commits); busy_timeout makes a second process
  // (the seed CLI, a migration) wait instead of failing with SQLITE_BUSY.
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma(`busy_timeout = ${busyTimeoutMs}`);
  db.pragma('foreign_keys = ON');
  db.pragma('temp_store = MEMORY');
  // 32 MiB page cache: the hot pages of a large forum fit, and RSS stays under 300 MB with the
  // search worker's own cache and the read caches (forum bench, benchmarks/RESULTS.md).
  db.pragma('cache_size = -32768');
}

/** Prepares statements once, at start-up, and remembers them for the EXPLAIN test. */
export class Statements {
  readonly #db: Db;
  readonly #prepared: PreparedInfo[] = [];
  /** Timings of every statement prepared here (the dashboard's slowest-SQL table). */
  readonly stats: QueryStats;

  constructor(db: Db, stats: QueryStats = new QueryStats({ db })) {
    this.#db = db;
    this.stats = stats;
  }

  prepare(name: string, sql: string, allow: readonly string[] = []): Statement {
    this.#prepared.push({ name, sql, allow });
    return this.stats.track(name, sql, this.#db.prepare(sql));
  }

  /** Every statement prepared so far. */
  list(): readonly PreparedInfo[] {
    return this.#prepared;
  }
}
