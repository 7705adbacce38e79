import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isCacheTimeoutError, TieredCache } from '../../../src/cache/index.ts';
import { CHANNELS } from '../../../src/channels.ts';
import { createFaultProxy } from '../../../src/load/chaos.ts';
import { FakeClock, flushMicrotasks } from '../../../src/testing/fake-clock.ts';
import { connected, gatedLoader, settled } from '../helpers.ts';
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

describe('L2 writes and deletes', () => {
  it('drops its own L1 copy when Redis refuses its write (a delete it did not hear of)', async () => {
    const n = namespace();
    await using a = new TieredCache({ namespace: n, l2: { redis: redis.url }, bus: false });
    await using b = new TieredCache({ namespace: n, l2: { redis: redis.url }, bus: false });
    expect(await a.ready()).toBe(true);
    expect(await b.ready()).toBe(true);
    const gate = gatedLoader<string>();
    const pending = b.getOrSet('k', gate.load);
    await gate.started;
    await a.delete('k');
    gate.resolve('before the delete');
    expect(await pending).toBe('before the delete');
    expect(b.peek('k')).toBeUndefined();
    expect(await b.get('k')).toBeUndefined();
  });

  it("keeps another instance's set() in Redis over a load that began before it", async () => {
    const n = namespace();
    await using a = new TieredCache({ namespace: n, l2: { redis: redis.url }, bus: false });
    await using b = new TieredCache({ namespace: n, l2: { redis: redis.url }, bus: false });
    expect(await a.ready()).toBe(true);
    expect(await b.ready()).toBe(true);
    const gate = gatedLoader<string>();
    const pending = b.getOrSet('user', gate.load);
    await gate.started; // b read the database ...
    await a.set('user', 'new'); // ... before a wrote it through
    gate.resolve('old');
    expect(await pending).toBe('old');
    await using c = new TieredCache({ namespace: n, l2: { redis: redis.url }, bus: false });
    expect(await c.ready()).toBe(true);
    expect(await c.get('user')).toBe('new');
    expect(await b.get('user')).toBe('new');
  });

  it('does not take the old value back into L1 while Redis has not taken its delete', async () => {
    const client = new Redis(redis.url, { enableOfflineQueue: false });
    try {
      await new Promise((r) => client.once('ready', r));
      // Redis misses the delete (every script fails) but still answers reads: a timeout, a blip.
      let scriptsFail = false;
      const call = client.callBuffer.bind(client) as (command: string, args: unknown[]) => Promise<unknown>;
      (client as unknown as { callBuffer: typeof call }).callBuffer = (command, args) =>
        scriptsFail && command.startsWith('EVAL') ? Promise.reject(new Error('lost')) : call(command, args);
      await using c = new TieredCache({ namespace: namespace(), l2: { redis: client }, bus: false });
      await c.set('session', 'logged in');
      scriptsFail = true;
      await c.delete('session');
      expect(c.stats().pendingInvalidations).toBe(1);
      expect(await c.get('session')).toBeUndefined();
      expect(c.peek('session')).toBeUndefined();
      expect(await c.getOrSet('session', async () => 'logged out')).toBe('logged out');
    } finally {
      client.disconnect();
    }
  });

  it('removes a deleted key from the index of each of its tags', async () => {
    const n = namespace();
    await using c = new TieredCache({ namespace: n, l2: { redis: redis.url }, bus: false });
    expect(await c.ready()).toBe(true);
    for (const k of ['a', 'b', 'c']) await c.set(k, k, { tags: ['t', 'u'] });
    await c.delete('b');
    const raw = new Redis(redis.url);
    try {
      expect(await raw.smembers(`${n}:i:t`)).toEqual(expect.arrayContaining([`${n}:v:a`, `${n}:v:c`]));
      expect(await raw.scard(`${n}:i:t`)).toBe(2);
      expect(await raw.scard(`${n}:i:u`)).toBe(2);
    } finally {
      raw.disconnect();
    }
  });

  it('prunes expired keys from the index of a tag that keeps being written', async () => {
    const n = namespace();
    await using c = new TieredCache({ namespace: n, l2: { redis: redis.url }, bus: false });
    expect(await c.ready()).toBe(true);
    const raw = new Redis(redis.url);
    try {
      // A long-lived key keeps the index alive (as a busy tag's writes do) past the short ones.
      await c.set('long', 0, { tags: ['t'] });
      for (let i = 0; i < 300; i++) await c.set(`short:${i}`, i, { tags: ['t'], ttlMs: 1 });
      expect(await eventually(async () => (await raw.exists(`${n}:v:short:299`)) === 0, 5_000)).toBe(true);
      for (let i = 0; i < 300; i++) await c.set(`long:${i}`, i, { tags: ['t'] });
      // Without pruning: 601 members. Each write checks 3 random members (a simulation of
      // these writes ended at 301–315 members in 2,000 runs), so 400 has a wide margin.
      expect(await raw.scard(`${n}:i:t`)).toBeLessThan(400);
    } finally {
      raw.disconnect();
    }
  });
});

