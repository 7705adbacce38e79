import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isCacheClosedError, TieredCache } from '../../src/cache/index.ts';
import { CHANNELS } from '../../src/channels.ts';
import { FakeClock } from '../../src/testing/fake-clock.ts';
import { deferred } from './helpers.ts';

describe('TieredCache (L1 only)', () => {
  it('returns what was set until the TTL passes', async () => {
    const clock = new FakeClock();
    await using cache = new TieredCache({ ttlMs: 1_000, clock });
    await cache.set('a', { n: 1 });
    expect(await cache.get('a')).toEqual({ n: 1 });
    clock.advance(999);
    expect(await cache.get('a')).toEqual({ n: 1 });
    clock.advance(1);
    expect(await cache.get('a')).toBeUndefined();
  });

  it('runs the loader once for 5,000 concurrent getOrSet calls on a cold key', async () => {
    await using cache = new TieredCache();
    let calls = 0;
    const gate = deferred<string>();
    const loader = () => {
      calls++;
      return gate.promise;
    };
    const all = Promise.all(Array.from({ length: 5_000 }, () => cache.getOrSet('cold', loader)));
    gate.resolve('v');
    const values = await all;
    expect(calls).toBe(1);
    expect(new Set(values)).toEqual(new Set(['v']));
    expect(cache.stats().inFlight).toBe(0);
  });

  it('gives every waiter the loader error when there is nothing stale, and loads again next time', async () => {
    await using cache = new TieredCache();
    let calls = 0;
    const failing = async () => {
      calls++;
      throw new Error('db down');
    };
    const results = await Promise.allSettled([cache.getOrSet('k', failing), cache.getOrSet('k', failing)]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect(calls).toBe(1);
    expect(await cache.getOrSet('k', async () => 'ok')).toBe('ok');
  });

  it('serves an L1 hit without calling the loader', async () => {
    await using cache = new TieredCache();
    await cache.set('k', 'cached');
    expect(await cache.getOrSet('k', () => 'loaded')).toBe('cached');
  });

  it('does not cache an undefined loader result', async () => {
    await using cache = new TieredCache();
    let calls = 0;
    await cache.getOrSet('k', () => {
      calls++;
      return undefined;
    });
    await cache.getOrSet('k', () => {
      calls++;
      return undefined;
    });
    expect(calls).toBe(2);
  });

  it('expires everything under an invalidated tag and nothing else', async () => {
    await using cache = new TieredCache();
    await cache.set('a', 1, { tags: ['forum:1'] });
    await cache.set('b', 2, { tags: ['forum:1', 'topic:9'] });
    await cache.set('c', 3, { tags: ['forum:2'] });
    await cache.invalidateTags(['forum:1']);
    expect([await cache.get('a'), await cache.get('b'), await cache.get('c')]).toEqual([undefined, undefined, 3]);
  });

  it('does not store a load that an invalidation overtook, and later callers load afresh', async () => {
    await using cache = new TieredCache();
    const slow = deferred<string>();
    const before = cache.getOrSet('k', () => slow.promise, { tags: ['t'] });
    await cache.invalidateTags(['t']);
    const after = cache.getOrSet('k', async () => 'new', { tags: ['t'] });
    slow.resolve('old');
    expect(await before).toBe('old');
    expect(await after).toBe('new');
    expect(await cache.get('k')).toBe('new');
  });

  it('delete and clear remove entries and fence loads in flight', async () => {
    await using cache = new TieredCache();
    await cache.set('a', 1);
    await cache.set('b', 2);
    await cache.delete('a');
    expect(await cache.get('a')).toBeUndefined();
    const slow = deferred<number>();
    const inFlight = cache.getOrSet('c', () => slow.promise);
    await cache.clear();
    slow.resolve(3);
    expect(await inFlight).toBe(3);
    expect(await cache.get('b')).toBeUndefined();
    expect(await cache.get('c')).toBeUndefined();
  });

  it('keeps the byte bound under random value sizes', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 50 }), fc.integer({ min: 0, max: 3_000 })), { maxLength: 200 }),
        async (ops) => {
          await using cache = new TieredCache({ l1: { maxEntries: 1_000, maxBytes: 10_000 } });
          for (const [k, size] of ops) {
            await cache.set(`k${k}`, 'x'.repeat(size));
            expect(cache.stats().l1Bytes).toBeLessThanOrEqual(10_000);
          }
        },
      ),
      { numRuns: 50 },
    );
  });

  it('publishes hits, misses and loads only to subscribers', async () => {
    await using cache = new TieredCache({ name: 'events' });
    const seen: string[] = [];
    const onHit = (m: unknown) => seen.push(`hit:${(m as { tier: string }).tier}`);
    const onMiss = () => seen.push('miss');
    const onLoad = (m: unknown) => seen.push(`load:${(m as { ok: boolean }).ok}`);
    subscribe(CHANNELS.cache.hit, onHit);
    subscribe(CHANNELS.cache.miss, onMiss);
    subscribe(CHANNELS.cache.load, onLoad);
    try {
      await cache.getOrSet('k', () => 1);
      await cache.getOrSet('k', () => 1);
    } finally {
      unsubscribe(CHANNELS.cache.hit, onHit);
      unsubscribe(CHANNELS.cache.miss, onMiss);
      unsubscribe(CHANNELS.cache.load, onLoad);
    }
    expect(seen).toEqual(['miss', 'load:true', 'hit:l1']);
  });

  it('rejects getOrSet after close and aborts loads in flight', async () => {
    const cache = new TieredCache();
    let signal: AbortSignal | undefined;
    const pending = cache.getOrSet('k', (ctx) => {
      signal = ctx.signal;
      return new Promise(() => {});
    });
    await cache.close();
    const err = await pending.catch((e) => e);
    expect(isCacheClosedError(err)).toBe(true);
    expect(signal?.aborted).toBe(true);
    expect(isCacheClosedError(await cache.getOrSet('x', () => 1).catch((e) => e))).toBe(true);
    expect(await cache.get('x')).toBeUndefined();
  });

  it('rejects bad per-call options and tags with a TypeError', async () => {
    await using cache = new TieredCache();
    await expect(cache.getOrSet('k', () => 1, { ttlMs: -1 })).rejects.toThrow(TypeError);
    await expect(cache.getOrSet('k', () => 1, { tags: ['a,b'] })).rejects.toThrow(TypeError);
    await expect(cache.set('k', 1, { tags: [''] })).rejects.toThrow(TypeError);
    await expect(cache.invalidateTags(['x|y'])).rejects.toThrow(TypeError);
  });
});

