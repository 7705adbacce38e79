/**
 * The storage contract on the PostgreSQL store, against a real server (one throwaway cluster for
 * the file; a fresh database per test, copied from a migrated template), and what only
 * PostgreSQL has to get right: several instances on one database, and a server that goes away.
 */
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createDatabase, type PostgresServer, startPostgres } from '../../../../test-support/postgres.ts';
import { endPool } from '../../src/db/pg/client.ts';
import { migratePostgres } from '../../src/db/pg/migrate.ts';
import { openPostgresStore, type PgStoreOptions, type PostgresStore } from '../../src/db/pg/store.ts';
import { type PageWrite, UsernameTakenError } from '../../src/db/store.ts';
import { isDatabaseUnavailable } from '../../src/db/unavailable.ts';
import { type StoreHarness, storeContract } from './store-contract.ts';

const TEMPLATE = 'contract_template';
const T0 = 1_700_000_000_000;

let server: PostgresServer;

beforeAll(async () => {
  server = await startPostgres();
  const store = await openPostgresStore(await createDatabase(server.url, TEMPLATE));
  await store.close();
});
afterAll(async () => {
  await server?.close();
});

/** A new database: migrated (a copy of the template) or empty. */
async function freshDatabase(migrated = true): Promise<{ url: string; drop(): Promise<void> }> {
  const url = await server.database('store', migrated ? TEMPLATE : undefined);
  return { url, drop: () => server.dropDatabase(url) };
}

async function harness(store: PostgresStore, drop: () => Promise<void>): Promise<StoreHarness> {
  return {
    store,
    async addForum(slug, position = 0) {
      const { rows } = await store.pool.query<{ id: number }>(
        'INSERT INTO forums (slug, name, position) VALUES ($1, $1, $2) RETURNING id',
        [slug, position],
      );
      return rows[0]!.id;
    },
    // PostgreSQL indexes a row as it writes it (a generated tsvector column).
    async flushSearch() {},
    async sql(query, params = []) {
      return (await store.pool.query(query, params)).rows;
    },
    async close() {
      await store.close();
      await drop();
    },
  };
}

storeContract('postgres', async () => {
  const db = await freshDatabase();
  return harness(await openPostgresStore(db.url), db.drop);
});

