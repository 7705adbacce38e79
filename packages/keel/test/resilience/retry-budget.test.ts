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

  it('never counts calls made before an idle spell in the window after it', () => {
    const clock = new FakeClock();
    const b = new RetryBudget({ clock, ratio: 0.2, minRetries: 10, windowMs: 10_000 });
    for (let i = 0; i < 10_000; i++) b.recordCall(); // healthy: the clock is never read
    clock.advance(19_000);
    for (let i = 0; i < 1_000; i++) b.recordCall(); // the outage's first attempts
    let granted = 0;
    while (b.tryRetry()) granted++;
    // At most minRetries + ratio × the 1,000 calls in the window; dating the unread calls
    // to the last clock read may drop the recent ones too, but never admits the old ones.
    expect(granted).toBeLessThanOrEqual(10 + 0.2 * 1_000);
  });

  it('counts calls made since its last clock read while they are still in the window', () => {
    const clock = new FakeClock();
    const b = new RetryBudget({ clock, windowMs: 1_000 });
    expect(b.usage.calls).toBe(0);
    for (let i = 0; i < 100; i++) b.recordCall();
    clock.advance(900);
    expect(b.usage.calls).toBe(100);
    clock.advance(100);
    expect(b.usage.calls).toBe(0);
  });

  it('rejects a negative ratio and a tiny window', () => {
    expect(() => new RetryBudget({ ratio: -1 })).toThrow(/"ratio"/);
    expect(() => new RetryBudget({ windowMs: 1 })).toThrow(/"windowMs"/);
  });
});
