import { describe, expect, it } from 'vitest';
import { RetryBudget } from '../../src/resilience/retry-budget.ts';
import { FakeClock } from '../../src/testing/index.ts';

describe('RetryBudget', () => {
  it('allows minRetries plus ratio of calls per window', () => {
    const clock = new FakeClock();
    const b = new RetryBudget({ clock, ratio: 0.5, minRetries: 1, windowMs: 1_000 });
    for (let i = 0; i < 4; i++) b.recordCall();
    const granted = [b.tryRetry(), b.tryRetry(), b.tryRetry(), b.tryRetry()];
    expect(granted).toEqual([true, true, true, false]);
  });

  it('frees the budget once the window has passed', () => {
    const clock = new FakeClock();
    const b = new RetryBudget({ clock, ratio: 0, minRetries: 1, windowMs: 1_000 });
    expect(b.tryRetry()).toBe(true);
    expect(b.tryRetry()).toBe(false);
    clock.advance(1_000);
    expect(b.tryRetry()).toBe(true);
  });

  it('counts only the share of calls that fall inside the window', () => {
    const clock = new FakeClock();
    const b = new RetryBudget({ clock, windowMs: 1_000 });
    for (let i = 0; i < 100; i++) b.recordCall();
    clock.advance(4_000);
    // 100 calls spread over 4 s: about a quarter of them are in the last second.
    const { calls } = b.usage;
    expect(calls).toBeGreaterThan(20);
    expect(calls).toBeLessThan(30);
  });

  it('rejects a negative ratio and a tiny window', () => {
    expect(() => new RetryBudget({ ratio: -1 })).toThrow(/"ratio"/);
    expect(() => new RetryBudget({ windowMs: 1 })).toThrow(/"windowMs"/);
  });
});
