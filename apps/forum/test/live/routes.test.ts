import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { LIVE_DEFAULTS } from '../../src/live/limits.ts';
import { bearer, createTestApp, register, type TestApp, waitFor } from '../helpers.ts';
import { LiveClient, type Msg } from './client.ts';

let t: TestApp;
let url: string;
let alice: { token: string; id: number };
let bob: { token: string; id: number };
const clients: LiveClient[] = [];

const open = async (query = '', headers?: Record<string, string>) => {
  const c = await LiveClient.open(`${url}${query}`, headers ? { headers } : {});
  clients.push(c);
  return c;
};
const idle = () =>
  waitFor(() => t.app.services.live.stats().connections === 0 && t.app.services.live.stats().closing === 0, 5_000, 'hub idle');
const isType = (type: string) => (m: Msg) => m.type === type;

beforeAll(async () => {
  t = await createTestApp({ live: { ...LIVE_DEFAULTS, maxSubscriptions: 5, maxBufferedBytes: 64 * 1024, closeGraceMs: 5_000 } });
  const address = await t.app.listen({ port: 0, host: '127.0.0.1' });
  url = `${address.replace('http', 'ws')}/api/v1/live`;
  alice = await register(t.app, 'alice');
  bob = await register(t.app, 'bob');
});
afterAll(() => t.close());
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await idle();
});

const createPost = async (token: string, topicId: number, body: string, parentId?: number) => {
  const res = await t.app.inject({
    method: 'POST',
    url: `/api/v1/topics/${topicId}/posts`,
    headers: bearer(token),
    payload: parentId ? { body, parentId } : { body },
  });
  expect(res.statusCode).toBe(201);
  return res.json() as { id: number };
};

describe('GET /api/v1/live: topic rooms', () => {
  it('delivers a post created through the HTTP API to an anonymous subscriber of its topic', async () => {
    const c = await open();
    expect(await c.request({ type: 'subscribe', topicId: 1 })).toMatchObject({ type: 'subscribed', topicId: 1, count: 1 });
    const post = await createPost(alice.token, 1, 'hello live world');
    const m = await c.next(isType('post.created'));
    expect(m).toMatchObject({ topicId: 1, post: { id: post.id, body: 'hello live world', author: { username: 'alice' } } });
  });

  it('delivers edits and deletions, and nothing from topics it did not subscribe to', async () => {
    const c = await open();
    await c.request({ type: 'subscribe', topicId: 2 });
    await createPost(alice.token, 3, 'elsewhere');
    const post = await createPost(alice.token, 2, 'first draft');
    const patched = await t.app.inject({
      method: 'PATCH',
      url: `/api/v1/posts/${post.id}`,
      headers: bearer(alice.token),
      payload: { body: 'second draft' },
    });
    expect(patched.statusCode).toBe(200);
    expect(await c.next(isType('post.updated'))).toMatchObject({ topicId: 2, post: { id: post.id, body: 'second draft', edited: true } });
    const deleted = await t.app.inject({ method: 'DELETE', url: `/api/v1/posts/${post.id}`, headers: bearer(alice.token) });
    expect(deleted.statusCode).toBe(204);
    expect(await c.next(isType('post.deleted'))).toEqual({ type: 'post.deleted', topicId: 2, postId: post.id });
    expect(c.messages.filter((m) => m.topicId === 3)).toEqual([]);
  });

  it('stops delivering after unsubscribe', async () => {
    const c = await open();
    await c.request({ type: 'subscribe', topicId: 4 });
    expect(await c.request({ type: 'unsubscribe', topicId: 4 })).toMatchObject({ type: 'unsubscribed', topicId: 4 });
    await createPost(alice.token, 4, 'nobody listens');
    expect(await c.request({ type: 'ping' })).toMatchObject({ type: 'pong' });
    expect(c.count(isType('post.created'))).toBe(0);
    expect(t.app.services.live.stats()).toMatchObject({ connections: 1, rooms: 0, subscriptions: 0 });
  });

  it('sends presence counts that rise on subscribe and fall when a subscriber leaves', async () => {
    const a = await open();
    const b = await open();
    await a.request({ type: 'subscribe', topicId: 5 });
    expect(await b.request({ type: 'subscribe', topicId: 5 })).toMatchObject({ count: 2 });
    await a.next((m) => m.type === 'presence' && m.count === 2, 0, 'presence 2');
    const mark = a.messages.length;
    await b.close();
    expect(await a.next(isType('presence'), mark, 'presence after close')).toEqual({ type: 'presence', topicId: 5, count: 1 });
    expect(t.app.services.live.presence(5)).toBe(1);
  });

  it('answers a subscription to an unknown topic with not_found', async () => {
    const c = await open();
    expect(await c.request({ type: 'subscribe', topicId: 999_999 })).toMatchObject({ type: 'error', code: 'not_found' });
    expect(t.app.services.live.stats().rooms).toBe(0);
  });

  it('refuses subscriptions beyond the per-socket limit', async () => {
    const c = await open();
    for (let topicId = 1; topicId <= 5; topicId++) expect((await c.request({ type: 'subscribe', topicId })).type).toBe('subscribed');
    expect(await c.request({ type: 'subscribe', topicId: 6 })).toMatchObject({ type: 'error', code: 'too_many_subscriptions' });
    expect(t.app.services.live.stats().subscriptions).toBe(5);
  });
});

