import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.ts';

describe('config', () => {
  it('has defaults that start the forum on port 3000 with small demo data', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({ port: 3000, seedOnEmpty: 'small', logLevel: 'info', threadMaxDepth: 5, threadMaxRows: 1000 });
    expect(c.databasePath).toMatch(/apps\/forum\/data\/forum\.db$/);
    expect(c.dbBusyTimeoutMs).toBe(5_000);
    expect(loadConfig({ DB_BUSY_TIMEOUT_MS: '250' }).dbBusyTimeoutMs).toBe(250);
  });

  it('answers cached public reads before routing unless FAST_READS=off', () => {
    expect(loadConfig({}).fastReads).toEqual({ enabled: true, maxUrls: 10_000 });
    expect(loadConfig({ FAST_READS: 'off', FAST_READS_MAX_URLS: '50' }).fastReads).toEqual({ enabled: false, maxUrls: 50 });
  });

  it('logs at warn in production', () => {
    expect(loadConfig({ NODE_ENV: 'production' }).logLevel).toBe('warn');
  });

  it.each([
    [{ PORT: 'eighty' }, /PORT/],
    [{ PORT: '70000' }, /PORT/],
    [{ LOG_LEVEL: 'loud' }, /LOG_LEVEL/],
    [{ SEED_ON_EMPTY: 'huge' }, /SEED_ON_EMPTY/],
    [{ BODY_LIMIT: '-1' }, /BODY_LIMIT/],
    [{ FAST_READS: 'yes' }, /FAST_READS/],
    [{ FAST_READS_MAX_URLS: '0' }, /FAST_READS_MAX_URLS/],
    [{ DB_BUSY_TIMEOUT_MS: '-5' }, /DB_BUSY_TIMEOUT_MS/],
  ])('names the variable in the error for %j', (env, name) => {
    expect(() => loadConfig(env)).toThrow(name);
  });
});

describe('config: cross-checks and paths', () => {
  it('rejects SHUTDOWN_DEADLINE_MS <= SHUTDOWN_DELAY_MS, naming both variables', () => {
    expect(() => loadConfig({ SHUTDOWN_DELAY_MS: '5000', SHUTDOWN_DEADLINE_MS: '5000' })).toThrow(
      /SHUTDOWN_DEADLINE_MS \(5000\) must be greater than SHUTDOWN_DELAY_MS \(5000\)/,
    );
    expect(() => loadConfig({ SHUTDOWN_DELAY_MS: '9000', SHUTDOWN_DEADLINE_MS: '1000' })).toThrow(/SHUTDOWN_DELAY_MS/);
    expect(loadConfig({ SHUTDOWN_DELAY_MS: '1000', SHUTDOWN_DEADLINE_MS: '1001' }).shutdown.deadlineMs).toBe(1001);
  });

  it("keeps DATABASE_PATH=:memory: as SQLite's in-memory database", () => {
    expect(loadConfig({ DATABASE_PATH: ':memory:' }).databasePath).toBe(':memory:');
  });
});
