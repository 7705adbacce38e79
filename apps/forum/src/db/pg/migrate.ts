import { join } from 'node:path';
import type pg from 'pg';
import { SRC_DIR } from '../../paths.ts';
import { loadMigrations, type Migration } from '../migrate.ts';
import { withPooledClient } from './pooled.ts';

const MIGRATIONS_DIR = join(SRC_DIR, 'db', 'pg', 'migrations');

// Any constant shared by every instance: pg_advisory_xact_lock serialises their migrations.
const MIGRATION_LOCK = 7_106_001;

/** The PostgreSQL migration files, `NNN-name.sql`, in version order. */
export function loadPgMigrations(dir = MIGRATIONS_DIR): Migration[] {
  return loadMigrations(dir);
}

/**
 * Applies the migrations not yet applied, all in one transaction that holds an advisory lock:
 * instances starting at once on one database wait for each other, and the first applies them
 * (PostgreSQL's DDL is transactional, so a failing migration leaves the schema as it was).
 * Returns the versions it applied.
 *
 * @example
 * ```ts
 * const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL });
 * await migratePostgres(pool); // [1] on an empty database, [] after
 * ```
 */
export async function migratePostgres(pool: pg.Pool, migrations = loadPgMigrations()): Promise<number[]> {
  // A connection that errors mid-migration (the server went away) is destroyed, not pooled.
  return withPooledClient(pool, async (client, broke) => {
    await client.query('BEGIN');
    try {
      // Held to the end of the transaction: an instance that starts meanwhile waits here, then
      // finds the versions recorded and applies nothing.
      await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
      await client.query(
        'CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at bigint NOT NULL)',
      );
      const { rows } = await client.query<{ version: number }>('SELECT version FROM schema_migrations');
      const applied = new Set(rows.map((r) => r.version));
      const done: number[] = [];
      for (const m of migrations) {
        if (applied.has(m.version)) continue;
        await client.query(m.sql);
        await client.query('INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [
          m.version,
          m.name,
          Date.now(),
        ]);
        done.push(m.version);
      }
      await client.query('COMMIT');
      return done;
    } catch (err) {
      await client.query('ROLLBACK').catch(broke);
      throw err;
    }
  });
}
