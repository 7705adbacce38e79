/**
 * The Fastify plugin: trace context and request ids, RED metrics by route template, load
 * shedding, health routes and an optional token-protected `/metrics`, in one `register`.
 *
 * Hooks are callback-style (no promise per hook) and nothing is allocated per request beyond
 * the trace context; ids inside it are made only if something reads them.
 */
import type { IncomingMessage } from 'node:http';
import type { Span } from '@opentelemetry/api';
import type { FastifyInstance, FastifyReply, FastifyRequest, FastifyServerOptions, HookHandlerDoneFunction } from 'fastify';
import fp from 'fastify-plugin';
import { objectOptions, optionError } from '../internal/options.ts';
import { bindTraceContext } from '../observe/log.ts';
import type { OtelBridge } from '../observe/otel.ts';
import { type TraceContext, Tracing } from '../observe/trace.ts';
import {
  type AdapterConfig,
  adapterConfig,
  bearerOk,
  healthAnswer,
  type KeelAdapterOptions,
  SHED_BODY,
  UNAUTHORIZED_BODY,
  UNMATCHED,
} from './core.ts';

export type { AdapterMetrics, KeelAdapterOptions } from './core.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** This request's trace context (keel). */
    keelTrace: TraceContext | null;
    /** @internal metrics start mark; -1 once recorded. */
    keelMark: number;
    /** @internal the OpenTelemetry span, when an SDK is registered. */
    keelSpan: Span | null;
  }
  interface FastifyInstance {
    /** The plugin's resolved parts (tracing, metrics, health, shedder). */
    keel: Pick<AdapterConfig, 'tracing' | 'metrics' | 'health' | 'shedder' | 'otel'>;
  }
}

export type KeelFastifyOptions = KeelAdapterOptions;

/** Per-route settings, under the route's `config.keel`. */
export interface RouteKeelConfig {
  keel?: {
    /** `false` keeps the route out of the HTTP metrics (for streams). Default true. */
    metrics?: boolean;
  };
}

/** The request a response's 'close' listener finishes. */
const kRequest = Symbol('keel.request');
/** On the raw request: the context {@link keelFastifyServerOptions} parsed, and for which Tracing. */
const kTrace = Symbol('keel.trace');
const kTracing = Symbol('keel.tracing');
type RawWithTrace = IncomingMessage & { [kTrace]?: TraceContext; [kTracing]?: Tracing };

/** The context parsed for this raw request by `tracing`, parsed now if it was not yet. */
function contextOf(tracing: Tracing, raw: RawWithTrace): TraceContext {
  let ctx = raw[kTrace];
  if (ctx === undefined || raw[kTracing] !== tracing) {
    ctx = tracing.fromHeaders(raw.headers);
    raw[kTrace] = ctx;
    raw[kTracing] = tracing;
  }
  return ctx;
}

/** Options of {@link keelFastifyServerOptions}: the same `tracing` and `otel` as the plugin's. */
export interface KeelFastifyServerOptionsInput {
  tracing: Tracing;
  /** The plugin's `otel`, if it has one. Default: none. */
  otel?: OtelBridge;
}

/** What {@link keelFastifyServerOptions} returns: spread it into `Fastify({ … })`. */
export interface KeelFastifyServerOptions {
  genReqId: (req: IncomingMessage) => string;
  childLoggerFactory: NonNullable<FastifyServerOptions['childLoggerFactory']>;
}

