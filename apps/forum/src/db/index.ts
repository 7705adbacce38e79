import { type Db, type OpenOptions, openDatabase, Statements } from './connection.ts';
import { migrate } from './migrate.ts';
import { createForumsRepository } from './repositories/forums.ts';
import { createPostIndexRepository } from './repositories/post-index.ts';
import { createPostsRepository } from './repositories/posts.ts';
import { createPreviewsRepository } from './repositories/previews.ts';
import { createSearchRepository } from './repositories/search.ts';
import { createSessionsRepository } from './repositories/sessions.ts';
import { createTopicsRepository } from './repositories/topics.ts';
import { createUsersRepository } from './repositories/users.ts';
import { createWikiRepository } from './repositories/wiki.ts';

/** How often {@link openRepositories}' `transaction` retries a BEGIN that SQLite refused at once. */
export const BEGIN_RETRIES = 3;

/** The SQLite result code better-sqlite3 put on `err` (`SQLITE_BUSY_SNAPSHOT`…), if any. */
function sqliteCode(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : '';
}

/** Whether `err` is SQLite's SQLITE_BUSY (or one of its extended codes). */
export function isBusy(err: unknown): boolean {
  return sqliteCode(err).startsWith('SQLITE_BUSY');
}

/**
 * Whether `err` says the database file cannot take writes: the disk is full (SQLITE_FULL), an
 * I/O error (SQLITE_IOERR and its extended codes), or the file or its directory is read-only
 * (SQLITE_READONLY…). Retrying at once will not help; an operator must.
 */
export function isStorageFailure(err: unknown): boolean {
  const code = sqliteCode(err);
  return code === 'SQLITE_FULL' || code.startsWith('SQLITE_IOERR') || code.startsWith('SQLITE_READONLY');
}

/** The database with every repository, each statement prepared once. */
export function openRepositories(path: string, options: OpenOptions = {}) {
  const db = openDatabase(path, options);
  const busyTimeoutMs = db.pragma('busy_timeout', { simple: true }) as number;
  migrate(db);
  const statements = new Statements(db);
  // One wrapper for every call: better-sqlite3 builds four closures per db.transaction(), ~10 µs
  // a reply under the forum bench. `began` says whether the body started (so BEGIN succeeded).
  let began = false;
  const tx = db.transaction((fn: () => unknown) => {
    began = true;
    return fn();
  });
  const repos = {
    db,
    statements,
    users: createUsersRepository(statements),
    sessions: createSessionsRepository(statements),
    forums: createForumsRepository(statements),
    topics: createTopicsRepository(statements),
    posts: createPostsRepository(statements),
    previews: createPreviewsRepository(statements),
    wiki: createWikiRepository(statements),
    search: createSearchRepository(statements),
    postIndex: createPostIndexRepository(statements),
    /**
     * Runs `fn` in one IMMEDIATE transaction (takes the write lock up front, so no upgrade
     * deadlock). SQLite can answer the BEGIN with SQLITE_BUSY at once, without waiting out
     * busy_timeout (seen twice under the forum bench while the checkpoint worker ran); nothing
     * has run then, so the BEGIN is retried, at most {@link BEGIN_RETRIES} times. A BUSY that
     * did wait, or one raised inside `fn`, is thrown (the routes answer it with a 503).
     */
    transaction<T>(fn: () => T): T {
      // Inside another transaction this is a savepoint, and the outer call owns the retry.
      if (db.inTransaction) return tx.immediate(fn) as T;
      for (let attempt = 0; ; attempt++) {
        began = false;
        const start = performance.now();
        try {
          return tx.immediate(fn) as T;
        } catch (err) {
          const waited = performance.now() - start >= Math.min(busyTimeoutMs, 100);
          if (began || !isBusy(err) || waited || attempt >= BEGIN_RETRIES) throw err;
        }
      }
    },
    isEmpty(): boolean {
      return db.prepare('SELECT NOT EXISTS (SELECT 1 FROM forums)').pluck().get() === 1;
    },
    close(): void {
      if (db.open) db.close();
    },
  };
  return repos;
}
export type Repositories = ReturnType<typeof openRepositories>;
export type { Db };
