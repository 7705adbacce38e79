import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { describe, expect, it } from 'vitest';
import { isCacheTimeoutError, TieredCache } from '../../src/cache/index.ts';
import { CHANNELS } from '../../src/channels.ts';
import { FakeClock, flushMicrotasks } from '../../src/testing/fake-clock.ts';

function counting<T>(fn: () => T | Promise<T>) {
  const l = Object.assign(
    async () => {
      l.calls++;
      return fn();
    },
    { calls: 0 },
  );
  return l;
}

describe('freshness: grace, fail-safe, soft and hard timeouts', () => {
  it('serves a stale value at once within grace and refreshes it in the background once', async () => {
    const clock = new FakeClock();
    await using cache = new TieredCache({ ttlMs: 1_000, graceMs: 10_000, clock });
    await cache.set('k', 'old');
    clock.advance(1_500);
    const load = counting(() => 'new');
    const served = await Promise.all([cache.getOrSet('k', load), cache.getOrSet('k', load)]);
    expect(served).toEqual(['old', 'old']);
    await flushMicrotasks();
    expect(load.calls).toBe(1);
    expect(await cache.getOrSet('k', load)).toBe('new');
  });

  it('serves stale when the loader fails within grace, counts the failure and backs off', async () => {
    const clock = new FakeClock();
    await using cache = new TieredCache({ ttlMs: 1_000, graceMs: 60_000, retryBackoffMs: 1_000, clock });
    await cache.set('k', 'last good');
    clock.advance(2_000);
    const errors: unknown[] = [];
    const onError = (m: unknown) => errors.push(m);
    subscribe(CHANNELS.cache.loaderError, onError);
    const failing = counting(() => {
      throw new Error('db down');
    });
    try {
      expect(await cache.getOrSet('k', failing, { softTimeoutMs: 50 })).toBe('last good');
      expect(failing.calls).toBe(1);
      // Within the backoff nobody calls the loader again.
      expect(await cache.getOrSet('k', failing)).toBe('last good');
      await flushMicrotasks();
      expect(failing.calls).toBe(1);
      clock.advance(1_000);
      expect(await cache.getOrSet('k', failing)).toBe('last good');
      await flushMicrotasks();
      expect(failing.calls).toBe(2);
      // The second failure doubles the pause: 1 s later is still too early.
      clock.advance(1_000);
      await cache.getOrSet('k', failing);
      await flushMicrotasks();
      expect(failing.calls).toBe(2);
    } finally {
      unsubscribe(CHANNELS.cache.loaderError, onError);
    }
    expect(errors.length).toBe(2);
  });

  it('surfaces the loader error once grace has passed', async () => {
    const clock = new FakeClock();
    await using cache = new TieredCache({ ttlMs: 1_000, graceMs: 1_000, clock });
    await cache.set('k', 'old');
    clock.advance(2_000);
    await expect(cache.getOrSet('k', () => Promise.reject(new Error('down')))).rejects.toThrow('down');
  });

  it('waits up to the soft timeout for a fresh value, then serves stale while the load goes on', async () => {
    const clock = new FakeClock();
    await using cache = new TieredCache({ ttlMs: 1_000, graceMs: 60_000, softTimeoutMs: 100, clock });
    await cache.set('k', 'old');
    clock.advance(1_000);
    let finish!: (v: string) => void;
    const slow = () => new Promise<string>((r) => (finish = r));
    const served = cache.getOrSet('k', slow);
    await clock.advanceAsync(100);
    expect(await served).toBe('old');
    finish('new');
    await flushMicrotasks();
    expect(await cache.get('k')).toBe('new');
  });

  it('returns the fresh value when it arrives before the soft timeout', async () => {
    const clock = new FakeClock();
    await using cache = new TieredCache({ ttlMs: 1_000, graceMs: 60_000, softTimeoutMs: 100, clock });
    await cache.set('k', 'old');
    clock.advance(1_000);
    const served = cache.getOrSet('k', async () => 'new');
    await clock.advanceAsync(10);
    expect(await served).toBe('new');
  });

  it('rejects at the hard timeout with nothing stale, and aborts the loader', async () => {
    const clock = new FakeClock();
    await using cache = new TieredCache({ hardTimeoutMs: 500, clock });
    let signal: AbortSignal | undefined;
    const pending = cache.getOrSet('k', (ctx) => {
      signal = ctx.signal;
      return new Promise(() => {});
    });
    const settled = pending.catch((e) => e);
    await clock.advanceAsync(499);
    expect(signal?.aborted).toBe(false);
    await clock.advanceAsync(1);
    const err = (await settled) as { timeoutMs: number };
    expect(isCacheTimeoutError(err)).toBe(true);
    expect(err.timeoutMs).toBe(500);
    expect(signal?.aborted).toBe(true);
  });

  it('serves stale at the hard timeout when there is a stale value', async () => {
    const clock = new FakeClock();
    await using cache = new TieredCache({ ttlMs: 1_000, graceMs: 60_000, softTimeoutMs: 10_000, hardTimeoutMs: 500, clock });
    await cache.set('k', 'old');
    clock.advance(1_000);
    const pending = cache.getOrSet('k', () => new Promise(() => {}));
    await clock.advanceAsync(500);
    expect(await pending).toBe('old');
  });

  it('refreshes eagerly in the background once the entry nears expiry and is read', async () => {
    const clock = new FakeClock();
    await using cache = new TieredCache({ ttlMs: 1_000, eagerRefresh: 0.8, clock });
    let n = 0;
    const load = async () => ++n;
    expect(await cache.getOrSet('k', load)).toBe(1);
    clock.advance(700);
    expect(await cache.getOrSet('k', load)).toBe(1);
    expect(n).toBe(1);
    clock.advance(100);
    expect(await cache.getOrSet('k', load)).toBe(1);
    await flushMicrotasks();
    expect(n).toBe(2);
    expect(await cache.getOrSet('k', load)).toBe(2);
  });

  it('publishes a stale event for each stale serve', async () => {
    const clock = new FakeClock();
    await using cache = new TieredCache({ ttlMs: 10, graceMs: 1_000, clock });
    await cache.set('k', 1);
    clock.advance(20);
    let stale = 0;
    const on = () => stale++;
    subscribe(CHANNELS.cache.stale, on);
    try {
      await cache.getOrSet('k', async () => 2);
    } finally {
      unsubscribe(CHANNELS.cache.stale, on);
    }
    expect(stale).toBe(1);
  });

  it('shares one soft deadline among all stale callers of a flight', async () => {
    const clock = new FakeClock();
    await using cache = new TieredCache({ ttlMs: 1_000, graceMs: 60_000, softTimeoutMs: 100, clock });
    await cache.set('k', 'old');
    clock.advance(1_000);
    const served = Promise.all(Array.from({ length: 1_000 }, () => cache.getOrSet('k', () => new Promise<string>(() => {}))));
    await flushMicrotasks();
    // The hard timeout, the soft deadline, the hit-path clock: not one timer per caller.
    expect(clock.pending).toBeLessThanOrEqual(3);
    await clock.advanceAsync(100);
    expect(new Set(await served)).toEqual(new Set(['old']));
  });
});
