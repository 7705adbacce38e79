/**
 * The search worker: runs FTS5 queries on its own read-only SQLite connection, off the event
 * loop. A common word at `large` scale takes 25–45 ms to rank (benchmarks/forum-queries); on
 * the main thread that stall delayed every other request and tripped load shedding.
 */
import { subscribe } from 'node:diagnostics_channel';
import { setPriority } from 'node:os';
import { workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { CHANNELS, type DbQueryMessage } from 'keel/channels';
import { Statements } from '../db/connection.ts';
import { createSearchRepository, type SearchCursor, type SearchFilters, type SearchHit } from '../db/repositories/search.ts';

export interface SearchTask {
  fts: string;
  kind: 'all' | 'post' | 'page';
  filters: SearchFilters;
  after: SearchCursor | null;
  limit: number;
}

/** A search's hits, with the timing of each statement it ran (for the dashboard's slowest SQL). */
export interface SearchResult {
  hits: SearchHit[];
  timings: DbQueryMessage[];
}

/**
 * The search worker's nice value on Linux, where a thread's nice value is its own, so this lowers
 * only this thread. Where several threads share one core (a pinned container), a ranking at the
 * default priority took half the core from the event loop for its 25–45 ms. At 19 it got ~1.4%
 * of a saturated core, and that was too little: after 20 s of saturation the eight stale search
 * keys' refreshes queued up, and 3–5 of them passed the 5 s timeout in each of four processes
 * (a running one takes its worker thread down with it). At 10 (~10% while the event loop is busy)
 * none did, in four of four, and the event loop's p99 at a fixed 9,000 req/s was no different
 * (20–56 ms against 20–43 ms, per-process noise; benchmarks/RESULTS.md, day 8). Tested in
 * test/services/search.test.ts.
 */
const SEARCH_WORKER_NICE = 10;

if (process.platform === 'linux') {
  try {
    setPriority(SEARCH_WORKER_NICE);
  } catch {
    // not permitted here: ranking simply keeps the default priority
  }
}

// Opened on the first task, not at load: a worker whose module throws never becomes ready, and
// piscina then leaves the task waiting and reports the error on the pool instead of the task.
// Thrown here, the error rejects the task that hit it, and the next task tries again.
let repo: ReturnType<typeof createSearchRepository> | undefined;

function open(): ReturnType<typeof createSearchRepository> {
  const db = new Database((workerData as { path: string }).path, { readonly: true, fileMustExist: true });
  db.pragma('busy_timeout = 5000');
  db.pragma('cache_size = -16384');
  return createSearchRepository(new Statements(db));
}

// This thread's statements publish their timings on its own `keel:db:query` channel; a task
// collects them and hands them back, so the main thread's statement stats include search. A
// task runs synchronously to the end, so what arrives between its start and end is its own.
let timings: DbQueryMessage[] = [];
subscribe(CHANNELS.db.query, (message) => {
  timings.push(message as DbQueryMessage);
});

export default function search(task: SearchTask): SearchResult {
  repo ??= open();
  timings = [];
  const hits = repo.search(task.fts, task.kind, task.filters, task.after, task.limit);
  return { hits, timings };
}
