/**
 * Token checks for the dashboard. A browser cannot put a header on a page load or an
 * EventSource, so the page accepts `?token=` once and answers with an HttpOnly,
 * SameSite=Strict cookie scoped to the dashboard's path; the data and stream routes accept
 * that cookie or `Authorization: Bearer <token>`.
 *
 * The cookie holds an HMAC of the token, not the token, so a leaked cookie (a HAR file, a
 * screenshot of devtools) cannot be replayed as a bearer token against `/metrics`.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';

export const COOKIE_NAME = 'keel_dashboard';

/** Constant-time equality of two strings of any lengths (both are hashed to 32 bytes first). */
export function safeEqual(a: string, b: string): boolean {
  const x = createHash('sha256').update(a).digest();
  const y = createHash('sha256').update(b).digest();
  return timingSafeEqual(x, y);
}

/** The cookie value for a token. */
export function cookieValue(token: string): string {
  return createHmac('sha256', token).update('keel-dashboard-cookie-v1').digest('base64url');
}

/** One cookie from a `Cookie` header, or undefined. */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** The `Set-Cookie` header that lets a browser in for `maxAgeS` seconds. */
export function setCookieHeader(token: string, path: string, secure: boolean, maxAgeS: number): string {
  return `${COOKIE_NAME}=${cookieValue(token)}; Path=${path}; Max-Age=${maxAgeS}; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}`;
}

/** True if the request carries the token as a bearer header or the dashboard cookie. */
export function authorised(request: FastifyRequest, token: string, expectedCookie: string): boolean {
  const header = request.headers.authorization;
  if (header?.startsWith('Bearer ') && safeEqual(header.slice(7).trim(), token)) return true;
  const cookie = readCookie(request.headers.cookie, COOKIE_NAME);
  return cookie !== undefined && safeEqual(cookie, expectedCookie);
}

/**
 * The token to protect the dashboard with: the configured one; in development, a random one
 * (`generated: true`, so the caller logs the URL once); in production without one, `undefined`:
 * the dashboard stays off rather than open or guessable.
 *
 * @example
 * ```ts
 * const { token, generated } = resolveDashboardToken(config.dashboardToken, process.env.NODE_ENV === 'production');
 * ```
 */
export function resolveDashboardToken(
  configured: string | undefined,
  production: boolean,
): { token: string | undefined; generated: boolean } {
  if (configured) return { token: configured, generated: false };
  if (production) return { token: undefined, generated: false };
  return { token: randomBytes(24).toString('base64url'), generated: true };
}
