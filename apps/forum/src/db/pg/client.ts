/**
 * The PostgreSQL connection pool the store runs on, with its options, and the two ways every
 * query goes out: {@link Db.query} on any pooled connection, or inside {@link Db.transaction} on
 * one connection. Each query is a named prepared statement (unless it asks to be planned each
 * time), timed into the dashboard's stats.
 */
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { QueryStats } from '../query-stats.ts';
import { PgExplainer } from './explain.ts';
import { withPooledClient } from './pooled.ts';

export interface PgStoreOptions {
  /** Connections this instance opens at most; more queries wait for one. Default 10. */
  max?: number;
  /** Longest a query waits for a connection (a new one, or one coming free), ms. Default 2,000. */
  connectionTimeoutMs?: number;
  /** The server cancels a statement running longer than this, ms. Default 5,000. */
  statementTimeoutMs?: number;
  /** An idle connection is closed after this, ms. Default 30,000. */
  idleTimeoutMs?: number;
  /** How long `previews.due` leases the rows it hands out, ms; a crashed instance's rows come free after it. Default 60,000. */
  previewLeaseMs?: number;
  /** Where a connection error outside any query (an idle connection the server dropped) is reported. Default: ignored. */
  onError?: (err: Error) => void;
}

export type ResolvedPgOptions = Required<Omit<PgStoreOptions, 'onError'>> & Pick<PgStoreOptions, 'onError'>;

function int(name: keyof PgStoreOptions, value: unknown, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min)
    throw new TypeError(`openPostgresStore: option "${name}" must be an integer >= ${min} (got ${String(value)})`);
  return value;
}

export function resolvePgOptions(options: PgStoreOptions = {}): ResolvedPgOptions {
  if (options.onError !== undefined && typeof options.onError !== 'function')
    throw new TypeError('openPostgresStore: option "onError" must be a function');
  return {
    max: int('max', options.max, 10, 1),
    connectionTimeoutMs: int('connectionTimeoutMs', options.connectionTimeoutMs, 2_000, 1),
    statementTimeoutMs: int('statementTimeoutMs', options.statementTimeoutMs, 5_000, 1),
    idleTimeoutMs: int('idleTimeoutMs', options.idleTimeoutMs, 30_000, 1),
    previewLeaseMs: int('previewLeaseMs', options.previewLeaseMs, 60_000, 1),
    onError: options.onError,
  };
}

const INT8 = 20;
// Per pool, never pg.types.setTypeParser (process-wide state): bigint columns (times in ms,
// count(*)) come back as JS numbers. Every value we store is below 2^53.
const types = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === INT8 && format !== 'binary') return (v: string) => Number(v);
    return pg.types.getTypeParser(oid, format as 'text');
  },
} as pg.CustomTypesConfig;

// A ping is a health check: it must answer fast or fail, not wait out statementTimeoutMs.
const PING_TIMEOUT_MS = 1_000;
// Planning one of our statements takes well under 10 ms; longer is a lock wait, not worth a dashboard row.
const EXPLAIN_TIMEOUT_MS = 1_000;

export interface QueryOptions {
  /**
   * false: plan the statement at each run, with its values, instead of preparing it once per
   * connection. For a statement whose best plan depends on the values (a full-text word's
   * frequency), where a cached generic plan guesses. Default true.
   */
  prepare?: boolean;
}

export class Db {
  readonly pool: pg.Pool;
  /** Timings of every statement, with generic plans explained lazily for the dashboard. */
  readonly stats: QueryStats;
  readonly #pingTimeoutMs: number;
  #closed: Promise<void> | undefined;

  constructor(url: string, o: ResolvedPgOptions) {
    this.pool = new pg.Pool({
      connectionString: url,
      max: o.max,
      connectionTimeoutMillis: o.connectionTimeoutMs,
      idleTimeoutMillis: o.idleTimeoutMs,
      // Sent in each connection's startup packet, so it holds for every statement on it.
      statement_timeout: o.statementTimeoutMs,
      types,
    });
    this.#pingTimeoutMs = Math.min(PING_TIMEOUT_MS, o.statementTimeoutMs);
    const explainer = new PgExplainer(this.pool, { timeoutMs: Math.min(EXPLAIN_TIMEOUT_MS, o.statementTimeoutMs) });
    this.stats = new QueryStats({ explain: (sql) => explainer.explain(sql) });
    // An idle client whose server went away emits 'error' on the pool: unhandled, it would end
    // the process. The pool drops that client; the next query connects again.
    this.pool.on('error', (err) => o.onError?.(err));
  }

