import { join } from 'node:path';
import { Redis } from 'ioredis';
import { createFaultProxy } from 'keel/load';
import { FakeClock } from 'keel/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RedisServer, startRedis } from '../../../../test-support/redis.ts';
import { RedisFanout } from '../../src/live/redis-fanout.ts';
import { bearer, createTestApp, register, waitFor } from '../helpers.ts';
import { LiveClient, type Msg } from './client.ts';

let redis: RedisServer;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(() => redis.close());

/** Two forum instances on one SQLite file and one Redis, both listening. */
async function twoInstances() {
  const a = await createTestApp({ redisUrl: redis.url });
  const b = await createTestApp({ redisUrl: redis.url, databasePath: join(a.dir, 'forum.db') });
  const urls = await Promise.all(
    [a, b].map(async (t) => `${(await t.app.listen({ port: 0, host: '127.0.0.1' })).replace('http', 'ws')}/api/v1/live`),
  );
  const probe = new Redis(redis.url);
  // Both subscribers are in place once Redis counts them.
  await waitFor(async () => ((await probe.pubsub('NUMSUB', 'forum:live')) as [string, number])[1] >= 2, 5_000, 'two subscribers');
  await probe.quit();
  const clients: LiveClient[] = [];
  const open = async (i: 0 | 1, headers?: Record<string, string>) => {
    const c = await LiveClient.open(urls[i]!, headers ? { headers } : {});
    clients.push(c);
    return c;
  };
  return {
    a,
    b,
    open,
    async close() {
      await Promise.all(clients.map((c) => c.close()));
      await b.close(); // b first: a's close removes the directory holding the shared file
      await a.close();
    },
  };
}

const created = (id: number) => (m: Msg) => m.type === 'post.created' && (m.post as { id: number }).id === id;

describe('live fan-out over Redis', () => {
  it('delivers a post committed on instance A exactly once to subscribers on A and on B', async () => {
    const x = await twoInstances();
    try {
      const [onA, onB] = [await x.open(0), await x.open(1)];
      await onA.request({ type: 'subscribe', topicId: 1 });
      await onB.request({ type: 'subscribe', topicId: 1 });
      const { token } = await register(x.a.app, 'writer');
      const res = await x.a.app.inject({
        method: 'POST',
        url: '/api/v1/topics/1/posts',
        headers: bearer(token),
        payload: { body: 'across instances' },
      });
      expect(res.statusCode).toBe(201);
      const id = (res.json() as { id: number }).id;
      await onB.next(created(id), 0, 'the post on B');
      await onA.next(created(id), 0, 'the post on A');
      // A's own message has come back from Redis (and been skipped) once A counts it.
      await waitFor(() => (x.a.app.services.live.stats().fanout?.ownSkipped ?? 0) >= 1, 5_000, 'A to see its own message');
      await Promise.all([onA.request({ type: 'ping' }), onB.request({ type: 'ping' })]);
      expect([onA.count(created(id)), onB.count(created(id))]).toEqual([1, 1]);
      expect(x.b.app.services.live.stats().fanout).toMatchObject({ received: 1, published: 0 });
    } finally {
      await x.close();
    }
  });

  it('counts the subscribers on both instances in a topic’s presence', async () => {
    const x = await twoInstances();
    try {
      const [onA, onB] = [await x.open(0), await x.open(1)];
      await onA.request({ type: 'subscribe', topicId: 4 });
      await waitFor(() => x.b.app.services.live.presence(4) === 1, 5_000, 'B to learn A’s count');
      expect(await onB.request({ type: 'subscribe', topicId: 4 })).toMatchObject({ type: 'subscribed', count: 2 });
      await onA.next((m) => m.type === 'presence' && m.topicId === 4 && m.count === 2, 0, 'presence 2 on A');
    } finally {
      await x.close();
    }
  });

  it('delivers a reply to the me channel of its parent’s author on the other instance', async () => {
    const x = await twoInstances();
    try {
      const bob = await register(x.a.app, 'bob');
      const alice = await register(x.a.app, 'alice');
      const root = await x.a.app.inject({
        method: 'POST',
        url: '/api/v1/topics/2/posts',
        headers: bearer(bob.token),
        payload: { body: 'question' },
      });
      const me = await x.open(1, bearer(bob.token));
      expect(await me.request({ type: 'subscribe', channel: 'me' })).toMatchObject({ type: 'subscribed' });
      const parentId = (root.json() as { id: number }).id;
      await x.a.app.inject({
        method: 'POST',
        url: '/api/v1/topics/2/posts',
        headers: bearer(alice.token),
        payload: { body: 'answer', parentId },
      });
      expect(await me.next((m) => m.type === 'reply')).toMatchObject({
        channel: 'me',
        topicId: 2,
        post: { parentId, author: { username: 'alice' } },
      });
    } finally {
      await x.close();
    }
  });

  it('keeps delivering locally while Redis is down, and fans out again once it is back', async () => {
    const x = await twoInstances();
    try {
      const [onA, onB] = [await x.open(0), await x.open(1)];
      await onA.request({ type: 'subscribe', topicId: 3 });
      await onB.request({ type: 'subscribe', topicId: 3 });
      const { token } = await register(x.a.app, 'writer');
      const post = async (body: string) =>
        (
          (await x.a.app.inject({ method: 'POST', url: '/api/v1/topics/3/posts', headers: bearer(token), payload: { body } })).json() as {
            id: number;
          }
        ).id;
      await redis.stop();
      const during = await post('while redis is down');
      await onA.next(created(during), 0, 'local delivery during the outage');
      // Refused at once (A saw the connection drop) or failed in flight: either way, counted.
      await waitFor(() => (x.a.app.services.live.stats().fanout?.dropped ?? 0) >= 1, 5_000, 'the lost publish to be counted');
      await redis.start();
      // Each instance reconnects and resubscribes by itself; posts reach B again.
      await waitFor(
        async () => {
          const id = await post('after the outage');
          await onA.next(created(id));
          await onB.request({ type: 'ping' });
          return onB.count(created(id)) === 1;
        },
        10_000,
        'fan-out after Redis returns',
      );
      expect(onB.count(created(during))).toBe(0);
    } finally {
      await x.close();
    }
  });
});

