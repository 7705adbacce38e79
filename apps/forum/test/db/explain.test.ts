import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openRepositories, type Repositories } from '../../src/db/index.ts';
import { seed } from '../../src/db/seed.ts';

// Tables that grow with use: a full SCAN of one is a query that gets slower every day.
const GROWING = ['users', 'sessions', 'topics', 'posts', 'pages', 'revisions', 'page_categories', 'categories'];

let dir: string;
let repos: Repositories;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'forum-explain-'));
  repos = openRepositories(join(dir, 'forum.db'));
  seed(repos.db, 'medium', 'scrypt$not-a-real-hash');
}, 120_000);
afterAll(() => {
  repos.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Binds every parameter of a statement to a plausible value so it can be EXPLAINed. */
function params(sql: string): unknown[] | Record<string, unknown> {
  const named = [...new Set(sql.match(/@\w+/g) ?? [])];
  if (named.length > 0) return Object.fromEntries(named.map((n) => [n.slice(1), n === '@q' ? '"zebra"' : 1]));
  return Array.from({ length: (sql.match(/\?/g) ?? []).length }, () => 1);
}

/** alias → table for every `FROM x [AS] a` / `JOIN x [AS] a` in the statement. */
function aliases(sql: string): Map<string, string> {
  const map = new Map<string, string>();
  for (const m of sql.matchAll(/\b(?:FROM|JOIN)\s+(\w+)(?:\s+(?:AS\s+)?(\w+))?/gi)) {
    const table = m[1] as string;
    map.set(table, table);
    const alias = m[2];
    if (alias && !/^(ON|WHERE|JOIN|CROSS|LEFT|INNER|ORDER|GROUP|LIMIT|USING|UNION)$/i.test(alias)) map.set(alias, table);
  }
  return map;
}

function problems(sql: string, allow: readonly string[]): string[] {
  const plan = repos.db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(params(sql) as never) as Array<{ detail: string }>;
  const names = aliases(sql);
  const found: string[] = [];
  for (const { detail } of plan) {
    // Plans name the alias (`SCAN u`), so resolve it; a full index scan (`USING COVERING INDEX`) is still a full scan.
    const scan = /^SCAN (\w+)(?! VIRTUAL TABLE)/.exec(detail);
    const table = scan && (names.get(scan[1] as string) ?? scan[1]);
    if (table && GROWING.includes(table) && !allow.some((a) => a.startsWith('scan'))) found.push(`${detail} (${table})`);
    if (
      /USE TEMP B-TREE FOR (ORDER BY|RIGHT PART OF ORDER BY|GROUP BY|DISTINCT)/.test(detail) &&
      !allow.some((a) => a.startsWith('temp-btree'))
    )
      found.push(detail);
  }
  return found;
}

describe('query plans at medium scale', () => {
  it('prepares statements for every repository', () => {
    expect(repos.statements.list().length).toBeGreaterThan(25);
  });

  it('has no full scan of a growing table and no temp B-tree an index should serve, in any app statement', () => {
    const bad = repos.statements
      .list()
      .map((s) => ({ name: s.name, issues: problems(s.sql, s.allow) }))
      .filter((s) => s.issues.length > 0);
    expect(bad).toEqual([]);
  });

  it('flags a statement that scans a growing table (the check can fail)', () => {
    expect(problems('SELECT * FROM posts WHERE body = ?', [])).not.toEqual([]);
    expect(problems('SELECT * FROM topics WHERE forum_id = ? ORDER BY title', [])).not.toEqual([]);
    expect(problems('SELECT u.username FROM users u WHERE u.created_at > ?', [])).not.toEqual([]);
  });
});
