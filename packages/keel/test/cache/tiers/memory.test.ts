import { describe, expect, it } from 'vitest';
import { Entry } from '../../../src/cache/entry.ts';
import { MemoryTier } from '../../../src/cache/tiers/memory.ts';

let now = 1_000_000;
const clock = () => now;
const entry = (size: number, refreshAt = now + 1_000, tags: string[] = []) =>
  new Entry(`v${size}`, size, 0, refreshAt, refreshAt, refreshAt, tags);
const tier = (maxEntries: number, maxBytes: number, onEvict?: () => void) => new MemoryTier({ maxEntries, maxBytes, now: clock, onEvict });

describe('MemoryTier', () => {
  it('hands out the value while fresh, and the entry after', () => {
    const t = tier(10, 1_000);
    t.set('a', entry(1, now + 100));
    expect(t.fresh('a')).toBe('v1');
    now += 99;
    expect(t.fresh('a')).toBeDefined();
    now += 1;
    expect(t.fresh('a')).toBeUndefined();
    expect(t.entry('a')?.value).toBe('v1');
  });

  it('stores an already-stale entry as stale (for fail-safe backoff)', () => {
    const t = tier(10, 1_000);
    t.set('a', entry(1, now - 5));
    expect(t.fresh('a')).toBeUndefined();
    expect(t.entry('a')).toBeDefined();
  });

  it('evicts by entry count and reports capacity evictions', () => {
    let evicted = 0;
    const t = tier(2, 1_000, () => evicted++);
    t.set('a', entry(1));
    t.set('b', entry(1));
    t.set('c', entry(1));
    expect(t.entries).toBe(2);
    expect(t.entry('a')).toBeUndefined();
    expect(evicted).toBe(1);
  });

  it('evicts by bytes and refuses a single entry larger than the bound', () => {
    const t = tier(100, 100);
    t.set('a', entry(60, now + 1_000, ['x']));
    t.set('b', entry(60));
    expect(t.bytes).toBeLessThanOrEqual(100);
    t.set('huge', entry(500, now + 1_000, ['y']));
    expect(t.entry('huge')).toBeUndefined();
    expect(t.indexedTags).toBe(0);
  });

  it('does not count deletes and overwrites as evictions', () => {
    let evicted = 0;
    const t = tier(10, 1_000, () => evicted++);
    t.set('a', entry(1));
    t.set('a', entry(2));
    t.delete('a');
    expect(evicted).toBe(0);
  });

  it('overwriting a key with the same value object re-indexes it under the new tags', () => {
    const t = tier(10, 1_000);
    const shared = entry(1, now + 1_000, ['old']);
    t.set('a', shared);
    t.set('a', new Entry(shared.value, 1, 0, now + 1_000, now + 1_000, now + 1_000, ['new']));
    t.deleteTags(['old']);
    expect(t.fresh('a')).toBe('v1');
    t.deleteTags(['new']);
    expect(t.fresh('a')).toBeUndefined();
    expect(t.indexedTags).toBe(0);
  });

  it('an entry whose value is undefined is not stored and removes the old one', () => {
    const t = tier(10, 1_000);
    t.set('a', entry(1));
    t.set('a', new Entry(undefined, 1, 0, now + 1_000, now + 1_000, now + 1_000, []));
    expect(t.entry('a')).toBeUndefined();
    expect(t.entries).toBe(0);
  });

  it('deletes every key under a tag, and its index shrinks with L1', () => {
    const t = tier(3, 1_000);
    t.set('a', entry(1, now + 1_000, ['t1']));
    t.set('b', entry(1, now + 1_000, ['t1', 't2']));
    t.set('c', entry(1, now + 1_000, ['t2']));
    t.deleteTags(['t1']);
    expect([t.entry('a'), t.entry('b')]).toEqual([undefined, undefined]);
    expect(t.entry('c')).toBeDefined();
    t.set('c', entry(1, now + 1_000, ['t3'])); // overwrite with other tags
    t.deleteTags(['t2']);
    expect(t.entry('c')).toBeDefined();
    for (const k of ['d', 'e', 'f']) t.set(k, entry(1));
    expect(t.indexedTags).toBe(0);
  });
});
