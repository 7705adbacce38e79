/**
 * Plain JavaScript: a worker's entry file is loaded before any --import loader could compile
 * TypeScript for it, and this needs nothing but better-sqlite3.
 *
 * Runs SQLite WAL checkpoints on its own connection in a worker thread. A checkpoint copies
 * the WAL into the database file and fsyncs it; run by the connection that commits (SQLite's
 * auto-checkpoint), that is a 10–30 ms stall on the event loop every second or so under a
 * steady write load, which showed as the p99 of every request at half load.
 *
 * It also merges the search index's segments (migration 007): FTS5 would merge them inside the
 * transaction that indexes new posts, on the event loop, and a merge there took up to 150-210 ms
 * of CPU at the bench's reply rate on `large`. Here each merge is a few bounded steps under a
 * pause in writes, so no commit of the main thread ever waits on the worker's lock. (A step
 * that ran past the main thread's pauseMaxMs would: the budget, 10 ms, plus one step, ≤ ~25 ms,
 * stays under its 50 ms.)
 */
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';

const { path, intervalMs, restartBytes, truncateBytes, maxFailedPauses } = workerData;
let { mergeBudgetMs } = workerData;
/** Pages of output per FTS5 merge step: a step took 0.03 ms when there was nothing to merge and up to ~25 ms when there was (measured on `large`). */
const MERGE_PAGES = 32;
// Default priority (it used to be nice 19): writes wait for the checkpoint a pause runs, and at
// nice 10 on a saturated shared core that took 35 ms on average against 15 ms at 0 (forum mix).
// Its CPU is small (the copy; the fsync is I/O wait), ~1% of a core at the bench's reply rate.
const db = (() => {
  try {
    return new Database(path, { fileMustExist: true });
  } catch (err) {
    // better-sqlite3's SqliteError loses its message crossing to the parent thread (only `code`
    // survives the structured clone), so it leaves as a plain Error that says what failed.
    throw new Error(`checkpoint worker cannot open ${path}: ${err?.message ?? err}${err?.code ? ` (${err.code})` : ''}`);
  }
})();
// Never wait for a lock: a checkpoint that would wait is skipped and tried at the next tick.
// While this connection waited it would hold the lock the event loop's next commit needs.
db.pragma('busy_timeout = 0');
// The merge steps commit like the main connection's writes (no fsync per commit); checkpoints
// still fsync the WAL before they copy and the database file after (SQLite's NORMAL in WAL mode).
db.pragma('synchronous = NORMAL');
const pageSize = db.pragma('page_size', { simple: true });
parentPort?.postMessage({ ready: true });
/** Runs a checkpoint; returns [busy, WAL frames, frames backfilled]. */
const checkpoint = (mode) => {
  const r = db.pragma(`wal_checkpoint(${mode})`)[0] ?? { busy: 1, log: 0, checkpointed: 0 };
  return [r.busy, r.log, r.checkpointed];
};

// PASSIVE never blocks writers or readers, but under a steady write load it never catches up:
// new frames arrive while it copies, so the WAL is never fully backfilled when a commit starts
// and SQLite never rewinds it (it grew to the 64 MiB bound every ~3 s at the bench's reply
// rate, and each reset stalled a commit on the event loop for 30-120 ms). A RESTART catches up
// by holding the write lock, but a commit on the event loop then sleeps in the busy handler for
// the copy and the fsync: BEGIN stalls of up to 54 ms, several a second, under the forum mix.
// So past restartBytes this thread asks the main thread to pause its writes (it holds requests
// that write, and nothing else), runs a PASSIVE that can then copy everything, and ends the
// pause: the next commit rewinds the WAL. A RESTART is the fallback after maxFailedPauses pauses
// that did not catch up (writers that ignore the pause), and TRUNCATE past truncateBytes.
let paused = false;
/** Why the current pause was asked for: a checkpoint that must catch up, or only a merge. */
let pausedFor = 'checkpoint';
let failedPauses = 0;
/** New segments may wait to be merged: set at start and by the main thread after it indexes. */
let mergeDue = mergeBudgetMs > 0;
/** The merge statements, prepared on the first merge. */
let merger;
const timer = setInterval(() => {
  if (paused) return;
  try {
    const [, log] = checkpoint('PASSIVE');
    const bytes = log * pageSize;
    if (bytes > truncateBytes) checkpoint('TRUNCATE');
    else if (bytes > restartBytes) {
      if (failedPauses >= maxFailedPauses) {
        failedPauses = 0;
        checkpoint('RESTART');
      } else {
        paused = true;
        pausedFor = 'checkpoint';
        parentPort?.postMessage({ pause: true });
      }
    } else if (mergeDue) {
      paused = true;
      pausedFor = 'merge';
      parentPort?.postMessage({ pause: true });
    }
  } catch (err) {
    // SQLITE_BUSY: another checkpoint or a writer held the lock; the next tick tries again.
    if (err?.code !== 'SQLITE_BUSY') parentPort?.postMessage({ error: err instanceof Error ? err.message : String(err) });
  }
}, intervalMs);

/**
 * Runs FTS5 merge steps until one finds nothing to merge or `mergeBudgetMs` is spent (then the
 * next tick goes on). Returns [steps that merged, ms]. A step that did nothing changes fewer
 * than 2 rows (FTS5's documented test for a no-op 'merge').
 */
function merge() {
  if (!mergeDue) return [0, 0];
  const started = performance.now();
  let steps = 0;
  try {
    merger ??= {
      step: db.prepare("INSERT INTO posts_fts (posts_fts, rank) VALUES ('merge', CAST(? AS INTEGER))"),
      changes: db.prepare('SELECT total_changes()').pluck(),
    };
    for (;;) {
      const before = merger.changes.get();
      merger.step.run(MERGE_PAGES);
      if (merger.changes.get() - before < 2) {
        mergeDue = false;
        break;
      }
      steps++;
      if (performance.now() - started >= mergeBudgetMs) break;
    }
  } catch (err) {
    // SQLITE_BUSY (the seed CLI writing, say): tried again at the next tick. Anything else (no
    // posts_fts in this file) is reported once and merging stops; the index's crisis merges,
    // in the writers' own transactions, still bound its segments.
    if (err?.code !== 'SQLITE_BUSY') {
      mergeDue = false;
      mergeBudgetMs = 0;
      parentPort?.postMessage({ error: `search index merge failed: ${err instanceof Error ? err.message : String(err)}` });
    }
  }
  return [steps, performance.now() - started];
}

/** Writes are paused: merge the search index if due, copy what is left, then end the pause. */
function caughtUp() {
  const [merged, mergeMs] = merge();
  if (pausedFor === 'merge') {
    paused = false;
    parentPort?.postMessage({ resume: true, complete: false, merged, mergeMs });
    return;
  }
  let complete = false;
  try {
    const [busy, log, done] = checkpoint('PASSIVE');
    complete = busy === 0 && log === done;
  } catch (err) {
    if (err?.code !== 'SQLITE_BUSY') parentPort?.postMessage({ error: err instanceof Error ? err.message : String(err) });
  }
  failedPauses = complete ? 0 : failedPauses + 1;
  paused = false;
  parentPort?.postMessage({ resume: true, complete, merged, mergeMs });
}

parentPort?.on('message', (msg) => {
  if (msg === 'paused') caughtUp();
  else if (msg === 'merge') mergeDue = mergeBudgetMs > 0;
  else if (msg === 'close') {
    clearInterval(timer);
    db.close();
    parentPort?.close();
  }
});
