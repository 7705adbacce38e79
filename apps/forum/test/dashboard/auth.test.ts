import { describe, expect, it } from 'vitest';
import { COOKIE_NAME, cookieValue, readCookie, resolveDashboardToken, safeEqual, setCookieHeader } from '../../src/dashboard/auth.ts';

describe('safeEqual', () => {
  it('compares strings of any lengths', () => {
    expect(safeEqual('secret-token', 'secret-token')).toBe(true);
    expect(safeEqual('secret-token', 'secret-tokeN')).toBe(false);
    expect(safeEqual('secret-token', 'secret')).toBe(false);
    expect(safeEqual('', '')).toBe(true);
  });
});

describe('the dashboard cookie', () => {
  it('is an HMAC of the token, different per token and never the token', () => {
    const a = cookieValue('token-aaaaaaaaaaaaaaaa');
    expect(a).toBe(cookieValue('token-aaaaaaaaaaaaaaaa'));
    expect(a).not.toBe(cookieValue('token-bbbbbbbbbbbbbbbb'));
    expect(a).not.toContain('token');
  });

  it('is HttpOnly, SameSite=Strict, path-scoped, and Secure only when asked', () => {
    expect(setCookieHeader('t'.repeat(16), '/dashboard', false, 60)).toBe(
      `${COOKIE_NAME}=${cookieValue('t'.repeat(16))}; Path=/dashboard; Max-Age=60; HttpOnly; SameSite=Strict`,
    );
    expect(setCookieHeader('t'.repeat(16), '/dashboard', true, 60)).toMatch(/; Secure$/);
  });

  it('is read from a Cookie header among others', () => {
    expect(readCookie(`a=1; ${COOKIE_NAME}=xyz; b=2`, COOKIE_NAME)).toBe('xyz');
    expect(readCookie('a=1', COOKIE_NAME)).toBeUndefined();
    expect(readCookie(undefined, COOKIE_NAME)).toBeUndefined();
    expect(readCookie(`x${COOKIE_NAME}=evil`, COOKIE_NAME)).toBeUndefined();
  });
});

describe('resolveDashboardToken', () => {
  it('uses the configured token', () => {
    expect(resolveDashboardToken('configured-token-123', true)).toEqual({ token: 'configured-token-123', generated: false });
  });

  it('generates a random one in development', () => {
    const a = resolveDashboardToken(undefined, false);
    const b = resolveDashboardToken(undefined, false);
    expect(a.generated).toBe(true);
    expect(a.token!.length).toBeGreaterThanOrEqual(32);
    expect(a.token).not.toBe(b.token);
  });

  it('leaves the dashboard off in production without one', () => {
    expect(resolveDashboardToken(undefined, true)).toEqual({ token: undefined, generated: false });
  });
});
