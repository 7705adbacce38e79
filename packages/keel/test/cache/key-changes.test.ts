import { describe, expect, it } from 'vitest';
import { KeyChanges } from '../../src/cache/key-changes.ts';

describe('KeyChanges', () => {
  it('reports a key changed after a captured generation, and only that key', () => {
    const c = new KeyChanges(10);
    const gen = c.now;
    c.touch('a');
    expect(c.changedSince('a', gen)).toBe(true);
    expect(c.changedSince('b', gen)).toBe(false);
    expect(c.changedSince('a', c.now)).toBe(false);
  });

  it('treats every key as changed after touchAll', () => {
    const c = new KeyChanges(10);
    const gen = c.now;
    c.touchAll();
    expect(c.changedSince('anything', gen)).toBe(true);
  });

  it('stays bounded and stays conservative for forgotten keys', () => {
    const c = new KeyChanges(2);
    const gen = c.now;
    for (const k of ['a', 'b', 'c']) c.touch(k);
    // 'a' was forgotten: its change is still reported through the floor.
    expect(c.changedSince('a', gen)).toBe(true);
  });
});
