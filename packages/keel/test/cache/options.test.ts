import { describe, expect, it } from 'vitest';
import { TieredCache } from '../../src/cache/index.ts';

describe('TieredCache options', () => {
  const bad: [string, unknown][] = [
    ['name', ''],
    ['ttlMs', 0],
    ['ttlMs', Number.NaN],
    ['ttlMs', Number.POSITIVE_INFINITY],
    ['graceMs', -1],
    ['softTimeoutMs', 'soon'],
    ['hardTimeoutMs', 0],
    ['eagerRefresh', 1.5],
    ['retryBackoffMs', -5],
    ['compressThreshold', -1],
    ['maxTags', 0],
    ['clock', {}],
    ['serializer', { serialize: () => '' }],
    ['l1', 'big'],
    ['l2', { redis: 42 }],
    ['l2', { redis: 'http://localhost' }],
    ['bus', true],
    ['lock', true],
  ];
  for (const [name, value] of bad) {
    it(`throws a TypeError naming "${name}" for ${JSON.stringify(value) ?? String(value)}`, () => {
      expect(() => new TieredCache({ [name]: value })).toThrow(TypeError);
      expect(() => new TieredCache({ [name]: value })).toThrow(name === 'l2' ? /l2/ : new RegExp(name));
    });
  }

  it('refuses l1: false without l2 (nothing would be cached)', () => {
    expect(() => new TieredCache({ l1: false })).toThrow(/"?l1"?/);
  });

  it('names nested options in its errors', () => {
    expect(() => new TieredCache({ l1: { maxEntries: 0 } })).toThrow(/l1\.maxEntries/);
    expect(() => new TieredCache({ l1: { maxBytes: 1.5 } })).toThrow(/l1\.maxBytes/);
    expect(() => new TieredCache({ l2: { redis: 'redis://127.0.0.1:1', timeoutMs: 0 } })).toThrow(/l2\.timeoutMs/);
    expect(() => new TieredCache({ l2: { redis: 'redis://127.0.0.1:1' }, lock: { leaseMs: 0 } })).toThrow(/lock\.leaseMs/);
    expect(() => new TieredCache({ l2: { redis: 'redis://127.0.0.1:1', fenceMs: 10 } })).toThrow(/l2\.fenceMs/);
  });

  it('refuses an ioredis client with a keyPrefix (scripts build keys it would not prefix)', () => {
    const fake = { callBuffer() {}, options: { keyPrefix: 'app:' } };
    expect(() => new TieredCache({ l2: { redis: fake as never } })).toThrow(/keyPrefix/);
  });

  it('rejects a non-object', () => {
    expect(() => new TieredCache('fast' as never)).toThrow(TypeError);
  });

  it('accepts no options at all', async () => {
    await using cache = new TieredCache();
    expect(cache.name).toBe('cache');
    expect(cache.stats().l2).toBe('none');
  });

  it('names a bad l2.breaker option, and throws before opening a connection', () => {
    // A connection opened first would outlive the throw (the suite's leak check fails on it).
    const url = 'redis://127.0.0.1:1';
    expect(() => new TieredCache({ l2: { redis: url, breaker: { halfOpenAfterMs: -1 } } })).toThrow(/"l2\.breaker\.halfOpenAfterMs"/);
    expect(() => new TieredCache({ l2: { redis: url, breaker: { strategy: 42 as never } } })).toThrow(/"l2\.breaker\.strategy"/);
    expect(() => new TieredCache({ l2: { redis: url, breaker: 'off' as never } })).toThrow(/l2\.breaker/);
  });

  it('refuses a per-call hardTimeoutMs or ttlMs under 1 ms, as the constructor does', async () => {
    await using cache = new TieredCache();
    await expect(cache.getOrSet('k', () => 1, { hardTimeoutMs: 0 })).rejects.toThrow(/hardTimeoutMs/);
    await expect(cache.getOrSet('k', () => 1, { ttlMs: 0.5 })).rejects.toThrow(/ttlMs/);
    expect(await cache.getOrSet('k', () => 1, { hardTimeoutMs: 1, ttlMs: 1 })).toBe(1);
  });
});
