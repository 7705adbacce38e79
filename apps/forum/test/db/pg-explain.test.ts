/**
 * Generic query plans for the dashboard's slowest-SQL table on a real PostgreSQL server: what
 * they show (the index, `$1` in place of a value), that explaining a write writes nothing, that a
 * failure becomes a "plan unavailable" row, and that the dashboard's JSON carries them.
 */
import Fastify from 'fastify';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type PostgresServer, startPostgres } from '../../../../test-support/postgres.ts';
import type { DashboardSnapshot } from '../../src/dashboard/sources.ts';
import { forumDashboard } from '../../src/dashboard/wire.ts';
import { endPool } from '../../src/db/pg/client.ts';
import { PgExplainer } from '../../src/db/pg/explain.ts';
import { openPostgresStore, type PgStoreOptions, type PostgresStore } from '../../src/db/pg/store.ts';
import { metricsSnapshot, TOKEN } from '../dashboard/fixtures.ts';

const T0 = 1_700_000_000_000;
// A value a plan must never show: parameters may be tokens or emails.
const SECRET = 'carol-secret-7f3a@example.com';

let server: PostgresServer;

beforeAll(async () => {
  server = await startPostgres();
});
afterAll(async () => {
  await server?.close();
});

async function withStore<T>(fn: (store: PostgresStore, url: string) => Promise<T>, options: PgStoreOptions = {}): Promise<T> {
  const url = await server.database('explain');
  const store = await openPostgresStore(url, options);
  try {
    return await fn(store, url);
  } finally {
    await store.close();
  }
}

