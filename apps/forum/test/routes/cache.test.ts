/**
 * The forum's read caches through the real app: cached bytes with strong ETags and 304s,
 * read-your-writes after every kind of write, the search bypass for recent writers, cached
 * sessions that logout ends everywhere, and cross-instance invalidation over a real Redis.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { NamedMessage } from 'keel/channels';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type RedisServer, startRedis } from '../../../../test-support/redis.ts';
import { buildApp } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import { bearer, createTestApp, register, type TestApp, waitFor } from '../helpers.ts';

/** Counts `keel:cache:<event>` messages per cache name while subscribed. */
function counter(channel: string) {
  const counts = new Map<string, number>();
  const fn = (m: unknown) => {
    const name = (m as NamedMessage).name;
    counts.set(name, (counts.get(name) ?? 0) + 1);
  };
  subscribe(channel, fn);
  return {
    of: (name: string) => counts.get(name) ?? 0,
    off: () => unsubscribe(channel, fn),
  };
}

// This file is about caching: a loop stall on the shared test machine (another app seeding in
// this process) must not turn its requests into 503s. observe.test.ts covers shedding.
const noShed = { shedding: { maxEventLoopDelayMs: 60_000, maxInFlight: 1_000_000, maxHeapUsedRatio: 1 } };

const get = (app: FastifyInstance, url: string, headers: Record<string, string> = {}) => app.inject({ url, headers });

let t: TestApp;
let fresh: TestApp;
let wiki: { namespace: string; title: string };
const offs: Array<() => void> = [];
beforeAll(async () => {
  [t, fresh] = await Promise.all([
    createTestApp({ ...noShed, previews: { enabled: false, allowPrivateHosts: false } }),
    createTestApp(noShed),
  ]);
  wiki = t.app.services.repos!.db.prepare('SELECT namespace, title FROM pages ORDER BY id LIMIT 1').get() as typeof wiki;
});
afterAll(async () => {
  await Promise.all([t.close(), fresh.close()]);
});
afterEach(() => {
  for (const off of offs.splice(0)) off();
});

const readRoutes = () => [
  '/api/v1/forums',
  '/api/v1/forums/1/topics',
  '/api/v1/topics/1',
  `/api/v1/wiki/${wiki.namespace}/${encodeURIComponent(wiki.title)}`,
  `/api/v1/wiki/${wiki.namespace}/${encodeURIComponent(wiki.title)}/revisions`,
  '/api/v1/search?q=the',
];

describe('cached read routes', () => {
  it('answer with a strong ETag and a revalidating Cache-Control', async () => {
    for (const url of readRoutes()) {
      const res = await get(t.app, url);
      expect(res.statusCode, url).toBe(200);
      expect(res.headers.etag, url).toMatch(/^"[^"]+"$/);
      expect(res.headers['cache-control'], url).toMatch(/no-cache/);
      expect(res.headers['content-type'], url).toBe('application/json; charset=utf-8');
    }
  });

  it('answer a matching If-None-Match with 304 and no body', async () => {
    for (const url of readRoutes()) {
      const first = await get(t.app, url);
      const again = await get(t.app, url, { 'if-none-match': first.headers.etag as string });
      expect(again.statusCode, url).toBe(304);
      expect(again.rawPayload.byteLength, url).toBe(0);
      expect(again.headers.etag, url).toBe(first.headers.etag);
      const stale = await get(t.app, url, { 'if-none-match': '"not-it"' });
      expect(stale.statusCode, url).toBe(200);
    }
  });

  it('send cached bytes identical to a fresh instance’s first, uncached answer', async () => {
    const hits = counter('keel:cache:hit');
    offs.push(hits.off);
    for (const url of readRoutes()) {
      await get(t.app, url);
      const before = hits.of('pages');
      const cached = await get(t.app, url);
      expect(hits.of('pages'), `${url} served from the cache`).toBeGreaterThan(before);
      const uncached = await get(fresh.app, url);
      expect(cached.rawPayload.equals(uncached.rawPayload), url).toBe(true);
      expect(cached.headers.etag, url).toBe(uncached.headers.etag);
    }
  });
});

