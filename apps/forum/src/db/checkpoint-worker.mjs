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

const { path, intervalMs, truncateBytes } = workerData;
const db = new Database(path, { fileMustExist: true });
db.pragma('busy_timeout = 1000');
const pageSize = db.pragma('page_size', { simple: true });
/** Runs a PASSIVE checkpoint; returns the WAL's size in bytes. */
const passive = () => pageSize * (db.pragma('wal_checkpoint(PASSIVE)')[0]?.log ?? 0);

const timer = setInterval(() => {
  try {
    // PASSIVE never blocks writers or readers; when the WAL has grown past the bound anyway
    // (long readers kept it from being reset), a TRUNCATE resets it to zero bytes.
    if (passive() > truncateBytes) db.pragma('wal_checkpoint(TRUNCATE)');
  } catch (err) {
    parentPort?.postMessage({ error: err instanceof Error ? err.message : String(err) });
  }
}, intervalMs);

parentPort?.on('message', (msg) => {
  if (msg === 'close') {
    clearInterval(timer);
    db.close();
    parentPort?.close();
  }
});
