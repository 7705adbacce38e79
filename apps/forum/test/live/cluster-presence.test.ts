/**
 * Presence across instances: two hubs, each behind a real ws server, fanned out over a real
 * Redis (instance B through a keel chaos proxy, so a test can cut it off without a goodbye).
 * The hubs run on fake time; the fan-out's own deadlines on real time.
 */
import { createFaultProxy, type FaultProxy } from 'keel/load';
import { FakeClock } from 'keel/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type RedisServer, startRedis } from '../../../../test-support/redis.ts';
import { LiveHub, type LiveSocket } from '../../src/live/hub.ts';
import { RedisFanout } from '../../src/live/redis-fanout.ts';
import { waitFor } from '../helpers.ts';
import { LiveClient, type Msg, startWsServer } from './client.ts';

const REFRESH = 1_000;
let redis: RedisServer;
let channel = 0;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(() => redis.close());
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

/** A hub on fake time whose fan-out reaches Redis at `url`; `connect()` opens a real client. */
async function instance(url: string, ch: string, presenceMs = 0) {
  const clock = new FakeClock();
  const fanouts: RedisFanout[] = [];
  let subscribed = 0;
  const hub = new LiveHub({
    clock,
    presenceMs,
    presenceRefreshMs: REFRESH,
    closeGraceMs: 0,
    authenticate: () => undefined,
    fanout: (deliver, onSubscribed) => {
      const f = new RedisFanout(
        {
          url,
          channel: ch,
          onSubscribed: () => {
            subscribed++;
            onSubscribed();
          },
        },
        deliver,
      );
      fanouts.push(f);
      return f;
    },
  });
  const server = await startWsServer((socket: LiveSocket) => hub.accept(socket));
  const clients: LiveClient[] = [];
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await Promise.all(clients.map((c) => c.close()));
    await hub.close();
    await server.close();
  };
  cleanups.push(close);
  await waitFor(() => subscribed > 0, 5_000, 'the fan-out to subscribe');
  return {
    clock,
    hub,
    close,
    presenceReceived: () => hub.stats().fanout?.presenceReceived ?? 0,
    async connect() {
      const c = await LiveClient.open(server.url);
      clients.push(c);
      return c;
    },
  };
}

async function pair(options: { bBehindProxy?: boolean; bPresenceMs?: number } = {}) {
  const ch = `presence-test:${++channel}`;
  let proxy: FaultProxy | undefined;
  if (options.bBehindProxy) {
    const p = await createFaultProxy({ target: { port: redis.port } });
    proxy = p;
    cleanups.push(() => p.close());
  }
  const a = await instance(redis.url, ch);
  const b = await instance(proxy ? `redis://127.0.0.1:${proxy.port}` : redis.url, ch, options.bPresenceMs);
  return { a, b, proxy: proxy as FaultProxy };
}

const presence = (topicId: number, count: number) => (m: Msg) => m.type === 'presence' && m.topicId === topicId && m.count === count;

describe('presence across instances (real Redis)', () => {
  it('counts a topic’s subscribers on both instances, in the ack and in presence messages', async () => {
    const { a, b } = await pair();
    const onA = await a.connect();
    expect(await onA.request({ type: 'subscribe', topicId: 1 })).toMatchObject({ count: 1 });
    await waitFor(() => b.hub.presence(1) === 1, 5_000, 'B to learn A’s count');
    const onB = await b.connect();
    expect(await onB.request({ type: 'subscribe', topicId: 1 })).toMatchObject({ count: 2 });
    await onA.next(presence(1, 2), 0, 'presence 2 on A');
    const mark = onA.messages.length;
    await onB.request({ type: 'unsubscribe', topicId: 1 });
    await onA.next(presence(1, 1), mark, 'presence 1 on A');
    expect([a.hub.presence(1), b.hub.presence(1)]).toEqual([1, 1]);
  });

  it('lets a new instance learn the others’ counts from its hello, without waiting for a refresh', async () => {
    const ch = `presence-test:${++channel}`;
    const a = await instance(redis.url, ch);
    const onA = await a.connect();
    await onA.request({ type: 'subscribe', topicId: 2 });
    // A's clock never moves: only the answer to B's hello can tell B.
    const b = await instance(redis.url, ch);
    await waitFor(() => b.hub.presence(2) === 1, 5_000, 'B to learn A’s count');
    expect(b.hub.stats().presence).toMatchObject({ remotePresence: 1 });
  });

  it('stops counting a closed instance’s subscribers at once (its bye)', async () => {
    // B coalesces presence over 100 ms of a clock that never moves: the sockets its close drops
    // are never announced one by one, so only the bye can tell A.
    const { a, b } = await pair({ bPresenceMs: 100 });
    const [onA, onB] = [await a.connect(), await b.connect()];
    await onA.request({ type: 'subscribe', topicId: 3 });
    await onB.request({ type: 'subscribe', topicId: 3 });
    b.clock.advance(100);
    await onA.next(presence(3, 2), 0, 'presence 2 on A');
    const mark = onA.messages.length;
    await b.close();
    await onA.next(presence(3, 1), mark, 'presence 1 on A after B closed');
    expect(a.hub.stats().presence).toMatchObject({ remotePresence: 0 });
  });

  it('keeps a live instance’s count through refreshes, and drops a silent one’s after three', async () => {
    const { a, b, proxy } = await pair({ bBehindProxy: true });
    const [onA, onB] = [await a.connect(), await b.connect()];
    await onA.request({ type: 'subscribe', topicId: 4 });
    await onB.request({ type: 'subscribe', topicId: 4 });
    await onA.next(presence(4, 2), 0, 'presence 2 on A');
    // Four refreshes with both alive: each of B's re-announcements lands before A's clock moves on.
    for (let i = 0; i < 4; i++) {
      const seen = a.presenceReceived();
      b.clock.advance(REFRESH);
      await waitFor(() => a.presenceReceived() > seen, 5_000, 'B’s refresh at A');
      a.clock.advance(REFRESH);
    }
    expect(a.hub.presence(4)).toBe(2);
    // B goes silent without a bye (a crash, a partition): its count ends three refreshes on.
    await proxy.set({ blackhole: true });
    const mark = onA.messages.length;
    a.clock.advance(REFRESH * 2);
    expect(a.hub.presence(4)).toBe(2);
    a.clock.advance(REFRESH * 2);
    expect(a.hub.presence(4)).toBe(1);
    await onA.next(presence(4, 1), mark, 'presence 1 on A after B went silent');
    await proxy.set({ blackhole: false });
  });
});