describe('an instance started while Redis is down', () => {
  it('reports the fan-out degraded, then joins the channel once Redis is up and fans out both ways', async () => {
    const a = await createTestApp({ redisUrl: redis.url });
    await redis.stop();
    let b: Awaited<ReturnType<typeof createTestApp>> | undefined;
    const clients: LiveClient[] = [];
    const probe = new Redis(redis.url, { lazyConnect: true });
    try {
      b = await createTestApp({ redisUrl: redis.url, databasePath: join(a.dir, 'forum.db') });
      const bApp = b.app;
      expect(bApp.services.live.fanoutState()).toEqual({ subscribed: false, publishing: false });
      const health = async () =>
        (await bApp.inject({ url: '/health' })).json() as { status: string; checks: Record<string, { status: string }> };
      expect(await health()).toMatchObject({ status: 'degraded', checks: { 'live-fanout': { status: 'down' } } });
      // Several failed attempts on each connection: a SUBSCRIBE sent at start has been given up
      // by now (maxRetriesPerRequest), as in a real outage, not kept until Redis returns.
      await waitFor(() => (bApp.services.live.stats().fanout?.connectionErrors ?? 0) >= 8, 10_000, 'failed connection attempts');

      await redis.start();
      await probe.connect();
      // Before the fix B never subscribed: its one SUBSCRIBE had failed while Redis was down.
      await waitFor(async () => ((await probe.pubsub('NUMSUB', 'forum:live')) as [string, number])[1] >= 2, 10_000, 'both subscribers');
      await waitFor(() => bApp.services.live.fanoutState()?.publishing === true, 10_000, "B's publisher");
      await waitFor(async () => (await health()).checks['live-fanout']?.status === 'up', 5_000, 'the fan-out check to pass');

      const [urlA, urlB] = await Promise.all(
        [a, b].map(async (t) => `${(await t.app.listen({ port: 0, host: '127.0.0.1' })).replace('http', 'ws')}/api/v1/live`),
      );
      const [onA, onB] = [await LiveClient.open(urlA!), await LiveClient.open(urlB!)];
      clients.push(onA, onB);
      await onA.request({ type: 'subscribe', topicId: 5 });
      await onB.request({ type: 'subscribe', topicId: 5 });
      const { token } = await register(a.app, 'late');
      const post = async (on: typeof a.app, body: string) => {
        const res = await on.inject({ method: 'POST', url: '/api/v1/topics/5/posts', headers: bearer(token), payload: { body } });
        return (res.json() as { id: number }).id;
      };
      const fromA = await post(a.app, 'from A');
      await onB.next(created(fromA), 0, "A's post on B");
      const fromB = await post(bApp, 'from B');
      await onA.next(created(fromB), 0, "B's post on A");
    } finally {
      probe.disconnect();
      await Promise.all(clients.map((c) => c.close()));
      if (!redis.running) await redis.start();
      await b?.close(); // b first: a's close removes the directory holding the shared file
      await a.close();
    }
  });
});

/**
 * Instance A reaches Redis through a keel chaos proxy, on fake time for its deadlines and
 * probes; instance B is connected directly. The proxy's blackhole keeps connections open and
 * drops every byte, so nothing ever answers nor closes: only A's deadlines notice.
 */