const pidOf = async (store: PostgresStore) => (await store.pool.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
const explainsLeft = async (store: PostgresStore) =>
  (await store.pool.query<{ n: number }>("SELECT count(*) AS n FROM pg_prepared_statements WHERE name LIKE 'keel_explain_%'")).rows[0]!.n;

const planOf = (store: PostgresStore, name: string) =>
  store.stats
    .top(1_000)
    .find((s) => s.name === name)
    ?.plan.join('\n');

describe('postgres query plans', () => {
  it('gives the slowest statements a generic plan that names the index and shows $1, not the value used', async () => {
    await withStore(
      async (store) => {
        const pid = await pidOf(store);
        const user = await store.users.insert(SECRET, 'hash', T0);
        expect((await store.users.byName(SECRET))?.id).toBe(user.id);
        expect((await store.users.byId(user.id))?.username).toBe(SECRET);
        await store.stats.explainTop(1_000);
        console.log(
          store.stats
            .top(1_000)
            .map((s) => `${s.name}\n${s.plan.join('\n')}`)
            .join('\n\n'),
        );
        const byName = planOf(store, 'users.byName')!;
        expect(byName).toMatch(/Index Scan using users_username_lower on users/);
        expect(byName).toContain('$1');
        expect(byName).not.toContain(SECRET);
        expect(planOf(store, 'users.byId')).toMatch(/Index Scan using users_pkey on users[\s\S]*Index Cond: \(id = \$1\)/);
        // Each explain cleaned up after itself, on a connection that went back to the pool.
        expect(await pidOf(store)).toBe(pid);
        expect(await explainsLeft(store)).toBe(0);
      },
      { max: 1 },
    );
  });

  it('explains a write without changing any row', async () => {
    await withStore(async (store) => {
      const user = await store.users.insert('alice', 'hash', T0);
      await store.sessions.insert(Buffer.from('token'), user.id, T0, T0 + 1_000);
      // Would rename every user if it ran: no parameter value keeps it from matching.
      store.stats.record('users.renameAll', "UPDATE users SET username = username || '!' WHERE id > coalesce($1, 0)", 1);
      const rows = async () =>
        (await store.pool.query('SELECT id, username FROM users UNION ALL SELECT user_id, expires_at::text FROM sessions ORDER BY 1, 2'))
          .rows;
      const before = await rows();
      await store.stats.explainTop(1_000);
      expect(planOf(store, 'users.insert')).toMatch(/^Insert on users/);
      expect(planOf(store, 'sessions.insert')).toMatch(/^Insert on sessions/);
      expect(planOf(store, 'users.renameAll')).toMatch(/^Update on users/);
      expect(await rows()).toEqual(before);
    });
  });

  it('refuses a statement text that holds a second command, and runs neither', async () => {
    await withStore(async (store) => {
      await store.users.insert('alice', 'hash', T0);
      store.stats.record('users.two', "SELECT id FROM users WHERE id = $1; UPDATE users SET username = 'mallory'", 1);
      await store.stats.explainTop();
      expect(planOf(store, 'users.two')).toMatch(/^plan unavailable: cannot insert multiple commands into a prepared statement/);
      expect((await store.pool.query('SELECT username FROM users')).rows).toEqual([{ username: 'alice' }]);
    });
  });

  it('shows "plan unavailable" for a statement the server cannot plan, and keeps the connection', async () => {
    await withStore(
      async (store) => {
        const before = await pidOf(store);
        store.stats.record('gone.byId', 'SELECT * FROM no_such_table WHERE id = $1', 5);
        await store.stats.explainTop();
        expect(store.stats.top()[0]!.plan).toEqual(['plan unavailable: relation "no_such_table" does not exist']);
        expect(await pidOf(store)).toBe(before);
        expect(await explainsLeft(store)).toBe(0);
      },
      { max: 1 },
    );
  });

  it('shows "plan unavailable" while the server is down, without throwing', async () => {
    try {
      await withStore(
        async (store) => {
          await store.users.byId(1);
          await server.stop();
          await expect(store.stats.explainTop()).resolves.toBeUndefined();
          expect(store.stats.top()[0]!.plan).toHaveLength(1);
          expect(store.stats.top()[0]!.plan[0]).toMatch(/^plan unavailable: \S/);
          expect(store.stats.top()[0]!.plan[0]).not.toContain('    at ');
        },
        { connectionTimeoutMs: 500 },
      );
    } finally {
      if (!server.running) await server.start();
    }
  });

  it('gives up on an explain that waits past its own 1 s timeout (here, for a lock), well before statementTimeoutMs', async () => {
    await withStore(
      async (store, url) => {
        await store.users.byId(1);
        const locker = new pg.Client({ connectionString: url });
        await locker.connect();
        try {
          await locker.query('BEGIN');
          await locker.query('LOCK TABLE users IN ACCESS EXCLUSIVE MODE');
          const start = performance.now();
          await store.stats.explainTop();
          expect(performance.now() - start).toBeLessThan(4_000);
          expect(store.stats.top()[0]!.plan).toEqual(['plan unavailable: canceling statement due to statement timeout']);
        } finally {
          await locker.end();
        }
      },
      { statementTimeoutMs: 10_000 },
    );
  });

  it('runs one explain at a time, on one pooled connection', async () => {
    await withStore(async (_store, url) => {
      const pool = new pg.Pool({ connectionString: url, max: 10 });
      try {
        const explainer = new PgExplainer(pool, { timeoutMs: 1_000 });
        const plans = await Promise.all(Array.from({ length: 4 }, () => explainer.explain('SELECT id FROM users WHERE id = $1')));
        expect(plans.every((p) => p.length > 0)).toBe(true);
        expect(pool.totalCount).toBe(1);
      } finally {
        await endPool(pool);
      }
    });
  });

  it('serves plans in GET /dashboard/data', async () => {
    await withStore(async (store) => {
      await store.users.byId(1);
      const plugin = forumDashboard(
        { dashboardToken: TOKEN },
        { metrics: { snapshot: () => metricsSnapshot() }, statements: store },
        { production: true },
      );
      const app = Fastify();
      try {
        await app.register(plugin!);
        const res = await app.inject({ url: '/dashboard/data', headers: { authorization: `Bearer ${TOKEN}` } });
        const byId = (res.json() as DashboardSnapshot).slowSql?.find((s) => s.name === 'users.byId');
        expect(byId?.plan.join('\n')).toMatch(/Index Scan using users_pkey on users[\s\S]*\$1/);
      } finally {
        await app.close();
      }
    });
  });
});