describe('read-your-writes', () => {
  let token: string;
  beforeAll(async () => {
    ({ token } = await register(t.app, 'writer'));
  });

  it('a new topic is in the very next topic list, under a new ETag', async () => {
    const before = await get(t.app, '/api/v1/forums/2/topics');
    const created = await t.app.inject({
      method: 'POST',
      url: '/api/v1/forums/2/topics',
      headers: bearer(token),
      payload: { title: 'Fresh off the press', body: 'first post' },
    });
    expect(created.statusCode).toBe(201);
    const id = (created.json() as { topic: { id: number } }).topic.id;
    const after = await get(t.app, '/api/v1/forums/2/topics');
    expect((after.json() as { items: Array<{ id: number }> }).items[0]?.id).toBe(id);
    expect(after.headers.etag).not.toBe(before.headers.etag);
    const conditional = await get(t.app, '/api/v1/forums/2/topics', { 'if-none-match': before.headers.etag as string });
    expect(conditional.statusCode).toBe(200);
  });

  it('a reply, an edit and a delete each show in the very next topic read', async () => {
    const topicUrl = '/api/v1/topics/3?limit=100';
    const bodies = async () => {
      const res = await get(t.app, topicUrl);
      return { etag: res.headers.etag, posts: (res.json() as { posts: Array<{ id: number; body: string }> }).posts };
    };
    const topicForum = t.app.services.repos!.db.prepare('SELECT forum_id FROM topics WHERE id = 3').pluck().get() as number;
    const list0 = (await get(t.app, `/api/v1/forums/${topicForum}/topics`)).headers.etag;
    const s0 = await bodies();

    const reply = await t.app.inject({
      method: 'POST',
      url: '/api/v1/topics/3/posts',
      headers: bearer(token),
      payload: { body: 'a reply of mine' },
    });
    expect(reply.statusCode).toBe(201);
    const postId = (reply.json() as { id: number }).id;
    const s1 = await bodies();
    expect(s1.posts.find((p) => p.id === postId)?.body).toBe('a reply of mine');
    expect(s1.etag).not.toBe(s0.etag);
    // The topic's activity moved, so its forum's list changed too: at once for the writer (who
    // reads past the list cache for LIST_REFRESH_MS), within it for everyone else (see below).
    const mine = await get(t.app, `/api/v1/forums/${topicForum}/topics`, bearer(token));
    expect(mine.headers.etag).not.toBe(list0);
    expect((mine.json() as { items: Array<{ id: number }> }).items[0]?.id).toBe(3);

    const edit = await t.app.inject({
      method: 'PATCH',
      url: `/api/v1/posts/${postId}`,
      headers: bearer(token),
      payload: { body: 'edited words' },
    });
    expect(edit.statusCode).toBe(200);
    const s2 = await bodies();
    expect(s2.posts.find((p) => p.id === postId)?.body).toBe('edited words');
    expect(s2.etag).not.toBe(s1.etag);

    const del = await t.app.inject({ method: 'DELETE', url: `/api/v1/posts/${postId}`, headers: bearer(token) });
    expect(del.statusCode).toBe(204);
    const s3 = await bodies();
    expect(JSON.stringify(s3.posts)).not.toContain('edited words');
    expect(s3.etag).not.toBe(s2.etag);
  });

  it('a wiki edit shows in the very next page and revisions read', async () => {
    const base = '/api/v1/wiki/Main/Cache%20Notes';
    const created = await t.app.inject({ method: 'PUT', url: base, headers: bearer(token), payload: { content: 'first draft' } });
    expect(created.statusCode, created.body).toBe(201);
    const page0 = await get(t.app, base);
    const revs0 = await get(t.app, `${base}/revisions`);
    expect((await get(t.app, base)).headers.etag).toBe(page0.headers.etag);
    const { revisionId } = page0.json() as { revisionId: number };
    const put = await t.app.inject({
      method: 'PUT',
      url: base,
      headers: bearer(token),
      payload: { content: 'rewritten by the cache test', comment: 'cache test edit', baseRevision: revisionId },
    });
    expect(put.statusCode, put.body).toBe(200);
    const page1 = await get(t.app, base);
    expect((page1.json() as { content: string }).content).toBe('rewritten by the cache test');
    expect(page1.headers.etag).not.toBe(page0.headers.etag);
    const revs1 = await get(t.app, `${base}/revisions`);
    expect(revs1.body).toContain('cache test edit');
    expect(revs1.headers.etag).not.toBe(revs0.headers.etag);
  });
});

describe('search cache', () => {
  it('a writer finds their post at once while others get the cached results within the TTL', async () => {
    const { token } = await register(t.app, 'searcher');
    const hits = counter('keel:cache:hit');
    offs.push(hits.off);
    const url = '/api/v1/search?q=quokkaphant&type=post';
    const count = (res: { json(): unknown }) => (res.json() as { items: unknown[] }).items.length;
    const anon0 = await get(t.app, url);
    expect(count(anon0)).toBe(0);

    const reply = await t.app.inject({
      method: 'POST',
      url: '/api/v1/topics/2/posts',
      headers: bearer(token),
      payload: { body: 'a quokkaphant was seen' },
    });
    expect(reply.statusCode).toBe(201);

    const mine = await get(t.app, url, bearer(token));
    expect(count(mine)).toBe(1);
    // Anonymous readers keep the cached answer until SEARCH_CACHE_TTL_MS (10 s) passes.
    const before = hits.of('pages');
    const anon1 = await get(t.app, url);
    expect(hits.of('pages')).toBe(before + 1);
    expect(anon1.headers.etag).toBe(anon0.headers.etag);
    expect(count(anon1)).toBe(0);
  });
});

