/**
 * The forum on PostgreSQL, end to end: the real app (Fastify, services, caches, live hub) on a
 * real PostgreSQL server, two instances side by side on one database, and an outage of the
 * server under them.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type PostgresServer, startPostgres } from '../../../../test-support/postgres.ts';
import { isDatabaseUnavailable } from '../../src/db/unavailable.ts';
import { bearer, createTestApp, register, type TestApp, waitFor } from '../helpers.ts';

let server: PostgresServer;

beforeAll(async () => {
  server = await startPostgres();
});
afterAll(async () => {
  await server?.close();
});

async function withApps<T>(count: number, fn: (apps: TestApp[], url: string) => Promise<T>): Promise<T> {
  const url = await server.database('forum_e2e');
  const apps: TestApp[] = [];
  try {
    // Started together: of instances seeding one empty database at once, exactly one seeds.
    apps.push(...(await Promise.all(Array.from({ length: count }, () => createTestApp({ databaseUrl: url, seedOnEmpty: 'small' })))));
    return await fn(apps, url);
  } finally {
    await Promise.all(apps.map((a) => a.close()));
  }
}

const count = async (url: string, sql: string): Promise<number> => {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return Number((await c.query(sql)).rows[0].n);
  } finally {
    await c.end();
  }
};

describe('the forum on PostgreSQL', () => {
  it('seeds an empty database once, serves its lists and threads, and finds posts by search', async () => {
    await withApps(1, async ([a], url) => {
      const app = a!.app;
      const forums = (await app.inject('/api/v1/forums')).json() as { items: Array<{ id: number; topicCount: number }> };
      expect(forums.items.length).toBe(5);
      const topics = (await app.inject(`/api/v1/forums/${forums.items[0]!.id}/topics?limit=5`)).json() as { items: Array<{ id: number }> };
      expect(topics.items.length).toBe(5);
      const topic = await app.inject(`/api/v1/topics/${topics.items[0]!.id}`);
      expect(topic.statusCode).toBe(200);
      expect((topic.json() as { posts: unknown[] }).posts.length).toBeGreaterThan(0);
      const search = (await app.inject('/api/v1/search?q=latency')).json() as { items: Array<{ snippet: string }> };
      expect(search.items.length).toBeGreaterThan(0);
      expect(search.items[0]!.snippet).toContain('<mark>');
      expect(await count(url, 'SELECT count(*) AS n FROM posts')).toBe(2_000);
    });
  });

  it('reports the database in its health, under the name postgres', async () => {
    await withApps(1, async ([a]) => {
      const res = await a!.app.inject('/health');
      expect(res.statusCode).toBe(200);
      const { checks } = res.json() as { checks: Record<string, { status: string }> };
      expect(checks.postgres?.status).toBe('up');
      expect(checks.sqlite).toBeUndefined();
    });
  });

  it('lets two instances share one database: a session, a topic and a reply made on one are seen on the other', async () => {
    await withApps(2, async ([a, b], url) => {
      expect(await count(url, 'SELECT count(*) AS n FROM forums')).toBe(5);
      const user = await register(a!.app, 'carol');
      const me = await b!.app.inject({ url: '/api/v1/auth/me', headers: bearer(user.token) });
      expect(me.json()).toMatchObject({ user: { username: 'carol' } });
      const made = await b!.app.inject({
        method: 'POST',
        url: '/api/v1/forums/1/topics',
        headers: bearer(user.token),
        payload: { title: 'shared storage', body: 'written through instance b about zeppelins' },
      });
      expect(made.statusCode).toBe(201);
      const topicId = (made.json() as { topic: { id: number } }).topic.id;
      const reply = await a!.app.inject({
        method: 'POST',
        url: `/api/v1/topics/${topicId}/posts`,
        headers: bearer(user.token),
        payload: { body: 'and answered through instance a' },
      });
      expect(reply.statusCode).toBe(201);
      const thread = (await b!.app.inject(`/api/v1/topics/${topicId}`)).json() as {
        topic: { postCount: number };
        posts: Array<{ body: string }>;
      };
      expect(thread.topic.postCount).toBe(2);
      expect(thread.posts.map((p) => p.body)).toEqual(['written through instance b about zeppelins', 'and answered through instance a']);
      // Indexed as it is written: the other instance finds it at once.
      const found = (await a!.app.inject('/api/v1/search?q=zeppelins')).json() as { items: Array<{ id: number }> };
      expect(found.items.length).toBe(1);
    });
  });

  it('answers 503 (not 500) while PostgreSQL is down, reports not ready, and serves again once it is back', async () => {
    await withApps(1, async ([a]) => {
      const app = a!.app;
      const user = await register(app, 'dave');
      const post = (body: string) =>
        app.inject({ method: 'POST', url: '/api/v1/forums/2/topics', headers: bearer(user.token), payload: { title: 'outage', body } });
      expect((await post('before')).statusCode).toBe(201);
      await server.stop();
      try {
        const during = await post('during');
        expect(during.statusCode).toBe(503);
        expect(during.headers['retry-after']).toBeDefined();
        expect(during.body).not.toContain(' at ');
        await waitFor(async () => (await app.inject('/health/ready')).statusCode === 503, 10_000, 'readiness to drop');
      } finally {
        await server.start();
      }
      await waitFor(async () => (await app.inject('/health/ready')).statusCode === 200, 15_000, 'readiness to return');
      expect((await post('after')).statusCode).toBe(201);
    });
  });

  it('classifies a refused connection as unavailable and a unique violation as not', async () => {
    const refused = new pg.Client({ host: '127.0.0.1', port: 1, connectionTimeoutMillis: 1_000 });
    const err = await refused.connect().then(
      () => undefined,
      (e: unknown) => e,
    );
    await refused.end().catch(() => {});
    expect(isDatabaseUnavailable(err)).toBe(true);
    const c = new pg.Client({ connectionString: server.url });
    await c.connect();
    try {
      await c.query('CREATE TEMP TABLE t (id int PRIMARY KEY)');
      await c.query('INSERT INTO t VALUES (1)');
      const dup = await c.query('INSERT INTO t VALUES (1)').then(
        () => undefined,
        (e: unknown) => e,
      );
      expect((dup as { code?: string }).code).toBe('23505');
      expect(isDatabaseUnavailable(dup)).toBe(false);
    } finally {
      await c.end();
    }
  });
});
