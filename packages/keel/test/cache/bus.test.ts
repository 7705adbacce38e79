import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TieredCache } from '../../src/cache/index.ts';
import { CHANNELS } from '../../src/channels.ts';
import { createFaultProxy } from '../../src/load/chaos.ts';
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
});