describe('GET /api/v1/live: bad input', () => {
  it('answers a message that fails the schema with an error and keeps the socket open', async () => {
    const c = await open();
    expect(await c.request({ type: 'subscribe', topicId: 'one' })).toMatchObject({ type: 'error', code: 'bad_message' });
    c.send('{"type":"teleport"}');
    await c.next((m) => m.code === 'bad_message' && String(m.message).includes('type must be'));
    expect(await c.request({ type: 'ping' })).toMatchObject({ type: 'pong' });
  });

  it('closes with 1008 after repeated schema violations', async () => {
    const c = await open();
    for (let i = 0; i < LIVE_DEFAULTS.maxBadMessages; i++) c.send({ type: 'subscribe', topicId: -1 });
    expect(await c.closed).toBe(1008);
    expect(c.count((m) => m.code === 'bad_message')).toBe(LIVE_DEFAULTS.maxBadMessages);
  });

  it('closes with 1007 after repeated frames that are not JSON', async () => {
    const c = await open();
    for (let i = 0; i < LIVE_DEFAULTS.maxBadMessages; i++) c.send('not json {');
    expect(await c.closed).toBe(1007);
  });

  it('closes a binary frame with 1003', async () => {
    const c = await open();
    c.ws.send(Buffer.from('{"type":"ping"}'), { binary: true });
    expect(await c.closed).toBe(1003);
  });

  it('closes a frame above maxPayload with 1009 and leaves its rooms', async () => {
    const c = await open();
    await c.request({ type: 'subscribe', topicId: 1 });
    c.send({ type: 'ping', id: 'x'.repeat(LIVE_DEFAULTS.maxPayload) });
    expect(await c.closed).toBe(1009);
    await idle();
    expect(t.app.services.live.stats()).toMatchObject({ rooms: 0, subscriptions: 0 });
  });

  it('leaves every room when the client drops the TCP connection without a close frame', async () => {
    const c = await open();
    await c.request({ type: 'subscribe', topicId: 1 });
    await c.request({ type: 'subscribe', topicId: 2 });
    c.ws.terminate();
    await idle();
    expect(t.app.services.live.stats()).toMatchObject({ connections: 0, rooms: 0, subscriptions: 0 });
  });
});

