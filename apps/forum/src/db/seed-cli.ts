/**
 * `npm run seed -- --scale small|medium|large [--db path] [--seed N] [--force]`: fills an
 * empty database with deterministic demo data and prints rows/s. Refuses a non-empty database
 * unless --force, which deletes the file first.
 */
import { existsSync, rmSync, statSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { loadConfig } from '../config.ts';
import { hashPassword } from '../services/passwords.ts';
import { openRepositories } from './index.ts';
import { DEMO_PASSWORD, SCALES, type Scale, seed } from './seed.ts';

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
const path = values.db ?? loadConfig(process.env).databasePath;
if (values.force) for (const suffix of ['', '-wal', '-shm']) if (existsSync(path + suffix)) rmSync(path + suffix);
const repos = openRepositories(path);
if (!repos.isEmpty()) {
  console.error(`${path} already has data; pass --force to start over`);
  repos.close();
  process.exit(2);
}
console.log(`seeding ${scale} into ${path}`);
const report = seed(repos.db, scale, await hashPassword(DEMO_PASSWORD), { seed: Number(values.seed), log: (l) => console.log(l) });
if (report === undefined) {
  console.error(`${path} is being seeded by another process`);
  repos.close();
  process.exit(2);
}
repos.db.pragma('wal_checkpoint(TRUNCATE)');
repos.close();
const mb = (statSync(path).size / 1024 / 1024).toFixed(1);
console.log(
  `${report.rows.toLocaleString('en-US')} rows in ${(report.ms / 1000).toFixed(1)} s (${report.rowsPerSecond.toLocaleString('en-US')} rows/s), ${mb} MiB`,
);