  /** Runs a named statement on `via` (a transaction's client; default: any pooled connection) and returns its rows. */
  async query<R extends pg.QueryResultRow>(
    name: string,
    text: string,
    values: unknown[],
    via?: pg.PoolClient,
    options?: QueryOptions,
  ): Promise<R[]> {
    return (await this.#timed<R>(name, text, values, via, options?.prepare ?? true)).rows;
  }

  /** Like {@link query}, for a statement that reports how many rows it changed. */
  async changes(name: string, text: string, values: unknown[], via?: pg.PoolClient): Promise<number> {
    return (await this.#timed(name, text, values, via)).rowCount ?? 0;
  }

  /** Reads one real row within {@link PING_TIMEOUT_MS}; a connection that timed out is dropped (its answer may still come). */
  async ping(name: string, text: string): Promise<void> {
    await this.#withClient(async (c) => {
      const start = performance.now();
      try {
        // query_timeout is a client-side timer; @types/pg omits it from QueryConfig, pg reads it.
        await c.query({ name, text, query_timeout: this.#pingTimeoutMs } as pg.QueryConfig);
      } finally {
        this.stats.record(name, text, performance.now() - start);
      }
    }, true);
  }

  async #timed<R extends pg.QueryResultRow>(
    name: string,
    text: string,
    values: unknown[],
    via: pg.PoolClient | undefined,
    prepare = true,
  ): Promise<pg.QueryResult<R>> {
    if (via === undefined) return this.#withClient((c) => this.#timed<R>(name, text, values, c, prepare));
    const start = performance.now();
    try {
      // A named statement is parsed and planned once per connection, then only bound. An
      // unnamed one is planned at each run, with its values (it is still timed under `name`).
      return await via.query<R>(prepare ? { name, text, values } : { text, values });
    } finally {
      this.stats.record(name, text, performance.now() - start);
    }
  }

  /** Runs `fn` on one pooled connection; see {@link withPooledClient}. */
  #withClient<T>(fn: (client: pg.PoolClient, broke: (err: Error) => void) => Promise<T>, destroyOnError = false): Promise<T> {
    return withPooledClient(this.pool, fn, destroyOnError);
  }

  /**
   * Runs `fn` in one transaction on one connection; rolls back if it throws (and rethrows). A
   * connection that broke, or whose ROLLBACK failed, is destroyed rather than returned to the
   * pool: it may still hold the transaction open.
   */
  transaction<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    return this.#withClient(async (client, broke) => {
      await client.query('BEGIN');
      try {
        const result = await fn(client);
        await client.query('COMMIT');
        return result;
      } catch (err) {
        try {
          await client.query('ROLLBACK');
        } catch (rollbackFailed) {
          broke(rollbackFailed as Error);
        }
        throw err;
      }
    });
  }

  /** Ends the pool: idle connections close now, checked-out ones when released. Idempotent. */
  close(): Promise<void> {
    this.#closed ??= endPool(this.pool);
    return this.#closed;
  }
}

// A server answers a connection's Terminate at once; longer means it is gone or unreachable.
const END_TIMEOUT_MS = 5_000;

/**
 * Ends `pool` and resolves once its connections are closed, or after `timeoutMs`.
 *
 * pg-pool's own `end()` resolves when it has asked its clients to end, before their sockets
 * close. A database dropped or a server stopped in that gap ends those connections with an
 * error, which the pool emits as 'error' and which would end the process with no listener. So
 * this listens for it (a closing pool has no use for it) and waits for every client's 'remove'.
 *
 * @example
 * ```ts
 * const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL });
 * await migratePostgres(pool);
 * await endPool(pool); // its sockets are closed: safe to drop the database or stop the server
 * ```
 */
export async function endPool(pool: pg.Pool, timeoutMs = END_TIMEOUT_MS): Promise<void> {
  pool.on('error', () => {});
  let left = pool.totalCount;
  let timer: NodeJS.Timeout | undefined;
  let onRemove: (() => void) | undefined;
  const closed = new Promise<void>((resolve) => {
    if (left === 0) return resolve();
    onRemove = () => {
      if (--left === 0) resolve();
    };
    pool.on('remove', onRemove);
    timer = setTimeout(resolve, timeoutMs);
  });
  try {
    await pool.end();
    await closed;
  } finally {
    clearTimeout(timer);
    if (onRemove) pool.off('remove', onRemove);
  }
}