describe('GET /api/v1/live: sessions and the private me channel', () => {
  const meReply = (m: Msg) => m.type === 'reply' && m.channel === 'me';

  it('takes a session from the Authorization header and sends replies to the user’s posts on the me channel', async () => {
    const c = await open('', bearer(bob.token));
    expect(await c.request({ type: 'subscribe', channel: 'me' })).toMatchObject({ type: 'subscribed', channel: 'me' });
    const root = await createPost(bob.token, 6, 'bob asks');
    await createPost(bob.token, 6, 'bob answers himself', root.id);
    const reply = await createPost(alice.token, 6, 'alice answers', root.id);
    expect(await c.next(meReply)).toMatchObject({ topicId: 6, post: { id: reply.id, parentId: root.id, author: { username: 'alice' } } });
    expect(await c.request({ type: 'ping' })).toMatchObject({ type: 'pong' });
    expect(c.count(meReply)).toBe(1);
  });

  it('takes a session from the token query parameter', async () => {
    const c = await open(`?token=${bob.token}`);
    expect(await c.request({ type: 'subscribe', channel: 'me' })).toMatchObject({ type: 'subscribed', channel: 'me' });
    expect(t.app.services.live.stats().channels).toBe(1);
  });

  it('takes a session from an auth message', async () => {
    const c = await open();
    expect(await c.request({ type: 'auth', token: alice.token })).toMatchObject({
      type: 'authenticated',
      user: { id: alice.id, username: 'alice' },
    });
    expect(await c.request({ type: 'subscribe', channel: 'me' })).toMatchObject({ type: 'subscribed', channel: 'me' });
    expect(await c.request({ type: 'auth', token: bob.token })).toMatchObject({ type: 'error', code: 'already_authenticated' });
  });

  it('refuses the me channel to an anonymous socket', async () => {
    const c = await open();
    expect(await c.request({ type: 'subscribe', channel: 'me' })).toMatchObject({ type: 'error', code: 'unauthorized' });
    expect(t.app.services.live.stats()).toMatchObject({ channels: 0, subscriptions: 0 });
  });

  it('answers an upgrade carrying an unknown or malformed token with 401', async () => {
    for (const [query, headers] of [
      ['', bearer('A'.repeat(43))],
      ['', { authorization: 'Bearer short' }],
      ['?token=not-a-token!', undefined],
    ] as const) {
      const c = new LiveClient(`${url}${query}`, headers ? { headers } : {});
      await expect(c.opened).rejects.toThrow(/401/);
      expect(c.status).toBe(401);
      await c.closed;
    }
  });

  it('refuses an expired session on upgrade and in an auth message', async () => {
    const carol = await register(t.app, 'carol');
    t.app.services.repos!.db.prepare('UPDATE sessions SET expires_at = 1 WHERE user_id = ?').run(carol.id);
    const upgrade = new LiveClient(url, { headers: bearer(carol.token) });
    await expect(upgrade.opened).rejects.toThrow(/401/);
    await upgrade.closed;
    const c = await open();
    expect(await c.request({ type: 'auth', token: carol.token })).toMatchObject({ type: 'error', code: 'unauthorized' });
    expect(await c.request({ type: 'subscribe', channel: 'me' })).toMatchObject({ type: 'error', code: 'unauthorized' });
  });

  it('checks the session again when the me channel is subscribed after a logout', async () => {
    const dave = await register(t.app, 'dave');
    const c = await open('', bearer(dave.token));
    const out = await t.app.inject({ method: 'POST', url: '/api/v1/auth/logout', headers: bearer(dave.token) });
    expect(out.statusCode).toBe(204);
    expect(await c.request({ type: 'subscribe', channel: 'me' })).toMatchObject({ type: 'error', code: 'unauthorized' });
    expect(t.app.services.live.stats().channels).toBe(0);
  });
});

describe('GET /api/v1/live: a logout', () => {
  it('closes the me channel at once, so a reply after the logout is never delivered', async () => {
    const erin = await register(t.app, 'erin');
    const c = await open('', bearer(erin.token));
    expect(await c.request({ type: 'subscribe', channel: 'me' })).toMatchObject({ type: 'subscribed', channel: 'me' });
    const root = await createPost(erin.token, 7, 'erin asks');
    const out = await t.app.inject({ method: 'POST', url: '/api/v1/auth/logout', headers: bearer(erin.token) });
    expect(out.statusCode).toBe(204);
    // No heartbeat runs in this test (LIVE_DEFAULTS: 30 s): the logout itself closed the channel.
    expect(t.app.services.live.stats().channels).toBe(0);
    await c.next((m) => m.code === 'session_expired');
    await createPost(alice.token, 7, 'a private reply after the logout', root.id);
    await c.request({ type: 'ping' });
    expect(c.count((m) => m.type === 'reply')).toBe(0);
  });
});

