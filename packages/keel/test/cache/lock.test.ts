import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isCacheClosedError, TieredCache } from '../../src/cache/index.ts';
import { FakeClock } from '../../src/testing/fake-clock.ts';
import { connected, gatedLoader, pause, unhandledDuring } from './helpers.ts';
import { type RedisServer, startRedis } from './redis-fixture.ts';

let redis: RedisServer;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(() => redis.close());

let ns = 0;
const namespace = () => `lock:${process.pid}:${++ns}`;

describe('cross-instance single flight (Redis lease)', () => {
  it('makes at most 2 loader calls for 5,000 concurrent getOrSet calls across 4 instances', async () => {
    const n = namespace();
    const caches = Array.from(
      { length: 4 },
      () => new TieredCache({ namespace: n, l2: { redis: redis.url }, lock: { leaseMs: 2_000, pollMs: 10 } }),
    );
    try {
      for (const c of caches) expect(await c.ready()).toBe(true);
      let calls = 0;
      const loader = async () => {
        calls++;
        await new Promise((r) => setTimeout(r, 50));
        return { topics: [1, 2, 3] };
      };
      const results = await Promise.all(Array.from({ length: 5_000 }, (_, i) => (caches[i % 4] as TieredCache).getOrSet('cold', loader)));
      expect(calls).toBeLessThanOrEqual(2);
      expect(calls).toBeGreaterThanOrEqual(1);
      expect(results.every((r) => r.topics.length === 3)).toBe(true);
    } finally {
      await Promise.all(caches.map((c) => c.close()));
    }
  });

  it('loads anyway when the lease holder never writes, after waiting at most waitMs', async () => {
    const n = namespace();
    await using a = new TieredCache({ namespace: n, l2: { redis: redis.url }, lock: { leaseMs: 5_000, waitMs: 100, pollMs: 10 } });
    await using b = new TieredCache({ namespace: n, l2: { redis: redis.url }, lock: { leaseMs: 5_000, waitMs: 100, pollMs: 10 } });
    await a.ready();
    await b.ready();
    // a takes the lease and hangs until its hard timeout.
    const stuck = a.getOrSet('k', () => new Promise<string>(() => {}), { hardTimeoutMs: 2_000 }).catch(() => 'timed out');
    await new Promise((r) => setTimeout(r, 30));
    expect(await b.getOrSet('k', async () => 'b loaded')).toBe('b loaded');
    await a.close();
    expect(await stuck).toBe('timed out');
  });

  it('loads locally at once when Redis cannot be asked for the lease', async () => {
    await using a = new TieredCache({ namespace: namespace(), l2: { redis: 'redis://127.0.0.1:1', timeoutMs: 50 }, lock: true });
    expect(await a.getOrSet('k', async () => 'local')).toBe('local');
  });

  it('loads itself within the hard timeout when a dead holder left a lease longer than that', async () => {
    const n = namespace();
    const raw = new Redis(redis.url);
    const clock = new FakeClock();
    try {
      // A holder that crashed mid-load: its lease outlives this caller's whole hard timeout.
      await raw.set(`${n}:l:k`, 'crashed holder', 'PX', 60_000);
      await using c = new TieredCache({
        namespace: n,
        l2: { redis: redis.url },
        lock: { leaseMs: 5_000, pollMs: 250 },
        hardTimeoutMs: 1_000,
        clock,
      });
      expect(await connected(c)).toBe(true);
      let done = false;
      const outcome = c
        .getOrSet('k', async () => 'loaded')
        .then(
          (v) => v,
          (e: unknown) => e,
        );
      void outcome.then(() => {
        done = true;
      });
      // Each step lets the poll's Redis round trips finish before the clock moves on.
      for (let i = 0; i < 8 && !done; i++) {
        await pause(50);
        await clock.advanceAsync(250);
      }
      expect(await outcome).toBe('loaded');
    } finally {
      raw.disconnect();
    }
  });

  it('ends a load that holds the lease after close() without an unhandled rejection', async () => {
    const c = new TieredCache({ namespace: namespace(), l2: { redis: redis.url }, lock: true });
    expect(await c.ready()).toBe(true);
    const gate = gatedLoader<string>();
    let outcome: unknown;
    const unhandled = await unhandledDuring(async () => {
      const pending = c.getOrSet('k', gate.load).catch((e: unknown) => e);
      await gate.started; // it holds the lease now
      await c.close();
      outcome = await pending;
      gate.resolve('v'); // the load ends after close: its lease is not released over a closed connection
      await pause(20);
    });
    expect(unhandled).toEqual([]);
    expect(isCacheClosedError(outcome)).toBe(true);
  });
});
