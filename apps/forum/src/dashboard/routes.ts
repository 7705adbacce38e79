import type { AddressInfo } from 'node:net';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { type Clock, realClock } from 'keel/clock';
import { type AssetSet, loadAssets, sendAsset } from './assets.ts';
import { authorised, cookieValue, safeEqual, setCookieHeader } from './auth.ts';
import { Collector } from './collector.ts';
import type { DashboardSources } from './sources.ts';
import { SseHub } from './stream.ts';

export interface DashboardOptions {
  /** The secret for `Authorization: Bearer`, `?token=` and the cookie derived from it (at least 16 characters). */
  token: string;
  /** Where the figures come from. */
  sources: DashboardSources;
  /** Time between stream events, ms. Default: `1_000`. */
  intervalMs?: number;
  /** The latency objective drawn on the latency chart, ms. Default: `127`. */
  sloMs?: number;
  /** The error-rate objective drawn on the error chart: a fraction of responses that are 5xx (0.01 = 1 %). Default: `0.01`. */
  errorRateSlo?: number;
  /** Concurrent event streams at most; the next one gets 503. Default: `16`. */
  maxStreams?: number;
  /** Consecutive events a stalled stream may miss before it is dropped. Default: `30`. */
  maxSkips?: number;
  /** Longest `GET /dashboard/data` waits for the health source, ms. Default: `2_000`. */
  healthTimeoutMs?: number;
  /** Lifetime of the dashboard cookie, s. Default: `28_800` (8 h). */
  cookieMaxAgeS?: number;
  /** Log the page URL, token included, once the server listens (for a generated development token). Default: `false`. */
  logUrl?: boolean;
  /** Drives the stream's timer. Default: the real clock. */
  clock?: Clock;
  /** Receives a function that ends every open stream, for a graceful shutdown's drain (open streams never end by themselves). Default: none. */
  onStreams?: (endAll: () => Promise<void>) => void;
}

const PATH = '/dashboard';
const ASSETS = `${PATH}/assets`;
// Scripts, styles and the stream come from this origin only; no inline script or style
// elements (uPlot sizes its elements through the CSSOM, which CSP allows).
const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
const IMMUTABLE = 'public, max-age=31536000, immutable';

function int(name: string, value: unknown, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max)
    throw new TypeError(`dashboardRoutes: option "${name}" must be an integer from ${min} to ${max} (got ${String(value)})`);
  return value;
}

function fraction(name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0 || value > 1)
    throw new TypeError(`dashboardRoutes: option "${name}" must be a fraction above 0 and at most 1 (got ${String(value)})`);
  return value;
}

function fn<T>(name: string, value: T | undefined): T | undefined {
  if (value !== undefined && typeof value !== 'function') throw new TypeError(`dashboardRoutes: option "${name}" must be a function`);
  return value;
}

function validate(options: DashboardOptions) {
  if (typeof options !== 'object' || options === null) throw new TypeError('dashboardRoutes: options must be an object');
  if (typeof options.token !== 'string' || options.token.length < 16)
    throw new TypeError('dashboardRoutes: option "token" must be a string of at least 16 characters');
  const s = options.sources;
  if (typeof s !== 'object' || s === null || typeof s.metrics !== 'function')
    throw new TypeError('dashboardRoutes: option "sources" must be an object with a metrics() function');
  for (const k of ['health', 'slowSql', 'slowSqlPlans', 'live'] as const)
    if (s[k] !== undefined && typeof s[k] !== 'function') throw new TypeError(`dashboardRoutes: option "sources.${k}" must be a function`);
  const clock = options.clock ?? realClock;
  if (typeof clock.now !== 'function' || typeof clock.setTimeout !== 'function')
    throw new TypeError('dashboardRoutes: option "clock" must be a Clock');
  return {
    token: options.token,
    sources: s,
    intervalMs: int('intervalMs', options.intervalMs, 1_000, 50, 60_000),
    sloMs: int('sloMs', options.sloMs, 127, 1, 600_000),
    errorRateSlo: fraction('errorRateSlo', options.errorRateSlo, 0.01),
    maxStreams: int('maxStreams', options.maxStreams, 16, 1, 10_000),
    maxSkips: int('maxSkips', options.maxSkips, 30, 1, 10_000),
    healthTimeoutMs: int('healthTimeoutMs', options.healthTimeoutMs, 2_000, 1, 60_000),
    cookieMaxAgeS: int('cookieMaxAgeS', options.cookieMaxAgeS, 28_800, 60, 31_536_000),
    logUrl: options.logUrl === true,
    clock,
    onStreams: fn('onStreams', options.onStreams),
  };
}

