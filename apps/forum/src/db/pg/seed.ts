/**
 * Demo seeding on PostgreSQL: the rows of db/seed.ts's generator (the same ids, values and
 * random sequence as SQLite's seed at a scale), written with multi-row `unnest` inserts.
 *
 * Two advisory locks tell the states of meta.seed apart. The claim (check empty, write
 * 'started') runs under a transaction-level lock, so of instances claiming at once exactly one
 * wins. The winner also takes a session-level lock for its whole run, released (by unlock or by
 * its connection closing) only after 'done' commits: a 'started' seed whose lock is free was
 * abandoned, one whose lock is held is still being written.
 */
import { type Clock, realClock } from 'keel/clock';
import type pg from 'pg';
import { SCALES, type Scale, type SeedReport, type SeedSink, type SeedStep, seedSteps } from '../seed.ts';

// Next to migrate.ts's 7_106_001; any constants shared by every instance.
const CLAIM_LOCK = 7_106_002;
const RUN_LOCK = 7_106_003;

// Rows per INSERT statement. One statement per row pays a round trip per row; past ~10,000 rows
// the parameter arrays (tens of MB for `large` pages) grow without making it faster.
const BATCH_ROWS = 10_000;

// The app's pool caps statements at a few seconds for serving traffic; a 10,000-row insert or
// the final ANALYZE is bulk work, bounded here instead.
const SEED_STATEMENT_TIMEOUT_MS = 120_000;
// Reset when the seed ends, so the connection goes back to the pool as it came.
const SESSION = [
  `SET statement_timeout = ${SEED_STATEMENT_TIMEOUT_MS}`,
  // A commit need not wait for its WAL flush: a crash loses at most the last batches, and
  // 'done' is committed after them all, so a lost tail still reads as an interrupted seed.
  'SET synchronous_commit = off',
];
const RESET = ['RESET statement_timeout', 'RESET synchronous_commit'];

type Column = readonly [name: string, type: 'int' | 'bigint' | 'text'];
const TABLES = {
  users: [
    ['id', 'int'],
    ['username', 'text'],
    ['password_hash', 'text'],
    ['created_at', 'bigint'],
  ],
  forums: [
    ['id', 'int'],
    ['slug', 'text'],
    ['name', 'text'],
    ['description', 'text'],
    ['position', 'int'],
  ],
  topics: [
    ['id', 'int'],
    ['forum_id', 'int'],
    ['author_id', 'int'],
    ['title', 'text'],
    ['created_at', 'bigint'],
    ['updated_at', 'bigint'],
    ['post_count', 'int'],
  ],
  // body_tsv is GENERATED and deleted defaults to false: neither is written.
  posts: [
    ['id', 'int'],
    ['topic_id', 'int'],
    ['parent_id', 'int'],
    ['author_id', 'int'],
    ['body', 'text'],
    ['depth', 'int'],
    ['reply_count', 'int'],
    ['created_at', 'bigint'],
    ['updated_at', 'bigint'],
  ],
  categories: [
    ['id', 'int'],
    ['name', 'text'],
  ],
  pages: [
    ['id', 'int'],
    ['namespace', 'text'],
    ['title', 'text'],
    ['content', 'text'],
    ['current_revision_id', 'int'],
    ['author_id', 'int'],
    ['created_at', 'bigint'],
    ['updated_at', 'bigint'],
  ],
  revisions: [
    ['id', 'int'],
    ['page_id', 'int'],
    ['parent_id', 'int'],
    ['author_id', 'int'],
    ['content', 'text'],
    ['comment', 'text'],
    ['created_at', 'bigint'],
  ],
  page_categories: [
    ['page_id', 'int'],
    ['category_id', 'int'],
  ],
} as const satisfies Record<string, readonly Column[]>;
type Table = keyof typeof TABLES;

/** The tables each generator step writes, parents first (foreign keys). */
const STEP_TABLES: Record<SeedStep['table'], readonly Table[]> = {
  users: ['users'],
  forums: ['forums'],
  topics: ['topics', 'posts'],
  categories: ['categories'],
  pages: ['pages', 'revisions', 'page_categories'],
};
const IDENTITIES: readonly Table[] = ['users', 'forums', 'topics', 'posts', 'categories', 'pages', 'revisions'];

/**
 * One statement for a batch of several tables: data-modifying CTEs run to completion in one
 * statement, and its foreign keys are checked at its end, so posts may name topics (and
 * earlier posts) of the same batch. One statement is one transaction and one round trip.
 */
function insertSql(tables: readonly Table[]): string {
  let param = 0;
  const inserts = tables.map((t) => {
    const cols = TABLES[t] as readonly Column[];
    const args = cols.map(([, type]) => `$${++param}::${type}[]`).join(', ');
    return `INSERT INTO ${t} (${cols.map(([name]) => name).join(', ')}) SELECT * FROM unnest(${args})`;
  });
  const last = inserts.pop() as string;
  return inserts.length === 0 ? last : `WITH ${inserts.map((sql, i) => `w${i} AS (${sql})`).join(', ')} ${last}`;
}

