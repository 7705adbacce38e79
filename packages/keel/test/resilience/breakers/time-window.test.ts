import { describe, expect, it } from 'vitest';
import { TimeWindowBreaker } from '../../../src/resilience/breakers/time-window.ts';

describe('TimeWindowBreaker', () => {
  it('opens when failures in the window reach the rate after minimumCalls', () => {
    const s = new TimeWindowBreaker({ windowMs: 1_000, buckets: 10, minimumCalls: 3, failureRateThreshold: 0.5 });
    s.success(0);
    expect(s.failure(100)).toBe(false);
    expect(s.failure(200)).toBe(true);
  });

  it('expires calls older than the window', () => {
    const s = new TimeWindowBreaker({ windowMs: 1_000, buckets: 10, minimumCalls: 2, failureRateThreshold: 1 });
    s.failure(0);
    expect(s.failure(1_100)).toBe(false);
    expect(s.failure(1_150)).toBe(true);
  });

  it('round-trips its buckets through toJSON and restore', () => {
    const a = new TimeWindowBreaker({ windowMs: 1_000, minimumCalls: 2, failureRateThreshold: 1 });
    a.failure(5_000);
    const b = new TimeWindowBreaker({ windowMs: 1_000, minimumCalls: 2, failureRateThreshold: 1 });
    b.restore(JSON.parse(JSON.stringify(a)));
    expect(b.failure(5_100)).toBe(true);
  });

  it('rejects a zero window and zero buckets', () => {
    expect(() => new TimeWindowBreaker({ windowMs: 0 })).toThrow(/"windowMs"/);
    expect(() => new TimeWindowBreaker({ buckets: 0 })).toThrow(/"buckets"/);
  });
});