describe('postgres: several instances on one database', () => {
  const opened: Array<{ close(): unknown }> = [];
  afterEach(async () => {
    for (const o of opened.splice(0).reverse()) await o.close();
  });
  async function twoStores(options: PgStoreOptions = {}): Promise<[PostgresStore, PostgresStore]> {
    const db = await freshDatabase();
    opened.push({ close: db.drop });
    const a = await openPostgresStore(db.url, options);
    opened.push(a);
    const b = await openPostgresStore(db.url, options);
    opened.push(b);
    return [a, b];
  }
  async function postWithLinks(store: PostgresStore, n: number): Promise<void> {
    const { rows } = await store.pool.query<{ id: number }>("INSERT INTO forums (slug, name) VALUES ('f', 'f') RETURNING id");
    const user = await store.users.insert('alice', 'h', T0);
    const urls = Array.from({ length: n }, (_, i) => `https://example.com/${i}`);
    await store.createTopic({ forumId: rows[0]!.id, authorId: user.id, title: 't', body: 'links', urls, at: T0 });
  }

  it('previews.due never hands one preview to two instances polling at once', async () => {
    const [a, b] = await twoStores();
    await postWithLinks(a, 40);
    const handed: number[] = [];
    for (let round = 0; round < 4; round++) {
      const [x, y] = await Promise.all([a.previews.due(T0, 7), b.previews.due(T0, 7)]);
      handed.push(...x.map((p) => p.id), ...y.map((p) => p.id));
    }
    expect(handed).toHaveLength(40);
    expect(new Set(handed).size).toBe(40);
  });

  it('a leased preview is not due again, on any instance, until its lease runs out', async () => {
    const [a, b] = await twoStores({ previewLeaseMs: 60_000 });
    await postWithLinks(a, 1);
    const [p] = await a.previews.due(T0, 10);
    expect(await b.previews.due(T0 + 59_999, 10)).toEqual([]);
    expect((await b.previews.due(T0 + 60_000, 10)).map((d) => d.id)).toEqual([p!.id]);
  });

  it('of concurrent first saves of one title, exactly one creates the page', async () => {
    const [a, b] = await twoStores();
    const user = await a.users.insert('alice', 'h', T0);
    const decide = (cur: unknown): PageWrite => {
      if (cur) throw new Error('exists');
      return { op: 'create', content: 'hello', comment: '', categories: ['x'] };
    };
    const outcomes = await Promise.allSettled(
      Array.from({ length: 6 }, (_, i) => (i % 2 ? a : b).savePage('Main', 'Race', user.id, T0 + i, decide)),
    );
    const created = outcomes.filter((o) => o.status === 'fulfilled' && o.value === true);
    const others = outcomes.filter((o) => !(o.status === 'fulfilled' && o.value === true));
    expect(created).toHaveLength(1);
    for (const o of others) {
      if (o.status === 'fulfilled') expect(o.value).toBeNull();
      else expect((o.reason as Error).message).toBe('exists');
    }
    const page = await a.wiki.get('Main', 'Race');
    expect(await a.wiki.revisions(page!.id, null, 10)).toHaveLength(1);
  });

  it('migrations started at once on one database are applied once', async () => {
    const db = await freshDatabase(false);
    opened.push({ close: db.drop });
    const pools = [new pg.Pool({ connectionString: db.url, max: 1 }), new pg.Pool({ connectionString: db.url, max: 1 })];
    for (const p of pools) opened.push({ close: () => endPool(p) });
    const applied = await Promise.all(pools.map((p) => migratePostgres(p)));
    expect(applied.map((v) => v.length).sort()).toEqual([0, 1]);
    const { rows } = await pools[0]!.query<{ n: string }>('SELECT count(*) AS n FROM schema_migrations');
    expect(Number(rows[0]!.n)).toBe(1);
  });
});

