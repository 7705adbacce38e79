import { type Db, openDatabase, Statements } from './connection.ts';
import { migrate } from './migrate.ts';
import { createForumsRepository } from './repositories/forums.ts';
import { createPostsRepository } from './repositories/posts.ts';
import { createPreviewsRepository } from './repositories/previews.ts';
import { createSearchRepository } from './repositories/search.ts';
import { createSessionsRepository } from './repositories/sessions.ts';
import { createTopicsRepository } from './repositories/topics.ts';
import { createUsersRepository } from './repositories/users.ts';
import { createWikiRepository } from './repositories/wiki.ts';

/** The database with every repository, each statement prepared once. */
export function openRepositories(path: string) {
  const db = openDatabase(path);
  migrate(db);
  const statements = new Statements(db);
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
    /** Runs `fn` in one IMMEDIATE transaction (takes the write lock up front, so no upgrade deadlock). */
    transaction<T>(fn: () => T): T {
      return db.transaction(fn).immediate();
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
