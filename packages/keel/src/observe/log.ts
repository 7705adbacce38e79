/**
 * pino integration: every line logged while a request is being handled carries its
 * `trace_id`, `span_id` and `request_id`, read from the {@link Tracing} context at write time.
 *
 * A mixin rather than a child logger per request: a pino child costs ≈ 1 µs to create, the
 * mixin costs one AsyncLocalStorage read per line, and nothing for requests that do not log.
 */
import pino from 'pino';
import type { TraceContext, Tracing } from './trace.ts';

/** Where a per-request logger (a pino child) holds its request's context; see {@link bindTraceContext}. */
const kContext = Symbol('keel.traceContext');
const kProvisional = Symbol('keel.traceProvisional');
type Bound = { [kContext]?: TraceContext; [kProvisional]?: boolean };

/**
 * @internal Makes `logger` (a per-request pino child) carry `ctx`, so the mixin finds the ids
 * on lines logged outside the request's AsyncLocalStorage: Fastify's `incoming request`
 * line is written before any hook could enter it. The context object, not its ids, is kept,
 * so ids taken later are the ones logged. `provisional` says an OpenTelemetry span may still
 * replace the ids (it is started in the adapter's hook): until bound again without it, lines
 * carry the request id, and the trace id only when a caller sent it (a span keeps a remote
 * parent's trace id), rather than ids the span is about to replace.
 */
export function bindTraceContext(logger: object, ctx: TraceContext, provisional = false): void {
  const bound = logger as Bound;
  bound[kContext] = ctx;
  bound[kProvisional] = provisional;
}

/** The fields added to a log line inside a request. */
export interface TraceLogFields {
  trace_id: string;
  span_id: string;
  request_id: string;
}

/**
 * A pino `mixin` adding the current request's ids; `{}` outside a request. Combine it with
 * a mixin of your own by calling both and spreading.
 *
 * @example
 * ```ts
 * import pino from 'pino';
 * import { Tracing, traceMixin } from 'keel/observe';
 * const tracing = new Tracing();
 * const log = pino({ mixin: traceMixin(tracing) });
 * ```
 */
export function traceMixin(tracing: Tracing): (mergeObject?: object, level?: number, logger?: object) => Partial<TraceLogFields> {
  return (_mergeObject, _level, logger) => {
    // A fresh object each time: pino's default merge strategy assigns into what the mixin returns.
    const ctx = tracing.current();
    if (ctx !== undefined) return { trace_id: ctx.traceId, span_id: ctx.spanId, request_id: ctx.requestId };
    // Outside the request's async context, pino still passes the logger writing the line: a
    // request's own logger knows its request (see bindTraceContext).
    const bound = logger as Bound | undefined;
    const own = bound?.[kContext];
    if (own === undefined) return {};
    if (bound?.[kProvisional] !== true) return { trace_id: own.traceId, span_id: own.spanId, request_id: own.requestId };
    return own.parentId === undefined ? { request_id: own.requestId } : { trace_id: own.traceId, request_id: own.requestId };
  };
}

export interface CreateLoggerOptions extends pino.LoggerOptions {
  /** Whose context the lines carry. */
  tracing: Tracing;
}

/**
 * A pino logger whose lines carry the current request's ids. A `mixin` in the options is
 * kept and merged (its fields win on a name clash). Pass a destination stream as pino does.
 * Also usable as Fastify's `loggerInstance`.
 *
 * @example
 * ```ts
 * import { Tracing, createLogger } from 'keel/observe';
 * const tracing = new Tracing();
 * const log = createLogger({ tracing, level: 'info' });
 * tracing.run(tracing.create(), () => log.info('inside')); // {"trace_id":"…","span_id":"…","request_id":"…","msg":"inside"}
 * ```
 */
export function createLogger(options: CreateLoggerOptions, destination?: pino.DestinationStream): pino.Logger {
  if (typeof options !== 'object' || options === null || typeof options.tracing?.current !== 'function') {
    throw new TypeError('keel: createLogger option "tracing" must be a Tracing');
  }
  const { tracing, mixin: userMixin, ...rest } = options;
  const ours = traceMixin(tracing);
  const mixin: NonNullable<pino.LoggerOptions['mixin']> = userMixin
    ? (merge: object, level: number, logger: pino.Logger) => ({ ...ours(merge, level, logger), ...userMixin(merge, level, logger) })
    : ours;
  return destination ? pino({ ...rest, mixin }, destination) : pino({ ...rest, mixin });
}

/**
 * A child of `logger` bound to the current request's ids, for code that hands a logger to
 * a library that logs after the request's async context is gone (a queue, a callback API).
 *
 * @example
 * ```ts
 * import pino from 'pino';
 * import { Tracing, requestLogger } from 'keel/observe';
 * const tracing = new Tracing();
 * const log = requestLogger(pino(), tracing); // the logger itself outside a request
 * ```
 */
export function requestLogger(logger: pino.Logger, tracing: Tracing): pino.Logger {
  const ctx = tracing.current();
  if (ctx === undefined) return logger;
  return logger.child({ trace_id: ctx.traceId, span_id: ctx.spanId, request_id: ctx.requestId });
}