describe('postgres: options and outages', () => {
  it.each([
    ['max', { max: 0 }],
    ['connectionTimeoutMs', { connectionTimeoutMs: -1 }],
    ['statementTimeoutMs', { statementTimeoutMs: 1.5 }],
    ['idleTimeoutMs', { idleTimeoutMs: Number.NaN }],
    ['previewLeaseMs', { previewLeaseMs: '60000' }],
  ])('refuses a bad %s with a TypeError naming it', async (option, options) => {
    const err = await openPostgresStore(server.url, options as PgStoreOptions).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TypeError);
    expect((err as TypeError).message).toContain(option);
  });

  it('endPool resolves once every connection is closed, so dropping the database then cannot raise', async () => {
    const db = await freshDatabase();
    const pool = new pg.Pool({ connectionString: db.url, max: 3 });
    const clients: pg.PoolClient[] = [];
    pool.on('connect', (c) => clients.push(c));
    try {
      await Promise.all([1, 2, 3].map(() => pool.query('SELECT pg_sleep(0.05)')));
      expect(clients).toHaveLength(3);
      // pg-pool's end() alone resolves before these sockets close.
      await endPool(pool);
      const sockets = clients.map((c) => (c as unknown as { connection: { stream: { destroyed: boolean } } }).connection.stream);
      expect(sockets.map((s) => s.destroyed)).toEqual([true, true, true]);
    } finally {
      await db.drop();
    }
  });

  it("plans search's ranking at each run (its best plan depends on the word) and prepares the rest", async () => {
    const db = await freshDatabase();
    const store = await openPostgresStore(db.url, { max: 1 });
    try {
      const none = { forumId: null, namespace: null, authorId: null, from: null, to: null };
      await store.search.search({ words: ['anything'], prefix: false }, 'all', none, null, 10);
      await store.users.byId(1);
      // One connection (max 1), so this reads the statements prepared on the one the search ran on.
      const { rows } = await store.pool.query<{ name: string }>('SELECT name FROM pg_prepared_statements ORDER BY name');
      const names = rows.map((r) => r.name);
      expect(names).toContain('users.byId');
      expect(names).not.toContain('search.ranked');
      expect(store.stats.top(100).map((s) => s.name)).toContain('search.ranked');
    } finally {
      await store.close();
      await db.drop();
    }
  });

  it('cancels a statement that runs past statementTimeoutMs', async () => {
    const db = await freshDatabase();
    const store = await openPostgresStore(db.url, { statementTimeoutMs: 50 });
    try {
      await expect(store.pool.query('SELECT pg_sleep(2)')).rejects.toMatchObject({ code: '57014' });
    } finally {
      await store.close();
      await db.drop();
    }
  });

  it('a failed statement keeps its pooled connection', async () => {
    const db = await freshDatabase();
    const store = await openPostgresStore(db.url, { max: 1 });
    try {
      const pid = async () => (await store.pool.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      const before = await pid();
      await store.users.insert('alice', 'h', T0);
      await expect(store.users.insert('Alice', 'h', T0)).rejects.toBeInstanceOf(UsernameTakenError);
      expect(await pid()).toBe(before);
      expect(store.poolStats()).toEqual({ total: 1, idle: 1, waiting: 0 });
    } finally {
      await store.close();
      await db.drop();
    }
  });

  it('a connection that dies inside a write fails that write, and the next one runs on a new connection', async () => {
    const db = await freshDatabase();
    const store = await openPostgresStore(db.url, { max: 1 });
    const locker = new pg.Client({ connectionString: db.url });
    await locker.connect();
    try {
      const user = await store.users.insert('alice', 'h', T0);
      const create = (): PageWrite => ({ op: 'create', content: 'v1', comment: '' });
      await store.savePage('Main', 'Home', user.id, T0, create);
      const edit = (cur: { id: number; revisionId: number } | undefined): PageWrite => ({
        op: 'edit',
        pageId: cur!.id,
        baseRevision: cur!.revisionId,
        content: 'v2',
        comment: '',
      });
      // Holds the page's row, so the store's savePage waits inside its transaction.
      await locker.query('BEGIN');
      await locker.query("SELECT id FROM pages WHERE title = 'Home' FOR UPDATE");
      const saving = Promise.resolve(store.savePage('Main', 'Home', user.id, T0 + 1, edit)).catch((e: unknown) => e);
      let waiting: number | undefined;
      for (let i = 0; i < 10_000 && waiting === undefined; i++) {
        const { rows } = await locker.query<{ pid: number }>(
          "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
        );
        waiting = rows[0]?.pid;
      }
      expect(waiting).toBeDefined();
      await locker.query('SELECT pg_terminate_backend($1)', [waiting]);
      const err = await saving;
      expect(isDatabaseUnavailable(err)).toBe(true);
      await locker.query('ROLLBACK');
      expect(await store.savePage('Main', 'Home', user.id, T0 + 2, edit)).toBe(false);
      expect((await store.wiki.get('Main', 'Home'))?.content).toBe('v2');
    } finally {
      await locker.end();
      await store.close();
      await db.drop();
    }
  });

  it('ping rejects while the server is down and answers again once it is back', async () => {
    const db = await freshDatabase();
    const store = await openPostgresStore(db.url, { connectionTimeoutMs: 500 });
    try {
      await store.ping();
      await server.stop();
      // The pool's idle connection dies with the server: its 'error' must not end the process.
      await expect(store.ping()).rejects.toThrow();
      await server.start();
      await store.ping();
    } finally {
      if (!server.running) await server.start();
      await store.close();
      await db.drop();
    }
  });
});
