/**
 * The search worker: runs FTS5 queries on its own read-only SQLite connection, off the event
 * loop. A common word at `large` scale takes 25–45 ms to rank (benchmarks/forum-queries); on
 * the main thread that stall delayed every other request and tripped load shedding.
 */
import { setPriority } from 'node:os';
import { workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { Statements } from '../db/connection.ts';
import { createSearchRepository, type SearchCursor, type SearchFilters, type SearchHit } from '../db/repositories/search.ts';

export interface SearchTask {
  fts: string;
  kind: 'all' | 'post' | 'page';
  filters: SearchFilters;
  after: SearchCursor | null;
  limit: number;
}

// Background work yields the core to the event loop: on Linux a thread's nice value is its own, so
// this lowers only this thread. Where several threads share one core (a pinned container), a
// ranking at the default priority took half the core from the event loop for its 25–45 ms.
if (process.platform === 'linux') {
  try {
    setPriority(19);
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

export default function search(task: SearchTask): SearchHit[] {
  repo ??= open();
  return repo.search(task.fts, task.kind, task.filters, task.after, task.limit);
}
