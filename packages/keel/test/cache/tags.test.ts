import { describe, expect, it } from 'vitest';
import { badTag, TagStamps } from '../../src/cache/tags.ts';
import { FakeClock } from '../../src/testing/fake-clock.ts';

describe('TagStamps', () => {
  it('hands out strictly increasing stamps within one millisecond', () => {
    const t = new TagStamps(new FakeClock(), 10);
    const a = t.stamp();
    const b = t.stamp();
    expect(b).toBeGreaterThan(a);
  });

  it('invalidates values born before the stamp and keeps those born after', () => {
    const t = new TagStamps(new FakeClock(), 10);
    const before = t.stamp();
    t.invalidate(['x'], t.stamp());
    const after = t.stamp();
    expect(t.valid(before, ['x'])).toBe(false);
    expect(t.valid(before, ['y'])).toBe(true);
    expect(t.valid(after, ['x'])).toBe(true);
  });

  it('stays bounded, and treats values older than a forgotten stamp as invalid', () => {
    const t = new TagStamps(new FakeClock(), 2);
    const old = t.stamp();
    for (const tag of ['a', 'b', 'c', 'd']) t.invalidate([tag], t.stamp());
    // 'a' was forgotten; a value born before it with any tag is conservatively invalid.
    expect(t.valid(old, ['z'])).toBe(false);
    expect(t.valid(old, [])).toBe(true);
    expect(t.valid(t.stamp(), ['a'])).toBe(true);
  });

  it('orders local stamps after remote stamps that are ahead of this clock', () => {
    const clock = new FakeClock(1_000);
    const t = new TagStamps(clock, 10);
    t.invalidate(['x'], 5_000);
    expect(t.stamp()).toBeGreaterThan(5_000);
  });

  it('refuses tags that would corrupt records', () => {
    expect(badTag('ok:1')).toBeUndefined();
    for (const bad of ['', 'a,b', 'a|b', 'a\nb', 7]) expect(badTag(bad)).toBeDefined();
  });
});
