import { describe, expect, it } from 'vitest';
import { parseRetryAfter, retryAfterOf } from '../../src/resilience/retry-after.ts';

const now = Date.parse('2026-01-01T00:00:00Z');

describe('Retry-After', () => {
  it('parses seconds and HTTP dates', () => {
    expect(parseRetryAfter('3', now)).toBe(3_000);
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:05 GMT', now)).toBe(5_000);
    expect(parseRetryAfter('Wed, 31 Dec 2025 23:59:00 GMT', now)).toBe(0);
  });

  it('ignores garbage and negative numbers', () => {
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(-1, now)).toBeUndefined();
    expect(parseRetryAfter(Number.NaN, now)).toBeUndefined();
  });

  it('reads every documented shape', () => {
    expect(retryAfterOf({ retryAfterMs: 250 }, now)).toBe(250);
    expect(retryAfterOf({ retryAfter: 2 }, now)).toBe(2_000);
    expect(retryAfterOf({ retryAfter: new Date(now + 1_000) }, now)).toBe(1_000);
    expect(retryAfterOf(new Response(null, { status: 503, headers: { 'retry-after': '4' } }), now)).toBe(4_000);
    expect(retryAfterOf({ headers: { 'retry-after': '1' } }, now)).toBe(1_000);
    expect(retryAfterOf({ response: { headers: new Headers({ 'retry-after': '7' }) } }, now)).toBe(7_000);
    expect(retryAfterOf(new Error('plain'), now)).toBeUndefined();
  });
});
