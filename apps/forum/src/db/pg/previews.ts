/**
 * The link-preview queue on PostgreSQL. As repositories/previews.ts, plus a lease: several
 * instances poll one queue, so `due` marks the rows it hands out (`leased_until`), skipping rows
 * another instance is claiming right now (`FOR UPDATE SKIP LOCKED`) or holds. Each outcome
 * clears the lease; so does `release`, for a row nothing was tried for. A crashed instance's
 * rows come free when their lease runs out.
 */
import type pg from 'pg';
import { type DuePreview, type LinkPreview, storableTraceparent } from '../repositories/previews.ts';
import type { Db } from './client.ts';

/**
 * Queues a post's links in one statement, ids given in the links' order (ofPost sorts by id); a
 * link already queued for the post, or twice in the list, keeps its first row. Each argument is
 * SQL: `postId` is a parameter, or a column of `from` (a CTE of the statement that creates the
 * post, written with its trailing comma).
 */
export const enqueueSql = (postId: string, from: string, urls: string, traceparent: string, now: string) =>
  `INSERT INTO link_previews (post_id, url, status, traceparent, next_attempt_at, updated_at)
    SELECT ${postId}, u.url, 'pending', ${traceparent}, ${now}, ${now} FROM ${from}unnest(${urls}::text[]) WITH ORDINALITY AS u(url, n) ORDER BY u.n
    ON CONFLICT (post_id, url) DO NOTHING`;

const SQL = {
  enqueue: enqueueSql('$1', '', '$2', '$3', '$4'),
  // $1 now, $2 limit, $3 lease end
  due: `UPDATE link_previews SET leased_until = $3 WHERE id IN (
      SELECT id FROM link_previews
      WHERE status = 'pending' AND next_attempt_at <= $1 AND (leased_until IS NULL OR leased_until <= $1)
      ORDER BY next_attempt_at, id LIMIT $2 FOR UPDATE SKIP LOCKED)
    RETURNING id, url, attempts, traceparent, next_attempt_at`,
  release: 'UPDATE link_previews SET leased_until = NULL WHERE id = $1',
  ready:
    "UPDATE link_previews SET status = 'ready', title = $1, error = NULL, attempts = attempts + $2, updated_at = $3, leased_until = NULL WHERE id = $4",
  failed:
    "UPDATE link_previews SET status = 'failed', error = $1, attempts = attempts + $2, updated_at = $3, leased_until = NULL WHERE id = $4",
  retryLater:
    'UPDATE link_previews SET error = $1, attempts = attempts + $2, next_attempt_at = $3, updated_at = $4, leased_until = NULL WHERE id = $5',
  ofPost: 'SELECT url, status, title FROM link_previews WHERE post_id = $1 ORDER BY id',
  keepOnly: 'DELETE FROM link_previews WHERE post_id = $1 AND url <> ALL ($2::text[])',
  removeAll: 'DELETE FROM link_previews WHERE post_id = $1',
  pendingCount: "SELECT count(*) AS n FROM link_previews WHERE status = 'pending'",
} as const;

export function previewQueries(db: Db, leaseMs: number) {
  let traceSource: (() => string | undefined) | undefined;
  const traceparent = (): string | null => (traceSource ? storableTraceparent(traceSource()) : null);
  return {
    queries: {
      traceFrom(source: (() => string | undefined) | undefined): void {
        traceSource = source;
      },
      async due(now: number, limit: number): Promise<DuePreview[]> {
        const rows = await db.query<DuePreview & { next_attempt_at: number }>('previews.due', SQL.due, [now, limit, now + leaseMs]);
        // RETURNING comes in no particular order: the oldest first, as SQLite returns them.
        rows.sort((a, b) => a.next_attempt_at - b.next_attempt_at || a.id - b.id);
        return rows.map(({ id, url, attempts, traceparent }) => ({ id, url, attempts, traceparent }));
      },
      async release(id: number): Promise<void> {
        await db.changes('previews.release', SQL.release, [id]);
      },
      async markReady(id: number, title: string, attempts: number, now: number): Promise<void> {
        await db.changes('previews.ready', SQL.ready, [title, attempts, now, id]);
      },
      async markFailed(id: number, error: string, attempts: number, now: number): Promise<void> {
        await db.changes('previews.failed', SQL.failed, [error, attempts, now, id]);
      },
      async retryLater(id: number, error: string, at: number, now: number, attempts: number): Promise<void> {
        await db.changes('previews.retryLater', SQL.retryLater, [error, attempts, at, now, id]);
      },
      async ofPost(postId: number): Promise<LinkPreview[]> {
        return db.query<LinkPreview & pg.QueryResultRow>('previews.ofPost', SQL.ofPost, [postId]);
      },
      async pendingCount(): Promise<number> {
        const [row] = await db.query<{ n: number }>('previews.pendingCount', SQL.pendingCount, []);
        return row?.n ?? 0;
      },
    },
    writes: {
      /** The current request's trace context as the queue stores it (null: none, or not recording). */
      traceparent,
      /** Queues previews for a post's URLs with the current request's trace context, on the post's transaction. */
      async enqueue(c: pg.PoolClient, postId: number, urls: readonly string[], now: number): Promise<void> {
        if (urls.length === 0) return;
        await db.changes('previews.enqueue', SQL.enqueue, [postId, urls, traceparent(), now], c);
      },
      async keepOnly(c: pg.PoolClient, postId: number, urls: readonly string[]): Promise<void> {
        await db.changes('previews.keepOnly', SQL.keepOnly, [postId, urls], c);
      },
      async removeAll(c: pg.PoolClient, postId: number): Promise<void> {
        await db.changes('previews.removeAll', SQL.removeAll, [postId], c);
      },
    },
  };
}
