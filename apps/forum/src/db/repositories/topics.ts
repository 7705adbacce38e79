import type { Statements } from '../connection.ts';

export interface Topic {
  id: number;
  forumId: number;
  title: string;
  author: { id: number; username: string };
  createdAt: number;
  updatedAt: number;
  postCount: number;
}

export interface TopicRow {
  id: number;
  forum_id: number;
  title: string;
  author_id: number;
  username: string;
  created_at: number;
  updated_at: number;
  post_count: number;
}

export const toTopic = (r: TopicRow): Topic => ({
  id: r.id,
  forumId: r.forum_id,
  title: r.title,
  author: { id: r.author_id, username: r.username },
  createdAt: r.created_at,
  updatedAt: r.updated_at,
  postCount: r.post_count,
});

export const COLUMNS = 't.id, t.forum_id, t.title, t.author_id, u.username, t.created_at, t.updated_at, t.post_count';

export function createTopicsRepository(st: Statements) {
  const listFirst = st.prepare(
    'topics.listByForum',
    `SELECT ${COLUMNS} FROM topics t JOIN users u ON u.id = t.author_id WHERE t.forum_id = ? ORDER BY t.updated_at DESC, t.id DESC LIMIT ?`,
  );
  // Keyset: rows strictly after (updated_at, id) in (DESC, DESC) order.
  const listAfter = st.prepare(
    'topics.listByForumAfter',
    `SELECT ${COLUMNS} FROM topics t JOIN users u ON u.id = t.author_id
     WHERE t.forum_id = ? AND (t.updated_at < ? OR (t.updated_at = ? AND t.id < ?))
     ORDER BY t.updated_at DESC, t.id DESC LIMIT ?`,
  );
  const byId = st.prepare('topics.byId', `SELECT ${COLUMNS} FROM topics t JOIN users u ON u.id = t.author_id WHERE t.id = ?`);
  const insert = st.prepare(
    'topics.insert',
    'INSERT INTO topics (forum_id, author_id, title, created_at, updated_at, post_count) VALUES (?, ?, ?, ?, ?, 0) RETURNING id',
  );
  const touch = st
    .prepare('topics.touch', 'UPDATE topics SET updated_at = ?, post_count = post_count + 1 WHERE id = ? RETURNING forum_id')
    .pluck();
  const bumpForum = st.prepare('forums.bumpTopicCount', 'UPDATE forums SET topic_count = topic_count + 1 WHERE id = ?');
  return {
    list(forumId: number, after: { updatedAt: number; id: number } | null, limit: number): Topic[] {
      const rows = after ? listAfter.all(forumId, after.updatedAt, after.updatedAt, after.id, limit) : listFirst.all(forumId, limit);
      return (rows as TopicRow[]).map(toTopic);
    },
    byId(id: number): Topic | undefined {
      const r = byId.get(id) as TopicRow | undefined;
      return r && toTopic(r);
    },
    /** Inserts a topic (without its first post); call inside the caller's transaction. */
    insert(forumId: number, authorId: number, title: string, now: number): number {
      const { id } = insert.get(forumId, authorId, title, now, now) as { id: number };
      bumpForum.run(forumId);
      return id;
    },
    /** Bumps a topic for a new post; returns its forum, or undefined when there is no such topic (nothing changed). */
    touch(topicId: number, now: number): number | undefined {
      return touch.get(now, topicId) as number | undefined;
    },
  };
}
export type TopicsRepository = ReturnType<typeof createTopicsRepository>;
