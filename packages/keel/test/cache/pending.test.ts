import { describe, expect, it } from 'vitest';
import { LocalDeletes, PendingInvalidations } from '../../src/cache/pending.ts';
import type { RedisTier } from '../../src/cache/tiers/redis.ts';
import { deferred } from './helpers.ts';

/** A tier whose calls the test answers one by one; `calls` records what was sent. */
function scriptedTier() {
  const calls: string[] = [];
  const answers: ((ok: boolean) => void)[] = [];
  const call = (what: string) => {
    calls.push(what);
    const d = deferred<boolean>();
    answers.push(d.resolve);
    return d.promise;
  };
  const tier = {
    invalidateTags: (tags: string[], stamp: number) => call(`tags ${tags} @${stamp}`),
    delete: (keys: string[]) => call(`delete ${keys}`),
    clear: (stamp: number) => call(`clear @${stamp}`),
  } as unknown as RedisTier;
  return { tier, calls, answer: (ok = true) => answers.shift()?.(ok) };
}

describe('PendingInvalidations', () => {
  it('keeps a tag invalidated again while its replay was in flight', async () => {
    const { tier, calls, answer } = scriptedTier();
    let s = 100;
    const p = new PendingInvalidations(
      tier,
      () => ++s,
      () => '',
    );
    p.addTags(['topic:1'], 10);
    const flushing = p.flush();
    p.addTags(['topic:1'], 20); // a later invalidation failed too, meanwhile
    answer();
    await flushing;
    expect(p.size).toBe(1);
    const again = p.flush();
    answer();
    await again;
    expect(calls).toEqual(['tags topic:1 @10', 'tags topic:1 @20']);
    expect(p.size).toBe(0);
  });

  it('keeps a key deleted again while its replay was in flight', async () => {
    const { tier, calls, answer } = scriptedTier();
    let s = 100;
    const p = new PendingInvalidations(
      tier,
      () => ++s,
      () => '',
    );
    p.addKey('k', 10);
    const flushing = p.flush();
    p.addKey('k', 200);
    answer();
    await flushing;
    expect(p.size).toBe(1);
    const again = p.flush();
    answer();
    await again;
    expect(calls).toEqual(['delete k', 'delete k']);
    expect(p.size).toBe(0);
  });

  it('forgets what Redis took and keeps what it refused', async () => {
    const { tier, answer } = scriptedTier();
    let s = 100;
    const p = new PendingInvalidations(
      tier,
      () => ++s,
      () => '',
    );
    p.addKey('k', 10);
    const refused = p.flush();
    answer(false);
    await refused;
    expect(p.size).toBe(1);
    const taken = p.flush();
    answer(true);
    await taken;
    expect(p.size).toBe(0);
  });

  it('confirms the local deletes of the keys it replayed', async () => {
    const { tier, answer } = scriptedTier();
    let s = 100;
    const deletes = new LocalDeletes(10);
    const p = new PendingInvalidations(
      tier,
      () => ++s,
      () => '',
      deletes,
    );
    deletes.mark('k', 10);
    p.addKey('k', 10);
    expect(deletes.hides('k', 5)).toBe(true);
    const flushing = p.flush();
    answer();
    await flushing;
    expect(deletes.hides('k', 5)).toBe(false);
    expect(deletes.size).toBe(0);
  });
});

describe('LocalDeletes', () => {
  it('hides records of a key born at or before its unconfirmed delete, and nothing later', () => {
    const d = new LocalDeletes(10);
    d.mark('k', 10);
    expect([d.hides('k', 9), d.hides('k', 10), d.hides('k', 11), d.hides('other', 1)]).toEqual([true, true, false, false]);
  });

  it('forgets a delete once Redis confirms one stamped no earlier', () => {
    const d = new LocalDeletes(10);
    d.mark('k', 10);
    d.confirm('k', 9);
    expect(d.hides('k', 5)).toBe(true);
    d.confirm('k', 10);
    expect(d.hides('k', 5)).toBe(false);
  });

  it('stays bounded: a forgotten delete becomes a floor that hides every older record until a clear', () => {
    const d = new LocalDeletes(2);
    d.mark('a', 10);
    d.mark('b', 20);
    d.mark('c', 30);
    expect(d.size).toBe(2);
    expect(d.hides('a', 10)).toBe(true); // by the floor
    expect(d.hides('z', 10)).toBe(true);
    expect(d.hides('z', 11)).toBe(false);
    d.confirmClear(30);
    expect([d.size, d.hides('a', 10), d.hides('c', 30)]).toEqual([0, false, false]);
  });
});
