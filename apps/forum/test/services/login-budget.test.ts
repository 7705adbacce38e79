import { describe, expect, it } from 'vitest';
import { LoginBudget } from '../../src/services/login-budget.ts';

const make = (clock: { now: number }, maxKeys = 100) => new LoginBudget({ limit: 3, windowMs: 900_000, maxKeys, now: () => clock.now });

describe('LoginBudget', () => {
  it('refuses once the budget is spent, with the wait until one attempt has refilled', () => {
    const clock = { now: 0 };
    const budget = make(clock);
    expect([budget.reserve('a'), budget.reserve('a'), budget.reserve('a')]).toEqual([0, 0, 0]);
    expect(budget.reserve('a')).toBe(300_000);
    clock.now = 300_000;
    expect(budget.reserve('a')).toBe(0);
    expect(budget.reserve('a')).toBeGreaterThan(0);
  });

  it('spends nothing on a reservation that is released', () => {
    const budget = make({ now: 0 });
    for (let i = 0; i < 10; i++) {
      expect(budget.reserve('a')).toBe(0);
      budget.release('a');
    }
  });

  it('keeps accounts apart and forgets the least recently used beyond maxKeys', () => {
    const budget = make({ now: 0 }, 2);
    for (let i = 0; i < 3; i++) budget.reserve('a');
    expect(budget.reserve('b')).toBe(0);
    expect(budget.reserve('a')).toBeGreaterThan(0);
    budget.reserve('c');
    // 'b' was touched least recently when 'c' arrived.
    expect(budget.reserve('a')).toBeGreaterThan(0);
  });
});
