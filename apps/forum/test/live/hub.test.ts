import { deferred, FakeClock } from 'keel/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { LiveHub, type LiveSocket, type LiveUser } from '../../src/live/hub.ts';
import type { LiveHubOptions } from '../../src/live/types.ts';
import { waitFor } from '../helpers.ts';
import { LiveClient, type Msg, startWsServer } from './client.ts';

const HEARTBEAT = 1_000;
const users = new Map<string, LiveUser>();
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
  users.clear();
});

/** A hub on fake time behind a real ws server; `connect()` opens real clients. */
async function setup(
  options: {
    maxConnections?: number;
    presenceMs?: number;
    maxBufferedBytes?: number;
    maxPending?: number;
    authenticate?: LiveHubOptions['authenticate'];
    topicExists?: LiveHubOptions['topicExists'];
  } = {},
) {
  const clock = new FakeClock();
  const hub = new LiveHub({
    clock,
    heartbeatMs: HEARTBEAT,
    closeGraceMs: 500,
    presenceMs: 0,
    authenticate: (token) => users.get(token),
    ...options,
  });
  let nextAuth: { user?: LiveUser; token?: string } = {};
  const server = await startWsServer((socket: LiveSocket) => {
    hub.accept(socket, nextAuth);
    nextAuth = {};
  });
  const clients: LiveClient[] = [];
  cleanups.push(async () => {
    await Promise.all(clients.map((c) => c.close()));
    const closing = hub.close();
    clock.advance(500);
    await closing;
    await server.close();
  });
  const connect = async (opts: { autoPong?: boolean; token?: string } = {}) => {
    if (opts.token) nextAuth = { user: users.get(opts.token), token: opts.token };
    const c = await LiveClient.open(server.url, { autoPong: opts.autoPong ?? true });
    clients.push(c);
    await c.request({ type: 'ping' }); // the server has accepted it once this answers
    return c;
  };
  const settled = () => waitFor(() => hub.stats().closing === 0, 5_000, 'closing sockets to end');
  return { clock, hub, connect, settled, url: server.url };
}

describe('LiveHub heartbeats (fake time, real sockets)', () => {
  it('drops a peer that answers no ping within one interval, and leaves its rooms', async () => {
    const { clock, hub, connect, settled } = await setup();
    const c = await connect({ autoPong: false });
    await c.request({ type: 'subscribe', topicId: 1 });
    clock.advance(HEARTBEAT);
    await waitFor(() => c.pings === 1, 5_000, 'the first ping');
    expect(hub.stats().connections).toBe(1);
    clock.advance(HEARTBEAT);
    expect(hub.stats()).toMatchObject({ connections: 0, rooms: 0, subscriptions: 0, heartbeatTimeouts: 1 });
    expect(await c.closed).toBe(1006);
    await settled();
  });

  it('keeps a peer that answers every ping', async () => {
    const { clock, hub, connect } = await setup();
    const c = await connect();
    for (let i = 1; i <= 3; i++) {
      clock.advance(HEARTBEAT);
      await waitFor(() => c.pings === i, 5_000, `ping ${i}`);
      // The pong went out before this request, so the server has seen it when the reply comes.
      await c.request({ type: 'ping' });
    }
    clock.advance(HEARTBEAT);
    expect(hub.stats()).toMatchObject({ connections: 1, heartbeatTimeouts: 0 });
  });

  it('closes the me channel of a session that expired silently at the next heartbeat, not before', async () => {
    const { clock, hub, connect } = await setup();
    users.set('t'.repeat(43), { id: 9, username: 'nine' });
    const c = await connect({ token: 't'.repeat(43) });
    expect(await c.request({ type: 'subscribe', channel: 'me' })).toMatchObject({ type: 'subscribed' });
    users.clear();
    clock.advance(hub.limits.heartbeatMs - 1);
    await c.request({ type: 'ping' });
    expect(hub.stats().channels).toBe(1);
    clock.advance(1);
    await c.next((m) => m.code === 'session_expired');
    expect(hub.stats()).toMatchObject({ connections: 1, channels: 0, subscriptions: 0 });
  });
});

