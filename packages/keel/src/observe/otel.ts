/**
 * OpenTelemetry interop through `@opentelemetry/api` only. When the user registers an SDK
 * (a tracer provider), requests and policy executions become spans; with no SDK the cost is
 * one global read and an identity compare per request, since the API's default provider is a
 * proxy around a no-op that we detect once per delegate change instead of starting no-op spans.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import {
  type Context,
  context,
  createTraceState,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  type SpanOptions,
  SpanStatusCode,
  type Tracer,
  trace,
} from '@opentelemetry/api';
import { CHANNELS } from '../channels.ts';
import { objectOptions, optionError, stringOption } from '../internal/options.ts';
import type { ExecuteContext, ExecuteOptions } from '../resilience/context.ts';
import { toContext } from '../resilience/context.ts';
import type { Policy, Work } from '../resilience/policy.ts';
import { type TraceContext, Tracing } from './trace.ts';

export interface OtelBridgeOptions {
  /** Our trace context, used as the parent when no OpenTelemetry span is active. */
  tracing?: Tracing;
  /** Instrumentation scope name. Default `'keel'`. */
  tracerName?: string;
}

interface Delegating {
  getDelegate?(): unknown;
}

function isNoop(provider: unknown): boolean {
  // Both the ESM and CJS builds of the API have their own NoopTracerProvider class; the name
  // is what they share.
  return (provider as { constructor?: { name?: string } } | null)?.constructor?.name === 'NoopTracerProvider';
}

/**
 * Turns requests and policy executions into OpenTelemetry spans when an SDK is registered.
 *
 * @example
 * ```ts
 * import { OtelBridge, Tracing } from 'keel/observe';
 * const tracing = new Tracing();
 * const otel = new OtelBridge({ tracing });
 * otel.active; // false until an SDK registers a tracer provider
 * ```
 */
export class OtelBridge {
  readonly #tracing: Tracing | undefined;
  readonly #name: string;
  #delegate: unknown;
  #tracer: Tracer | undefined;

  constructor(options?: OtelBridgeOptions) {
    const o = objectOptions('OtelBridge', options);
    // Checked now, as the adapters check theirs: a wrong object would throw on the first request.
    if (o.tracing !== undefined && !(o.tracing instanceof Tracing)) throw optionError('OtelBridge', 'tracing', 'a Tracing', o.tracing);
    this.#tracing = o.tracing;
    this.#name = stringOption('OtelBridge', 'tracerName', o.tracerName, 'keel');
  }

  /** The tracer when a real SDK is registered, else undefined. Cheap: call it per request. */
  tracer(): Tracer | undefined {
    const provider = trace.getTracerProvider() as Delegating;
    const delegate = typeof provider.getDelegate === 'function' ? provider.getDelegate() : provider;
    if (delegate !== this.#delegate) {
      this.#delegate = delegate;
      this.#tracer = isNoop(delegate) ? undefined : trace.getTracer(this.#name);
    }
    return this.#tracer;
  }

  /** True when a tracer provider other than the no-op one is registered. */
  get active(): boolean {
    return this.tracer() !== undefined;
  }

  /** The parent for a request span: the active OTel context, else `ctx`'s incoming caller as a remote parent. */
  requestParent(ctx: TraceContext): Context {
    const active = context.active();
    if (trace.getSpan(active) !== undefined || ctx.parentId === undefined) return active;
    return trace.setSpanContext(ROOT_CONTEXT, {
      traceId: ctx.traceId,
      spanId: ctx.parentId,
      traceFlags: ctx.flags,
      isRemote: true,
      ...(ctx.traceState !== undefined ? { traceState: createTraceState(ctx.traceState) } : {}),
    });
  }

  /** The parent for work inside a request: the active OTel span, else the current request's span. */
  currentParent(): Context {
    const active = context.active();
    const ctx = this.#tracing?.current();
    if (trace.getSpan(active) !== undefined || ctx === undefined) return active;
    return trace.setSpanContext(ROOT_CONTEXT, { traceId: ctx.traceId, spanId: ctx.spanId, traceFlags: ctx.flags, isRemote: false });
  }

  /**
   * Starts a SERVER span for an incoming request (undefined with no SDK) and makes `ctx` carry
   * the span's ids, so log lines and outgoing `traceparent`s name this span. `path` may be
   * the request target: its query is dropped here, after the no-SDK return, because a query
   * carries tokens and e-mail addresses that must not reach a trace backend (the Fastify
   * adapter once put `/reset?token=…` in `url.path`), and OTel's `url.query` is opt-in.
   */
  startRequestSpan(ctx: TraceContext, method: string, path: string): Span | undefined {
    const tracer = this.tracer();
    if (tracer === undefined) return undefined;
    const q = path.indexOf('?');
    const span = tracer.startSpan(
      method,
      { kind: SpanKind.SERVER, attributes: { 'http.request.method': method, 'url.path': q === -1 ? path : path.slice(0, q) } },
      this.requestParent(ctx),
    );
    const sc = span.spanContext();
    ctx.adopt(sc.traceId, sc.spanId, sc.traceFlags);
    return span;
  }

