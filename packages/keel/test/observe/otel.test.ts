import { randomBytes } from 'node:crypto';
import { channel } from 'node:diagnostics_channel';
import {
  type Attributes,
  type Context,
  context,
  type Span,
  type SpanContext,
  type SpanOptions,
  type SpanStatus,
  type Tracer,
  trace,
} from '@opentelemetry/api';
import { afterEach, describe, expect, it } from 'vitest';
import { AlsContextManager } from '../../../../test-support/otel-context.ts';
import { CHANNELS } from '../../src/channels.ts';
import { OtelBridge, Tracing, traced } from '../../src/observe/index.ts';

class MemorySpan implements Span {
  readonly attributes: Attributes = {};
  readonly events: { name: string; attributes?: Attributes }[] = [];
  status: SpanStatus = { code: 0 };
  ended = false;
  exception: unknown;
  constructor(
    public name: string,
    readonly context: SpanContext,
    readonly parent: SpanContext | undefined,
    readonly kind: number | undefined,
  ) {}
  spanContext(): SpanContext {
    return this.context;
  }
  setAttribute(k: string, v: never): this {
    this.attributes[k] = v;
    return this;
  }
  setAttributes(a: Attributes): this {
    Object.assign(this.attributes, a);
    return this;
  }
  addEvent(name: string, attributes?: Attributes): this {
    this.events.push({ name, attributes });
    return this;
  }
  addLink(): this {
    return this;
  }
  addLinks(): this {
    return this;
  }
  setStatus(s: SpanStatus): this {
    this.status = s;
    return this;
  }
  updateName(n: string): this {
    this.name = n;
    return this;
  }
  end(): void {
    this.ended = true;
  }
  isRecording(): boolean {
    return !this.ended;
  }
  recordException(e: unknown): void {
    this.exception = e;
  }
}

class MemoryTracer implements Tracer {
  readonly spans: MemorySpan[] = [];
  startSpan(name: string, options?: SpanOptions, ctx?: Context): Span {
    const parent = trace.getSpanContext(ctx ?? context.active());
    const sc: SpanContext = {
      traceId: parent?.traceId ?? randomBytes(16).toString('hex'),
      spanId: randomBytes(8).toString('hex'),
      traceFlags: 1,
    };
    const span = new MemorySpan(name, sc, parent, options?.kind);
    if (options?.attributes) span.setAttributes(options.attributes);
    this.spans.push(span);
    return span;
  }
  startActiveSpan<F extends (span: Span) => unknown>(name: string, ...args: unknown[]): ReturnType<F> {
    const fn = args[args.length - 1] as F;
    const options = (args.length > 1 ? args[0] : undefined) as SpanOptions | undefined;
    const ctx = (args.length > 2 ? args[1] : context.active()) as Context;
    const span = this.startSpan(name, options, ctx);
    return context.with(trace.setSpan(ctx, span), fn as unknown as (s: Span) => ReturnType<F>, undefined, span);
  }
}

function register(): MemoryTracer {
  const tracer = new MemoryTracer();
  trace.setGlobalTracerProvider({ getTracer: () => tracer });
  return tracer;
}

afterEach(() => {
  trace.disable();
  context.disable();
});

const TP = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

describe('OtelBridge without an SDK', () => {
  it('is inactive and starts no span', () => {
    const tracing = new Tracing();
    const otel = new OtelBridge({ tracing });
    expect(otel.active).toBe(false);
    expect(otel.startRequestSpan(tracing.create(), 'GET', '/')).toBeUndefined();
  });

  it('runs a traced policy straight through', async () => {
    const otel = new OtelBridge();
    expect(await traced(otel, 'work').execute(() => 7)).toBe(7);
    await expect(traced(otel, 'work').execute(() => Promise.reject(new Error('no')))).rejects.toThrow('no');
  });

  it('names a tracing option that is not a Tracing', () => {
    expect(() => new OtelBridge({ tracing: {} as never })).toThrow(/OtelBridge option "tracing"/);
  });
});

describe('OtelBridge with a registered tracer provider', () => {
  it('turns a request into a SERVER span under the caller, and the context adopts its ids', () => {
    const tracer = register();
    const tracing = new Tracing();
    const otel = new OtelBridge({ tracing });
    const ctx = tracing.fromHeaders({ traceparent: TP });
    const span = otel.startRequestSpan(ctx, 'GET', '/topics/7') as MemorySpan;
    expect(span).toBe(tracer.spans[0]);
    expect(span.kind).toBe(1); // SpanKind.SERVER
    expect(span.parent).toMatchObject({ traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', isRemote: true });
    expect(ctx.spanId).toBe(span.context.spanId);
    expect(ctx.traceId).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
    otel.endRequestSpan(span, 'GET', 503, '/topics/:id');
    expect(span).toMatchObject({ name: 'GET /topics/:id', ended: true, status: { code: 2 } });
    expect(span.attributes).toMatchObject({ 'http.route': '/topics/:id', 'http.response.status_code': 503 });
  });

  it('keeps the query of the request target out of url.path', () => {
    const tracer = register();
    const otel = new OtelBridge();
    otel.startRequestSpan(new Tracing().create(), 'GET', '/reset?token=s3cr3t');
    expect(tracer.spans[0]?.attributes['url.path']).toBe('/reset');
  });

  it('notices when the provider is unregistered', () => {
    register();
    const otel = new OtelBridge();
    expect(otel.active).toBe(true);
    trace.disable();
    expect(otel.active).toBe(false);
  });

  it('makes a traced policy execution a child span of the current request', async () => {
    const tracer = register();
    const tracing = new Tracing();
    const otel = new OtelBridge({ tracing });
    const ctx = tracing.create();
    const request = otel.startRequestSpan(ctx, 'GET', '/') as MemorySpan;
    await tracing.run(ctx, () => otel.traced('db').execute(() => 'row'));
    const child = tracer.spans[1] as MemorySpan;
    expect(child).toMatchObject({ name: 'db', ended: true });
    expect(child.parent?.spanId).toBe(request.context.spanId);
    expect(child.attributes['keel.policy']).toBe('db');
  });

  it('records a failed execution as an error span', async () => {
    const tracer = register();
    const otel = new OtelBridge();
    await expect(otel.traced('upstream').execute(() => Promise.reject(new Error('502')))).rejects.toThrow('502');
    expect(tracer.spans[0]).toMatchObject({ ended: true, status: { code: 2, message: '502' } });
    expect((tracer.spans[0]!.exception as Error).message).toBe('502');
  });

  it('adds keel resilience events to the active span', async () => {
    context.setGlobalContextManager(new AlsContextManager());
    const tracer = register();
    const otel = new OtelBridge();
    const events = otel.recordPolicyEvents();
    try {
      await otel.traced('fetch').execute(async () => {
        channel(CHANNELS.resilience.retry).publish({ name: 'preview', attempt: 1, delayMs: 20, error: new Error('ECONNRESET') });
      });
    } finally {
      events.close();
    }
    expect(tracer.spans[0]?.events).toEqual([
      {
        name: 'keel.retry',
        attributes: { 'keel.name': 'preview', 'keel.attempt': 1, 'keel.delayMs': 20, 'exception.message': 'ECONNRESET' },
      },
    ]);
  });
});