describe('LiveHub private me channel', () => {
  it('withholds private data from a socket whose session ended since it subscribed, without waiting for a heartbeat', async () => {
    // The fake clock never moves here, so no heartbeat runs.
    const { hub, connect } = await setup();
    users.set('t'.repeat(43), { id: 9, username: 'nine' });
    const c = await connect({ token: 't'.repeat(43) });
    expect(await c.request({ type: 'subscribe', channel: 'me' })).toMatchObject({ type: 'subscribed' });
    users.clear();
    hub.notifyUser(9, { type: 'reply', channel: 'me' });
    await c.next((m) => m.code === 'session_expired');
    await c.request({ type: 'ping' });
    expect(c.count((m) => m.type === 'reply')).toBe(0);
    expect(hub.stats()).toMatchObject({ channels: 0, subscriptions: 0 });
  });

  it('closes the me channels of a user at once when told their session ended', async () => {
    const { hub, connect } = await setup();
    users.set('t'.repeat(43), { id: 9, username: 'nine' });
    const c = await connect({ token: 't'.repeat(43) });
    expect(await c.request({ type: 'subscribe', channel: 'me' })).toMatchObject({ type: 'subscribed' });
    users.clear();
    hub.sessionEnded(9);
    expect(hub.stats()).toMatchObject({ channels: 0, subscriptions: 0 });
    await c.next((m) => m.code === 'session_expired');
  });
});

describe('LiveHub with lookups that answer asynchronously (a PostgreSQL store)', () => {
  it('answers a socket’s messages in the order sent while a session lookup is pending', async () => {
    const lookup = deferred<LiveUser | undefined>();
    const { connect } = await setup({ authenticate: () => lookup.promise });
    const c = await connect();
    const from = c.messages.length;
    c.send({ type: 'auth', token: 'a'.repeat(43), id: 'a' });
    c.send({ type: 'subscribe', channel: 'me', id: 'b' });
    c.send({ type: 'ping', id: 'c' });
    // Without the wait behind the lookup, the pong would come first and `me` would be refused.
    lookup.resolve({ id: 4, username: 'four' });
    await c.next((m) => m.id === 'c');
    expect(c.messages.slice(from, from + 3).map((m) => [m.id, m.type])).toEqual([
      ['a', 'authenticated'],
      ['b', 'subscribed'],
      ['c', 'pong'],
    ]);
  });

  it('joins no room for a socket that closed while its topic lookup ran', async () => {
    const exists = deferred<boolean>();
    const { hub, connect } = await setup({ topicExists: () => exists.promise });
    const c = await connect();
    c.send({ type: 'subscribe', topicId: 7 });
    await c.close();
    await waitFor(() => hub.stats().connections === 0, 5_000, 'the hub to see the close');
    exists.resolve(true);
    await exists.promise;
    await Promise.resolve();
    expect(hub.stats()).toMatchObject({ rooms: 0, subscriptions: 0 });
    expect(hub.presence(7)).toBe(0);
  });

  it('closes with 1008 a socket that queues more than maxPending messages behind a lookup', async () => {
    const lookup = deferred<LiveUser | undefined>();
    const { hub, connect } = await setup({ maxPending: 2, authenticate: () => lookup.promise });
    const c = await connect();
    c.send({ type: 'auth', token: 'a'.repeat(43) });
    for (let i = 0; i < 3; i++) c.send({ type: 'ping' });
    expect(await c.closed).toBe(1008);
    lookup.resolve(undefined);
    await waitFor(() => hub.stats().connections === 0, 5_000, 'the connection to go');
  });

  it('treats a session lookup that failed as no session', async () => {
    const { hub, connect } = await setup({ authenticate: () => Promise.reject(new Error('database down')) });
    const c = await connect();
    expect(await c.request({ type: 'auth', token: 'a'.repeat(43) })).toMatchObject({ type: 'error', code: 'unauthorized' });
    expect(hub.stats()).toMatchObject({ channels: 0 });
  });
});

