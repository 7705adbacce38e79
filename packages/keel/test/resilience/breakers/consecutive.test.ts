import { describe, expect, it } from 'vitest';
import { ConsecutiveBreaker } from '../../../src/resilience/breakers/consecutive.ts';

describe('ConsecutiveBreaker', () => {
  it('signals open on the threshold-th failure in a row', () => {
    const s = new ConsecutiveBreaker(3);
    expect(s.failure()).toBe(false);
    expect(s.failure()).toBe(false);
    expect(s.failure()).toBe(true);
  });

  it('resets the count on a success', () => {
    const s = new ConsecutiveBreaker(2);
    s.failure();
    s.success();
    expect(s.failure()).toBe(false);
  });

  it('round-trips its count through toJSON and restore', () => {
    const a = new ConsecutiveBreaker(2);
    a.failure();
    const b = new ConsecutiveBreaker(2);
    b.restore(a.toJSON());
    expect(b.failure()).toBe(true);
  });

  it('rejects a threshold below 1', () => {
    expect(() => new ConsecutiveBreaker(0)).toThrow(/"threshold"/);
  });
});
