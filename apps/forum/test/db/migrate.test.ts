import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type Db, openDatabase } from '../../src/db/connection.ts';
import { loadMigrations, migrate } from '../../src/db/migrate.ts';

let dir: string;
let db: Db;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'forum-migrate-'));
  db = openDatabase(join(dir, 'm.db'));
});
afterEach(() => {
  db.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('migrations', () => {
  it('applies every migration once; a second run applies nothing', () => {
    const all = loadMigrations().map((m) => m.version);
    expect(migrate(db)).toEqual(all);
    expect(migrate(db)).toEqual([]);
  });

  it('rolls back a failing migration as a whole and keeps the earlier ones', () => {
    const good = { version: 1, name: 'good', sql: 'CREATE TABLE a (x INTEGER);' };
    const bad = { version: 2, name: 'bad', sql: 'CREATE TABLE b (x INTEGER); INSERT INTO nowhere VALUES (1);' };
    expect(() => migrate(db, [good, bad])).toThrow(/nowhere/);
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ('a', 'b')").pluck().all();
    expect(tables).toEqual(['a']);
    expect(db.prepare('SELECT version FROM schema_migrations').pluck().all()).toEqual([1]);
  });

  it('adds a NULL trace context to preview rows queued before migration 006', () => {
    migrate(
      db,
      loadMigrations().filter((m) => m.version < 6),
    );
    db.exec(`
      INSERT INTO users (id, username, password_hash, created_at) VALUES (1, 'u', 'h', 0);
      INSERT INTO forums (id, slug, name) VALUES (1, 'f', 'F');
      INSERT INTO topics (id, forum_id, author_id, title, created_at, updated_at) VALUES (1, 1, 1, 't', 0, 0);
      INSERT INTO posts (id, topic_id, author_id, body, created_at, updated_at) VALUES (1, 1, 1, 'b', 0, 0);
      INSERT INTO link_previews (post_id, url, status, next_attempt_at, updated_at) VALUES (1, 'http://example.com/', 'pending', 5, 5);
    `);
    expect(
      migrate(
        db,
        loadMigrations().filter((m) => m.version <= 6),
      ),
    ).toEqual([6]);
    expect(db.prepare('SELECT url, status, next_attempt_at, traceparent FROM link_previews').all()).toEqual([
      { url: 'http://example.com/', status: 'pending', next_attempt_at: 5, traceparent: null },
    ]);
  });

  it('refuses to store a preview trace context that is not 55 characters', () => {
    migrate(db);
    db.exec(`
      INSERT INTO users (id, username, password_hash, created_at) VALUES (1, 'u', 'h', 0);
      INSERT INTO forums (id, slug, name) VALUES (1, 'f', 'F');
      INSERT INTO topics (id, forum_id, author_id, title, created_at, updated_at) VALUES (1, 1, 1, 't', 0, 0);
      INSERT INTO posts (id, topic_id, author_id, body, created_at, updated_at) VALUES (1, 1, 1, 'b', 0, 0);
    `);
    const insert = db.prepare(
      "INSERT INTO link_previews (post_id, url, status, traceparent, next_attempt_at, updated_at) VALUES (1, 'http://example.com/', 'pending', ?, 0, 0)",
    );
    expect(() => insert.run('x'.repeat(56))).toThrow(/CHECK constraint/);
  });

  it('sets WAL, NORMAL sync, a busy timeout and foreign keys', () => {
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('synchronous', { simple: true })).toBe(1);
    expect(db.pragma('busy_timeout', { simple: true })).toBe(5000);
    expect(db.pragma('foreign_keys', { simple: true })).toBe(1);
  });
});