/** A sink that collects one batch as column arrays, the parameters of insertSql(tables). */
function columnSink(): { sink: SeedSink; params(tables: readonly Table[]): unknown[][] } {
  const cols = Object.fromEntries(Object.entries(TABLES).map(([t, c]) => [t, c.map(() => [] as unknown[])])) as Record<Table, unknown[][]>;
  const into =
    (t: Table) =>
    (...row: unknown[]) => {
      const c = cols[t];
      for (let i = 0; i < row.length; i++) (c[i] as unknown[]).push(row[i]);
    };
  return {
    sink: {
      user: into('users'),
      forum: into('forums'),
      topic: into('topics'),
      post: into('posts'),
      category: into('categories'),
      page: into('pages'),
      revision: into('revisions'),
      pageCategory: into('page_categories'),
    },
    params: (tables) => tables.flatMap((t) => cols[t]),
  };
}

type Queryable = Pick<pg.Pool | pg.PoolClient, 'query'>;

/**
 * How far demo seeding got in this database (meta.seed): never began, began and did not finish
 * (interrupted, or still being written), or finished.
 *
 * @example
 * ```ts
 * if ((await seedStatePostgres(pool)) === 'done') console.log('seeded');
 * ```
 */
export async function seedStatePostgres(db: Queryable): Promise<'none' | 'started' | 'done'> {
  const { rows } = await db.query<{ value: string }>("SELECT value FROM meta WHERE key = 'seed'");
  const v = rows[0]?.value;
  return v === 'done' ? 'done' : v === undefined ? 'none' : 'started';
}

/** Runs `fn` on one pooled connection; a connection that failed is destroyed, not reused (it may hold a lock or a transaction). */
async function withClient<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    const result = await fn(client);
    client.release();
    return result;
  } catch (err) {
    client.release(err as Error);
    throw err;
  }
}

/**
 * Fills an empty, migrated PostgreSQL database with the demo forum of db/seed.ts, and returns
 * undefined if the database is not empty or another process is seeding it. 'done' is written
 * last, so an interrupted seed stays visible.
 *
 * @example
 * ```ts
 * await migratePostgres(pool);
 * const report = await seedPostgres(pool, 'small', await hashPassword(DEMO_PASSWORD));
 * ```
 */
export async function seedPostgres(
  pool: pg.Pool,
  scale: Scale,
  passwordHash: string,
  options: { seed?: number; log?: (line: string) => void } = {},
): Promise<SeedReport | undefined> {
  if (!Object.hasOwn(SCALES, scale))
    throw new TypeError(`seedPostgres: scale must be one of ${Object.keys(SCALES).join(', ')} (got ${String(scale)})`);
  if (options.seed !== undefined && !Number.isSafeInteger(options.seed)) {
    throw new TypeError(`seedPostgres: options.seed must be an integer (got ${String(options.seed)})`);
  }
  return withClient(pool, async (client) => {
    if (!(await claim(client))) return undefined;
    const started = performance.now();
    for (const sql of SESSION) await client.query(sql);
    let rows = 0;
    for (const step of seedSteps(scale, passwordHash, options.seed ?? 42)) {
      await writeStep(client, step);
      rows += step.rows;
      options.log?.(`  ${step.table.padEnd(10)} ${step.units.toLocaleString('en-US')}`);
    }
    await client.query('BEGIN');
    // Rows went in with explicit ids; the identities must continue after them.
    for (const t of IDENTITIES) await client.query(`SELECT setval(pg_get_serial_sequence('${t}', 'id'), max(id)) FROM ${t}`);
    await client.query('UPDATE forums SET topic_count = (SELECT count(*) FROM topics WHERE forum_id = forums.id)');
    await client.query('COMMIT');
    await client.query('ANALYZE');
    await client.query("UPDATE meta SET value = 'done' WHERE key = 'seed'");
    // Only now: a seed with 'started' and this lock free reads as abandoned.
    await client.query('SELECT pg_advisory_unlock($1)', [RUN_LOCK]);
    for (const sql of RESET) await client.query(sql);
    const ms = performance.now() - started;
    return { scale, rows, ms, rowsPerSecond: Math.round((rows / ms) * 1000) };
  });
}

/** Writes 'started' into an empty database and takes the run lock; false if it is not empty or already claimed. */
async function claim(client: pg.PoolClient): Promise<boolean> {
  await client.query('BEGIN');
  await client.query('SELECT pg_advisory_xact_lock($1)', [CLAIM_LOCK]);
  const { rows } = await client.query<{ busy: boolean }>(
    "SELECT EXISTS (SELECT 1 FROM meta WHERE key = 'seed') OR EXISTS (SELECT 1 FROM forums) OR EXISTS (SELECT 1 FROM users) AS busy",
  );
  if (rows[0]?.busy) {
    await client.query('COMMIT');
    return false;
  }
  await client.query("INSERT INTO meta (key, value) VALUES ('seed', 'started')");
  // Session-level, so it outlives this transaction; taken before 'started' commits, so nobody
  // sees 'started' without it held. Blocking: an inspector holds it only for a moment.
  await client.query('SELECT pg_advisory_lock($1)', [RUN_LOCK]);
  await client.query('COMMIT');
  return true;
}

