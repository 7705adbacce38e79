import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { backoff } from '../../src/resilience/backoff.ts';

describe('backoff', () => {
  it('returns the base delay every time when constant', () => {
    const b = backoff({ kind: 'constant', baseMs: 70 });
    expect([b.next(1, 0), b.next(50, 70)]).toEqual([70, 70]);
  });

  it('doubles exponentially up to the cap', () => {
    const b = backoff({ kind: 'exponential', baseMs: 10, maxDelayMs: 100 });
    expect([1, 2, 3, 4, 5].map((n) => b.next(n, 0))).toEqual([10, 20, 40, 80, 100]);
  });

  it('stays finite and capped for huge attempt counts', () => {
    const b = backoff({ kind: 'exponential', baseMs: 10, maxDelayMs: 5_000 });
    expect(b.next(1_000_000, 0)).toBe(5_000);
    expect(b.next(Number.MAX_SAFE_INTEGER, 0)).toBe(5_000);
  });

  it('draws decorrelated jitter between base and three times the previous delay', () => {
    const lo = backoff({ baseMs: 100, maxDelayMs: 10_000, random: () => 0 });
    const hi = backoff({ baseMs: 100, maxDelayMs: 10_000, random: () => 0.999999 });
    expect(lo.next(2, 400)).toBe(100);
    expect(hi.next(2, 400)).toBeCloseTo(1_200, 0);
  });

  it('keeps every delay finite and within [base, max] for any inputs', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('constant', 'exponential', 'decorrelated' as const),
        fc.integer({ min: 0, max: 1_000 }),
        fc.integer({ min: 0, max: 100_000 }),
        fc.integer({ min: -5, max: 1e9 }),
        fc.oneof(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), fc.constant(Number.NaN), fc.constant(2)),
        fc.double({ noNaN: false }),
        (kind, base, extra, attempt, r, prev) => {
          const max = base + extra;
          const d = backoff({ kind, baseMs: base, maxDelayMs: max, random: () => r }).next(attempt, prev);
          return Number.isFinite(d) && d >= base && d <= max;
        },
      ),
    );
  });

  it('rejects maxDelayMs below baseMs and an unknown kind', () => {
    expect(() => backoff({ baseMs: 100, maxDelayMs: 10 })).toThrow(/"maxDelayMs"/);
    expect(() => backoff({ kind: 'fibonacci' as never })).toThrow(/"kind"/);
  });
});
