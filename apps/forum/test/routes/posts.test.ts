import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, createTestApp, expectBadRequest, register, type TestApp } from '../helpers.ts';

let t: TestApp;
let alice: string;
let bob: string;
let topicId: number;
let rootId: number;

beforeAll(async () => {
  // No preview worker: these tests check which previews are queued and dropped, and a worker
  // would try to fetch their example.com links from the internet (the leak check caught its
  // TLS sockets still connecting after the test).
  t = await createTestApp({ seedOnEmpty: 'small', previews: { enabled: false } });
  alice = (await register(t.app, 'alice')).token;
  bob = (await register(t.app, 'bob')).token;
  const res = await t.app.inject({
    method: 'POST',
    url: '/api/v1/forums/1/topics',
    headers: bearer(alice),
    payload: { title: 'Threads', body: 'root' },
  });
  const body = res.json() as { topic: { id: number }; post: { id: number } };
  topicId = body.topic.id;
  rootId = body.post.id;
});
afterAll(() => t.close());

const reply = (token: string, body: string, parentId?: number, topic = topicId) =>
  t.app.inject({
    method: 'POST',
    url: `/api/v1/topics/${topic}/posts`,
    headers: bearer(token),
    payload: parentId ? { body, parentId } : { body },
  });

describe('post routes', () => {
  it('adds a reply under its parent and bumps the topic', async () => {
    const res = await reply(bob, 'a reply', rootId);
    expect(res.statusCode).toBe(201);
    expect(res.json()).toMatchObject({ parentId: rootId, depth: 1, body: 'a reply' });
    const topic = (await t.app.inject({ url: `/api/v1/topics/${topicId}` })).json() as { topic: { postCount: number } };
    expect(topic.topic.postCount).toBe(2);
  });

  it('refuses a parent from another topic', async () => {
    expectBadRequest(await reply(bob, 'x', 1), 'parentId');
  });

  it('answers 404 for a topic that does not exist, with or without a parent, and writes nothing', async () => {
    const before = (await t.app.inject({ url: `/api/v1/topics/${topicId}` })).json() as { topic: { postCount: number } };
    for (const parent of [undefined, rootId]) {
      const res = await reply(bob, 'into the void', parent, 987654);
      expect(res.statusCode).toBe(404);
      expect(res.json()).toMatchObject({ error: 'not_found', message: 'topic not found' });
    }
    const after = (await t.app.inject({ url: `/api/v1/topics/${topicId}` })).json() as { topic: { postCount: number } };
    expect(after.topic.postCount).toBe(before.topic.postCount);
  });

  it("returns a reply's links as pending previews, and none for a reply without links", async () => {
    const linked = await reply(bob, 'see https://example.com/a and https://example.com/a again', rootId);
    expect(linked.statusCode).toBe(201);
    expect(linked.json()).toMatchObject({ previews: [{ url: 'https://example.com/a', status: 'pending' }] });
    expect((await reply(bob, 'no links here')).json()).toMatchObject({ previews: [] });
  });

  it('lets the author edit a post and marks it edited; others get 403', async () => {
    const id = ((await reply(alice, 'draft')).json() as { id: number }).id;
    const other = await t.app.inject({ method: 'PATCH', url: `/api/v1/posts/${id}`, headers: bearer(bob), payload: { body: 'hijack' } });
    expect(other.statusCode).toBe(403);
    const own = await t.app.inject({ method: 'PATCH', url: `/api/v1/posts/${id}`, headers: bearer(alice), payload: { body: 'final' } });
    expect(own.statusCode).toBe(200);
    expect(own.json()).toMatchObject({ body: 'final', edited: true });
  });

  it('soft-deletes: the post keeps its place in the thread with its body removed', async () => {
    const id = ((await reply(alice, 'to delete', rootId)).json() as { id: number }).id;
    await reply(bob, 'child of deleted', id);
    expect((await t.app.inject({ method: 'DELETE', url: `/api/v1/posts/${id}`, headers: bearer(bob) })).statusCode).toBe(403);
    expect((await t.app.inject({ method: 'DELETE', url: `/api/v1/posts/${id}`, headers: bearer(alice) })).statusCode).toBe(204);
    const thread = (await t.app.inject({ url: `/api/v1/posts/${rootId}/thread` })).json() as {
      items: Array<{ id: number; body: string; deleted: boolean }>;
    };
    const deleted = thread.items.find((p) => p.id === id);
    expect(deleted).toMatchObject({ body: '', deleted: true });
    expect(thread.items.some((p) => p.body === 'child of deleted')).toBe(true);
    expect(
      (await t.app.inject({ method: 'PATCH', url: `/api/v1/posts/${id}`, headers: bearer(alice), payload: { body: 'x' } })).statusCode,
    ).toBe(404);
  });

  it('bounds thread depth at 5 and marks cut-offs; the sub-thread reaches deeper replies', async () => {
    let parent = ((await reply(alice, 'deep root')).json() as { id: number }).id;
    const chain = [parent];
    for (let i = 0; i < 8; i++) {
      parent = ((await reply(alice, `level ${i + 1}`, parent)).json() as { id: number }).id;
      chain.push(parent);
    }
    const thread = (await t.app.inject({ url: `/api/v1/posts/${chain[0]}/thread` })).json() as {
      items: Array<{ id: number; threadDepth: number; hasMoreReplies: boolean }>;
    };
    expect(Math.max(...thread.items.map((p) => p.threadDepth))).toBe(5);
    expect(thread.items.find((p) => p.id === chain[5])?.hasMoreReplies).toBe(true);
    const deeper = (await t.app.inject({ url: `/api/v1/posts/${chain[5]}/thread` })).json() as { items: Array<{ id: number }> };
    expect(deeper.items.map((p) => p.id)).toEqual(chain.slice(5));
  });

  describe('with the thread row cap at 10', () => {
    let limited: TestApp;
    let root: number;
    const replies: number[] = [];
    type Thread = { items: Array<{ id: number; parentId: number | null; hasMoreReplies: boolean }>; nextCursor: string | null };
    const thread = async (qs = '') => (await limited.app.inject({ url: `/api/v1/posts/${root}/thread${qs}` })).json() as Thread;

    beforeAll(async () => {
      limited = await createTestApp({ seedOnEmpty: 'none', threadMaxRows: 10 });
      const user = await register(limited.app, 'writer');
      limited.app.services.repos!.db.prepare("INSERT INTO forums (slug, name) VALUES ('f', 'F')").run();
      const created = (
        await limited.app.inject({
          method: 'POST',
          url: '/api/v1/forums/1/topics',
          headers: bearer(user.token),
          payload: { title: 't', body: 'root' },
        })
      ).json() as { topic: { id: number }; post: { id: number } };
      root = created.post.id;
      for (let i = 0; i < 30; i++) {
        const res = await limited.app.inject({
          method: 'POST',
          url: `/api/v1/topics/${created.topic.id}/posts`,
          headers: bearer(user.token),
          payload: { body: `r${i}`, parentId: root },
        });
        replies.push((res.json() as { id: number }).id);
      }
    });
    afterAll(() => limited.close());

    it('bounds a thread read by rows', async () => {
      expect((await thread()).items).toHaveLength(10);
    });

    it('marks a post whose replies the row cap cut with hasMoreReplies', async () => {
      const first = await thread();
      expect(first.items[0]).toMatchObject({ id: root, hasMoreReplies: true });
    });

    it("pages through a post's direct replies with the thread's nextCursor, each once", async () => {
      const seen: number[] = [];
      let page = await thread();
      seen.push(...page.items.filter((p) => p.parentId === root).map((p) => p.id));
      for (let guard = 0; page.nextCursor && guard < 10; guard++) {
        page = await thread(`?cursor=${page.nextCursor}`);
        expect(page.items.every((p) => p.parentId === root)).toBe(true);
        seen.push(...page.items.map((p) => p.id));
      }
      expect(page.nextCursor).toBeNull();
      expect(seen).toEqual(replies);
    });
  });

  it('drops the previews of a deleted post: the route answers an empty list and nothing is left to fetch', async () => {
    const created = (await reply(alice, 'see https://example.com/a and https://example.com/b')).json() as {
      id: number;
      previews: unknown[];
    };
    expect(created.previews).toHaveLength(2);
    expect((await t.app.inject({ method: 'DELETE', url: `/api/v1/posts/${created.id}`, headers: bearer(alice) })).statusCode).toBe(204);
    const res = await t.app.inject({ url: `/api/v1/posts/${created.id}/previews` });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ items: [] });
    expect(t.app.services.repos!.db.prepare('SELECT count(*) FROM link_previews WHERE post_id = ?').pluck().get(created.id)).toBe(0);
  });

  it('drops the previews of links an edit removed and keeps the others', async () => {
    const created = (await reply(alice, 'https://example.com/keep and https://example.com/gone')).json() as { id: number };
    const rowId = (url: string) =>
      t.app.services.repos!.db.prepare('SELECT id FROM link_previews WHERE post_id = ? AND url = ?').pluck().get(created.id, url);
    const kept = rowId('https://example.com/keep');
    const edited = await t.app.inject({
      method: 'PATCH',
      url: `/api/v1/posts/${created.id}`,
      headers: bearer(alice),
      payload: { body: 'now https://example.com/keep and https://example.com/new' },
    });
    const urls = ['https://example.com/keep', 'https://example.com/new'];
    expect((edited.json() as { previews: Array<{ url: string }> }).previews.map((p) => p.url)).toEqual(urls);
    const listed = (await t.app.inject({ url: `/api/v1/posts/${created.id}/previews` })).json() as { items: Array<{ url: string }> };
    expect(listed.items.map((p) => p.url)).toEqual(urls);
    // The kept link's row (and any title it has) survives the edit.
    expect(rowId('https://example.com/keep')).toBe(kept);
  });

  it.each([
    ['POST', '/api/v1/topics/1/posts', { body: '' }, 'body'],
    ['POST', '/api/v1/topics/1/posts', { body: 'x', parentId: 0 }, 'parentId'],
    ['POST', '/api/v1/topics/1/posts', { body: 'x', parentId: 'one' }, 'parentId'],
    ['POST', '/api/v1/topics/1/posts', { text: 'x' }, 'body'],
    ['POST', '/api/v1/topics/x/posts', { body: 'x' }, 'id'],
    ['PATCH', '/api/v1/posts/1', { body: 'b'.repeat(20_001) }, 'body'],
    ['PATCH', '/api/v1/posts/1', { body: 'x', author: 2 }, 'author'],
    ['GET', '/api/v1/posts/1/thread?depth=6', undefined, 'depth'],
    ['GET', '/api/v1/posts/1/thread?depth=0', undefined, 'depth'],
    ['GET', '/api/v1/posts/1/thread?cursor=bm90LWpzb24', undefined, 'cursor'],
  ] as const)('rejects %s %s %j naming %s', async (method, url, payload, field) => {
    expectBadRequest(await t.app.inject({ method, url, headers: bearer(alice), ...(payload ? { payload } : {}) }), field);
  });

  it('requires a session to write', async () => {
    expect((await t.app.inject({ method: 'POST', url: `/api/v1/topics/${topicId}/posts`, payload: { body: 'x' } })).statusCode).toBe(401);
    expect((await t.app.inject({ method: 'DELETE', url: `/api/v1/posts/${rootId}` })).statusCode).toBe(401);
  });
});