/**
 * Writes one step in batches of ~BATCH_ROWS rows. Generating is JS work and inserting is the
 * server's, so the next batch is generated while the last one is in flight (at most one).
 */
async function writeStep(client: pg.PoolClient, step: SeedStep): Promise<void> {
  const tables = STEP_TABLES[step.table];
  const sql = insertSql(tables);
  const units = Math.max(1, Math.floor(BATCH_ROWS / (step.rows / step.units)));
  let inflight: Promise<unknown> | undefined;
  try {
    for (let from = 0; from < step.units; from += units) {
      const batch = columnSink();
      step.emit(units, batch.sink);
      await inflight;
      inflight = client.query(sql, batch.params(tables));
    }
    await inflight;
  } finally {
    // Never leave a statement running on a connection that is about to be destroyed.
    await inflight?.catch(() => {});
  }
}

/** Whether a 'started' seed is still being written, and by then what the state is. */
async function inspect(client: pg.PoolClient): Promise<'none' | 'seeding' | 'abandoned' | 'done'> {
  const { rows } = await client.query<{ free: boolean }>('SELECT pg_try_advisory_lock($1) AS free', [RUN_LOCK]);
  const free = rows[0]?.free === true;
  try {
    // Read after the lock: a seeder that finished in between has committed 'done' by now.
    const state = await seedStatePostgres(client);
    return state === 'started' ? (free ? 'abandoned' : 'seeding') : state;
  } finally {
    if (free) await client.query('SELECT pg_advisory_unlock($1)', [RUN_LOCK]);
  }
}

export interface SeedOnStartOptions {
  /** How long to wait for another process's seed to finish before giving up. Default 120,000 ms. */
  waitMs?: number;
  /** How often to look while waiting. Default 100 ms. */
  pollMs?: number;
  /** Default the real clock. */
  clock?: Clock;
}

/**
 * At start-up: seeds an empty database, waits for a seed another process is writing, and throws,
 * naming the database, if a seed began and never finished. Never deletes anything: a
 * half-seeded database may have taken user writes since.
 *
 * Unlike SQLite's seedOnStart, which refuses a seed in progress, this waits for it: instances
 * sharing a PostgreSQL database are started together (a deployment, a test's apps), and the
 * advisory lock tells a seed in progress from an abandoned one, which a file cannot.
 *
 * @example
 * ```ts
 * await seedOnStartPostgres(pool, redact(url), config.seedOnEmpty, () => hashPassword(DEMO_PASSWORD));
 * ```
 */
export async function seedOnStartPostgres(
  pool: pg.Pool,
  label: string,
  scale: Scale | 'none',
  passwordHash: () => Promise<string>,
  options: SeedOnStartOptions = {},
): Promise<void> {
  const waitMs = positiveInt('waitMs', options.waitMs, 120_000);
  const pollMs = positiveInt('pollMs', options.pollMs, 100);
  const clock = options.clock ?? realClock;
  const state = await seedStatePostgres(pool);
  if (state === 'started') return awaitSeed(pool, label, waitMs, pollMs, clock);
  if (state === 'done' || scale === 'none') return;
  const { rows } = await pool.query<{ empty: boolean }>(
    'SELECT NOT EXISTS (SELECT 1 FROM forums) AND NOT EXISTS (SELECT 1 FROM users) AS empty',
  );
  if (!rows[0]?.empty) return;
  if ((await seedPostgres(pool, scale, await passwordHash())) === undefined) await awaitSeed(pool, label, waitMs, pollMs, clock);
}

function positiveInt(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < 1)
    throw new TypeError(`seedOnStartPostgres: options.${name} must be a positive integer (got ${value})`);
  return value;
}

/** Polls until another process's seed is done; throws if it was abandoned or outlasts `waitMs`. */
async function awaitSeed(pool: pg.Pool, label: string, waitMs: number, pollMs: number, clock: Clock): Promise<void> {
  const now = () => (clock.monotonic ? clock.monotonic() : clock.now());
  const deadline = now() + waitMs;
  // One connection for the whole wait: its socket keeps the process up between polls.
  await withClient(pool, async (client) => {
    for (;;) {
      const state = await inspect(client);
      if (state === 'none' || state === 'done') return;
      if (state === 'abandoned') {
        throw new Error(
          `DATABASE_URL=${label}: its demo seeding began and did not finish, and no process is seeding it now (interrupted); ` +
            'drop and re-create the database to seed again',
        );
      }
      if (now() >= deadline) {
        throw new Error(
          `DATABASE_URL=${label}: another process has been seeding it for over ${waitMs} ms; start again once it has finished`,
        );
      }
      await new Promise<void>((resolve) => clock.setTimeout(resolve, pollMs));
    }
  });
}
