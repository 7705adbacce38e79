import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TieredCache } from '../../../src/cache/index.ts';
import { CHANNELS } from '../../../src/channels.ts';
import { createFaultProxy } from '../../../src/load/chaos.ts';
import { type RedisServer, startRedis } from '../redis-fixture.ts';

let redis: RedisServer;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(() => redis.close());

const pause = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `check` every 50 ms until true or `ms` passed; returns the last result. */
async function eventually(check: () => Promise<boolean> | boolean, ms = 15_000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await pause(50);
  }
  return check();
}

let ns = 0;
const namespace = () => `test:${process.pid}:${++ns}`;

describe('L2 (Redis)', () => {
  it('serves another instance from L2, without calling its loader', async () => {
    const n = namespace();
    await using a = new TieredCache({ namespace: n, l2: { redis: redis.url } });
    await using b = new TieredCache({ namespace: n, l2: { redis: redis.url } });
    expect(await a.ready()).toBe(true);
    expect(await b.ready()).toBe(true);
    await a.getOrSet('k', async () => ({ big: 'x'.repeat(10_000) }), { tags: ['t'] });
    let calls = 0;
    const hits: string[] = [];
    const onHit = (m: unknown) => hits.push((m as { tier: string }).tier);
    subscribe(CHANNELS.cache.hit, onHit);
    try {
      const v = await b.getOrSet('k', async () => {
        calls++;
        return { big: '' };
      });
      expect(v).toEqual({ big: 'x'.repeat(10_000) });
    } finally {
      unsubscribe(CHANNELS.cache.hit, onHit);
    }
    expect(calls).toBe(0);
    expect(hits).toEqual(['l2']);
  });

  it('stores large values compressed and reads them back', async () => {
    const n = namespace();
    await using a = new TieredCache({ namespace: n, l2: { redis: redis.url }, compressThreshold: 100 });
    await a.ready();
    await a.set('big', 'y'.repeat(50_000));
    const raw = new Redis(redis.url);
    try {
      const stored = await raw.getBuffer(`${n}:v:big`);
      expect(stored?.byteLength).toBeLessThan(5_000);
    } finally {
      raw.disconnect();
    }
    await using b = new TieredCache({ namespace: n, l2: { redis: redis.url } });
    await b.ready();
    expect(await b.get('big')).toBe('y'.repeat(50_000));
  });

  it('hides L2 entries under a tag invalidated by another instance', async () => {
    const n = namespace();
    await using a = new TieredCache({ namespace: n, l2: { redis: redis.url }, bus: false });
    await using b = new TieredCache({ namespace: n, l2: { redis: redis.url }, bus: false, l1: { maxEntries: 1 } });
    await a.ready();
    await b.ready();
    await a.set('k', 1, { tags: ['forum:1'] });
    await b.invalidateTags(['forum:1']);
    await using c = new TieredCache({ namespace: n, l2: { redis: redis.url }, bus: false });
    await c.ready();
    expect(await c.get('k')).toBeUndefined();
  });

  it('keeps answering from L1 and the loader while Redis is killed, and uses L2 again after it restarts', async () => {
    const n = namespace();
    await using a = new TieredCache({ namespace: n, l2: { redis: redis.url, timeoutMs: 100 } });
    expect(await a.ready()).toBe(true);
    await a.set('warm', 'w');
    await redis.stop();
    try {
      const started = Date.now();
      const calls = Array.from({ length: 200 }, (_, i) =>
        i % 2 === 0 ? a.getOrSet(`cold:${i}`, async () => i) : i % 3 === 0 ? a.get('warm') : a.set(`s:${i}`, i),
      );
      const results = await Promise.allSettled(calls);
      expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
      // Generous: the L2 timeout is 100 ms; nothing may wait on a reconnect.
      expect(Date.now() - started).toBeLessThan(5_000);
      expect(await a.getOrSet('cold:0', async () => -1)).toBe(0);
      expect(await eventually(() => a.stats().l2 === 'down', 5_000)).toBe(true);
    } finally {
      await redis.start();
    }
    await using b = new TieredCache({ namespace: n, l2: { redis: redis.url }, l1: { maxEntries: 1 } });
    expect(await b.ready()).toBe(true);
    // a reconnects and its breaker half-opens by itself; a write from a reaches b through L2.
    const back = await eventually(async () => {
      await a.set('after', 'restart');
      return (await b.get('after')) === 'restart';
    });
    expect(back).toBe(true);
    expect(a.stats().l2).toBe('up');
  });

  it('bounds every call by the L2 timeout when Redis stops answering (blackhole)', async () => {
    const proxy = await createFaultProxy({ target: { port: redis.port } });
    try {
      await using a = new TieredCache({ namespace: namespace(), l2: { redis: `redis://127.0.0.1:${proxy.port}`, timeoutMs: 100 } });
      expect(await a.ready()).toBe(true);
      await proxy.set({ blackhole: true });
      const errors: unknown[] = [];
      const onErr = (m: unknown) => errors.push(m);
      subscribe(CHANNELS.cache.l2Error, onErr);
      try {
        const results = await Promise.allSettled(Array.from({ length: 50 }, (_, i) => a.getOrSet(`k${i}`, async () => i)));
        expect(results.every((r) => r.status === 'fulfilled')).toBe(true);
        expect((results as PromiseFulfilledResult<number>[]).map((r) => r.value)).toEqual(Array.from({ length: 50 }, (_, i) => i));
      } finally {
        unsubscribe(CHANNELS.cache.l2Error, onErr);
      }
      expect(errors.length).toBeGreaterThan(0);
    } finally {
      await proxy.close();
    }
  });

  it('works L1-only when Redis was never reachable', async () => {
    await using a = new TieredCache({ namespace: namespace(), l2: { redis: 'redis://127.0.0.1:1', timeoutMs: 50 } });
    expect(await a.getOrSet('k', async () => 'v')).toBe('v');
    expect(await a.get('k')).toBe('v');
    expect(a.stats().l2).toBe('down');
  });

  it('leaves a client passed in open, and closes only its own connections', async () => {
    const client = new Redis(redis.url, { enableOfflineQueue: false });
    try {
      await new Promise((r) => client.once('ready', r));
      const a = new TieredCache({ namespace: namespace(), l2: { redis: client } });
      await a.ready();
      await a.set('k', 1);
      await a.close();
      expect(client.status).toBe('ready');
      expect(await client.ping()).toBe('PONG');
    } finally {
      client.disconnect();
    }
  });

  it('replays an invalidation Redis missed once it answers again', async () => {
    const proxy = await createFaultProxy({ target: { port: redis.port } });
    try {
      const n = namespace();
      await using a = new TieredCache({ namespace: n, l2: { redis: `redis://127.0.0.1:${proxy.port}`, timeoutMs: 100 }, bus: false });
      expect(await a.ready()).toBe(true);
      await a.set('k', 'old', { tags: ['t'] });
      await proxy.set({ blackhole: true });
      await a.invalidateTags(['t']);
      expect(a.stats().pendingInvalidations).toBe(1);
      await proxy.reset();
      // Traffic lets the breaker probe; the first success replays the invalidation.
      const replayed = await eventually(async () => {
        await a.get('probe');
        return a.stats().pendingInvalidations === 0;
      });
      expect(replayed).toBe(true);
      await using b = new TieredCache({ namespace: n, l2: { redis: redis.url }, bus: false });
      await b.ready();
      expect(await b.get('k')).toBeUndefined();
    } finally {
      await proxy.close();
    }
  });

  it('leaves no socket or timer behind after close', async () => {
    const before = process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap' || r === 'Timeout').length;
    const a = new TieredCache({ namespace: namespace(), l2: { redis: redis.url }, lock: true });
    await a.ready();
    await a.getOrSet('k', async () => 1, { tags: ['x'] });
    await a.invalidateTags(['x']);
    await a.close();
    const settled = await eventually(
      () => process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap' || r === 'Timeout').length <= before,
      2_000,
    );
    expect(settled).toBe(true);
  });

  it('reloads on an eager refresh even though L2 still holds the same value', async () => {
    await using a = new TieredCache({ namespace: namespace(), l2: { redis: redis.url }, ttlMs: 400, eagerRefresh: 0.5 });
    await a.ready();
    let n = 0;
    const load = async () => ++n;
    expect(await a.getOrSet('k', load)).toBe(1);
    await pause(250); // past 50 % of the TTL, still fresh
    expect(await a.getOrSet('k', load)).toBe(1);
    expect(await eventually(async () => n === 2, 2_000)).toBe(true);
    expect(await eventually(async () => (await a.getOrSet('k', load)) === 2, 2_000)).toBe(true);
  });
});