  /** Ends a request span with its route and status (5xx marks it as an error). */
  endRequestSpan(span: Span, method: string, statusCode: number, route: string | undefined): void {
    if (route !== undefined) {
      span.setAttribute('http.route', route);
      span.updateName(`${method} ${route}`);
    }
    span.setAttribute('http.response.status_code', statusCode);
    if (statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
    span.end();
  }

  /** Runs `fn` with `span` active in the OTel context, so spans the user starts nest under it. */
  withSpan<R>(span: Span, fn: () => R): R {
    return context.with(trace.setSpan(context.active(), span), fn);
  }

  /**
   * Records keel resilience events (retries, timeouts, breaker rejections, …) as events on
   * the active span. Needs the SDK's context manager to know the active span. Returns a
   * handle whose `close()` unsubscribes.
   */
  recordPolicyEvents(): { close(): void } {
    const subs: [string, (m: unknown) => void][] = Object.entries(CHANNELS.resilience).map(([event, name]) => [
      name,
      (m: unknown) => {
        const span = trace.getActiveSpan();
        if (span === undefined || !span.isRecording()) return;
        const { error, ...rest } = m as { error?: unknown } & Record<string, unknown>;
        const attrs: Record<string, string | number | boolean> = {};
        for (const [k, v] of Object.entries(rest)) if (typeof v !== 'object') attrs[`keel.${k}`] = v as string | number | boolean;
        if (error instanceof Error) attrs['exception.message'] = error.message;
        span.addEvent(`keel.${event}`, attrs);
      },
    ]);
    for (const [name, fn] of subs) subscribe(name, fn);
    return {
      close: () => {
        for (const [name, fn] of subs) unsubscribe(name, fn);
        subs.length = 0;
      },
    };
  }

  /** A policy that runs each call in a span named `name` (see {@link traced}). */
  traced(name: string, inner?: Policy): Policy {
    return new TracedPolicy(this, name, inner);
  }
}

class TracedPolicy implements Policy {
  readonly #bridge: OtelBridge;
  readonly #name: string;
  readonly #inner: Policy | undefined;
  readonly #options: SpanOptions;

  constructor(bridge: OtelBridge, name: string, inner: Policy | undefined) {
    this.#bridge = bridge;
    this.#name = stringOption('traced', 'name', name, '');
    this.#inner = inner;
    this.#options = { kind: SpanKind.INTERNAL, attributes: { 'keel.policy': this.#name } };
  }

  #run<T>(fn: Work<T>, options: ExecuteOptions | ExecuteContext | undefined): Promise<T> {
    if (this.#inner) return this.#inner.execute(fn, options);
    try {
      return Promise.resolve(fn(toContext(options)));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  execute<T>(fn: Work<T>, options?: ExecuteOptions | ExecuteContext): Promise<T> {
    const tracer = this.#bridge.tracer();
    if (tracer === undefined) return this.#run(fn, options);
    const parent = this.#bridge.currentParent();
    return tracer.startActiveSpan(this.#name, this.#options, parent, (span) =>
      this.#run(fn, options).then(
        (value) => {
          span.end();
          return value;
        },
        (err: unknown) => {
          span.recordException(err instanceof Error ? err : String(err));
          span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
          span.end();
          throw err;
        },
      ),
    );
  }
}

/**
 * Wraps a policy (or nothing) so each execution becomes an INTERNAL span, child of the active
 * span or the current request. Costs a global read when no SDK is registered. Put it first in
 * a pipeline to trace the whole call, or innermost to trace each attempt.
 *
 * @example
 * ```ts
 * import { OtelBridge, traced } from 'keel/observe';
 * import { pipeline, retry } from 'keel/resilience';
 * const otel = new OtelBridge();
 * const policy = pipeline(traced(otel, 'preview-fetch'), retry({ maxAttempts: 3 }));
 * const value = await policy.execute(() => 42);
 * ```
 */
export function traced(bridge: OtelBridge, name: string, inner?: Policy): Policy {
  if (!(bridge instanceof OtelBridge)) throw new TypeError('keel: traced needs an OtelBridge as its first argument');
  return bridge.traced(name, inner);
}
