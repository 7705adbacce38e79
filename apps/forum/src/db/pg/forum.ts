/** Forums, topics and threaded posts on PostgreSQL: the same rows and orders as repositories/{forums,topics,posts}.ts. */
import type pg from 'pg';
import { type Forum, type ForumRow, toForum } from '../repositories/forums.ts';
import {
  INSERTED_COLUMNS as INSERTED_COLUMNS_SQLITE,
  COLUMNS as POST_COLUMNS_SQLITE,
  type Post,
  type PostRow,
  type ThreadPost,
  toPost,
  toThread,
} from '../repositories/posts.ts';
import { COLUMNS as TOPIC_COLUMNS, type Topic, type TopicRow, toTopic } from '../repositories/topics.ts';
import type { TimeKey } from '../store.ts';
import type { Db } from './client.ts';
import { enqueueSql } from './previews.ts';

// The SQLite column list, with `deleted` as 0/1 as toPost expects.
const POST_COLUMNS = POST_COLUMNS_SQLITE.replace('p.deleted', 'p.deleted::int AS deleted');
const INSERTED_COLUMNS = INSERTED_COLUMNS_SQLITE.replace('deleted', 'deleted::int AS deleted');

// The thread walk of repositories/posts.ts. PostgreSQL allows no LIMIT in a recursive term, so
// each parent's replies come from a LATERAL subquery in (created_at, id) order, and the row bound
// is the outer LIMIT, which stops the walk once it has enough rows (PostgreSQL evaluates a CTE
// only as far as its reader pulls): as in SQLite, the walk is breadth-first, and a bound that
// cuts a parent's replies keeps the first ones, so a keyset cursor continues after the last.
// The path sorts bytewise (COLLATE "C"), as SQLite's BINARY, whatever the database's collation.
const threadTail = (maxDepth: string, maxRows: string) => `
  UNION ALL
  SELECT c.id, t.depth + 1, t.path || '/' || lpad(c.id::text, 12, '0')
  FROM thread t CROSS JOIN LATERAL (
    SELECT id FROM posts WHERE parent_id = t.id ORDER BY created_at, id LIMIT ${maxRows}
  ) c
  WHERE t.depth < ${maxDepth}
)
SELECT ${POST_COLUMNS}, thread.depth AS thread_depth
FROM (SELECT * FROM thread LIMIT ${maxRows}) thread
JOIN posts p ON p.id = thread.id JOIN users u ON u.id = p.author_id
ORDER BY thread.path COLLATE "C"`;

