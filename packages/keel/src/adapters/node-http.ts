/**
 * Node `http` / Express / Connect middleware: `(req, res, next)`. Trace context for the rest
 * of the chain, RED metrics when the response finishes (or the socket closes first), load
 * shedding, health routes and an optional token-protected `/metrics`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TraceContext } from '../observe/trace.ts';
import {
  adapterConfig,
  bearerOk,
  healthAnswer,
  healthRouteOf,
  type KeelAdapterOptions,
  pathOf,
  SHED_BODY,
  UNAUTHORIZED_BODY,
  UNMATCHED,
} from './core.ts';

export type { AdapterMetrics, KeelAdapterOptions } from './core.ts';

export interface KeelNodeOptions extends KeelAdapterOptions {
  /**
   * The route template for metrics, read when the response ends. Default: Express's
   * `req.baseUrl + req.route.path` when a route matched, else `'<unmatched>'` (never the raw URL).
   */
  route?: (req: IncomingMessage) => string | undefined;
}

type Next = (err?: unknown) => void;

/** The Node middleware: call with `next` in Express/Connect, or without in a plain server (see {@link keelHandler}). */
export type KeelMiddleware = (req: IncomingMessage, res: ServerResponse, next: Next) => void;

interface ExpressLike {
  baseUrl?: string;
  route?: { path?: unknown };
}

function expressRoute(req: IncomingMessage): string | undefined {
  const r = req as IncomingMessage & ExpressLike;
  const path = r.route?.path;
  return typeof path === 'string' ? `${r.baseUrl ?? ''}${path}` : undefined;
}

const TRACE = Symbol('keel.trace');

/**
 * The trace context of a request handled by the middleware.
 *
 * @example
 * ```ts
 * import { traceOf } from 'keel/adapters/node-http';
 * app.get('/x', (req, res) => res.json({ requestId: traceOf(req)?.requestId }));
 * ```
 */
export function traceOf(req: IncomingMessage): TraceContext | undefined {
  return (req as IncomingMessage & { [TRACE]?: TraceContext })[TRACE];
}

function sendJson(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), ...headers });
  res.end(body);
}

/**
 * Creates the middleware.
 *
 * @example
 * ```ts
 * import express from 'express';
 * import { keelMiddleware } from 'keel/adapters/node-http';
 * import { Health, Tracing } from 'keel/observe';
 * const tracing = new Tracing();
 * const app = express();
 * app.use(keelMiddleware({ tracing, health: new Health() }));
 * app.get('/hello', (_req, res) => { res.json({ trace: tracing.current()?.traceId }); });
 * ```
 */
export function keelMiddleware(options?: KeelNodeOptions): KeelMiddleware {
  const cfg = adapterConfig('keelMiddleware', options);
  const routeFn = options?.route;
  if (routeFn !== undefined && typeof routeFn !== 'function') throw new TypeError('keel: keelMiddleware option "route" must be a function');
  const route = routeFn ?? expressRoute;
  const { tracing, shedder, otel, health, metrics, echoRequestId, asyncContext, requestIdHeader, retryAfter, healthPrefix, metricsPath } =
    cfg;
  const http = metrics?.http;

  return function keel(req, res, next) {
    // Decided before this request counts as in flight: maxInFlight N serves N at once, not N - 1.
    const shed = shedder?.shouldShed(req.url ?? '/') === true;
    const mark = http !== undefined ? http.start() : 0;
    const ctx = tracing.fromHeaders(req.headers);
    (req as IncomingMessage & { [TRACE]?: TraceContext })[TRACE] = ctx;
    if (echoRequestId) res.setHeader(requestIdHeader, ctx.requestId);
    const url = req.url ?? '/';
    const span = otel?.startRequestSpan(ctx, req.method ?? 'GET', pathOf(url));
    if (http !== undefined || span !== undefined) {
      // 'close' follows 'finish', or comes alone when the client hung up first (499). It fires
      // once and the listener goes with the response, so `on`, without `once`'s wrapper and removal.
      const end = (): void => {
        const status = res.writableEnded ? res.statusCode : 499;
        const r = route(req) ?? UNMATCHED;
        http?.end(mark, req.method ?? 'GET', r, status);
        if (span !== undefined) otel?.endRequestSpan(span, req.method ?? 'GET', status, r === UNMATCHED ? undefined : r);
      };
      res.on('close', end);
    }
    if (shed) {
      sendJson(res, 503, SHED_BODY, { 'retry-after': retryAfter });
      return;
    }
    if (health !== undefined && req.method === 'GET') {
      const which = healthRouteOf(pathOf(url), healthPrefix);
      if (which !== undefined) {
        void healthAnswer(health, which).then((a) => sendJson(res, a.statusCode, JSON.stringify(a.body), { 'cache-control': 'no-store' }));
        return;
      }
    }
    if (metrics !== undefined && metricsPath !== undefined && req.method === 'GET' && pathOf(url) === metricsPath) {
      if (!bearerOk(req.headers.authorization, cfg.tokenDigest)) {
        sendJson(res, 401, UNAUTHORIZED_BODY, { 'www-authenticate': 'Bearer' });
        return;
      }
      metrics.scrape().then(
        ({ contentType, body }) => {
          res.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store' });
          res.end(body);
        },
        (err: unknown) => next(err),
      );
      return;
    }
    const run = (): void => next();
    if (span !== undefined) otel?.withSpan(span, () => (asyncContext ? tracing.run(ctx, run) : run()));
    else if (asyncContext) tracing.run(ctx, run);
    else run();
  };
}

/**
 * Wraps a plain `node:http` handler with the middleware.
 *
 * @example
 * ```ts
 * import { createServer } from 'node:http';
 * import { keelHandler } from 'keel/adapters/node-http';
 * const server = createServer(keelHandler({}, (_req, res) => res.end('ok')));
 * server.close();
 * ```
 */
export function keelHandler(
  options: KeelNodeOptions | undefined,
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): (req: IncomingMessage, res: ServerResponse) => void {
  if (typeof handler !== 'function') throw new TypeError('keel: keelHandler needs a handler function');
  const mw = keelMiddleware(options);
  return (req, res) =>
    mw(req, res, (err?: unknown) => {
      if (err === undefined) return handler(req, res);
      if (!res.headersSent) sendJson(res, 500, '{"error":"Internal Server Error"}');
      else res.destroy();
    });
}
