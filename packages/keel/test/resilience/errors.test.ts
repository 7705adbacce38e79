import { describe, expect, it } from 'vitest';
import { isKeelError } from '../../src/errors.ts';
import {
  BrokenCircuitError,
  BulkheadRejectedError,
  isBrokenCircuitError,
  isBulkheadRejectedError,
  isRateLimitedError,
  isRetryExhaustedError,
  isTimeoutError,
  RateLimitedError,
  RetryExhaustedError,
  TimeoutError,
} from '../../src/resilience/errors.ts';

describe('resilience errors', () => {
  it('carry stable codes that their guards recognise', () => {
    const cases: [Error, (e: unknown) => boolean, string][] = [
      [new BrokenCircuitError('b', 'open', 5), isBrokenCircuitError, 'KEEL_BROKEN_CIRCUIT'],
      [new BulkheadRejectedError('b', 'full'), isBulkheadRejectedError, 'KEEL_BULKHEAD_REJECTED'],
      [new RateLimitedError('r', 1_500), isRateLimitedError, 'KEEL_RATE_LIMITED'],
      [new TimeoutError('t', 10), isTimeoutError, 'KEEL_TIMEOUT'],
      [new RetryExhaustedError('r', [new Error('a')], 'attempts'), isRetryExhaustedError, 'KEEL_RETRY_EXHAUSTED'],
    ];
    for (const [err, guard, code] of cases) {
      expect((err as unknown as { code: string }).code).toBe(code);
      expect(guard(err)).toBe(true);
      expect(isKeelError(err)).toBe(true);
    }
    expect(isTimeoutError(new BulkheadRejectedError('b', 'full'))).toBe(false);
  });

  it('recognise an error from another copy of keel by its code', () => {
    const foreign = Object.assign(new Error('x'), { code: 'KEEL_TIMEOUT' });
    expect(isTimeoutError(foreign)).toBe(true);
  });

  it('give a rate-limit wait in whole seconds for Retry-After', () => {
    expect(new RateLimitedError('r', 1_200).retryAfter).toBe(2);
  });

  it('keep every retry cause with the last as cause', () => {
    const a = new Error('a');
    const b = new Error('b');
    const e = new RetryExhaustedError('r', [a, b], 'budget');
    expect(e.causes).toEqual([a, b]);
    expect(e.cause).toBe(b);
    expect(e.attempts).toBe(2);
  });
});
