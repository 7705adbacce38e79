import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TieredCache } from '../../src/cache/index.ts';
import { CHANNELS } from '../../src/channels.ts';
import { createFaultProxy } from '../../src/load/chaos.ts';
import { FakeClock, flushMicrotasks } from '../../src/testing/fake-clock.ts';
import { busMessages, connected, gatedLoader } from './helpers.ts';
import { type RedisServer, startRedis } from './redis-fixture.ts';

let redis: RedisServer;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(() => redis.close());

const pause = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
let ns = 0;
const namespace = () => `bus:${process.pid}:${++ns}`;

/** Polls every 5 ms; resolves the elapsed ms once `check` holds, or -1 after `ms`. */
async function within(ms: number, check: () => Promise<boolean>): Promise<number> {
  const start = Date.now();
  while (Date.now() - start <= ms) {
    if (await check()) return Date.now() - start;
    await pause(5);
  }
  return -1;
}

describe('bus: cross-instance L1 invalidation', () => {
  it("drops another instance's L1 entries under an invalidated tag within 100 ms", async () => {
    const n = namespace();
    await using a = new TieredCache({ namespace: n, l2: { redis: redis.url } });
    await using b = new TieredCache({ namespace: n, l2: { redis: redis.url } });
    expect(await a.ready()).toBe(true);
    expect(await b.ready()).toBe(true);
    await b.getOrSet('topic:1', async () => 'v1', { tags: ['topic:1'] });
    let bCalls = 0;
    // Served from b's own L1 now.
    expect(await b.getOrSet('topic:1', async () => `v${++bCalls}`, { tags: ['topic:1'] })).toBe('v1');
    const lags: number[] = [];
    const onLag = (m: unknown) => lags.push((m as { lagMs: number }).lagMs);
    subscribe(CHANNELS.cache.busLag, onLag);
    try {
      await a.invalidateTags(['topic:1']);
      const ms = await within(100, async () => (await b.getOrSet('topic:1', async () => 'v2', { tags: ['topic:1'] })) === 'v2');
      expect(ms).toBeGreaterThanOrEqual(0);
    } finally {
      unsubscribe(CHANNELS.cache.busLag, onLag);
    }
    expect(lags.length).toBeGreaterThan(0);
  });

  it("drops another instance's L1 copy when a key is set or deleted", async () => {
    const n = namespace();
    await using a = new TieredCache({ namespace: n, l2: { redis: redis.url } });
    await using b = new TieredCache({ namespace: n, l2: { redis: redis.url } });
    await a.ready();
    await b.ready();
    await a.set('k', 'one');
    expect(await b.get('k')).toBe('one');
    await a.set('k', 'two');
    expect(await within(100, async () => (await b.get('k')) === 'two')).toBeGreaterThanOrEqual(0);
    await a.delete('k');
    expect(await within(100, async () => (await b.get('k')) === undefined)).toBeGreaterThanOrEqual(0);
  });

  it("clears every instance's L1 on clear()", async () => {
    const n = namespace();
    await using a = new TieredCache({ namespace: n, l2: { redis: redis.url } });
    await using b = new TieredCache({ namespace: n, l2: { redis: redis.url } });
    await a.ready();
    await b.ready();
    await b.set('x', 1);
    await a.clear();
    expect(await within(100, async () => (await b.get('x')) === undefined)).toBeGreaterThanOrEqual(0);
  });

  it('clears L1 when the bus reconnects, since messages may have been missed', async () => {
    const n = namespace();
    await using a = new TieredCache({ namespace: n, l2: { redis: redis.url } });
    expect(await a.ready()).toBe(true);
    await a.set('k', 'v');
    await redis.stop();
    try {
      // L1 still answers while Redis is down.
      expect(await a.get('k')).toBe('v');
    } finally {
      await redis.start();
    }
    expect(await a.ready(15_000)).toBe(true);
    expect(await within(5_000, async () => a.stats().l1Entries === 0)).toBeGreaterThanOrEqual(0);
  });

  it('notices a bus that silently drops messages (blackhole) and clears L1 once it heals', async () => {
    const proxy = await createFaultProxy({ target: { port: redis.port } });
    try {
      const n = namespace();
      await using a = new TieredCache({ namespace: n, l2: { redis: redis.url } });
      await using b = new TieredCache({ namespace: n, l2: { redis: `redis://127.0.0.1:${proxy.port}`, timeoutMs: 100 } });
      expect(await a.ready()).toBe(true);
      expect(await b.ready()).toBe(true);
      await b.set('k', 'old', { tags: ['t'] });
      expect(b.peek('k')).toBe('old');
      await proxy.set({ blackhole: true });
      await a.invalidateTags(['t']); // b never hears of it
      await pause(2_500); // longer than a heartbeat: b's PING goes unanswered
      expect(b.peek('k')).toBe('old'); // the documented window: L1 until the bus recovers
      await proxy.reset();
      expect(await within(10_000, async () => b.peek('k') === undefined)).toBeGreaterThanOrEqual(0);
      expect(await b.get('k')).toBeUndefined();
    } finally {
      await proxy.close();
    }
  });

  it("clears L1 when a sender's sequence shows a gap (messages lost)", async () => {
    const n = namespace();
    await using a = new TieredCache({ namespace: n, l2: { redis: redis.url } });
    await using b = new TieredCache({ namespace: n, l2: { redis: redis.url } });
    await a.ready();
    await b.ready();
    await a.set('x', 1);
    await b.set('mine', 'kept?');
    const { Redis } = await import('ioredis');
    const raw = new Redis(redis.url);
    try {
      // Replay a message from a's id with a skipped sequence number, as if one was lost.
      const seen: string[] = [];
      const sub = new Redis(redis.url);
      try {
        await sub.subscribe(`${n}:bus`);
        sub.on('message', (_c, m) => seen.push(m));
        await a.set('y', 2);
        expect(await within(1_000, async () => seen.length > 0)).toBeGreaterThanOrEqual(0);
        const last = JSON.parse(seen[seen.length - 1] as string);
        await raw.publish(`${n}:bus`, JSON.stringify({ ...last, q: last.q + 2, k: ['unrelated'] }));
      } finally {
        sub.disconnect();
      }
      expect(await within(1_000, async () => b.peek('mine') === undefined)).toBeGreaterThanOrEqual(0);
    } finally {
      raw.disconnect();
    }
  });

  it('detaches a load in flight when another instance deletes its key: its older result is stored nowhere', async () => {
    const n = namespace();
    await using a = new TieredCache({ name: 'a', namespace: n, l2: { redis: redis.url } });
    await using b = new TieredCache({ name: 'b', namespace: n, l2: { redis: redis.url } });
    expect(await a.ready()).toBe(true);
    expect(await b.ready()).toBe(true);
    const gate = gatedLoader<string>();
    const pending = b.getOrSet('k', gate.load);
    await gate.started; // b read the database before the write below
    const heard = busMessages('b');
    await a.delete('k');
    expect(await heard).toBe(true);
    gate.resolve('before the delete');
    expect(await pending).toBe('before the delete'); // its caller asked before the delete
    expect(b.peek('k')).toBeUndefined();
    expect(await b.get('k')).toBeUndefined();
    expect(await b.getOrSet('k', async () => 'after the delete')).toBe('after the delete');
  });

  it('does not put back the stale value of a failed refresh once another instance deleted the key', async () => {
    const n = namespace();
    const clock = new FakeClock();
    const o = { namespace: n, l2: { redis: redis.url }, ttlMs: 100, graceMs: 300_000, clock };
    await using a = new TieredCache({ ...o, name: 'a' });
    await using b = new TieredCache({ ...o, name: 'b' });
    expect(await connected(a)).toBe(true);
    expect(await connected(b)).toBe(true);
    await b.getOrSet('session', async () => 'logged in');
    clock.advance(150); // stale, within grace
    const refresh = gatedLoader<string>();
    expect(await b.getOrSet('session', refresh.load)).toBe('logged in'); // stale at once, refresh in the background
    await refresh.started;
    const heard = busMessages('b');
    await a.delete('session'); // logged out on a
    expect(await heard).toBe(true);
    refresh.reject(new Error('db busy'));
    await flushMicrotasks();
    expect(await b.getOrSet('session', async () => 'logged out')).toBe('logged out');
  });

  it('detaches loads in flight when a sequence gap shows messages were lost', async () => {
    const n = namespace();
    await using b = new TieredCache({ name: 'b', namespace: n, l2: { redis: redis.url } });
    expect(await b.ready()).toBe(true);
    const { Redis } = await import('ioredis');
    const raw = new Redis(redis.url);
    try {
      const gate = gatedLoader<string>();
      const pending = b.getOrSet('k', gate.load);
      await gate.started;
      // Another sender's messages 1 and 3: number 2, which might have been about 'k', was lost.
      const heard = busMessages('b', 2);
      for (const q of [1, 3]) await raw.publish(`${n}:bus`, JSON.stringify({ i: 'other', q, s: Date.now(), t: 1, k: ['unrelated'] }));
      expect(await heard).toBe(true);
      gate.resolve('maybe outdated');
      expect(await pending).toBe('maybe outdated');
      expect(b.peek('k')).toBeUndefined();
    } finally {
      raw.disconnect();
    }
  });

  it("keeps other instances' L1 when Redis refuses a write: the refused write's message is still sent", async () => {
    const n = namespace();
    // a has no bus: b does not hear of its delete, so b's load of the key is refused by Redis.
    await using a = new TieredCache({ name: 'a', namespace: n, l2: { redis: redis.url }, bus: false });
    await using b = new TieredCache({ name: 'b', namespace: n, l2: { redis: redis.url } });
    await using c = new TieredCache({ name: 'c', namespace: n, l2: { redis: redis.url } });
    for (const x of [a, b, c]) expect(await x.ready()).toBe(true);
    await c.getOrSet('hot', async () => 'kept');
    await c.getOrSet('other', async () => 'old');
    const first = busMessages('c');
    await b.set('warm', 0); // c has seen b's sequence from here on
    expect(await first).toBe(true);
    const gate = gatedLoader<string>();
    const pending = b.getOrSet('k', gate.load);
    await gate.started;
    await a.delete('k');
    const refused = busMessages('c');
    gate.resolve('before the delete');
    await pending;
    expect(await refused).toBe(true);
    const next = busMessages('c');
    await b.set('other', 'new');
    expect(await next).toBe(true);
    expect(c.peek('other')).toBeUndefined(); // the message's key is dropped ...
    expect(c.peek('hot')).toBe('kept'); // ... and nothing else: no gap, no clear
  });
});