describe('GET /api/v1/live: plain HTTP', () => {
  it('answers a GET without an upgrade with 426 in the error shape', async () => {
    const res = await t.app.inject({ url: '/api/v1/live' });
    expect(res.statusCode).toBe(426);
    expect(res.headers.upgrade).toBe('websocket');
    expect(res.json()).toEqual({ error: 'upgrade_required', message: expect.stringMatching(/WebSocket/) });
  });
});

describe('GET /api/v1/live: bounds', () => {
  it('disconnects a subscriber that stops reading with 4000 instead of buffering without limit', async () => {
    const c = await open();
    await c.request({ type: 'subscribe', topicId: 7 });
    const created = await createPost(alice.token, 7, 'a post that is then edited many times');
    await c.next(isType('post.created'));
    const post = { ...t.app.services.repos!.posts.byId(created.id)!, body: 'x'.repeat(30_000) };
    c.ws._socket.pause();
    const live = t.app.services.live;
    const before = live.stats().slowConsumers;
    // 30 KB events until the hub gives up on the socket; at most ~60 MB if it never did.
    let sent = 0;
    while (live.stats().slowConsumers === before && sent < 2_000) {
      t.app.services.events.emit('post.updated', { topicId: 7, forumId: 1, post });
      sent++;
    }
    expect(live.stats().slowConsumers).toBe(before + 1);
    expect(live.stats()).toMatchObject({ connections: 0, rooms: 0 });
    c.ws._socket.resume();
    expect(await c.closed).toBe(4000);
    expect(sent).toBeLessThan(2_000);
  });

  it('answers an upgrade beyond the connection limit with 503', async () => {
    const small = await createTestApp({ live: { ...LIVE_DEFAULTS, maxConnections: 2 } });
    try {
      const base = `${(await small.app.listen({ port: 0, host: '127.0.0.1' })).replace('http', 'ws')}/api/v1/live`;
      const a = await LiveClient.open(base);
      const b = await LiveClient.open(base);
      const c = new LiveClient(base);
      await expect(c.opened).rejects.toThrow(/503/);
      await c.closed;
      await Promise.all([a.close(), b.close()]);
    } finally {
      await small.close();
    }
  });

  it('drops a peer that stops answering pings (a real 50 ms heartbeat)', async () => {
    const quick = await createTestApp({ live: { ...LIVE_DEFAULTS, heartbeatMs: 50 } });
    try {
      const base = `${(await quick.app.listen({ port: 0, host: '127.0.0.1' })).replace('http', 'ws')}/api/v1/live`;
      const c = await LiveClient.open(base, { autoPong: false });
      await c.request({ type: 'subscribe', topicId: 1 });
      const hub = quick.app.services.live;
      await waitFor(() => hub.stats().heartbeatTimeouts === 1, 5_000, 'the heartbeat to drop the peer');
      expect(hub.stats()).toMatchObject({ connections: 0, rooms: 0, subscriptions: 0 });
      expect(await c.closed).toBe(1006);
      expect(c.pings).toBeGreaterThanOrEqual(1);
    } finally {
      await quick.close();
    }
  });

  it('closes every socket with 1001 when the app closes, leaving no rooms and no handles', async () => {
    const other = await createTestApp();
    const base = `${(await other.app.listen({ port: 0, host: '127.0.0.1' })).replace('http', 'ws')}/api/v1/live`;
    const sockets = await Promise.all([1, 2, 3].map(() => LiveClient.open(base)));
    await Promise.all(sockets.map((s, i) => s.request({ type: 'subscribe', topicId: i + 1 })));
    const hub = other.app.services.live;
    expect(hub.stats()).toMatchObject({ connections: 3, rooms: 3 });
    await other.close();
    expect(await Promise.all(sockets.map((s) => s.closed))).toEqual([1001, 1001, 1001]);
    expect(hub.stats()).toMatchObject({ connections: 0, rooms: 0, subscriptions: 0, closing: 0 });
  });
});