const SQL = {
  forumsList:
    'SELECT id, slug, name, description, position, topic_count FROM forums WHERE (position, id) > ($1, $2) ORDER BY position, id LIMIT $3',
  forumsById: 'SELECT id, slug, name, description, position, topic_count FROM forums WHERE id = $1',
  topicsFirst: `SELECT ${TOPIC_COLUMNS} FROM topics t JOIN users u ON u.id = t.author_id WHERE t.forum_id = $1 ORDER BY t.updated_at DESC, t.id DESC LIMIT $2`,
  topicsAfter: `SELECT ${TOPIC_COLUMNS} FROM topics t JOIN users u ON u.id = t.author_id
    WHERE t.forum_id = $1 AND (t.updated_at, t.id) < ($2, $3) ORDER BY t.updated_at DESC, t.id DESC LIMIT $4`,
  topicsById: `SELECT ${TOPIC_COLUMNS} FROM topics t JOIN users u ON u.id = t.author_id WHERE t.id = $1`,
  topicInsert:
    'INSERT INTO topics (forum_id, author_id, title, created_at, updated_at, post_count) VALUES ($1, $2, $3, $4, $4, 0) RETURNING id',
  topicTouch: 'UPDATE topics SET updated_at = $1, post_count = post_count + 1 WHERE id = $2 RETURNING forum_id',
  forumBump: 'UPDATE forums SET topic_count = topic_count + 1 WHERE id = $1',
  // $1 topic, $2/$3 cursor, $4 roots, $5 maxDepth, $6 maxRows
  topicThread: `WITH RECURSIVE thread(id, depth, path) AS (
    SELECT id, 0, lpad(id::text, 12, '0') FROM (
      SELECT id FROM posts WHERE topic_id = $1 AND parent_id IS NULL AND (created_at, id) > ($2, $3)
      ORDER BY created_at, id LIMIT $4) roots
    ${threadTail('$5', '$6')}`,
  // $1 root, $2 maxDepth, $3 maxRows
  subThread: `WITH RECURSIVE thread(id, depth, path) AS (
    SELECT id, 0, lpad(id::text, 12, '0') FROM posts WHERE id = $1
    ${threadTail('$2', '$3')}`,
  // $1 root, $2/$3 cursor, $4 maxDepth, $5 maxRows
  repliesAfter: `WITH RECURSIVE thread(id, depth, path) AS (
    SELECT id, 1, lpad(id::text, 12, '0') FROM (
      SELECT id FROM posts WHERE parent_id = $1 AND (created_at, id) > ($2, $3) ORDER BY created_at, id LIMIT $5) replies
    ${threadTail('$4', '$5')}`,
  postById: `SELECT ${POST_COLUMNS} FROM posts p JOIN users u ON u.id = p.author_id WHERE p.id = $1`,
  postsByAuthor: `SELECT ${POST_COLUMNS} FROM posts p JOIN users u ON u.id = p.author_id
    WHERE p.author_id = $1 AND p.created_at < $2 ORDER BY p.created_at DESC LIMIT $3`,
  postInsert: `INSERT INTO posts (topic_id, parent_id, author_id, body, depth, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING ${INSERTED_COLUMNS}`,
  postBumpReplies: 'UPDATE posts SET reply_count = reply_count + 1 WHERE id = $1',
  // A reply as one statement: one round trip, atomic with no transaction around it (a reply in a
  // transaction took four: BEGIN, the topic's bump, the insert, COMMIT). $1 topic, $2 parent or
  // NULL, $3 author, $4 body, $5 depth, $6 at, $7 links, $8 their traceparent. The topic's bump
  // says whether it exists: without one, nothing is inserted and no row comes back. (Casts: an
  // INSERT … SELECT does not type its parameters by the columns, as VALUES does.)
  postCreate: `WITH t AS (
      UPDATE topics SET updated_at = $6::bigint, post_count = post_count + 1 WHERE id = $1::int RETURNING forum_id
    ), p AS (
      INSERT INTO posts (topic_id, parent_id, author_id, body, depth, created_at, updated_at)
      SELECT $1::int, $2::int, $3::int, $4::text, $5::int, $6::bigint, $6::bigint FROM t RETURNING ${INSERTED_COLUMNS}
    ), b AS (
      UPDATE posts SET reply_count = reply_count + 1 WHERE id = $2::int AND EXISTS (SELECT FROM p)
    ), l AS (
      ${enqueueSql('p.id', 'p, ', '$7', '$8::text', '$6::bigint')}
    )
    SELECT p.*, t.forum_id FROM p CROSS JOIN t`,
  postUpdate: 'UPDATE posts SET body = $1, updated_at = $2 WHERE id = $3 AND NOT deleted',
  postSoftDelete: "UPDATE posts SET body = '', deleted = true, updated_at = $1 WHERE id = $2 AND NOT deleted",
} as const;

type ThreadRow = PostRow & { thread_depth: number };

