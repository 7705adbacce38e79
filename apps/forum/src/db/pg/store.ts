/**
 * The {@link ForumStore} on PostgreSQL: what lets several forum instances, on several machines,
 * share one database. The same rows, orders and bounds as the SQLite repositories; each atomic
 * write is one transaction on one pooled connection, or one statement (a reply).
 */
import type pg from 'pg';
import { toPost } from '../repositories/posts.ts';
import { type PublicUser, toPublicUser, type UserRow } from '../repositories/users.ts';
import { type ForumStore, UsernameTakenError } from '../store.ts';
import { Db, type PgStoreOptions, resolvePgOptions } from './client.ts';
import { forumQueries, forumWrites } from './forum.ts';
import { migratePostgres } from './migrate.ts';
import { previewQueries } from './previews.ts';
import { searchQueries } from './search.ts';
import { wikiQueries } from './wiki.ts';

export type { PgStoreOptions } from './client.ts';

export interface PostgresStore extends ForumStore {
  readonly kind: 'postgres';
  /** The connection pool (the seed and tools run their own statements on it). */
  readonly pool: pg.Pool;
  /** Connections open, idle among them, and queries waiting for one: three counters the pool keeps anyway. */
  poolStats(): { total: number; idle: number; waiting: number };
}

const SQL = {
  userInsert: 'INSERT INTO users (username, password_hash, created_at) VALUES ($1, $2, $3) RETURNING id, username, created_at',
  userByName: 'SELECT id, username, password_hash, created_at FROM users WHERE lower(username) = lower($1)',
  userById: 'SELECT id, username, created_at FROM users WHERE id = $1',
  sessionInsert: 'INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)',
  sessionLookup: `SELECT u.id, u.username, u.created_at, s.expires_at FROM sessions s JOIN users u ON u.id = s.user_id
    WHERE s.token_hash = $1 AND s.expires_at > $2`,
  sessionDelete: 'DELETE FROM sessions WHERE token_hash = $1',
  sessionsExpired: 'DELETE FROM sessions WHERE expires_at <= $1',
  ping: 'SELECT id FROM forums LIMIT 1',
} as const;

/**
 * Connects to the database at `url`, migrates it, and returns the store. Throws, naming the
 * server without its password, when it cannot connect.
 *
 * @example
 * ```ts
 * const store = await openPostgresStore('postgres://forum@127.0.0.1:5432/forum', { max: 20 });
 * const forums = await store.forums.list(null, 10);
 * await store.close();
 * ```
 */
export async function openPostgresStore(url: string, options: PgStoreOptions = {}): Promise<PostgresStore> {
  if (typeof url !== 'string' || url === '') throw new TypeError('openPostgresStore: url must be a non-empty connection string');
  const o = resolvePgOptions(options);
  const db = new Db(url, o);
  try {
    await migratePostgres(db.pool);
  } catch (err) {
    await db.close();
    throw new Error(`cannot open the PostgreSQL database at DATABASE_URL=${redact(url)}: ${(err as Error).message}`, { cause: err });
  }
  const forum = forumQueries(db);
  const writes = forumWrites(db);
  const previews = previewQueries(db, o.previewLeaseMs);
  const wiki = wikiQueries(db);
  return {
    kind: 'postgres',
    pool: db.pool,
    stats: db.stats,
    poolStats: () => ({ total: db.pool.totalCount, idle: db.pool.idleCount, waiting: db.pool.waitingCount }),
    ...forum,
    users: {
      async insert(username: string, passwordHash: string, now: number): Promise<PublicUser> {
        try {
          const [row] = await db.query<UserRow>('users.insert', SQL.userInsert, [username, passwordHash, now]);
          return toPublicUser(row as UserRow);
        } catch (err) {
          if ((err as { code?: unknown }).code === '23505') throw new UsernameTakenError(err);
          throw err;
        }
      },
      async byName(username: string): Promise<UserRow | undefined> {
        return (await db.query<UserRow>('users.byName', SQL.userByName, [username]))[0];
      },
      async byId(id: number): Promise<PublicUser | undefined> {
        const [row] = await db.query<UserRow>('users.byId', SQL.userById, [id]);
        return row && toPublicUser(row);
      },
    },
    sessions: {
      async insert(tokenHash: Buffer, userId: number, now: number, expiresAt: number): Promise<void> {
        await db.changes('sessions.insert', SQL.sessionInsert, [tokenHash, userId, now, expiresAt]);
      },
      async lookup(tokenHash: Buffer, now: number) {
        const [r] = await db.query<{ id: number; username: string; created_at: number; expires_at: number }>(
          'sessions.lookup',
          SQL.sessionLookup,
          [tokenHash, now],
        );
        return r && { id: r.id, username: r.username, createdAt: r.created_at, expiresAt: r.expires_at };
      },
      async delete(tokenHash: Buffer): Promise<boolean> {
        return (await db.changes('sessions.delete', SQL.sessionDelete, [tokenHash])) > 0;
      },
      async deleteExpired(now: number): Promise<number> {
        return db.changes('sessions.deleteExpired', SQL.sessionsExpired, [now]);
      },
    },
    previews: previews.queries,
    wiki: { get: wiki.get, revisions: wiki.revisions },
    search: searchQueries(db),
    createTopic({ forumId, authorId, title, body, urls, at }) {
      return db.transaction(async (c) => {
        const topicId = await writes.insertTopic(c, forumId, authorId, title, at);
        const { id: postId } = await writes.insertPost(c, topicId, null, authorId, body, at);
        await previews.writes.enqueue(c, postId, urls, at);
        await writes.touchTopic(c, topicId, at);
        return { topicId, postId };
      });
    },
    async createPost({ topicId, parent, author, body, urls, at }) {
      // One statement: the post and its previews' queue entries commit together, so a preview
      // can't be lost between them.
      const row = await writes.createPost(topicId, parent, author.id, body, urls, previews.writes.traceparent(), at);
      if (!row) return undefined;
      const { forum_id: forumId, ...post } = row;
      return { post: toPost({ ...post, username: author.username }), forumId };
    },
    editPost({ id, body, urls, at }) {
      return db.transaction(async (c) => {
        if (!(await writes.updatePost(c, id, body, at))) return false;
        await previews.writes.keepOnly(c, id, urls);
        await previews.writes.enqueue(c, id, urls, at);
        return true;
      });
    },
    async deletePost(id, at) {
      await db.transaction(async (c) => {
        await writes.softDeletePost(c, id, at);
        // The tombstone keeps its row, so ON DELETE CASCADE never fires: its previews go here.
        await previews.writes.removeAll(c, id);
      });
    },
    savePage: wiki.save,
    ping: () => db.ping('ping', SQL.ping),
    close: () => db.close(),
  };
}

/** The URL with its password replaced, for messages and logs. */
export function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparseable URL)';
  }
}
