import { parseTraceparent } from 'keel/observe';
import type { Statements } from '../connection.ts';

export interface LinkPreview {
  url: string;
  status: 'pending' | 'ready' | 'failed';
  title: string | null;
}

export interface DuePreview {
  id: number;
  url: string;
  attempts: number;
  /** The trace context of the request that queued it (see {@link storableTraceparent}), or null. */
  traceparent: string | null;
}

/**
 * What the queue stores of a trace context: a well-formed `traceparent` rewritten as version 00
 * with only the sampled flag (so always 55 characters), or null for anything else. The value
 * comes from our own request context, but it is checked anyway: a row never holds arbitrary text.
 */
export function storableTraceparent(value: string | undefined): string | null {
  const tp = parseTraceparent(value);
  return tp ? `00-${tp.traceId}-${tp.parentId}-0${tp.flags & 1}` : null;
}

export function createPreviewsRepository(st: Statements) {
  const enqueue = st.prepare(
    'previews.enqueue',
    "INSERT OR IGNORE INTO link_previews (post_id, url, status, traceparent, next_attempt_at, updated_at) VALUES (?, ?, 'pending', ?, ?, ?)",
  );
  const due = st.prepare(
    'previews.due',
    "SELECT id, url, attempts, traceparent FROM link_previews WHERE status = 'pending' AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?",
  );
  const ready = st.prepare(
    'previews.ready',
    "UPDATE link_previews SET status = 'ready', title = ?, error = NULL, attempts = attempts + ?, updated_at = ? WHERE id = ?",
  );
  const failed = st.prepare(
    'previews.failed',
    "UPDATE link_previews SET status = 'failed', error = ?, attempts = attempts + ?, updated_at = ? WHERE id = ?",
  );
  const retryLater = st.prepare(
    'previews.retryLater',
    'UPDATE link_previews SET error = ?, attempts = attempts + ?, next_attempt_at = ?, updated_at = ? WHERE id = ?',
  );
  const ofPost = st.prepare('previews.ofPost', 'SELECT url, status, title FROM link_previews WHERE post_id = ? ORDER BY id');
  const removeOne = st.prepare('previews.removeOne', 'DELETE FROM link_previews WHERE post_id = ? AND url = ?');
  const removeAll = st.prepare('previews.removeAll', 'DELETE FROM link_previews WHERE post_id = ?');
  const pendingCount = st.prepare('previews.pendingCount', "SELECT count(*) FROM link_previews WHERE status = 'pending'");
  let traceSource: (() => string | undefined) | undefined;
  return {
    /**
     * Where {@link enqueue} reads the `traceparent` of the request queuing previews. The preview
     * worker sets it (it holds the `Tracing` whose context it continues), so the forum service
     * queues its request's trace without knowing about tracing. `undefined` stops recording.
     */
    traceFrom(source: (() => string | undefined) | undefined): void {
      traceSource = source;
    },
    /**
     * Queues previews for a post's URLs, with the current request's trace context; call inside
     * the post's transaction. A URL already queued for the post keeps its row (and its trace).
     */
    enqueue(postId: number, urls: readonly string[], now: number): void {
      // Read only when there is something to queue: most posts have no links.
      if (urls.length === 0) return;
      const traceparent = traceSource ? storableTraceparent(traceSource()) : null;
      for (const url of urls) enqueue.run(postId, url, traceparent, now, now);
    },
    due(now: number, limit: number): DuePreview[] {
      return due.all(now, limit) as DuePreview[];
    },
    /** `attempts`: what this try adds to the preview's attempt count (1 if it sent a request, else 0). */
    markReady(id: number, title: string, attempts: number, now: number): void {
      ready.run(title, attempts, now, id);
    },
    markFailed(id: number, error: string, attempts: number, now: number): void {
      failed.run(error, attempts, now, id);
    },
    /** Keeps the preview pending until `at`; `attempts` is 0 when no request was made (bulkhead or rate limit). */
    retryLater(id: number, error: string, at: number, now: number, attempts: number): void {
      retryLater.run(error, attempts, at, now, id);
    },
    /** Drops the previews of URLs a post no longer links to (an edit); call inside its transaction. */
    keepOnly(postId: number, urls: readonly string[]): void {
      for (const { url } of ofPost.all(postId) as LinkPreview[]) if (!urls.includes(url)) removeOne.run(postId, url);
    },
    /** Drops every preview of a post, pending ones included, so none is fetched (a delete). */
    removeAll(postId: number): void {
      removeAll.run(postId);
    },
    ofPost(postId: number): LinkPreview[] {
      return ofPost.all(postId) as LinkPreview[];
    },
    pendingCount(): number {
      return pendingCount.pluck().get() as number;
    },
  };
}
export type PreviewsRepository = ReturnType<typeof createPreviewsRepository>;
