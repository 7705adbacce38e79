import { describe, expect, it } from 'vitest';
import { isBreakerSnapshot, MemoryStateStore } from '../../src/resilience/state-store.ts';

describe('MemoryStateStore', () => {
  it('returns a copy of what was saved', () => {
    const store = new MemoryStateStore();
    const snap = { version: 1 as const, state: 'open' as const, openUntil: 5, trips: 1, strategy: { failures: 0 } };
    store.save('a', snap);
    const loaded = store.load('a');
    expect(loaded).toEqual(snap);
    expect(loaded).not.toBe(snap);
    expect(store.load('b')).toBeUndefined();
  });

  it('recognises only well-formed snapshots', () => {
    expect(isBreakerSnapshot({ version: 1, state: 'closed', openUntil: 0, trips: 0, strategy: null })).toBe(true);
    expect(isBreakerSnapshot({ version: 2, state: 'closed', openUntil: 0, trips: 0 })).toBe(false);
    expect(isBreakerSnapshot({ version: 1, state: 'ajar', openUntil: 0, trips: 0 })).toBe(false);
  });
});
