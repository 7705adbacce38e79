import { describe, expect, it } from 'vitest';
import { CountWindowBreaker } from '../../../src/resilience/breakers/count-window.ts';

describe('CountWindowBreaker', () => {
  it('does not open before minimumCalls', () => {
    const s = new CountWindowBreaker({ size: 10, minimumCalls: 4, failureRateThreshold: 0.5 });
    expect(s.failure()).toBe(false);
    expect(s.failure()).toBe(false);
    expect(s.failure()).toBe(false);
    expect(s.failure()).toBe(true);
  });

  it('opens when the failure rate over the window reaches the threshold', () => {
    const s = new CountWindowBreaker({ size: 4, minimumCalls: 4, failureRateThreshold: 0.5 });
    s.success();
    s.success();
    expect(s.failure()).toBe(false); // 1/3 and below minimum
    expect(s.failure()).toBe(true); // 2/4
  });

  it('drops the oldest outcome once the window is full', () => {
    const s = new CountWindowBreaker({ size: 3, minimumCalls: 3, failureRateThreshold: 1 });
    s.failure();
    s.success();
    s.failure();
    // window is now [success, failure, failure]: 2/3
    expect(s.failure()).toBe(false);
    // window [failure, failure, failure]
    expect(s.failure()).toBe(true);
  });

  it('round-trips its window through toJSON and restore', () => {
    const a = new CountWindowBreaker({ size: 3, minimumCalls: 3, failureRateThreshold: 1 });
    a.failure();
    a.failure();
    const b = new CountWindowBreaker({ size: 3, minimumCalls: 3, failureRateThreshold: 1 });
    b.restore(a.toJSON());
    expect(b.failure()).toBe(true);
  });

  it('rejects minimumCalls above size and a threshold outside (0, 1]', () => {
    expect(() => new CountWindowBreaker({ size: 2, minimumCalls: 3 })).toThrow(/"minimumCalls"/);
    expect(() => new CountWindowBreaker({ failureRateThreshold: 0 })).toThrow(/"failureRateThreshold"/);
  });
});
