import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SRC_DIR } from '../paths.ts';
import type { Db } from './connection.ts';

const MIGRATIONS_DIR = join(SRC_DIR, 'db', 'migrations');

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/** The migration files, `NNN-name.sql`, in version order. */
export function loadMigrations(dir = MIGRATIONS_DIR): Migration[] {
  return readdirSync(dir)
    .filter((f) => /^\d{3}-[\w-]+\.sql$/.test(f))
    .sort()
    .map((f) => ({ version: Number(f.slice(0, 3)), name: f.slice(4, -4), sql: readFileSync(join(dir, f), 'utf8') }));
}

/**
 * Applies the migrations not yet applied, each in its own transaction (a failing one leaves
 * the schema at the previous version). Idempotent: running it twice applies nothing twice.
 * Returns the versions it applied.
 */
export function migrate(db: Db, migrations = loadMigrations()): number[] {
  db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)');
  const applied = new Set(db.prepare('SELECT version FROM schema_migrations').pluck().all() as number[]);
  const isApplied = db.prepare('SELECT 1 FROM schema_migrations WHERE version = ?').pluck();
  const record = db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)');
  const done: number[] = [];
  for (const m of migrations) {
    if (applied.has(m.version)) continue;
    // Re-read under the write lock: another process starting on the same file may have applied
    // it between the read above and this transaction.
    const ran = db
      .transaction(() => {
        if (isApplied.get(m.version) !== undefined) return false;
        db.exec(m.sql);
        record.run(m.version, m.name, Date.now());
        return true;
      })
      .immediate();
    if (ran) done.push(m.version);
  }
  return done;
}
