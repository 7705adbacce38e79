/**
 * Plain JavaScript: a worker's entry file is loaded before any --import loader could compile
 * TypeScript for it, and this needs nothing but better-sqlite3.
 *
 * Runs SQLite WAL checkpoints on its own connection in a worker thread. A checkpoint copies
 * the WAL into the database file and fsyncs it; run by the connection that commits (SQLite's
 * auto-checkpoint), that is a 10–30 ms stall on the event loop every second or so under a
 * steady write load, which showed as the p99 of every request at half load.
 */
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';

const { path, intervalMs, restartBytes, truncateBytes, maxFailedPauses } = workerData;
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
let failedPauses = 0;
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
        parentPort?.postMessage({ pause: true });
      }
    }
  } catch (err) {
    // SQLITE_BUSY: another checkpoint or a writer held the lock; the next tick tries again.
    if (err?.code !== 'SQLITE_BUSY') parentPort?.postMessage({ error: err instanceof Error ? err.message : String(err) });
  }
}, intervalMs);

/** Writes are paused: copy what is left, then end the pause. */
function caughtUp() {
  let complete = false;
  try {
    const [busy, log, done] = checkpoint('PASSIVE');
    complete = busy === 0 && log === done;
  } catch (err) {
    if (err?.code !== 'SQLITE_BUSY') parentPort?.postMessage({ error: err instanceof Error ? err.message : String(err) });
  }
  failedPauses = complete ? 0 : failedPauses + 1;
  paused = false;
  parentPort?.postMessage({ resume: true, complete });
}

parentPort?.on('message', (msg) => {
  if (msg === 'paused') caughtUp();
  else if (msg === 'close') {
    clearInterval(timer);
    db.close();
    parentPort?.close();
  }
});
