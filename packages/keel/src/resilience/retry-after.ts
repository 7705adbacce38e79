/**
 * Reads a server's `Retry-After` hint from an error or a result. Shapes understood, in order:
 * `x.retryAfterMs` (number, ms; Keel's own RateLimitedError and BrokenCircuitError),
 * `x.retryAfter` (number of seconds, numeric string, HTTP date string, or Date),
 * `x.headers.get('retry-after')` (fetch Response / Headers),
 * `x.headers['retry-after']` (undici / Node header objects),
 * and the same header shapes on `x.response`.
 */

function field(x: unknown, name: string): unknown {
  return typeof x === 'object' && x !== null ? (x as Record<string, unknown>)[name] : undefined;
}

/**
 * Parses a `Retry-After` value (seconds or HTTP date) into ms from `now`; undefined if unusable.
 *
 * @example
 * ```ts
 * parseRetryAfter('120', Date.now()); // 120000
 * parseRetryAfter('Wed, 21 Oct 2015 07:28:00 GMT', Date.now()); // 0 (in the past)
 * ```
 */
export function parseRetryAfter(value: unknown, now: number): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? value * 1000 : undefined;
  if (value instanceof Date) {
    const t = value.getTime();
    return Number.isFinite(t) ? Math.max(0, t - now) : undefined;
  }
  if (typeof value !== 'string') return undefined;
  const s = value.trim();
  if (/^\d+(\.\d+)?$/.test(s)) return Number(s) * 1000;
  const t = Date.parse(s);
  return Number.isFinite(t) ? Math.max(0, t - now) : undefined;
}

function fromHeaders(headers: unknown, now: number): number | undefined {
  if (typeof headers !== 'object' || headers === null) return undefined;
  const get = (headers as { get?: unknown }).get;
  if (typeof get === 'function') return parseRetryAfter((get as (n: string) => unknown).call(headers, 'retry-after'), now);
  return parseRetryAfter((headers as Record<string, unknown>)['retry-after'], now);
}

/**
 * The wait in ms that `x` (an error or a Response-like result) asks for, or undefined
 * when it carries no usable hint.
 *
 * @example
 * ```ts
 * retryAfterOf(new Response(null, { status: 429, headers: { 'retry-after': '2' } }), Date.now()); // 2000
 * ```
 */
export function retryAfterOf(x: unknown, now: number): number | undefined {
  if (typeof x !== 'object' || x === null) return undefined;
  const ms = field(x, 'retryAfterMs');
  if (typeof ms === 'number' && Number.isFinite(ms) && ms >= 0) return ms;
  const direct = parseRetryAfter(field(x, 'retryAfter'), now);
  if (direct !== undefined) return direct;
  const h = fromHeaders(field(x, 'headers'), now);
  if (h !== undefined) return h;
  return fromHeaders(field(field(x, 'response'), 'headers'), now);
}