/**
 * Fastify server options that give Fastify's own request log lines (`incoming request`,
 * `request completed`) the trace and request ids. Fastify writes `incoming request` before
 * any hook runs, so the plugin cannot reach it; these run where Fastify creates the request:
 * `genReqId` parses the trace context from the headers (Fastify's `reqId` becomes the keel
 * request id) and `childLoggerFactory` makes the request's logger carry that context for the
 * {@link createLogger} mixin. The plugin then reuses the parsed context instead of parsing
 * the headers again. Pass the same `tracing` (and `otel`) as to the plugin and the logger.
 * With `otel`, the request span only starts in the plugin's hook, so lines before it carry
 * the request id, and the trace id only when the caller sent one: not ids the span replaces.
 *
 * @example
 * ```ts
 * import Fastify from 'fastify';
 * import keelFastify, { keelFastifyServerOptions } from 'keel/adapters/fastify';
 * import { createLogger, Tracing } from 'keel/observe';
 * const tracing = new Tracing();
 * const app = Fastify({ loggerInstance: createLogger({ tracing }), ...keelFastifyServerOptions({ tracing }) });
 * await app.register(keelFastify, { tracing });
 * ```
 */
export function keelFastifyServerOptions(options: KeelFastifyServerOptionsInput): KeelFastifyServerOptions {
  const o = objectOptions('keelFastifyServerOptions', options);
  const tracing = o.tracing;
  if (!(tracing instanceof Tracing)) throw optionError('keelFastifyServerOptions', 'tracing', 'a Tracing', tracing);
  if (o.otel !== undefined && typeof o.otel?.startRequestSpan !== 'function') {
    throw optionError('keelFastifyServerOptions', 'otel', 'an OtelBridge', o.otel);
  }
  const provisional = o.otel !== undefined;
  return {
    genReqId: (req) => contextOf(tracing, req).requestId,
    // Also parses when genReqId did not run: Fastify skips it when its own requestIdHeader is set and present.
    childLoggerFactory(logger, bindings, childOptions, rawReq) {
      const child = logger.child(bindings, childOptions);
      // A logger whose child is itself (Fastify's no-op logger) is shared by every request.
      if (child !== logger) bindTraceContext(child, contextOf(tracing, rawReq as RawWithTrace), provisional);
      return child;
    },
  };
}

function routeOf(request: FastifyRequest): string {
  return request.routeOptions.url ?? UNMATCHED;
}

