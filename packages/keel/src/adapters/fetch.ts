/**
 * Web-standard handlers, `(Request) => Response | Promise<Response>`, as in Next.js route
 * handlers, Hono, Bun and Deno: {@link withKeel} wraps one handler; {@link keelFetchMiddleware}
 * is a `(c, next)` middleware for Hono-style frameworks. Both give the handler trace context,
 * record RED metrics when the handler returns its Response, shed load, and serve the health
 * and `/metrics` routes.
 */
import type { TraceContext } from '../observe/trace.ts';
import {
  type AdapterConfig,
  adapterConfig,
  bearerOk,
  healthAnswer,
  healthRouteOf,
  type KeelAdapterOptions,
  SHED_BODY,
  UNAUTHORIZED_BODY,
  UNMATCHED,
} from './core.ts';

export type { AdapterMetrics, KeelAdapterOptions } from './core.ts';

const JSON_TYPE = 'application/json; charset=utf-8';

/**
 * The path of an absolute URL without building a `URL` (≈ 1 µs saved per request).
 *
 * @example
 * ```ts
 * import { pathOfUrl } from 'keel/adapters/fetch';
 * pathOfUrl('https://example.com/api/topics?page=2'); // '/api/topics'
 * ```
 */
export function pathOfUrl(url: string): string {
  const scheme = url.indexOf('://');
  let start = scheme === -1 ? 0 : url.indexOf('/', scheme + 3);
  if (start === -1) return '/';
  if (scheme === -1 && url[0] !== '/') start = 0;
  let end = url.length;
  const q = url.indexOf('?', start);
  if (q !== -1) end = q;
  const h = url.indexOf('#', start);
  if (h !== -1 && h < end) end = h;
  return url.slice(start, end) || '/';
}

/** Sets a header, copying the Response first when its headers are immutable (e.g. a fetch result). */
function withHeader(res: Response, name: string, value: string): Response {
  try {
    res.headers.set(name, value);
    return res;
  } catch {
    const copy = new Response(res.body, { status: res.status, statusText: res.statusText, headers: new Headers(res.headers) });
    copy.headers.set(name, value);
    return copy;
  }
}

/** Answers keel's own routes and shed requests; undefined when the request is the app's. */
function ownAnswer(cfg: AdapterConfig, req: Request, path: string, shed: boolean): Response | Promise<Response> | undefined {
  if (shed) {
    return new Response(SHED_BODY, { status: 503, headers: { 'content-type': JSON_TYPE, 'retry-after': cfg.retryAfter } });
  }
  if (req.method !== 'GET') return undefined;
  const health = cfg.health;
  if (health !== undefined) {
    const which = healthRouteOf(path, cfg.healthPrefix);
    if (which !== undefined) {
      return healthAnswer(health, which).then(
        (a) =>
          new Response(JSON.stringify(a.body), {
            status: a.statusCode,
            headers: { 'content-type': JSON_TYPE, 'cache-control': 'no-store' },
          }),
      );
    }
  }
  const metrics = cfg.metrics;
  if (metrics !== undefined && cfg.metricsPath === path) {
    if (!bearerOk(req.headers.get('authorization'), cfg.tokenDigest)) {
      return new Response(UNAUTHORIZED_BODY, { status: 401, headers: { 'content-type': JSON_TYPE, 'www-authenticate': 'Bearer' } });
    }
    return metrics
      .scrape()
      .then(({ contentType, body }) => new Response(body, { headers: { 'content-type': contentType, 'cache-control': 'no-store' } }));
  }
  return undefined;
}

/** Runs `fn` under the request's trace context (and OTel span), recording metrics when it settles. */
async function around(
  cfg: AdapterConfig,
  req: Request,
  ctx: TraceContext,
  path: string,
  route: (res: Response | undefined) => string,
  fn: () => Response | Promise<Response>,
): Promise<Response> {
  // Decided before this request counts as in flight: maxInFlight N serves N at once, not N - 1.
  const shed = cfg.shedder?.shouldShed(path) === true;
  const http = cfg.metrics?.http;
  const mark = http !== undefined ? http.start() : 0;
  const span = cfg.otel?.startRequestSpan(ctx, req.method, path);
  let res: Response | undefined;
  let own: Response | Promise<Response> | undefined;
  try {
    own = ownAnswer(cfg, req, path, shed);
    if (own !== undefined) res = await own;
    else if (!cfg.asyncContext) res = await (span !== undefined ? cfg.otel!.withSpan(span, fn) : fn());
    else if (span !== undefined) res = await cfg.otel!.withSpan(span, () => cfg.tracing.run(ctx, fn));
    else res = await cfg.tracing.run(ctx, fn);
    return cfg.echoRequestId ? withHeader(res, cfg.requestIdHeader, ctx.requestId) : res;
  } finally {
    const status = res?.status ?? 500;
    // Keel's own answers (shed, health, metrics) never reached a route.
    const r = own === undefined ? route(res) : UNMATCHED;
    http?.end(mark, req.method, r, status);
    if (span !== undefined) cfg.otel!.endRequestSpan(span, req.method, status, r === UNMATCHED ? undefined : r);
  }
}

