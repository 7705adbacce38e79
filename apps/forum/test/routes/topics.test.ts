import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, createTestApp, expectBadRequest, register, type TestApp } from '../helpers.ts';

let t: TestApp;
let token: string;
beforeAll(async () => {
  t = await createTestApp();
  ({ token } = await register(t.app, 'poster'));
});
afterAll(() => t.close());

interface TopicList {
  items: Array<{ id: number; updatedAt: number }>;
  nextCursor: string | null;
}

describe('forum and topic routes', () => {
  it('lists forums', async () => {
    const res = await t.app.inject({ url: '/api/v1/forums' });
    expect(res.statusCode).toBe(200);
    expect((res.json() as { items: unknown[] }).items).toHaveLength(5);
  });

  it('pages through every topic of a forum once, newest activity first', async () => {
    const seen: number[] = [];
    let cursor: string | null = null;
    let last = Number.POSITIVE_INFINITY;
    do {
      const url: string = `/api/v1/forums/1/topics?limit=7${cursor ? `&cursor=${cursor}` : ''}`;
      const body = (await t.app.inject({ url })).json() as TopicList;
      for (const topic of body.items) {
        expect(topic.updatedAt).toBeLessThanOrEqual(last);
        last = topic.updatedAt;
        seen.push(topic.id);
      }
      cursor = body.nextCursor;
    } while (cursor);
    const total = t.app.services.repos!.db.prepare('SELECT count(*) FROM topics WHERE forum_id = 1').pluck().get();
    expect(seen).toHaveLength(total as number);
    expect(new Set(seen).size).toBe(seen.length);
  });

  it('creates a topic with its first post and lists it first', async () => {
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/v1/forums/2/topics',
      headers: bearer(token),
      payload: { title: '  Fresh topic ', body: 'hello' },
    });
    expect(res.statusCode).toBe(201);
    const { topic, post } = res.json() as { topic: { id: number; title: string; postCount: number }; post: { body: string } };
    expect(topic).toMatchObject({ title: 'Fresh topic', postCount: 1 });
    expect(post.body).toBe('hello');
    const list = (await t.app.inject({ url: '/api/v1/forums/2/topics?limit=1' })).json() as TopicList;
    expect(list.items[0]?.id).toBe(topic.id);
  });

  it('requires a session to create a topic', async () => {
    const res = await t.app.inject({ method: 'POST', url: '/api/v1/forums/2/topics', payload: { title: 'x', body: 'y' } });
    expect(res.statusCode).toBe(401);
  });

  it('answers 404 for an unknown forum or topic', async () => {
    expect((await t.app.inject({ url: '/api/v1/forums/999/topics' })).statusCode).toBe(404);
    expect((await t.app.inject({ url: '/api/v1/topics/999999' })).statusCode).toBe(404);
  });

  it('returns a topic with its threaded posts, each reply right after its parent', async () => {
    const res = await t.app.inject({ url: '/api/v1/topics/1?limit=100' });
    expect(res.statusCode).toBe(200);
    const { posts } = res.json() as { posts: Array<{ id: number; parentId: number | null; threadDepth: number }> };
    expect(posts.length).toBeGreaterThan(0);
    const position = new Map(posts.map((p, i) => [p.id, i]));
    for (const p of posts) {
      if (p.parentId !== null) expect(position.get(p.parentId)).toBeLessThan(position.get(p.id) as number);
    }
  });

  it.each([
    ['/api/v1/forums/abc/topics', 'id'],
    ['/api/v1/forums/0/topics', 'id'],
    ['/api/v1/forums/1/topics?limit=0', 'limit'],
    ['/api/v1/forums/1/topics?limit=101', 'limit'],
    ['/api/v1/forums/1/topics?limit=two', 'limit'],
    ['/api/v1/forums/1/topics?cursor=!!', 'cursor'],
    ['/api/v1/forums/1/topics?cursor=bm90LWpzb24', 'cursor'],
    ['/api/v1/forums/1/topics?sort=asc', 'sort'],
    ['/api/v1/topics/1.5', 'id'],
    ['/api/v1/topics/99999999999999999999', 'id'],
    ['/api/v1/forums?limit=-1', 'limit'],
  ])('rejects GET %s naming %s', async (url, field) => {
    expectBadRequest(await t.app.inject({ url }), field);
  });

  it('answers a path with broken percent-encoding with 400 in the error shape, naming the path', async () => {
    expectBadRequest(await t.app.inject({ url: '/api/v1/topics/%E6%97' }), 'path');
  });

  it('answers a path parameter beyond the length limit with 414 in the error shape', async () => {
    const res = await t.app.inject({ url: `/api/v1/wiki/Main/${'a'.repeat(1_100)}` });
    expect(res.statusCode).toBe(414);
    expect(res.json()).toEqual({ error: 'uri_too_long', message: expect.any(String), field: 'path' });
  });

  it.each([
    [{ title: '', body: 'x' }, 'title'],
    [{ title: '   ', body: 'x' }, 'title'],
    [{ title: 't'.repeat(201), body: 'x' }, 'title'],
    [{ title: 'ok', body: '' }, 'body'],
    [{ title: 'ok', body: 'b'.repeat(20_001) }, 'body'],
    [{ body: 'x' }, 'title'],
    [{ title: 'ok', body: 'x', pinned: true }, 'pinned'],
    [{ title: ['a'], body: 'x' }, 'title'],
  ])('rejects topic body %j naming %s', async (payload, field) => {
    expectBadRequest(await t.app.inject({ method: 'POST', url: '/api/v1/forums/1/topics', headers: bearer(token), payload }), field);
  });
});
