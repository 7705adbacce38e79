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

describe('Checkpointer', () => {
  it('checkpoints the WAL from its worker while the main connection never does', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'forum-ckpt-'));
    dirs.push(dir);
    const path = join(dir, 'forum.db');
    const repos = openRepositories(path);
    repos.db.pragma('wal_autocheckpoint = 0'); // only the worker checkpoints here
    const insert = repos.db.prepare('INSERT INTO users (username, password_hash, created_at) VALUES (?, ?, ?)');
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