export interface WithKeelOptions extends KeelAdapterOptions {
  /** The route template for metrics, e.g. the Next.js file route `'/api/topics/[id]'`. Default `'<unmatched>'`. */
  route?: string | ((req: Request, res: Response | undefined) => string);
}

type FetchHandler<A extends unknown[]> = (req: Request, ...rest: A) => Response | Promise<Response>;

/**
 * Wraps a `(Request) => Response` handler. Extra arguments (Next.js's `{ params }`, a
 * worker's `env`) are passed through.
 *
 * @example
 * ```ts
 * import { withKeel } from 'keel/adapters/fetch';
 * import { Tracing } from 'keel/observe';
 * const tracing = new Tracing();
 * export const GET = withKeel((req: Request) => Response.json({ trace: tracing.current()?.traceId }), { tracing, route: '/api/hello' });
 * const res = await GET(new Request('http://localhost/api/hello'));
 * ```
 */
export function withKeel<A extends unknown[]>(
  handler: FetchHandler<A>,
  options?: WithKeelOptions,
): (req: Request, ...rest: A) => Promise<Response> {
  if (typeof handler !== 'function') throw new TypeError('keel: withKeel needs a handler function');
  const cfg = adapterConfig('withKeel', options);
  const r = options?.route;
  if (r !== undefined && typeof r !== 'string' && typeof r !== 'function')
    throw new TypeError('keel: withKeel option "route" must be a string or a function');
  return (req: Request, ...rest: A) => {
    const ctx = cfg.tracing.fromHeaders(req.headers);
    const route = typeof r === 'function' ? (res: Response | undefined) => r(req, res) : () => r ?? UNMATCHED;
    return around(cfg, req, ctx, pathOfUrl(req.url), route, () => handler(req, ...rest));
  };
}

/** The slice of a Hono-style context the middleware uses. */
export interface FetchMiddlewareContext {
  req: { raw: Request };
  res: Response;
}

export interface KeelFetchMiddlewareOptions<C extends FetchMiddlewareContext> extends KeelAdapterOptions {
  /** The route template, read after the handler ran; for Hono `(c) => routePath(c, -1)` from `hono/route`. Default `'<unmatched>'`. */
  route?: (c: C) => string | undefined;
}

/**
 * A `(c, next)` middleware for Hono-style frameworks: `c.req.raw` is the Request, `c.res`
 * the Response after `next()`. Keel's own answers (shed, health, metrics) are returned.
 *
 * @example
 * ```ts
 * import { Hono } from 'hono';
 * import { routePath } from 'hono/route';
 * import { keelFetchMiddleware } from 'keel/adapters/fetch';
 * const app = new Hono();
 * app.use(keelFetchMiddleware({ route: (c) => routePath(c, -1) }));
 * app.get('/hello/:name', (c) => c.json({ hi: c.req.param('name') }));
 * ```
 */
export function keelFetchMiddleware<C extends FetchMiddlewareContext>(
  options?: KeelFetchMiddlewareOptions<C>,
): (c: C, next: () => Promise<void>) => Promise<Response | undefined> {
  const cfg = adapterConfig('keelFetchMiddleware', options);
  const routeFn = options?.route;
  if (routeFn !== undefined && typeof routeFn !== 'function')
    throw new TypeError('keel: keelFetchMiddleware option "route" must be a function');
  return async (c, next) => {
    const req = c.req.raw;
    const ctx = cfg.tracing.fromHeaders(req.headers);
    const res = await around(
      cfg,
      req,
      ctx,
      pathOfUrl(req.url),
      () => routeFn?.(c) ?? UNMATCHED,
      async () => {
        await next();
        return c.res;
      },
    );
    if (res !== c.res) {
      // A shed or keel route answer, or a copy with the request id: hand it to the framework.
      c.res = res;
      return res;
    }
    return undefined;
  };
}
