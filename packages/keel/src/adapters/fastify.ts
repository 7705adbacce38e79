/**
 * The Fastify plugin: trace context and request ids, RED metrics by route template, load
 * shedding, health routes and an optional token-protected `/metrics`, in one `register`.
 *
 * Hooks are callback-style (no promise per hook) and nothing is allocated per request beyond
 * the trace context; ids inside it are made only if something reads them.
 */
import type { Span } from '@opentelemetry/api';
import type { FastifyInstance, FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';
import fp from 'fastify-plugin';
import type { TraceContext } from '../observe/trace.ts';
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
    const ctx = tracing.fromHeaders(request.raw.headers);
    request.keelTrace = ctx;
    if (echoRequestId) reply.header(requestIdHeader, ctx.requestId);
    // Decided before this request counts as in flight: maxInFlight N serves N at once, not N - 1.
    const shed = shedder?.shouldShed(request.url) === true;
    const span = otel?.startRequestSpan(ctx, request.method, request.url);
    if (span !== undefined) request.keelSpan = span;
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