describe('LiveHub presence', () => {
  it('coalesces the presence messages of a burst of joins into one per member', async () => {
    const { clock, connect } = await setup({ presenceMs: 100 });
    const cs = await Promise.all([connect(), connect(), connect()]);
    for (const c of cs) await c.request({ type: 'subscribe', topicId: 3 });
    const presence = (m: Msg) => m.type === 'presence';
    expect(cs.map((c) => c.count(presence))).toEqual([0, 0, 0]);
    clock.advance(100);
    await Promise.all(cs.map((c) => c.next(presence)));
    await Promise.all(cs.map((c) => c.request({ type: 'ping' })));
    expect(cs.map((c) => c.messages.filter(presence))).toEqual(cs.map(() => [{ type: 'presence', topicId: 3, count: 3 }]));
  });
});

describe('LiveHub bounds and disconnect paths', () => {
  it('refuses a socket beyond maxConnections with 1013', async () => {
    const { hub, connect, settled, url } = await setup({ maxConnections: 1 });
    await connect();
    expect(hub.full).toBe(true);
    const extra = await LiveClient.open(url);
    expect(await extra.closed).toBe(1013);
    await settled();
    expect(hub.stats().connections).toBe(1);
  });

  it('terminates a dropped slow consumer that never reads its close frame after closeGraceMs', async () => {
    const { clock, hub, connect, settled } = await setup({ maxBufferedBytes: 16 * 1024 });
    const c = await connect();
    await c.request({ type: 'subscribe', topicId: 4 });
    c.ws._socket.pause();
    const big = { type: 'post.updated', topicId: 4, post: { body: 'y'.repeat(20_000) } };
    for (let i = 0; i < 2_000 && hub.stats().slowConsumers === 0; i++) hub.publishTopic(4, big);
    expect(hub.stats()).toMatchObject({ slowConsumers: 1, connections: 0, rooms: 0, closing: 1 });
    clock.advance(500);
    // The server's socket has ended although the client has not read a byte since the pause.
    await settled();
    c.ws._socket.resume();
    // Whether the close frame got into the kernel's buffers before the cut is up to TCP.
    expect([4000, 1006]).toContain(await c.closed);
  });

  it('counts a message’s UTF-8 bytes, not its UTF-16 units, against maxBufferedBytes (CJK text)', async () => {
    const { hub, connect } = await setup({ maxBufferedBytes: 16 * 1024 });
    const c = await connect();
    await c.request({ type: 'subscribe', topicId: 6 });
    // Both bodies are 6,000 units long: the ASCII one is 6 KB and fits, the CJK one is 18 KB.
    hub.publishTopic(6, { type: 'post.updated', topicId: 6, post: { body: 'y'.repeat(6_000) } });
    await c.next((m) => m.type === 'post.updated');
    hub.publishTopic(6, { type: 'post.updated', topicId: 6, post: { body: '漢'.repeat(6_000) } });
    expect(hub.stats()).toMatchObject({ slowConsumers: 1, connections: 0 });
    expect(await c.closed).toBe(4000);
    expect(c.count((m) => m.type === 'post.updated')).toBe(1);
  });

  it('leaves its rooms when ws closes the socket for a protocol error (invalid UTF-8 → 1007)', async () => {
    const { hub, connect, settled } = await setup();
    const c = await connect();
    await c.request({ type: 'subscribe', topicId: 5 });
    c.ws.send(Buffer.from([0x22, 0xff, 0x22]), { binary: false });
    expect(await c.closed).toBe(1007);
    await settled();
    expect(hub.stats()).toMatchObject({ connections: 0, rooms: 0, subscriptions: 0 });
  });

  it('close() sends 1001 to every socket, refuses new ones and stops its timers', async () => {
    const { clock, hub, connect } = await setup({ presenceMs: 100 });
    const cs = await Promise.all([connect(), connect()]);
    await cs[0]!.request({ type: 'subscribe', topicId: 6 });
    await hub.close();
    expect(await Promise.all(cs.map((c) => c.closed))).toEqual([1001, 1001]);
    expect(hub.stats()).toMatchObject({ connections: 0, rooms: 0, closing: 0 });
    expect(clock.pending).toBe(0);
    expect(hub.full).toBe(true);
  });

  it('names a bad option in a TypeError', () => {
    expect(() => new LiveHub({ authenticate: () => undefined, maxSubscriptions: 0 })).toThrow(/"maxSubscriptions" must be an integer >= 1/);
    expect(() => new LiveHub({} as never)).toThrow(/"authenticate"/);
  });
});
