/**
 * Opens the forum's database from its config: the SQLite file by default, or PostgreSQL when
 * `DATABASE_URL` is set. Migrates, seeds an empty database (`SEED_ON_EMPTY`), and hands back the
 * store with what only SQLite has (its repositories and the checkpoint worker). Everything it
 * opens is added to `scope`, so closing the scope closes the database.
 */
import type { Scope } from 'keel/lifecycle';
import type { Config } from '../config.ts';
import { hashPassword } from '../services/passwords.ts';
import { Checkpointer } from './checkpointer.ts';
import { openRepositories, type Repositories } from './index.ts';
import { seedOnStartPostgres } from './pg/seed.ts';
import { openPostgresStore, redact } from './pg/store.ts';
import { DEMO_PASSWORD, seedOnStart } from './seed.ts';
import { createSqliteStore } from './sqlite-store.ts';
import type { ForumStore } from './store.ts';

export interface OpenedStore {
  store: ForumStore;
  /** SQLite only: the repositories under the store. */
  repos?: Repositories;
  /** SQLite file only: the WAL checkpoint worker. */
  checkpointer?: Checkpointer;
}

/**
 * @example
 * ```ts
 * const scope = new Scope({ name: 'app' });
 * const { store } = await openStore(loadConfig(process.env), scope);
 * await store.forums.list(null, 10);
 * await scope.close();
 * ```
 */
export async function openStore(config: Config, scope: Scope): Promise<OpenedStore> {
  const password = () => hashPassword(DEMO_PASSWORD);
  if (config.databaseUrl) return openPostgres(config, config.databaseUrl, scope, password);
  const repos = openRepositories(config.databasePath, { busyTimeoutMs: config.dbBusyTimeoutMs });
  const store = createSqliteStore(repos);
  scope.add(() => store.close());
  let checkpointer: Checkpointer | undefined;
  if (config.databasePath !== ':memory:') {
    // WAL checkpoints (a copy and an fsync) run in a worker, never on the event loop.
    repos.db.pragma('wal_autocheckpoint = 16384');
    checkpointer = scope.add(new Checkpointer(config.databasePath));
  }
  // Refuses a file whose seeding never finished (see db/seed.ts); seeds an empty one.
  await seedOnStart(repos.db, config.databasePath, config.seedOnEmpty, password);
  return { store, repos, ...(checkpointer ? { checkpointer } : {}) };
}

async function openPostgres(config: Config, url: string, scope: Scope, password: () => Promise<string>): Promise<OpenedStore> {
  const store = await openPostgresStore(url, { max: config.databasePoolMax });
  scope.add(() => store.close());
  // Of instances started together on an empty database, one seeds and the others wait for it.
  await seedOnStartPostgres(store.pool, redact(url), config.seedOnEmpty, password);
  return { store };
}
