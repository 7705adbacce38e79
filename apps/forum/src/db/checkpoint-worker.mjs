/**
 * Plain JavaScript: a worker's entry file is loaded before any --import loader could compile
 * TypeScript for it, and this needs nothing but better-sqlite3.
 *
 * Runs SQLite WAL checkpoints on its own connection in a worker thread. A checkpoint copies
 * the WAL into the database file and fsyncs it; run by the connection that commits (SQLite's
 * auto-checkpoint), that is a 10–30 ms stall on the event loop every second or so under a
 * steady write load, which showed as the p99 of every request at half load.
 */
import { setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';

const { path, intervalMs, restartBytes, truncateBytes } = workerData;
// Lower this thread's priority (Linux nice values are per thread), as the search worker does: a
// checkpoint must not take the core from the event loop when both share one.
if (process.platform === 'linux') {
  try {
    setPriority(19);
  } catch {
    // not permitted: keep the default priority
  }
}
const db = new Database(path, { fileMustExist: true });
// Never wait for a lock: a checkpoint that would wait is skipped and tried at the next tick.
// While this connection waited it would hold the lock the event loop's next commit needs.
db.pragma('busy_timeout = 0');
const pageSize = db.pragma('page_size', { simple: true });
/** Runs a PASSIVE checkpoint; returns the WAL's size in bytes. */
const passive = () => pageSize * (db.pragma('wal_checkpoint(PASSIVE)')[0]?.log ?? 0);

const timer = setInterval(() => {
  try {
    // PASSIVE never blocks writers or readers, but under a steady write load it never catches
    // up: new frames arrive while it copies, so the WAL is never fully backfilled when a commit
    // starts and SQLite never rewinds it. It grew to the 64 MiB bound every ~3 s at the bench's
    // reply rate, and each reset there stalled a commit on the event loop for 30-120 ms. So
    // once it is past restartBytes, a RESTART (right after a PASSIVE, with little left to copy)
    // makes the next commit rewind it; TRUNCATE is the last resort past truncateBytes.
    const bytes = passive();
    if (bytes > truncateBytes) db.pragma('wal_checkpoint(TRUNCATE)');
    else if (bytes > restartBytes) db.pragma('wal_checkpoint(RESTART)');
  } catch (err) {
    // SQLITE_BUSY: another checkpoint or a writer held the lock; the next tick tries again.
    if (err?.code !== 'SQLITE_BUSY') parentPort?.postMessage({ error: err instanceof Error ? err.message : String(err) });
  }
}, intervalMs);

parentPort?.on('message', (msg) => {
  if (msg === 'close') {
    clearInterval(timer);
    db.close();
    parentPort?.close();
  }
});