describe('L2 reads: freshness', () => {
  it('refreshes eagerly an entry read from L2 once it is read past its eager point', async () => {
    const n = namespace();
    const clock = new FakeClock();
    const o = { namespace: n, l2: { redis: redis.url }, bus: false, ttlMs: 1_000, eagerRefresh: 0.5, clock };
    await using a = new TieredCache(o);
    await using b = new TieredCache(o);
    expect(await connected(a)).toBe(true);
    expect(await connected(b)).toBe(true);
    let n1 = 0;
    const load = async () => `v${++n1}`;
    expect(await a.getOrSet('hot', load)).toBe('v1');
    expect(await b.getOrSet('hot', load)).toBe('v1'); // from L2
    clock.advance(600); // past 50 % of the TTL, still fresh
    expect(await b.getOrSet('hot', load)).toBe('v1'); // served at once ...
    expect(await eventually(() => n1 === 2)).toBe(true); // ... and refreshed in the background
    expect(await eventually(async () => (await b.getOrSet('hot', load)) === 'v2')).toBe(true);
  });

  it('serves a stale value found in L2 at once and refreshes it in the background (l1: false)', async () => {
    const clock = new FakeClock();
    await using c = new TieredCache({ namespace: namespace(), l1: false, l2: { redis: redis.url }, ttlMs: 100, graceMs: 60_000, clock });
    expect(await connected(c)).toBe(true);
    await c.set('k', 'stale');
    clock.advance(150);
    const gate = gatedLoader<string>();
    expect(await settled(c.getOrSet('k', gate.load))).toBe('stale');
    await gate.started;
    gate.resolve('fresh');
    expect(await eventually(async () => (await c.get('k')) === 'fresh')).toBe(true);
  });

  it('serves a stale value found in L2 at once on an instance with a cold L1', async () => {
    const n = namespace();
    const clock = new FakeClock();
    const o = { namespace: n, l2: { redis: redis.url }, bus: false, ttlMs: 100, graceMs: 60_000, clock };
    await using a = new TieredCache(o);
    await using b = new TieredCache(o);
    expect(await connected(a)).toBe(true);
    expect(await connected(b)).toBe(true);
    await a.set('k', 'stale');
    clock.advance(150);
    expect(await settled(b.getOrSet('k', () => new Promise<string>(() => {})))).toBe('stale');
  });

  it('waits up to the soft timeout for a fresh value before serving a stale one found in L2', async () => {
    const clock = new FakeClock();
    await using c = new TieredCache({
      namespace: namespace(),
      l1: false,
      l2: { redis: redis.url },
      ttlMs: 100,
      graceMs: 60_000,
      softTimeoutMs: 100,
      clock,
    });
    expect(await connected(c)).toBe(true);
    await c.set('k', 'stale');
    clock.advance(150);
    const gate = gatedLoader<string>();
    let served: unknown = 'nothing yet';
    const pending = c.getOrSet('k', gate.load).then((v) => {
      served = v;
    });
    await gate.started; // the stale value was found, and the load began
    await flushMicrotasks();
    expect(served).toBe('nothing yet');
    await clock.advanceAsync(100);
    await settled(pending);
    expect(served).toBe('stale');
  });

  it('bounds the L2 lookup by a hard timeout shorter than the L2 timeout', async () => {
    const clock = new FakeClock();
    await using c = new TieredCache({ namespace: namespace(), l2: { redis: redis.url, timeoutMs: 400 }, hardTimeoutMs: 100, clock });
    expect(await connected(c)).toBe(true);
    const raw = new Redis(redis.url);
    try {
      await raw.call('CLIENT', 'PAUSE', '500', 'ALL'); // Redis answers nothing for 0.5 s
      const outcome = c.getOrSet('k', () => new Promise<string>(() => {}));
      await clock.advanceAsync(100);
      expect(isCacheTimeoutError(await settled(outcome))).toBe(true);
    } finally {
      raw.disconnect();
    }
  });
});