export function forumQueries(db: Db) {
  return {
    forums: {
      async list(after: { position: number; id: number } | null, limit: number): Promise<Forum[]> {
        return (await db.query<ForumRow>('forums.list', SQL.forumsList, [after?.position ?? -1, after?.id ?? 0, limit])).map(toForum);
      },
      async byId(id: number): Promise<Forum | undefined> {
        const [r] = await db.query<ForumRow>('forums.byId', SQL.forumsById, [id]);
        return r && toForum(r);
      },
    },
    topics: {
      async list(forumId: number, after: { updatedAt: number; id: number } | null, limit: number): Promise<Topic[]> {
        const rows = after
          ? await db.query<TopicRow>('topics.listByForumAfter', SQL.topicsAfter, [forumId, after.updatedAt, after.id, limit])
          : await db.query<TopicRow>('topics.listByForum', SQL.topicsFirst, [forumId, limit]);
        return rows.map(toTopic);
      },
      async byId(id: number): Promise<Topic | undefined> {
        const [r] = await db.query<TopicRow>('topics.byId', SQL.topicsById, [id]);
        return r && toTopic(r);
      },
    },
    posts: {
      async topicThread(topicId: number, after: TimeKey | null, roots: number, maxDepth: number, maxRows: number): Promise<ThreadPost[]> {
        const values = [topicId, after?.createdAt ?? -1, after?.id ?? 0, roots, maxDepth, maxRows];
        return toThread(await db.query<ThreadRow>('posts.topicThread', SQL.topicThread, values));
      },
      async subThread(rootId: number, maxDepth: number, maxRows: number, after: TimeKey | null = null): Promise<ThreadPost[]> {
        const rows = after
          ? await db.query<ThreadRow>('posts.repliesAfter', SQL.repliesAfter, [rootId, after.createdAt, after.id, maxDepth, maxRows])
          : await db.query<ThreadRow>('posts.subThread', SQL.subThread, [rootId, maxDepth, maxRows]);
        return toThread(rows);
      },
      async byId(id: number): Promise<Post | undefined> {
        const [r] = await db.query<PostRow>('posts.byId', SQL.postById, [id]);
        return r && toPost(r);
      },
      async byAuthor(authorId: number, before: number, limit: number): Promise<Post[]> {
        return (await db.query<PostRow>('posts.byAuthor', SQL.postsByAuthor, [authorId, before, limit])).map(toPost);
      },
    },
  };
}

/** The statements the atomic writes run, each on the transaction's client. */
export function forumWrites(db: Db) {
  return {
    async insertTopic(c: pg.PoolClient, forumId: number, authorId: number, title: string, at: number): Promise<number> {
      const [row] = await db.query<{ id: number }>('topics.insert', SQL.topicInsert, [forumId, authorId, title, at], c);
      await db.changes('forums.bumpTopicCount', SQL.forumBump, [forumId], c);
      return (row as { id: number }).id;
    },
    /** Bumps a topic for a new post; returns its forum, or undefined when there is no such topic. */
    async touchTopic(c: pg.PoolClient, topicId: number, at: number): Promise<number | undefined> {
      const [row] = await db.query<{ forum_id: number }>('topics.touch', SQL.topicTouch, [at, topicId], c);
      return row?.forum_id;
    },
    /**
     * A reply, its parent's and its topic's bumps and its links' previews, in one statement on
     * any pooled connection (see SQL.postCreate); undefined when the topic does not exist.
     */
    async createPost(
      topicId: number,
      parent: { id: number; depth: number } | null,
      authorId: number,
      body: string,
      urls: readonly string[],
      traceparent: string | null,
      at: number,
    ): Promise<(Omit<PostRow, 'username'> & { forum_id: number }) | undefined> {
      const values = [topicId, parent?.id ?? null, authorId, body, parent ? parent.depth + 1 : 0, at, urls, traceparent];
      const [row] = await db.query<Omit<PostRow, 'username'> & { forum_id: number }>('posts.create', SQL.postCreate, values);
      return row;
    },
    /** Inserts a post (and bumps its parent); returns its row as stored (no author join). */
    async insertPost(
      c: pg.PoolClient,
      topicId: number,
      parent: { id: number; depth: number } | null,
      authorId: number,
      body: string,
      at: number,
    ): Promise<Omit<PostRow, 'username'>> {
      const values = [topicId, parent?.id ?? null, authorId, body, parent ? parent.depth + 1 : 0, at];
      const [row] = await db.query<Omit<PostRow, 'username'>>('posts.insert', SQL.postInsert, values, c);
      if (parent) await db.changes('posts.bumpReplies', SQL.postBumpReplies, [parent.id], c);
      return row as Omit<PostRow, 'username'>;
    },
    async updatePost(c: pg.PoolClient, id: number, body: string, at: number): Promise<boolean> {
      return (await db.changes('posts.update', SQL.postUpdate, [body, at, id], c)) > 0;
    },
    async softDeletePost(c: pg.PoolClient, id: number, at: number): Promise<void> {
      await db.changes('posts.softDelete', SQL.postSoftDelete, [at, id], c);
    },
  };
}
