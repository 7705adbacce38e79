/**
 * Seeding PostgreSQL writes the SQLite seed's rows (so both backends hold one forum at a scale),
 * claims the database once among concurrent seeders, tells a seed in progress from an abandoned
 * one at start-up, and leaves the identities ready for the app's own inserts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Clock } from 'keel/clock';
import { deferred } from 'keel/testing';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type PostgresServer, startPostgres } from '../../../../test-support/postgres.ts';
import { openRepositories } from '../../src/db/index.ts';
import { endPool } from '../../src/db/pg/client.ts';
import { migratePostgres } from '../../src/db/pg/migrate.ts';
import { seedOnStartPostgres, seedPostgres, seedStatePostgres } from '../../src/db/pg/seed.ts';
import { seed } from '../../src/db/seed.ts';

const HASH = 'scrypt$test';
let server: PostgresServer;
const pools: pg.Pool[] = [];
const dirs: string[] = [];

beforeAll(async () => {
  server = await startPostgres();
});
afterAll(async () => {
  await server?.close();
});
afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => endPool(p)));
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A new, migrated database on the server; returns its URL. */
async function freshDatabase(): Promise<string> {
  const url = await server.database('forum_seed');
  await migratePostgres(poolFor(url));
  return url;
}

function poolFor(url: string): pg.Pool {
  const pool = new pg.Pool({ connectionString: url, max: 3 });
  pools.push(pool);
  return pool;
}

/** The first row of `sql`, bigint and count columns as numbers. */
async function one(pool: pg.Pool, sql: string): Promise<number> {
  return Number(Object.values((await pool.query(sql)).rows[0] as object)[0]);
}

const TABLES = ['users', 'forums', 'topics', 'posts', 'categories', 'pages', 'revisions', 'page_categories'];
const SAMPLES = {
  posts: 'SELECT id, topic_id, parent_id, author_id, body, created_at FROM posts WHERE id % 97 = 0 ORDER BY id',
  topics: 'SELECT id, post_count FROM topics ORDER BY id',
  pages: 'SELECT id, current_revision_id FROM pages ORDER BY id',
  forums: 'SELECT id, topic_count FROM forums ORDER BY id',
};
/** Rows as arrays of plain values: pg returns bigint as strings, SQLite as numbers. */
const plain = (rows: unknown[][]) => rows.map((r) => r.map((v) => (typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v)));

describe('seedPostgres', () => {
  it('writes the same rows as the SQLite seed at the same scale', async () => {
    const pool = poolFor(await freshDatabase());
    expect(await seedPostgres(pool, 'small', HASH)).toMatchObject({ scale: 'small', rows: 2_663 });
    const dir = mkdtempSync(join(tmpdir(), 'forum-pg-seed-'));
    dirs.push(dir);
    const repos = openRepositories(join(dir, 'forum.db'));
    try {
      seed(repos.db, 'small', HASH);
      for (const t of TABLES) {
        const sqlite = repos.db.prepare(`SELECT count(*) FROM ${t}`).pluck().get();
        expect([t, await one(pool, `SELECT count(*) FROM ${t}`)]).toEqual([t, sqlite]);
      }
      for (const sql of Object.values(SAMPLES)) {
        const sqlite = repos.db.prepare(sql).raw().all() as unknown[][];
        expect(sqlite.length).toBeGreaterThan(0);
        expect(plain((await pool.query({ text: sql, rowMode: 'array' })).rows)).toEqual(sqlite);
      }
    } finally {
      repos.close();
    }
  });

  it('lets only one of two concurrent seeds write; the other returns undefined', async () => {
    const url = await freshDatabase();
    const reports = await Promise.all([seedPostgres(poolFor(url), 'small', HASH), seedPostgres(poolFor(url), 'small', HASH)]);
    expect(reports.filter((r) => r === undefined).length).toBe(1);
    expect(await one(poolFor(url), 'SELECT count(*) FROM users')).toBe(50);
  });

  it('continues every identity after the seeded ids, so an insert without an id gets max + 1', async () => {
    const pool = poolFor(await freshDatabase());
    await seedPostgres(pool, 'small', HASH);
    const inserts = {
      users: "INSERT INTO users (username, password_hash, created_at) VALUES ('newcomer', 'x', 0)",
      forums: "INSERT INTO forums (slug, name) VALUES ('new-forum', 'New')",
      topics: "INSERT INTO topics (forum_id, author_id, title, created_at, updated_at) VALUES (1, 1, 'New', 0, 0)",
      posts: "INSERT INTO posts (topic_id, author_id, body, created_at, updated_at) VALUES (1, 1, 'new', 0, 0)",
      categories: "INSERT INTO categories (name) VALUES ('New')",
      pages: "INSERT INTO pages (namespace, title, content, author_id, created_at, updated_at) VALUES ('Main', 'New', '', 1, 0, 0)",
      revisions: "INSERT INTO revisions (page_id, author_id, content, created_at) VALUES (1, 1, '', 0)",
    };
    for (const [table, sql] of Object.entries(inserts)) {
      const max = await one(pool, `SELECT max(id) FROM ${table}`);
      expect([table, await one(pool, `${sql} RETURNING id`)]).toEqual([table, max + 1]);
    }
  });
});

