import type { Statements } from '../connection.ts';

export interface Post {
  id: number;
  topicId: number;
  parentId: number | null;
  author: { id: number; username: string };
  body: string;
  depth: number;
  replyCount: number;
  deleted: boolean;
  edited: boolean;
  createdAt: number;
  updatedAt: number;
}

/**
 * A post in a thread read: `threadDepth` is relative to the thread's root; `hasMoreReplies`
 * marks a post whose replies were not all returned (cut by the depth or the row bound): read
 * them with its own sub-thread.
 */
export interface ThreadPost extends Post {
  threadDepth: number;
  hasMoreReplies: boolean;
}

export interface PostRow {
  id: number;
  topic_id: number;
  parent_id: number | null;
  author_id: number;
  username: string;
  body: string;
  depth: number;
  reply_count: number;
  deleted: number;
  created_at: number;
  updated_at: number;
}

export const toPost = (r: PostRow): Post => ({
  id: r.id,
  topicId: r.topic_id,
  parentId: r.parent_id,
  author: { id: r.author_id, username: r.username },
  body: r.deleted ? '' : r.body,
  depth: r.depth,
  replyCount: r.reply_count,
  deleted: r.deleted === 1,
  edited: r.updated_at !== r.created_at,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

export const COLUMNS =
  'p.id, p.topic_id, p.parent_id, p.author_id, u.username, p.body, p.depth, p.reply_count, p.deleted, p.created_at, p.updated_at';
/** A post's own columns, as `INSERT … RETURNING` gives them back (no join: the caller knows its author). */
export const INSERTED_COLUMNS = 'id, topic_id, parent_id, author_id, body, depth, reply_count, deleted, created_at, updated_at';

// The recursive part walks replies breadth-first from the seed rows. Depth and the total row
// count are both bounded (a hostile thread of 100k replies costs at most `maxRows` rows), and
// `path` (zero-padded ids) puts every reply right after its parent when sorted. CROSS JOIN pins
// the join order: left to the planner at `large` scale it scanned every user and then each one's
// posts (28 ms instead of 0.3 ms per thread; benchmarks/forum-queries.bench.ts). The recursive step
// reads each parent's replies through posts_parent, in (created_at, id) order, so a row bound
// that cuts a parent's replies keeps the first ones: a keyset cursor continues after the last.
const THREAD_TAIL = `
  UNION ALL
  SELECT c.id, t.depth + 1, t.path || '/' || printf('%012d', c.id)
  FROM posts c JOIN thread t ON c.parent_id = t.id
  WHERE t.depth < @maxDepth
  LIMIT @maxRows
)
SELECT ${COLUMNS}, thread.depth AS thread_depth FROM thread
CROSS JOIN posts p ON p.id = thread.id CROSS JOIN users u ON u.id = p.author_id
ORDER BY thread.path`;

/** Thread rows (each with its depth in the thread) as posts that know whether replies were cut. */
export function toThread(rows: (PostRow & { thread_depth: number })[]): ThreadPost[] {
  // Replies returned per parent. reply_count counts every reply ever made (a deleted one
  // stays as a tombstone), so fewer returned means the depth or row bound cut them.
  const returned = new Map<number, number>();
  for (const r of rows) if (r.parent_id !== null) returned.set(r.parent_id, (returned.get(r.parent_id) ?? 0) + 1);
  return rows.map((r) => ({
    ...toPost(r),
    threadDepth: r.thread_depth,
    hasMoreReplies: (returned.get(r.id) ?? 0) < r.reply_count,
  }));
}

const CTE_ORDER = 'temp-btree: sorting the recursive thread by path; no index can serve a CTE result';

export function createPostsRepository(st: Statements) {
  const rootsThread = st.prepare(
    'posts.topicThread',
    `WITH RECURSIVE thread(id, depth, path) AS (
       SELECT id, 0, printf('%012d', id) FROM (
         SELECT id FROM posts WHERE topic_id = @topicId AND parent_id IS NULL
           AND (created_at > @afterCreated OR (created_at = @afterCreated AND id > @afterId))
         ORDER BY created_at, id LIMIT @roots)
       ${THREAD_TAIL}`,
    [CTE_ORDER],
  );
  const subThread = st.prepare(
    'posts.subThread',
    `WITH RECURSIVE thread(id, depth, path) AS (
       SELECT id, 0, printf('%012d', id) FROM posts WHERE id = @rootId
       ${THREAD_TAIL}`,
    [CTE_ORDER],
  );
  // A post's direct replies after a cursor, each with its replies: the next page of a sub-thread.
  const repliesAfter = st.prepare(
    'posts.repliesAfter',
    `WITH RECURSIVE thread(id, depth, path) AS (
       SELECT id, 1, printf('%012d', id) FROM (
         SELECT id FROM posts WHERE parent_id = @rootId
           AND (created_at > @afterCreated OR (created_at = @afterCreated AND id > @afterId))
         ORDER BY created_at, id LIMIT @maxRows)
       ${THREAD_TAIL}`,
    [CTE_ORDER],
  );
  const byId = st.prepare('posts.byId', `SELECT ${COLUMNS} FROM posts p JOIN users u ON u.id = p.author_id WHERE p.id = ?`);
  const insert = st.prepare(
    'posts.insert',
    `INSERT INTO posts (topic_id, parent_id, author_id, body, depth, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING ${INSERTED_COLUMNS}`,
  );
  const insertRow = (topicId: number, parent: { id: number; depth: number } | null, authorId: number, body: string, now: number) => {
    const row = insert.get(topicId, parent?.id ?? null, authorId, body, parent ? parent.depth + 1 : 0, now, now) as Omit<
      PostRow,
      'username'
    >;
    if (parent) bumpReplies.run(parent.id);
    return row;
  };
  const bumpReplies = st.prepare('posts.bumpReplies', 'UPDATE posts SET reply_count = reply_count + 1 WHERE id = ?');
  const update = st.prepare('posts.update', 'UPDATE posts SET body = ?, updated_at = ? WHERE id = ? AND deleted = 0');
  const softDelete = st.prepare('posts.softDelete', "UPDATE posts SET body = '', deleted = 1, updated_at = ? WHERE id = ? AND deleted = 0");
  const byAuthor = st.prepare(
    'posts.byAuthor',
    `SELECT ${COLUMNS} FROM posts p JOIN users u ON u.id = p.author_id WHERE p.author_id = ? AND p.created_at < ? ORDER BY p.created_at DESC LIMIT ?`,
  );

  return {
    /** Root posts after the cursor, each with replies down to `maxDepth`, at most `maxRows` rows. */
    topicThread(
      topicId: number,
      after: { createdAt: number; id: number } | null,
      roots: number,
      maxDepth: number,
      maxRows: number,
    ): ThreadPost[] {
      const rows = rootsThread.all({
        topicId,
        afterCreated: after?.createdAt ?? -1,
        afterId: after?.id ?? 0,
        roots,
        maxDepth,
        maxRows,
      }) as (PostRow & { thread_depth: number })[];
      return toThread(rows);
    },
    /**
     * A post and its replies down to `maxDepth`, at most `maxRows` rows; with `after`, only its
     * direct replies after that (created_at, id) key, each with its own replies.
     */
    subThread(rootId: number, maxDepth: number, maxRows: number, after: { createdAt: number; id: number } | null = null): ThreadPost[] {
      const rows = after
        ? repliesAfter.all({ rootId, afterCreated: after.createdAt, afterId: after.id, maxDepth, maxRows })
        : subThread.all({ rootId, maxDepth, maxRows });
      return toThread(rows as (PostRow & { thread_depth: number })[]);
    },
    byId(id: number): Post | undefined {
      const r = byId.get(id) as PostRow | undefined;
      return r && toPost(r);
    },
    byAuthor(authorId: number, before: number, limit: number): Post[] {
      return (byAuthor.all(authorId, before, limit) as PostRow[]).map(toPost);
    },
    /** Inserts a post and returns its id; call inside the caller's transaction (it also bumps the parent). */
    insert(topicId: number, parent: { id: number; depth: number } | null, authorId: number, body: string, now: number): number {
      return insertRow(topicId, parent, authorId, body, now).id;
    },
    /** {@link insert}, returning the post as the database stored it, by `author` (no read back). */
    create(topicId: number, parent: { id: number; depth: number } | null, author: Post['author'], body: string, now: number): Post {
      return toPost({ ...insertRow(topicId, parent, author.id, body, now), username: author.username });
    },
    update(id: number, body: string, now: number): boolean {
      return update.run(body, now, id).changes > 0;
    },
    softDelete(id: number, now: number): boolean {
      return softDelete.run(now, id).changes > 0;
    },
  };
}
export type PostsRepository = ReturnType<typeof createPostsRepository>;
