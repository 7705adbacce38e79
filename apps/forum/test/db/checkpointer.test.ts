import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Checkpointer } from '../../src/db/checkpointer.ts';
import { openRepositories } from '../../src/db/index.ts';
import { waitFor } from '../helpers.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A fresh database whose main connection never checkpoints, so only the worker does. */
function openDb() {
  const dir = mkdtempSync(join(tmpdir(), 'forum-ckpt-'));
  dirs.push(dir);
  const path = join(dir, 'forum.db');
  const repos = openRepositories(path);
  repos.db.pragma('wal_autocheckpoint = 0');
  const insert = repos.db.prepare('INSERT INTO users (username, password_hash, created_at) VALUES (?, ?, ?)');
  return { path, repos, insert };
}

describe('Checkpointer', () => {
  it('checkpoints the WAL from its worker while the main connection never does', async () => {
    const { path, repos, insert } = openDb();
    for (let i = 0; i < 2_000; i++) insert.run(`user-${i}`, 'x', i);
    const wal = `${path}-wal`;
    expect(existsSync(wal) && statSync(wal).size).toBeGreaterThan(100_000);
    const checkpointer = new Checkpointer(path, { intervalMs: 20, truncateBytes: 0 });
    try {
      await waitFor(() => statSync(wal).size === 0, 10_000, 'the WAL to be checkpointed and truncated');
      // Nothing was lost on the way: the rows are in the database file.
      expect(repos.db.prepare('SELECT count(*) FROM users').pluck().get()).toBe(2_000);
    } finally {
      await checkpointer.close();
      repos.close();
    }
  });

  it('past restartBytes, keeps the WAL file bounded under a write load that never pauses', async () => {
    const { path, repos, insert } = openDb();
    const pad = 'x'.repeat(2_000);
    // PASSIVE alone never catches up with commits that keep coming, so SQLite never rewinds the
    // WAL and the file grows with every commit; the RESTART lets the next commit rewind it.
    const checkpointer = new Checkpointer(path, { intervalMs: 5, restartBytes: 0, truncateBytes: Number.MAX_SAFE_INTEGER });
    try {
      // A fixed amount of work (12 MiB of rows, in batches that yield to the worker), not a
      // fixed time: on a busy machine a 1.5 s loop wrote too little for the check to mean much.
      let n = 0;
      while (n * pad.length < 12 * 1024 * 1024) {
        for (let i = 0; i < 20; i++, n++) insert.run(`user-${n}`, pad, n);
        await new Promise((r) => setTimeout(r, 1));
      }
      const written = n * pad.length;
      // Without the RESTART the file grew past 4x the rows' bytes here (140 MB for 35 MB); with it, 11 MB.
      expect(statSync(`${path}-wal`).size).toBeLessThan(written);
      expect(repos.db.prepare('SELECT count(*) FROM users').pluck().get()).toBe(n);
    } finally {
      await checkpointer.close();
      repos.close();
    }
  });

  it('closes its worker and connection on close, and close is idempotent', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'forum-ckpt-'));
    dirs.push(dir);
    const path = join(dir, 'forum.db');
    const repos = openRepositories(path);
    const checkpointer = new Checkpointer(path, { intervalMs: 20 });
    await checkpointer.close();
    await checkpointer.close();
    repos.close();
    // With every connection closed, SQLite removes the WAL: the worker's connection is gone too.
    expect(existsSync(`${path}-wal`)).toBe(false);
  });
});