describe('L2-only cache (l1: false)', () => {
  it('keeps nothing in memory: peek misses and stats count no L1 entries', async () => {
    await using c = new TieredCache({ namespace: namespace(), l1: false, l2: { redis: redis.url } });
    expect(await c.ready()).toBe(true);
    await c.set('k', 1);
    expect(c.peek('k')).toBeUndefined();
    expect(c.stats().l1Entries).toBe(0);
  });

  it('answers getOrSet from Redis without calling the loader', async () => {
    await using c = new TieredCache({ namespace: namespace(), l1: false, l2: { redis: redis.url } });
    expect(await c.ready()).toBe(true);
    await c.set('k', { v: 1 });
    expect(await c.getOrSet('k', async () => ({ v: 2 }))).toEqual({ v: 1 });
  });

  it("sees another instance's invalidation on the next read, with no bus", async () => {
    const n = namespace();
    await using a = new TieredCache({ namespace: n, l1: false, l2: { redis: redis.url } });
    await using b = new TieredCache({ namespace: n, l1: false, l2: { redis: redis.url } });
    expect(await a.ready()).toBe(true);
    expect(await b.ready()).toBe(true);
    await a.set('k', 1, { tags: ['t'] });
    expect(await b.get('k')).toBe(1);
    await a.invalidateTags(['t']);
    expect(await b.get('k')).toBeUndefined();
  });
});