async function keelPlugin(app: FastifyInstance, options: KeelFastifyOptions): Promise<void> {
  const cfg = adapterConfig('keelFastify', options);
  const { tracing, shedder, otel, echoRequestId, asyncContext, requestIdHeader, retryAfter } = cfg;
  const http = cfg.metrics?.http;
  app.decorate('keel', { tracing, metrics: cfg.metrics, health: cfg.health, shedder, otel });
  // Start-up (plugin loading, schema compilation, a cache warm-up) blocks the loop; without
  // this, that stall would read as pressure and shed the first requests of a ready server.
  if (shedder) {
    app.addHook('onReady', (done) => {
      shedder.reset();
      done();
    });
  }
  app.decorateRequest('keelTrace', null);
  app.decorateRequest('keelMark', -1);
  app.decorateRequest('keelSpan', null);

  const finish = (request: FastifyRequest, res: FastifyReply['raw']): void => {
    const mark = request.keelMark;
    const span = request.keelSpan;
    request.keelMark = -1;
    request.keelSpan = null;
    // 'close' before end() means the client hung up first: counted as 499, so the
    // in-flight gauge never drifts up.
    const status = res.writableEnded ? res.statusCode : 499;
    const route = routeOf(request);
    if (http !== undefined && mark >= 0) http.end(mark, request.method, route, status);
    if (span !== null) otel?.endRequestSpan(span, request.method, status, route === UNMATCHED ? undefined : route);
  };

  // 'close' fires once per response, on every path (finished, or the client hung up), and the
  // listener goes with the response. So one shared function, added with `on`: no closure per
  // request, and none of `once`'s wrapper and removal (~0.25 µs a request, CPU profile, day 9).
  function onClose(this: FastifyReply['raw'] & { [kRequest]?: FastifyRequest }): void {
    const request = this[kRequest];
    if (request !== undefined) finish(request, this);
  }

  // One hook and one 'close' listener per request. Fastify's onResponse/onRequestAbort hooks
  // would each add listeners and a hook run of their own (and onResponse two clock reads).
  app.addHook('onRequest', (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => {
    const raw = request.raw as RawWithTrace;
    // Parsed already when keelFastifyServerOptions made the request id (with this tracing).
    const parsed = raw[kTracing] === tracing ? raw[kTrace] : undefined;
    const ctx = parsed ?? tracing.fromHeaders(raw.headers);
    request.keelTrace = ctx;
    if (echoRequestId) reply.header(requestIdHeader, ctx.requestId);
    // Decided before this request counts as in flight: maxInFlight N serves N at once, not N - 1.
    const shed = shedder?.shouldShed(request.url) === true;
    // The request target, query included: the bridge drops the query once it knows a span is wanted.
    const span = otel?.startRequestSpan(ctx, request.method, request.url);
    if (span !== undefined) request.keelSpan = span;
    // The ids are final now: the request's logger may log all of them.
    if (parsed !== undefined && otel !== undefined) bindTraceContext(request.log, ctx);
    // A long-lived stream (SSE, a long poll) opts out with `config: { keel: { metrics: false } }`:
    // its lifetime is not a request latency and would swamp the percentiles.
    const measured = http !== undefined && (request.routeOptions.config as RouteKeelConfig | undefined)?.keel?.metrics !== false;
    if (measured || span !== undefined) {
      if (measured) request.keelMark = http.start();
      const res = reply.raw as FastifyReply['raw'] & { [kRequest]?: FastifyRequest };
      res[kRequest] = request;
      res.on('close', onClose);
    }
    if (shed) {
      reply.code(503).header('retry-after', retryAfter).header('content-type', 'application/json; charset=utf-8').send(SHED_BODY);
      return;
    }
    if (span !== undefined) otel!.withSpan(span, () => (asyncContext ? tracing.run(ctx, done) : done()));
    else if (asyncContext) tracing.run(ctx, done);
    else done();
  });

  const health = cfg.health;
  if (health !== undefined && cfg.healthPrefix !== undefined) {
    const route = (path: string, which: 'live' | 'ready' | 'report'): void => {
      app.get(path, { logLevel: 'warn' }, async (_request, reply) => {
        const answer = await healthAnswer(health, which);
        return reply.code(answer.statusCode).header('cache-control', 'no-store').send(answer.body);
      });
    };
    route(`${cfg.healthPrefix}/live`, 'live');
    route(`${cfg.healthPrefix}/ready`, 'ready');
    route(cfg.healthPrefix === '' ? '/' : cfg.healthPrefix, 'report');
  }

  const metrics = cfg.metrics;
  if (metrics !== undefined && cfg.metricsPath !== undefined) {
    const tokenDigest = cfg.tokenDigest;
    app.get(cfg.metricsPath, { logLevel: 'warn' }, async (request, reply) => {
      if (!bearerOk(request.headers.authorization, tokenDigest)) {
        return reply.code(401).header('www-authenticate', 'Bearer').type('application/json; charset=utf-8').send(UNAUTHORIZED_BODY);
      }
      const { contentType, body } = await metrics.scrape();
      return reply.header('cache-control', 'no-store').type(contentType).send(body);
    });
  }
}

/**
 * Registers trace context, metrics, shedding and health routes on a Fastify 5 app.
 * Register it before your routes; it is not encapsulated, so it sees every route.
 *
 * @example
 * ```ts
 * import Fastify from 'fastify';
 * import keelFastify from 'keel/adapters/fastify';
 * import { Health, LoadShedder, Metrics, Tracing } from 'keel/observe';
 * const tracing = new Tracing();
 * const metrics = new Metrics();
 * const health = new Health();
 * const shedder = new LoadShedder({ inFlight: () => metrics.http.inFlight });
 * const app = Fastify();
 * await app.register(keelFastify, { tracing, metrics, health, shedder, metricsRoute: { token: 'secret' } });
 * app.get('/hello', async () => ({ trace: app.keel.tracing.current()?.traceId }));
 * ```
 */
export const keelFastify = fp(keelPlugin, { fastify: '5.x', name: 'keel' });
export default keelFastify;
