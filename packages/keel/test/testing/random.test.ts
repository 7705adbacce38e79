import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../src/testing/index.ts';

describe('seededRandom', () => {
  it('repeats the same sequence for the same seed', () => {
    const a = seededRandom(7);
    const b = seededRandom(7);
    const xs = Array.from({ length: 5 }, () => a());
    expect(Array.from({ length: 5 }, () => b())).toEqual(xs);
    expect(Array.from({ length: 5 }, seededRandom(8))).not.toEqual(xs);
  });

  it('stays in [0, 1) and spreads over it', () => {
    const rnd = seededRandom(1);
    const buckets = new Array(10).fill(0);
    for (let i = 0; i < 10_000; i++) {
      const x = rnd();
      expect(x >= 0 && x < 1).toBe(true);
      buckets[Math.floor(x * 10)]++;
    }
    for (const n of buckets) expect(n).toBeGreaterThan(800);
  });
});
