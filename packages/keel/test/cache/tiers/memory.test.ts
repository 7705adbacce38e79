import { describe, expect, it } from 'vitest';
import { Entry } from '../../../src/cache/entry.ts';
import { MemoryTier } from '../../../src/cache/tiers/memory.ts';

const entry = (size: number) => new Entry('v', size, 0, 1, 1, 1, [], 0);

describe('MemoryTier', () => {
  it('evicts by entry count and reports capacity evictions', () => {
    let evicted = 0;
    const t = new MemoryTier({ maxEntries: 2, maxBytes: 1_000, onEvict: () => evicted++ });
    t.set('a', entry(1));
    t.set('b', entry(1));
    t.set('c', entry(1));
    expect(t.entries).toBe(2);
    expect(t.get('a')).toBeUndefined();
    expect(evicted).toBe(1);
  });

  it('evicts by bytes and refuses a single entry larger than the bound', () => {
    const t = new MemoryTier({ maxEntries: 100, maxBytes: 100, onEvict: undefined });
    t.set('a', entry(60));
    t.set('b', entry(60));
    expect(t.bytes).toBeLessThanOrEqual(100);
    t.set('huge', entry(500));
    expect(t.get('huge')).toBeUndefined();
  });

  it('does not count deletes and overwrites as evictions', () => {
    let evicted = 0;
    const t = new MemoryTier({ maxEntries: 10, maxBytes: 1_000, onEvict: () => evicted++ });
    t.set('a', entry(1));
    t.set('a', entry(2));
    t.delete('a');
    expect(evicted).toBe(0);
  });
});