/** A reference model: a map of key → { value, tags, expiresAt } with invalidation by tag. */
describe('TieredCache against a reference model', () => {
  type Op =
    | { op: 'set'; key: number; value: number; tags: number[]; ttl: number }
    | { op: 'get'; key: number }
    | { op: 'delete'; key: number }
    | { op: 'invalidate'; tags: number[] }
    | { op: 'advance'; ms: number }
    | { op: 'clear' };
  const key = fc.integer({ min: 0, max: 5 });
  const tags = fc.uniqueArray(fc.integer({ min: 0, max: 3 }), { maxLength: 2 });
  const op: fc.Arbitrary<Op> = fc.oneof(
    fc.record({ op: fc.constant('set' as const), key, value: fc.integer(), tags, ttl: fc.integer({ min: 1, max: 100 }) }),
    fc.record({ op: fc.constant('get' as const), key }),
    fc.record({ op: fc.constant('delete' as const), key }),
    fc.record({ op: fc.constant('invalidate' as const), tags }),
    fc.record({ op: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 60 }) }),
    fc.record({ op: fc.constant('clear' as const) }),
  );

  it('agrees with the model on every get and peek', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 60 }), async (ops) => {
        const clock = new FakeClock();
        await using cache = new TieredCache({ clock });
        const model = new Map<number, { value: number; tags: number[]; expiresAt: number }>();
        for (const o of ops) {
          if (o.op === 'set') {
            await cache.set(`k${o.key}`, o.value, { ttlMs: o.ttl, tags: o.tags.map((t) => `t${t}`) });
            model.set(o.key, { value: o.value, tags: o.tags, expiresAt: clock.now() + o.ttl });
          } else if (o.op === 'get') {
            const m = model.get(o.key);
            const expected = m && clock.now() < m.expiresAt ? m.value : undefined;
            expect(cache.peek(`k${o.key}`)).toBe(expected);
            expect(await cache.get(`k${o.key}`)).toBe(expected);
          } else if (o.op === 'delete') {
            await cache.delete(`k${o.key}`);
            model.delete(o.key);
          } else if (o.op === 'invalidate') {
            await cache.invalidateTags(o.tags.map((t) => `t${t}`));
            for (const [k, v] of model) if (v.tags.some((t) => o.tags.includes(t))) model.delete(k);
          } else if (o.op === 'advance') {
            clock.advance(o.ms);
          } else {
            await cache.clear();
            model.clear();
          }
        }
      }),
      { numRuns: 200 },
    );
  });
});