async function behindChaos() {
  const proxy = await createFaultProxy({ target: { port: redis.port } });
  const clock = new FakeClock();
  const options = { maxInFlight: 10, timeoutMs: 1_000, probeMs: 5_000, clock };
  const atA: string[] = [];
  const atB: string[] = [];
  const a = new RedisFanout({ url: `redis://127.0.0.1:${proxy.port}`, ...options }, (_t, p) => atA.push(p));
  const b = new RedisFanout({ url: redis.url }, (_t, p) => atB.push(p));
  await Promise.all([a.ready(), b.ready()]);
  return {
    proxy,
    clock,
    a,
    b,
    atA,
    atB,
    /** Blackholes Redis and publishes `maxInFlight` events into it; none can be answered. */
    async swallow() {
      await proxy.set({ blackhole: true });
      for (let i = 0; i < options.maxInFlight; i++) a.publish('t1', `{"lost":${i}}`);
    },
    /**
     * Lifts the blackhole and waits for `check`. Fake time moves only while it fails: a
     * reconnect that raced the lift sent its first command into the blackhole, and that one
     * has to time out too before the next connection works.
     */
    async recover(check: () => boolean, what: string) {
      await proxy.set({ blackhole: false });
      await waitFor(
        () => {
          if (check()) return true;
          clock.advance(options.timeoutMs);
          return false;
        },
        10_000,
        what,
      );
    },
    async close() {
      await Promise.all([a.close(), b.close()]);
      await proxy.close();
    },
  };
}

describe('RedisFanout against a Redis that stops answering (keel chaos blackhole)', () => {
  it('keeps both connections while their probes are answered', async () => {
    const x = await behindChaos();
    try {
      x.clock.advance(5_000);
      // The subscriber's PING is answered too, in subscriber mode.
      await waitFor(() => x.a.stats().probesAnswered === 2, 5_000, 'both probes answered');
      x.clock.advance(1_000);
      expect(x.a.stats()).toMatchObject({ timeouts: 0, subscribed: 1 });
      expect(x.a.state()).toEqual({ subscribed: true, publishing: true });
    } finally {
      await x.close();
    }
  });

  it('gives back the in-flight slot of each publish that gets no reply within timeoutMs', async () => {
    const x = await behindChaos();
    try {
      await x.swallow();
      expect(x.a.stats()).toMatchObject({ inFlight: 10 });
      x.clock.advance(999);
      expect(x.a.stats()).toMatchObject({ inFlight: 10 });
      x.clock.advance(1);
      expect(x.a.stats()).toMatchObject({ inFlight: 0, dropped: 10, timeouts: 10 });
    } finally {
      await x.close();
    }
  });

  it('reports publishing false from a publish timeout until the reconnected publisher answers', async () => {
    const x = await behindChaos();
    try {
      await x.swallow();
      expect(x.a.state().publishing).toBe(true);
      x.clock.advance(1_000);
      expect(x.a.state()).toEqual({ subscribed: true, publishing: false });
      // The timed-out connection was dropped; its successor answers a PING before it counts.
      await x.recover(() => x.a.state().publishing, 'the publisher to answer again');
    } finally {
      await x.close();
    }
  });

  it('fans out again after a blackhole swallowed maxInFlight publishes', async () => {
    const x = await behindChaos();
    try {
      await x.swallow();
      x.clock.advance(1_000);
      await x.recover(() => x.a.state().publishing, 'the publisher to answer again');
      x.a.publish('t1', '{"after":1}');
      // Before the fix every slot stayed taken for good and this publish was dropped.
      await waitFor(() => x.atB.includes('{"after":1}'), 10_000, 'the event on B');
    } finally {
      await x.close();
    }
  });

  it('reports not subscribed when a probe of the subscriber gets no reply, then resubscribes on a new connection', async () => {
    const x = await behindChaos();
    try {
      await x.proxy.set({ blackhole: true });
      x.clock.advance(5_000); // the probe PINGs go out into the blackhole
      x.clock.advance(1_000);
      expect(x.a.state().subscribed).toBe(false);
      await x.recover(() => x.a.state().subscribed, 'A to resubscribe');
      x.b.publish('t2', '{"from":"B"}');
      await waitFor(() => x.atA.includes('{"from":"B"}'), 10_000, "B's event on A");
    } finally {
      await x.close();
    }
  });
});

describe('RedisFanout options', () => {
  it('names a bad option in a TypeError', () => {
    expect(() => new RedisFanout({ url: 'http://nope' }, () => {})).toThrow(/"url"/);
    expect(() => new RedisFanout({ url: redis.url, maxInFlight: 0 }, () => {})).toThrow(/"maxInFlight"/);
    expect(() => new RedisFanout({ url: redis.url, timeoutMs: 0.5 }, () => {})).toThrow(/"timeoutMs"/);
    expect(() => new RedisFanout({ url: redis.url, probeMs: -1 }, () => {})).toThrow(/"probeMs"/);
  });
});
