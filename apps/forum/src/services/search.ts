import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Bulkhead, isBulkheadRejectedError } from 'keel/resilience';
import { Piscina } from 'piscina';
import { MARK_CLOSE, MARK_OPEN, type SearchCursor, type SearchFilters, type SearchHit } from '../db/repositories/search.ts';
import { ftsExpression } from '../db/sqlite-store.ts';
import type { ForumStore, SearchTerms } from '../db/store.ts';
import { badRequest, serviceUnavailable } from '../http/errors.ts';
import { intOption } from '../options.ts';
import { BUILT, DIST_DIR, SRC_DIR } from '../paths.ts';
import type { SearchResult, SearchTask } from './search-worker.ts';

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
const MARKS = new RegExp(`[${MARK_OPEN}${MARK_CLOSE}]`, 'g');

/** HTML-escapes the snippet, then turns the match markers into <mark> tags. */
export function renderSnippet(raw: string): string {
  return raw.replace(/[&<>"']/g, (c) => ESCAPES[c] as string).replace(MARKS, (m) => (m === MARK_OPEN ? '<mark>' : '</mark>'));
}

/**
 * Turns user input into search terms: words only (letters, digits, underscore), at most 16, all
 * required; a trailing `*` on the last word makes it a prefix match. Query syntax in the input
 * (quotes, NEAR, column filters, parentheses, tsquery operators) never passes through, so a
 * query can't fail with a syntax error or select columns it should not, on either backend.
 */
export function toSearchTerms(q: string): SearchTerms {
  const words = q.match(/[\p{L}\p{N}_]+/gu)?.slice(0, 16) ?? [];
  if (words.length === 0) throw badRequest('q', 'q must contain at least one word');
  return { words, prefix: /[\p{L}\p{N}_]\*\s*$/u.test(q) };
}

/** The safe FTS5 query for user input (SQLite): {@link toSearchTerms}, each word quoted. */
export function toFtsQuery(q: string): string {
  return ftsExpression(toSearchTerms(q));
}

export interface SearchOptions {
  /**
   * Worker threads running queries (0: on the main thread, for `:memory:` databases). On
   * PostgreSQL, searches running in the server at once (0 counts as 1). Default 1.
   */
  workers: number;
  /** Queries waiting for a worker (PostgreSQL: for a turn) at most; the next one gets 503. Default 256. */
  maxQueue: number;
  /** Longest a query may wait and run in a worker, ms; past it the worker is stopped and the request gets 503. Default 5,000. */
  timeoutMs?: number;
}

export interface SearchServiceHooks {
  /** Where a worker failure (a query that failed or timed out, a worker that died) is reported. Default: ignored. */
  onError?: (err: unknown) => void;
}

/**
 * Search. Queries are validated and snippets rendered here. On SQLite, ranking runs in worker
 * threads on their own read-only connections (piscina), so a slow query never blocks the event
 * loop. On PostgreSQL it runs in the database server, `workers` at a time: ranking a common word
 * there took ~0.5 s on `large` (~0.2 s since db/pg/search.ts plans it per run), and eight such
 * searches at once held 8 of the pool's 10 connections, so every other query waited and ran past its statement timeout (the
 * forum bench's mix fell from ~2,300 to 119-264 req/s with 503s). Waiting searches are bounded
 * by `maxQueue` and `timeoutMs`, past which they get 503.
 */
export function createSearchService(
  store: ForumStore,
  path: string,
  options: SearchOptions = { workers: 1, maxQueue: 256 },
  hooks: SearchServiceHooks = {},
) {
  const timeoutMs = intOption('createSearchService', 'timeoutMs', options.timeoutMs, 5_000, 1);
  const onError = hooks.onError ?? (() => {});
  const pool =
    store.kind === 'sqlite' && options.workers > 0 && path !== ':memory:'
      ? new Piscina<SearchTask, SearchResult>({
          filename: pathToFileURL(BUILT ? join(DIST_DIR, 'search-worker.js') : join(SRC_DIR, 'services', 'search-worker.ts')).href,
          workerData: { path },
          // Started on the first search and kept until close (no idle timer), so an app that never
          // searches pays nothing and one that does never waits for a worker to start again.
          minThreads: 0,
          maxThreads: options.workers,
          idleTimeout: Number.POSITIVE_INFINITY,
          maxQueue: options.maxQueue,
          // From the sources the worker is TypeScript: it needs the loader, and only that; the
          // build's worker is plain JavaScript and needs nothing. The parent's other flags are
          // not passed on: a worker refuses V8 flags (--max-semi-space-size=…) with
          // ERR_WORKER_INVALID_EXEC_ARGV, which failed every search with a 500.
          execArgv: BUILT ? [] : ['--import', 'tsx'],
        })
      : undefined;
  // A worker that dies outside a task is reported, never an uncaught 'error' that ends the process.
  pool?.on('error', onError);
  // Without workers the store searches (in PostgreSQL, or inline on SQLite): a bounded number at
  // once, so searches cannot take every pooled connection from the other routes.
  const turns = pool
    ? undefined
    : new Bulkhead({ name: 'search', maxConcurrent: Math.max(1, options.workers), maxQueue: options.maxQueue, queueTimeoutMs: timeoutMs });

  async function inWorker(p: Piscina<SearchTask, SearchResult>, task: SearchTask): Promise<SearchHit[]> {
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), timeoutMs);
    try {
      const { hits, timings } = await p.run(task, { signal: abort.signal });
      // The worker's statements, timed on its connection, join the main thread's stats (the
      // dashboard's slowest SQL), where search is the slowest statement at scale.
      for (const t of timings) store.stats.record(t.name, t.sql, t.durationMs);
      return hits;
    } catch (err) {
      onError(err);
      // The search dependency failed, not the request: 503 and a retry, like any other.
      throw serviceUnavailable(abort.signal.aborted ? 'search timed out, retry shortly' : 'search is unavailable, retry shortly');
    } finally {
      clearTimeout(timer);
    }
  }

  return {
    async search(
      q: string,
      kind: 'all' | 'post' | 'page',
      filters: SearchFilters,
      after: SearchCursor | null,
      limit: number,
    ): Promise<SearchHit[]> {
      const terms = toSearchTerms(q);
      let hits: SearchHit[];
      if (pool) {
        // Bounded: a burst beyond the queue gets a fast 503 instead of waiting without limit.
        if (pool.queueSize >= options.maxQueue) throw serviceUnavailable('search is busy, retry shortly');
        hits = await inWorker(pool, { fts: ftsExpression(terms), kind, filters, after, limit });
      } else {
        try {
          hits = await turns!.execute(() => store.search.search(terms, kind, filters, after, limit));
        } catch (err) {
          if (isBulkheadRejectedError(err)) throw serviceUnavailable('search is busy, retry shortly');
          throw err;
        }
      }
      return hits.map((hit) => ({ ...hit, snippet: renderSnippet(hit.snippet) }));
    },
    async close(): Promise<void> {
      await turns?.close();
      await pool?.destroy();
    },
  };
}
export type SearchService = ReturnType<typeof createSearchService>;
