import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TieredCache } from '../../src/cache/index.ts';
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
});
