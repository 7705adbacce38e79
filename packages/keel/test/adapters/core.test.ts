import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { bearerOk } from '../../src/adapters/core.ts';

const digest = (token: string): Buffer => createHash('sha256').update(token).digest();

describe('bearerOk', () => {
  it('accepts the bearer scheme in any case (RFC 9110: auth schemes are case-insensitive)', () => {
    const token = digest('s3cret');
    expect(bearerOk('bearer s3cret', token)).toBe(true);
    expect(bearerOk('BEARER s3cret', token)).toBe(true);
    expect(bearerOk('Bearer s3cret', token)).toBe(true);
  });

  it('refuses a wrong token, another scheme, or a scheme with no space before the token', () => {
    const token = digest('s3cret');
    expect(bearerOk('bearer s3crex', token)).toBe(false);
    expect(bearerOk('Basic s3cret', token)).toBe(false);
    expect(bearerOk('Bearers3cret', token)).toBe(false);
    expect(bearerOk('bearer', token)).toBe(false);
    expect(bearerOk(undefined, token)).toBe(false);
  });

  it('lets every request through when no token is configured', () => {
    expect(bearerOk(undefined, undefined)).toBe(true);
  });
});
