import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openRepositories } from '../../src/db/index.ts';
import { bearer, createTestApp, register, type TestApp } from '../helpers.ts';

// Another connection (a second process, a seed or a migration) holding SQLite's write lock past
// busy_timeout: the write is refused with a 503 the client can retry, and nothing half-written stays.
let t: TestApp;
let token: string;
let other: Database.Database;

beforeAll(async () => {
  t = await createTestApp({ seedOnEmpty: 'small', dbBusyTimeoutMs: 20 });
  token = (await register(t.app, 'busy-writer')).token;
  other = new Database(join(t.dir, 'forum.db'));
});
afterAll(async () => {
  other.close();
  await t.close();
});

const postCount = async (): Promise<number> =>
  ((await t.app.inject({ url: '/api/v1/topics/1' })).json() as { topic: { postCount: number } }).topic.postCount;

describe('a write while another connection holds the lock', () => {
  it('gets a 503 with Retry-After, writes nothing, and succeeds once the lock is free', async () => {
    const before = await postCount();
    other.exec('BEGIN IMMEDIATE');
    let res: Awaited<ReturnType<typeof t.app.inject>>;
    try {
      res = await t.app.inject({
        method: 'POST',
        url: '/api/v1/topics/1/posts',
        headers: bearer(token),
        payload: { body: 'while locked' },
      });
    } finally {
      other.exec('ROLLBACK');
    }
    expect(res.statusCode).toBe(503);
    expect(res.headers['retry-after']).toBe('1');
    expect(res.json()).toEqual({ error: 'unavailable', message: 'the database is busy; retry shortly' });
    expect(await postCount()).toBe(before);

    const again = await t.app.inject({ method: 'POST', url: '/api/v1/topics/1/posts', headers: bearer(token), payload: { body: 'after' } });
    expect(again.statusCode).toBe(201);
    expect(await postCount()).toBe(before + 1);
  });
});

describe('repos.transaction', () => {
  it('retries a BEGIN refused at once, a bounded number of times, and never re-runs a started body', () => {
    const repos = openRepositories(join(t.dir, 'forum.db'), { busyTimeoutMs: 0 });
    try {
      // With busy_timeout 0 every refusal is immediate by configuration: no retry, one attempt.
      other.exec('BEGIN IMMEDIATE');
      let runs = 0;
      try {
        expect(() => repos.transaction(() => ++runs)).toThrow(expect.objectContaining({ code: 'SQLITE_BUSY' }));
      } finally {
        other.exec('ROLLBACK');
      }
      expect(runs).toBe(0);
      // A body that fails is not retried: it ran once and rolled back.
      expect(() =>
        repos.transaction(() => {
          runs++;
          throw Object.assign(new Error('busy inside'), { code: 'SQLITE_BUSY' });
        }),
      ).toThrow('busy inside');
      expect(runs).toBe(1);
      expect(repos.transaction(() => 42)).toBe(42);
    } finally {
      repos.close();
    }
  });

  it('runs a nested call as a savepoint: its failure undoes only its own writes', () => {
    const repos = openRepositories(join(t.dir, 'forum.db'));
    const insert = repos.db.prepare('INSERT INTO users (username, password_hash, created_at) VALUES (?, ?, ?)');
    const count = (name: string) => repos.db.prepare('SELECT count(*) FROM users WHERE username = ?').pluck().get(name);
    try {
      repos.transaction(() => {
        insert.run('nested-outer', 'x', 1);
        expect(() =>
          repos.transaction(() => {
            insert.run('nested-inner', 'x', 2);
            throw new Error('inner fails');
          }),
        ).toThrow('inner fails');
      });
      expect(count('nested-outer')).toBe(1);
      expect(count('nested-inner')).toBe(0);
    } finally {
      repos.close();
    }
  });

  it('names a bad busyTimeoutMs', () => {
    expect(() => openRepositories(join(t.dir, 'forum.db'), { busyTimeoutMs: -1 })).toThrow(/busyTimeoutMs/);
  });
});