function unauthorised(reply: FastifyReply): FastifyReply {
  return reply
    .code(401)
    .header('www-authenticate', 'Bearer realm="dashboard"')
    .header('cache-control', 'no-store')
    .send({ error: 'unauthorized', message: 'the dashboard token is required (Authorization: Bearer, or open /dashboard?token=…)' });
}

/**
 * The performance dashboard: `GET /dashboard` (the page), `/dashboard/assets/*` (its
 * precompressed, versioned files), `GET /dashboard/data` (one JSON snapshot) and
 * `GET /dashboard/stream` (server-sent events, one snapshot per `intervalMs`). Token-protected;
 * closing the app ends every stream and stops the timer.
 *
 * @example
 * ```ts
 * await app.register(dashboardRoutes({
 *   token: config.dashboardToken,
 *   sources: { metrics: () => metrics.snapshot(), slowSql: () => repos.statements.stats.top() },
 * }));
 * ```
 */
export function dashboardRoutes(options: DashboardOptions): FastifyPluginAsync {
  const o = validate(options);
  const expectedCookie = cookieValue(o.token);
  return async (app) => {
    const set: AssetSet = await loadAssets(ASSETS);
    const collector = new Collector(o.sources, { ...o, streams: () => hub.stats.streams });
    const hub: SseHub = new SseHub({
      intervalMs: o.intervalMs,
      maxStreams: o.maxStreams,
      maxSkips: o.maxSkips,
      clock: o.clock,
      frame: () => JSON.stringify(collector.snapshot()),
    });
    // Ended before the server stops accepting: an open stream would otherwise hold close() forever.
    o.onStreams?.(async () => hub.close());
    app.addHook('preClose', async () => hub.close());
    app.addHook('onClose', async () => hub.close());
    app.addHook('onSend', async (_request, reply, payload) => {
      reply.header('content-security-policy', CSP);
      reply.header('x-content-type-options', 'nosniff');
      reply.header('referrer-policy', 'no-referrer');
      return payload;
    });
    if (o.logUrl) {
      app.addHook('onListen', async () => {
        const address = app.server.address() as AddressInfo | null;
        if (address && typeof address === 'object') {
          const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
          app.log.info(`dashboard: http://${host}:${address.port}${PATH}?token=${o.token}`);
        }
      });
    }

    const allowed = (request: FastifyRequest) => authorised(request, o.token, expectedCookie);

    app.get<{ Querystring: { token?: string } }>(PATH, async (request, reply) => {
      const offered = request.query.token;
      if (typeof offered === 'string') {
        if (!safeEqual(offered, o.token)) return unauthorised(reply);
        // Trade the token in the URL for a cookie at once, so it leaves the address bar and history.
        reply.header('set-cookie', setCookieHeader(o.token, PATH, request.protocol === 'https', o.cookieMaxAgeS));
        return reply.code(303).header('location', PATH).header('cache-control', 'no-store').send();
      }
      if (!allowed(request)) return unauthorised(reply);
      reply.header('x-frame-options', 'DENY');
      return sendAsset(request, reply, set.page, 'private, no-cache');
    });

    app.get<{ Params: { name: string }; Querystring: { v?: string } }>(`${ASSETS}/:name`, async (request, reply) => {
      const a = set.assets.get(request.params.name);
      if (!a) return reply.code(404).send({ error: 'not_found', message: 'no such dashboard asset' });
      // Immutable only under the URL the page links (its content hash); any other URL revalidates.
      return sendAsset(request, reply, a, request.query.v === a.version ? IMMUTABLE : 'public, no-cache');
    });

    app.get(`${PATH}/data`, async (request, reply) => {
      if (!allowed(request)) return unauthorised(reply);
      reply.header('cache-control', 'no-store');
      return collector.fresh();
    });

    // No HEAD twin: a HEAD would be registered as a stream that never sends a byte.
    // Out of keel's HTTP metrics: an open stream is not a request in flight (it would count
    // toward shedding) and its lifetime is not a latency (it put the dashboard's p99 at seconds).
    app.get(`${PATH}/stream`, { exposeHeadRoute: false, config: { keel: { metrics: false } } }, async (request, reply) => {
      if (!allowed(request)) return unauthorised(reply);
      if (!hub.accepting) {
        return reply.code(503).header('retry-after', '5').send({ error: 'unavailable', message: 'too many dashboard streams open' });
      }
      // The stream is written to the socket directly: Fastify's reply would buffer or serialise it.
      reply.hijack();
      hub.add(reply.raw);
      return reply;
    });
  };
}