describe('session cache', () => {
  it('serves a session from the cache after its first lookup, and logout ends it at once', async () => {
    const { token } = await register(t.app, 'sessioner');
    const hits = counter('keel:cache:hit');
    offs.push(hits.off);
    expect((await get(t.app, '/api/v1/auth/me', bearer(token))).statusCode).toBe(200);
    const before = hits.of('sessions');
    expect((await get(t.app, '/api/v1/auth/me', bearer(token))).statusCode).toBe(200);
    expect(hits.of('sessions')).toBe(before + 1);

    const out = await t.app.inject({ method: 'POST', url: '/api/v1/auth/logout', headers: bearer(token) });
    expect(out.statusCode).toBe(204);
    expect((await get(t.app, '/api/v1/auth/me', bearer(token))).statusCode).toBe(401);
    expect((await get(t.app, '/api/v1/forums/1/topics')).statusCode).toBe(200);
    const post = await t.app.inject({ method: 'POST', url: '/api/v1/topics/1/posts', headers: bearer(token), payload: { body: 'x' } });
    expect(post.statusCode).toBe(401);
  });
});

describe('a tiny byte budget', () => {
  it('still answers every read correctly while keeping L1 within its bytes', async () => {
    const tiny = await createTestApp({
      ...noShed,
      cache: { ...loadConfig({}).cache, maxBytes: 2_048 },
    });
    const evictions = counter('keel:cache:evict');
    offs.push(evictions.off);
    try {
      const urls = [...readRoutes(), '/api/v1/forums/2/topics', '/api/v1/forums/3/topics', '/api/v1/topics/2', '/api/v1/topics/4'];
      for (let round = 0; round < 3; round++) {
        for (const url of urls) {
          const res = await get(tiny.app, url);
          const expected = await get(fresh.app, url);
          expect(res.statusCode, url).toBe(200);
          expect(res.rawPayload.equals(expected.rawPayload), url).toBe(true);
          expect(tiny.app.services.caches.pages.stats().l1Bytes).toBeLessThanOrEqual(2_048);
        }
      }
      expect(evictions.of('pages')).toBeGreaterThan(0);
    } finally {
      await tiny.close();
    }
  });
});

describe('two instances sharing one SQLite file and Redis', () => {
  let redis: RedisServer;
  let a: TestApp;
  let b: FastifyInstance;
  beforeAll(async () => {
    redis = await startRedis();
    a = await createTestApp({ ...noShed, redisUrl: redis.url });
    b = await buildApp(loadConfig({}, { ...noShed, databasePath: join(a.dir, 'forum.db'), seedOnEmpty: 'none', redisUrl: redis.url }), {
      logger: false,
    });
  });
  afterAll(async () => {
    await b?.close();
    await a?.close();
    await redis?.close();
  });

  it('a write on A is in B’s very next topic list', async () => {
    const { token } = await register(a.app, 'crossposter');
    const before = await get(b, '/api/v1/forums/4/topics');
    expect((await get(b, '/api/v1/forums/4/topics')).headers.etag).toBe(before.headers.etag);
    const created = await a.app.inject({
      method: 'POST',
      url: '/api/v1/forums/4/topics',
      headers: bearer(token),
      payload: { title: 'Seen everywhere', body: 'hello from A' },
    });
    expect(created.statusCode).toBe(201);
    const id = (created.json() as { topic: { id: number } }).topic.id;
    // B's L1 drops the list when the bus message arrives: A's reply waits for Redis, not for
    // B, so B's read in the same millisecond may still be stale (see the report); the cache's
    // guarantee is "within 100 ms" on another instance, bounded here at 1 s for a busy machine.
    const started = Date.now();
    let after = await get(b, '/api/v1/forums/4/topics');
    await waitFor(
      async () => {
        after = await get(b, '/api/v1/forums/4/topics');
        return (after.json() as { items: Array<{ id: number }> }).items[0]?.id === id;
      },
      1_000,
      'B to see the new topic',
    );
    if (process.env.CACHE_TEST_REPORT) console.log(JSON.stringify({ crossInstanceLagMs: Date.now() - started }));
    expect(after.headers.etag).not.toBe(before.headers.etag);
  });

  it('logout on A ends the session on A at once and on B once the bus delivers it', async () => {
    const { token } = await register(a.app, 'twosessions');
    const hits = counter('keel:cache:hit');
    offs.push(hits.off);
    // B looks the session up once, then serves it from its cache.
    expect((await get(b, '/api/v1/auth/me', bearer(token))).statusCode).toBe(200);
    const before = hits.of('sessions');
    expect((await get(b, '/api/v1/auth/me', bearer(token))).statusCode).toBe(200);
    expect(hits.of('sessions')).toBeGreaterThan(before);

    expect((await a.app.inject({ method: 'POST', url: '/api/v1/auth/logout', headers: bearer(token) })).statusCode).toBe(204);
    expect((await get(a.app, '/api/v1/auth/me', bearer(token))).statusCode).toBe(401);
    // B drops its cached session when the bus message arrives; until then (a few ms) B's L1
    // still accepts the token: measured 12 of 30 immediate reads on B (see the report).
    await waitFor(async () => (await get(b, '/api/v1/auth/me', bearer(token))).statusCode === 401, 1_000, 'B to reject the token');
    expect((await get(b, '/api/v1/topics/1')).statusCode).toBe(200);
  });
});
