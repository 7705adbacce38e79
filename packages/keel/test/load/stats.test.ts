import { describe, expect, it } from 'vitest';
import { linearFit, parseBytes } from '../../src/load/stats.ts';

describe('linearFit', () => {
  it('recovers an exact line with R² = 1', () => {
    expect(linearFit([0, 100, 200, 300], [5000, 107_400, 209_800, 312_200])).toEqual({ slope: 1024, intercept: 5000, r2: 1 });
  });

  it('gives a low R² for noise around a flat line', () => {
    const fit = linearFit([0, 1, 2, 3, 4, 5], [10, 14, 9, 13, 10, 12]);
    expect(Math.abs(fit.slope)).toBeLessThan(1);
    expect(fit.r2).toBeLessThan(0.2);
  });

  it('rejects fewer than two points or identical xs', () => {
    expect(() => linearFit([1], [1])).toThrow(/two/);
    expect(() => linearFit([1, 1], [1, 2])).toThrow(/distinct/);
  });
});

describe('parseBytes', () => {
  it('parses binary units', () => {
    expect([parseBytes('64B'), parseBytes('1KB'), parseBytes('1.5mb'), parseBytes('100')]).toEqual([64, 1024, 1.5 * 1024 * 1024, 100]);
  });

  it('rejects garbage', () => {
    expect(() => parseBytes('lots')).toThrow(/invalid size/);
  });
});
