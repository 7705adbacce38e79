/**
 * What a seeded database looks like to the forum that starts on it: its posts' search index is
 * merged, so the forum's first index batches write small segments and never run FTS5's crisis
 * merge (at 64 segments on one level) in the writer's transaction, on the event loop.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openRepositories, type Repositories } from '../../src/db/index.ts';
import { seed } from '../../src/db/seed.ts';

let dir: string;
let repos: Repositories;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'forum-seed-index-'));
  repos = openRepositories(join(dir, 'forum.db'));
  // `medium`: its 50,000 posts fill FTS5's pending terms several times (6 segments unmerged);
  // `small` fits in one segment either way.
  seed(repos.db, 'medium', 'scrypt$test');
});
afterAll(() => {
  repos.close();
  rmSync(dir, { recursive: true, force: true });
});

/**
 * The segment count of an FTS5 index, from its structure record (row 10 of `<table>_data`): a
 * 4-byte cookie, then varints for the number of levels and the number of segments.
 */
function segments(table: string): number {
  const block = repos.db.prepare(`SELECT block FROM ${table}_data WHERE id = 10`).pluck().get() as Buffer;
  let pos = 4;
  const varint = (): number => {
    let v = 0;
    for (;;) {
      const b = block[pos++] as number;
      v = v * 128 + (b & 0x7f);
      if (b < 0x80) return v;
    }
  };
  varint(); // levels
  return varint();
}

describe('a seeded database', () => {
  it("leaves the posts' search index merged into one segment", () => {
    expect(segments('posts_fts')).toBe(1);
    // Still whole: FTS5 checks it against the posts table, and throws when they disagree.
    repos.db.prepare("INSERT INTO posts_fts (posts_fts, rank) VALUES ('integrity-check', 1)").run();
    expect(repos.db.prepare("SELECT count(*) FROM posts_fts WHERE posts_fts MATCH 'latency'").pluck().get()).toBeGreaterThan(1_000);
  });
});
