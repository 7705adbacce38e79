/**
 * `npm run seed -- --scale small|medium|large [--db path] [--seed N] [--force]`: fills an
 * empty database with deterministic demo data and prints rows/s. Refuses a non-empty database
 * unless --force, which deletes the file first.
 *
 * With DATABASE_URL set (postgres://…) it seeds that PostgreSQL database instead, after
 * migrating it, with the same rows. It never deletes there: --force is refused, and a database
 * with data must be dropped and re-created by hand.
 */
import { existsSync, rmSync, statSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { loadConfig } from '../config.ts';
import { hashPassword } from '../services/passwords.ts';
import { openRepositories } from './index.ts';
import { DEMO_PASSWORD, SCALES, type Scale, type SeedReport, seed } from './seed.ts';

const { values } = parseArgs({
  options: {
    scale: { type: 'string', default: 'small' },
    db: { type: 'string' },
    seed: { type: 'string', default: '42' },
    force: { type: 'boolean', default: false },
  },
});
const scale = values.scale as Scale;
if (!(scale in SCALES)) {
  console.error(`--scale must be one of ${Object.keys(SCALES).join(', ')} (got ${JSON.stringify(values.scale)})`);
  process.exit(2);
}
const options = { seed: Number(values.seed), log: (l: string) => console.log(l) };
const summary = (report: SeedReport, mb: string) =>
  `${report.rows.toLocaleString('en-US')} rows in ${(report.ms / 1000).toFixed(1)} s (${report.rowsPerSecond.toLocaleString('en-US')} rows/s), ${mb} MiB`;

const url = process.env.DATABASE_URL ? loadConfig(process.env).databaseUrl : undefined;
if (url !== undefined) await seedPostgresDatabase(url);
else await seedSqliteFile();

async function seedPostgresDatabase(url: string): Promise<void> {
  // Loaded only here: seeding a SQLite file loads nothing of PostgreSQL.
  const [{ default: pg }, { endPool }, { migratePostgres }, { seedPostgres, seedStatePostgres }, { redact }] = await Promise.all([
    import('pg'),
    import('./pg/client.ts'),
    import('./pg/migrate.ts'),
    import('./pg/seed.ts'),
    import('./pg/store.ts'),
  ]);
  const label = redact(url);
  if (values.db !== undefined || values.force) {
    console.error(`DATABASE_URL is set (${label}): --db and --force are for SQLite files; unset DATABASE_URL to seed one`);
    process.exit(2);
  }
  const pool = new pg.Pool({ connectionString: url, max: 2 });
  try {
    await migratePostgres(pool);
    console.log(`seeding ${scale} into ${label}`);
    const report = await seedPostgres(pool, scale, await hashPassword(DEMO_PASSWORD), options);
    if (report === undefined) {
      const busy = (await seedStatePostgres(pool)) === 'started';
      console.error(
        busy
          ? `${label} is being seeded by another process, or its seeding was interrupted`
          : `${label} already has data; drop and re-create the database to start over`,
      );
      process.exitCode = 2;
      return;
    }
    const { rows } = await pool.query<{ bytes: string }>('SELECT pg_database_size(current_database()) AS bytes');
    console.log(summary(report, (Number(rows[0]?.bytes) / 1024 / 1024).toFixed(1)));
  } finally {
    await endPool(pool);
  }
}

async function seedSqliteFile(): Promise<void> {
  const path = values.db ?? loadConfig(process.env).databasePath;
  if (values.force) for (const suffix of ['', '-wal', '-shm']) if (existsSync(path + suffix)) rmSync(path + suffix);
  const repos = openRepositories(path);
  if (!repos.isEmpty()) {
    console.error(`${path} already has data; pass --force to start over`);
    repos.close();
    process.exit(2);
  }
  console.log(`seeding ${scale} into ${path}`);
  const report = seed(repos.db, scale, await hashPassword(DEMO_PASSWORD), options);
  if (report === undefined) {
    console.error(`${path} is being seeded by another process`);
    repos.close();
    process.exit(2);
  }
  repos.db.pragma('wal_checkpoint(TRUNCATE)');
  repos.close();
  console.log(summary(report, (statSync(path).size / 1024 / 1024).toFixed(1)));
}