describe('seedOnStartPostgres', () => {
  it("seeds an empty database and marks it 'done'; a restart does not seed again", async () => {
    const url = await freshDatabase();
    const pool = poolFor(url);
    await seedOnStartPostgres(pool, url, 'small', async () => HASH);
    expect(await seedStatePostgres(pool)).toBe('done');
    await seedOnStartPostgres(pool, url, 'small', async () => {
      throw new Error('seeded twice');
    });
    expect(await one(pool, 'SELECT count(*) FROM forums')).toBe(5);
  });

  it('refuses a database whose seed began and never finished, naming it, and deletes nothing', async () => {
    const url = await freshDatabase();
    const pool = poolFor(url);
    // What a seeder killed after its first batches leaves behind: 'started', and no lock held.
    await pool.query("INSERT INTO meta (key, value) VALUES ('seed', 'started')");
    await pool.query("INSERT INTO users (id, username, password_hash, created_at) VALUES (1, 'user1', 'x', 0)");
    await expect(seedOnStartPostgres(pool, url, 'small', async () => HASH)).rejects.toThrow(
      `DATABASE_URL=${url}: its demo seeding began and did not finish`,
    );
    expect(await one(pool, 'SELECT count(*) FROM users')).toBe(1);
  });

  it('waits for a seed another process is writing and returns once it is done', async () => {
    const url = await freshDatabase();
    const writing = deferred<void>();
    // The first log line comes after the users batch: the other seed holds the claim by then.
    const other = seedPostgres(poolFor(url), 'small', HASH, { log: () => writing.resolve() });
    await writing.promise;
    const pool = poolFor(url);
    await seedOnStartPostgres(pool, url, 'small', async () => HASH);
    expect(await seedStatePostgres(pool)).toBe('done');
    expect(await other).toBeDefined();
  });

  it('gives up waiting for another seed after waitMs, naming the database', async () => {
    const url = await freshDatabase();
    const writing = deferred<void>();
    const other = seedPostgres(poolFor(url), 'small', HASH, { log: () => writing.resolve() });
    await writing.promise;
    // Every reading of this clock is a minute later, and its timers fire at once.
    let t = 0;
    const clock: Clock = { now: () => (t += 60_000), setTimeout: (fn) => setImmediate(fn), clearTimeout: () => {} };
    await expect(seedOnStartPostgres(poolFor(url), url, 'small', async () => HASH, { waitMs: 120_000, clock })).rejects.toThrow(
      `DATABASE_URL=${url}: another process has been seeding it for over 120000 ms`,
    );
    await other;
  });

  it('rejects a waitMs that is not a positive integer, naming the option', async () => {
    await expect(seedOnStartPostgres(poolFor(server.url), server.url, 'none', async () => HASH, { waitMs: 0 })).rejects.toThrow(
      new TypeError('seedOnStartPostgres: options.waitMs must be a positive integer (got 0)'),
    );
  });
});
