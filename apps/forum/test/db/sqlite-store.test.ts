/** The storage contract on the SQLite store (the reference backend), one temporary file per test. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openRepositories } from '../../src/db/index.ts';
import { createSqliteStore } from '../../src/db/sqlite-store.ts';
import { type Harness, storeContract } from './store-contract.ts';

async function openSqlite(): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), 'forum-store-'));
  const repos = openRepositories(join(dir, 'forum.db'));
  const store = createSqliteStore(repos);
  const addForum = repos.db.prepare('INSERT INTO forums (slug, name, position) VALUES (?, ?, ?) RETURNING id').pluck();
  return {
    store,
    async addForum(slug, position = 0) {
      return addForum.get(slug, slug, position) as number;
    },
    async flushSearch() {
      repos.transaction(() => repos.postIndex.indexPending(1e6));
    },
    async sql(query, params = []) {
      // `$n` placeholders become named ones: better-sqlite3 binds an array to `?` only.
      const stmt = repos.db.prepare(query.replace(/\$(\d+)/g, '@p$1'));
      const named = Object.fromEntries(params.map((v, i) => [`p${i + 1}`, v]));
      const args = params.length > 0 ? [named] : [];
      if (stmt.reader) return stmt.all(...args);
      stmt.run(...args);
      return [];
    },
    async close() {
      store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

storeContract('sqlite', openSqlite);
