/**
 * Seeding records 'started' under the write lock and 'done' last (migration 005), so an
 * interrupted first start is reported instead of serving a half-seeded forum for good, and two
 * processes starting on one fresh file neither both seed nor both migrate.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import { type Db, openDatabase } from '../../src/db/connection.ts';
import { openRepositories } from '../../src/db/index.ts';
import { loadMigrations, type Migration, migrate } from '../../src/db/migrate.ts';
import { seed, seedOnStart, seedState } from '../../src/db/seed.ts';

let dir: string;
let path: string;
const open: Db[] = [];
const db = () => {
  const d = openDatabase(path);
  open.push(d);
  return d;
};
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'forum-seed-'));
  path = join(dir, 'forum.db');
});
afterEach(() => {
  for (const d of open.splice(0)) d.close();
  rmSync(dir, { recursive: true, force: true });
});

const config = () =>
  loadConfig(
    {},
    { databasePath: path, seedOnEmpty: 'small', shedding: { maxEventLoopDelayMs: 60_000, maxInFlight: 1_000_000, maxHeapUsedRatio: 1 } },
  );

describe('seeding marker', () => {
  it("marks a finished seed 'done', and a restart neither re-seeds nor complains", async () => {
    const a = db();
    migrate(a);
    expect(seedState(a)).toBe('none');
    expect(seed(a, 'small', 'scrypt$test')).toBeDefined();
    expect(seedState(a)).toBe('done');
    await seedOnStart(a, path, 'small', async () => 'scrypt$test');
    expect(a.prepare('SELECT count(*) FROM forums').pluck().get()).toBe(5);
  });

  it('refuses to start on a file whose seed began and never finished, naming DATABASE_PATH, and deletes nothing', async () => {
    const a = db();
    migrate(a);
    // What a first start killed after its first batches leaves behind.
    a.prepare("INSERT INTO meta (key, value) VALUES ('seed', 'started')").run();
    a.prepare("INSERT INTO users (id, username, password_hash, created_at) VALUES (1, 'user1', 'x', 0)").run();
    await expect(buildApp(config(), { logger: false })).rejects.toThrow(`DATABASE_PATH=${path}: its demo seeding began and did not finish`);
    expect(a.prepare('SELECT count(*) FROM users').pluck().get()).toBe(1);
  });

  it('lets only one of two connections seed a fresh file; the other is told it is being seeded', async () => {
    const a = db();
    const b = db();
    migrate(a);
    migrate(b);
    // b claims under the write lock first; a's claim then sees it.
    b.prepare("INSERT INTO meta (key, value) VALUES ('seed', 'started')").run();
    expect(seed(a, 'small', 'scrypt$test')).toBeUndefined();
    await expect(seedOnStart(a, path, 'small', async () => 'scrypt$test')).rejects.toThrow(/another process is seeding it now/);
    expect(a.prepare('SELECT count(*) FROM users').pluck().get()).toBe(0);
  });
});

describe('migrations from two processes', () => {
  it('re-reads applied migrations under the write lock, so the second does not re-run them', () => {
    const a = db();
    const b = db();
    const all = loadMigrations();
    // b has read the applied set (empty); a applies everything before b's first transaction.
    function* interleaved(): Generator<Migration> {
      expect(migrate(a, all)).toEqual(all.map((m) => m.version));
      yield* all;
    }
    expect(migrate(b, interleaved() as unknown as Migration[])).toEqual([]);
    expect(b.prepare('SELECT count(*) FROM schema_migrations').pluck().get()).toBe(all.length);
  });

  it('opens the same fresh file twice with openRepositories', () => {
    const r1 = openRepositories(path);
    const r2 = openRepositories(path);
    r1.close();
    r2.close();
  });
});
