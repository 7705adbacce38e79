import type { Statements } from '../connection.ts';

/**
 * The search index of posts, kept behind their commits (migration 003): `indexPending` moves
 * the next posts past the high-water mark into posts_fts, and the mark with them, in one
 * transaction. Posts at or below the mark are kept current by triggers.
 */
export function createPostIndexRepository(st: Statements) {
  const mark = st.prepare('postIndex.mark', "SELECT indexed_through FROM search_state WHERE name = 'posts'").pluck();
  const upTo = st.prepare('postIndex.upTo', 'SELECT max(id) FROM (SELECT id FROM posts WHERE id > ? ORDER BY id LIMIT ?)').pluck();
  const index = st.prepare('postIndex.index', 'INSERT INTO posts_fts (rowid, body) SELECT id, body FROM posts WHERE id > ? AND id <= ?');
  const advance = st.prepare('postIndex.advance', "UPDATE search_state SET indexed_through = ? WHERE name = 'posts'");
  return {
    /** Indexes at most `limit` posts past the mark; call it inside a write transaction. Returns how many. */
    indexPending(limit: number): number {
      const from = mark.get() as number;
      const to = upTo.get(from, limit) as number | null;
      if (to === null) return 0;
      const n = index.run(from, to).changes;
      advance.run(to);
      return n;
    },
    /** The largest post id in the index (every post at or below it is searchable). */
    indexedThrough(): number {
      return mark.get() as number;
    },
  };
}
export type PostIndexRepository = ReturnType<typeof createPostIndexRepository>;