describe('TieredCache.peek', () => {
  it('returns a fresh L1 value synchronously', async () => {
    await using cache = new TieredCache({ clock: new FakeClock() });
    await cache.set('a', { n: 1 });
    expect(cache.peek('a')).toEqual({ n: 1 });
  });

  it('returns undefined for a key it does not hold', async () => {
    await using cache = new TieredCache({ clock: new FakeClock() });
    expect(cache.peek('missing')).toBeUndefined();
  });

  it('returns a falsy value that was set (0, null, empty string)', async () => {
    await using cache = new TieredCache({ clock: new FakeClock() });
    await cache.set('zero', 0);
    await cache.set('null', null);
    await cache.set('empty', '');
    expect([cache.peek('zero'), cache.peek('null'), cache.peek('empty')]).toEqual([0, null, '']);
  });

  it('stops returning a value the moment its TTL passes on the cache clock', async () => {
    const clock = new FakeClock();
    await using cache = new TieredCache({ ttlMs: 100, clock });
    await cache.set('a', 1);
    clock.advance(99);
    expect(cache.peek('a')).toBe(1);
    clock.advance(1);
    expect(cache.peek('a')).toBeUndefined();
  });

  it('does not return a stale value within grace (getOrSet serves that)', async () => {
    const clock = new FakeClock();
    await using cache = new TieredCache({ ttlMs: 100, graceMs: 10_000, clock });
    await cache.set('a', 1);
    clock.advance(150);
    expect(cache.peek('a')).toBeUndefined();
    expect(await cache.getOrSet('a', () => new Promise<number>(() => {}))).toBe(1);
  });

  it('stops returning a value past its L1 TTL', async () => {
    const clock = new FakeClock();
    await using cache = new TieredCache({ ttlMs: 10_000, l1: { ttlMs: 50 }, clock });
    await cache.set('a', 1);
    clock.advance(50);
    expect(cache.peek('a')).toBeUndefined();
  });

  it('never returns a value once invalidateTags on it was called', async () => {
    await using cache = new TieredCache({ clock: new FakeClock() });
    await cache.set('a', 1, { tags: ['t'] });
    const done = cache.invalidateTags(['t']);
    expect(cache.peek('a')).toBeUndefined();
    await done;
  });

  it('never returns a value once delete or clear was called', async () => {
    await using cache = new TieredCache({ clock: new FakeClock() });
    await cache.set('a', 1);
    await cache.set('b', 2);
    const deleted = cache.delete('a');
    expect(cache.peek('a')).toBeUndefined();
    const cleared = cache.clear();
    expect(cache.peek('b')).toBeUndefined();
    await Promise.all([deleted, cleared]);
  });

  it('sees the value of the latest set', async () => {
    await using cache = new TieredCache({ clock: new FakeClock() });
    await cache.set('a', 1);
    await cache.set('a', 2);
    expect(cache.peek('a')).toBe(2);
  });

  it('publishes an L1 hit for a hit and nothing for a miss', async () => {
    await using cache = new TieredCache({ name: 'peeked', clock: new FakeClock() });
    await cache.set('a', 1);
    const seen: unknown[] = [];
    const onHit = (m: unknown) => seen.push(m);
    subscribe(CHANNELS.cache.hit, onHit);
    try {
      cache.peek('a');
      cache.peek('missing');
    } finally {
      unsubscribe(CHANNELS.cache.hit, onHit);
    }
    expect(seen).toEqual([{ name: 'peeked', tier: 'l1' }]);
  });
});
