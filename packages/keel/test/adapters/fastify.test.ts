import { connect } from 'node:net';
import { Writable } from 'node:stream';
import { type Context, context, type Span, type SpanOptions, trace } from '@opentelemetry/api';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it, vi } from 'vitest';
import keelFastify, { keelFastifyServerOptions } from '../../src/adapters/fastify.ts';
import { createLogger, Health, LoadShedder, Metrics, OtelBridge, type PressureSample, Tracing } from '../../src/observe/index.ts';
import { FakeClock } from '../../src/testing/index.ts';

const TP = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

function own<T extends { close(): Promise<unknown> | unknown }>(x: T): T {
  closers.push(async () => x.close());
  return x;
}

async function build(options: Parameters<typeof keelFastify>[1] = {}, setup?: (app: FastifyInstance) => void): Promise<FastifyInstance> {
  const app = Fastify();
  own(app);
  await app.register(keelFastify, options);
  app.get('/topics/:id', async (request) => ({ id: (request.params as { id: string }).id, trace: app.keel.tracing.current()?.traceId }));
  setup?.(app);
  await app.ready();
  return app;
}

function calmShedder(clock: FakeClock): { shedder: LoadShedder; set: (s: PressureSample) => void } {
  let sample: PressureSample = { delayMs: 1, utilization: 0.1, heapUsedRatio: 0.1 };
  const shedder = own(new LoadShedder({ clock, sample: () => sample, intervalMs: 10, maxEventLoopDelayMs: 100, coolDownMs: 0 }));
  return { shedder, set: (s) => (sample = s) };
}

type RecordedSpan = { name: string; attributes: Record<string, unknown>; parent?: string; ended: boolean };

/** Registers a tracer provider that records the spans started (unregistered after the test). */
function recordSpans(): RecordedSpan[] {
  const spans: RecordedSpan[] = [];
  let n = 0;
  trace.setGlobalTracerProvider({
    getTracer: () => ({
      startSpan(name: string, options: SpanOptions | undefined, ctx: Context | undefined) {
        const record: RecordedSpan = {
          name,
          attributes: { ...options?.attributes },
          parent: trace.getSpanContext(ctx ?? context.active())?.spanId,
          ended: false,
        };
        spans.push(record);
        const spanId = (++n).toString(16).padStart(16, '0');
        const span = {
          spanContext: () => ({ traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId, traceFlags: 1 }),
          setAttribute(k: string, v: unknown) {
            record.attributes[k] = v;
            return span;
          },
          updateName(x: string) {
            record.name = x;
            return span;
          },
          setStatus: () => span,
          end() {
            record.ended = true;
          },
        };
        return span as unknown as Span;
      },
      startActiveSpan: () => undefined as never,
    }),
  });
  closers.push(async () => trace.disable());
  return spans;
}

describe('keelFastify', () => {
  it('runs the handler inside the caller trace and echoes the request id', async () => {
    const app = await build();
    const res = await app.inject({ url: '/topics/7', headers: { traceparent: TP, 'x-request-id': 'req-1' } });
    expect(res.json()).toEqual({ id: '7', trace: '4bf92f3577b34da6a3ce929d0e0e4736' });
    expect(res.headers['x-request-id']).toBe('req-1');
  });

  it('leaves the context on the request only, not ambient, with asyncContext false', async () => {
    const tracing = new Tracing();
    const app = await build({ tracing, asyncContext: false }, (a) =>
      a.get('/ctx', async (request) => ({ ambient: tracing.current() === undefined, own: request.keelTrace?.traceId })),
    );
    const res = await app.inject({ url: '/ctx', headers: { traceparent: TP, 'x-request-id': 'q-1' } });
    expect(res.json()).toEqual({ ambient: true, own: '4bf92f3577b34da6a3ce929d0e0e4736' });
    expect(res.headers['x-request-id']).toBe('q-1');
  });

  it('generates a request id when none came', async () => {
    const app = await build();
    const res = await app.inject({ url: '/topics/7' });
    expect(res.headers['x-request-id']).toMatch(/^[0-9a-f]{16}$/);
  });

  it('puts the trace and request ids on every log line of a request', async () => {
    const tracing = new Tracing();
    const lines: Record<string, unknown>[] = [];
    const stream = new Writable({
      write(chunk, _e, cb) {
        for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l));
        cb();
      },
    });
    const app = Fastify({ loggerInstance: createLogger({ tracing }, stream) });
    own(app);
    await app.register(keelFastify, { tracing });
    app.get('/work', async (request) => {
      request.log.info('doing work');
      await new Promise<void>((resolve) => setImmediate(resolve));
      request.log.info('done');
      return 'ok';
    });
    await app.inject({ url: '/work', headers: { traceparent: TP, 'x-request-id': 'log-1' } });
    const mine = lines.filter((l) => l.msg === 'doing work' || l.msg === 'done');
    expect(mine).toHaveLength(2);
    for (const l of mine) expect(l).toMatchObject({ trace_id: '4bf92f3577b34da6a3ce929d0e0e4736', request_id: 'log-1' });
  });

  /** A Fastify app made with keelFastifyServerOptions, logging JSON lines into an array. */
  async function loggedApp(options: { tracing: Tracing; otel?: OtelBridge }) {
    const lines: Record<string, unknown>[] = [];
    const stream = new Writable({
      write(chunk, _e, cb) {
        for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l));
        cb();
      },
    });
    const app = Fastify({ loggerInstance: createLogger({ tracing: options.tracing }, stream), ...keelFastifyServerOptions(options) });
    own(app);
    await app.register(keelFastify, options);
    app.get('/work', async (request) => {
      request.log.info('doing work');
      return 'ok';
    });
    return { app, lines };
  }

  it("puts the trace and request ids on Fastify's own incoming-request line with keelFastifyServerOptions", async () => {
    const { app, lines } = await loggedApp({ tracing: new Tracing() });
    await app.inject({ url: '/work', headers: { traceparent: TP, 'x-request-id': 'log-2' } });
    expect(lines.find((l) => l.msg === 'incoming request')).toMatchObject({
      reqId: 'log-2',
      trace_id: '4bf92f3577b34da6a3ce929d0e0e4736',
      span_id: expect.stringMatching(/^[0-9a-f]{16}$/),
      request_id: 'log-2',
    });
  });

  it('parses the trace context once per request when keelFastifyServerOptions made the request id', async () => {
    const tracing = new Tracing();
    const { app } = await loggedApp({ tracing });
    const parse = vi.spyOn(tracing, 'fromHeaders');
    const res = await app.inject({ url: '/work', headers: { traceparent: TP } });
    expect(parse).toHaveBeenCalledTimes(1);
    expect(res.headers['x-request-id']).toMatch(/^[0-9a-f]{16}$/);
  });

  it('logs no span id before the OpenTelemetry span exists, and the span ids after', async () => {
    recordSpans();
    const tracing = new Tracing();
    const { app, lines } = await loggedApp({ tracing, otel: new OtelBridge({ tracing }) });
    await app.inject({ url: '/work', headers: { 'x-request-id': 'log-3' } });
    const incoming = lines.find((l) => l.msg === 'incoming request');
    expect(incoming).toMatchObject({ request_id: 'log-3' });
    expect(incoming).not.toHaveProperty('span_id');
    expect(incoming).not.toHaveProperty('trace_id');
    expect(lines.find((l) => l.msg === 'doing work')).toMatchObject({
      trace_id: '4bf92f3577b34da6a3ce929d0e0e4736',
      span_id: '0000000000000001',
      request_id: 'log-3',
    });
  });

  it('names the option keelFastifyServerOptions is missing', () => {
    expect(() => keelFastifyServerOptions({} as never)).toThrow(/keelFastifyServerOptions option "tracing"/);
    expect(() => keelFastifyServerOptions({ tracing: new Tracing(), otel: {} as never })).toThrow(/option "otel"/);
  });

  it('records RED metrics by route template, never the raw URL', async () => {
    const metrics = own(new Metrics({ processMetrics: false }));
    const app = await build({ metrics });
    await app.inject({ url: '/topics/1' });
    await app.inject({ url: '/topics/2' });
    await app.inject({ url: '/nope/3' });
    const { body } = await metrics.scrape();
    expect(body).toMatch(/keel_http_requests_total\{method="GET",route="\/topics\/:id",status_class="2xx"\} 2/);
    expect(body).toMatch(/route="<unmatched>",status_class="4xx"\} 1/);
    expect(body).not.toContain('/topics/1');
    expect(metrics.http.inFlight).toBe(0);
  });

  it('leaves a route configured with keel.metrics false out of the HTTP metrics', async () => {
    const metrics = own(new Metrics({ processMetrics: false }));
    const app = await build({ metrics }, (a) => {
      a.get('/stream', { config: { keel: { metrics: false } } }, async () => 'tick');
    });
    await app.inject({ url: '/stream' });
    await app.inject({ url: '/topics/1' });
    const { body } = await metrics.scrape();
    expect(body).not.toContain('route="/stream"');
    expect(body).toMatch(/route="\/topics\/:id"/);
    expect(metrics.http.inFlight).toBe(0);
  });

  it('counts a request whose client hung up, so in-flight returns to zero', async () => {
    const metrics = own(new Metrics({ processMetrics: false }));
    let arrived!: () => void;
    const handlerStarted = new Promise<void>((resolve) => (arrived = resolve));
    const app = await build({ metrics }, (a) =>
      a.get('/slow', async () => {
        arrived();
        await new Promise<void>((resolve) => setTimeout(resolve, 100));
        return 'late';
      }),
    );
    await app.listen({ port: 0, host: '127.0.0.1' });
    const port = (app.server.address() as { port: number }).port;
    const socket = connect(port, '127.0.0.1');
    socket.write('GET /slow HTTP/1.1\r\nhost: x\r\n\r\n');
    await handlerStarted;
    expect(metrics.http.inFlight).toBe(1);
    socket.destroy();
    const until = Date.now() + 5_000;
    while (metrics.http.inFlight !== 0 && Date.now() < until) await new Promise<void>((resolve) => setTimeout(resolve, 10));
    expect(metrics.http.inFlight).toBe(0);
    await new Promise<void>((resolve) => setTimeout(resolve, 120));
  });

  it('sheds with a fast 503 and Retry-After under pressure, sparing health and metrics routes', async () => {
    const clock = new FakeClock();
    const { shedder, set } = calmShedder(clock);
    const metrics = own(new Metrics({ processMetrics: false }));
    const health = new Health();
    const app = await build({ shedder, metrics, health, metricsRoute: { path: '/metrics' }, exempt: ['/topics/0'] });
    set({ delayMs: 500, utilization: 0.1, heapUsedRatio: 0.1 });
    // Ready reset the shedder: two intervals ignored, then two over in a row.
    clock.advance(40);
    const shed = await app.inject({ url: '/topics/7' });
    expect(shed.statusCode).toBe(503);
    expect(shed.headers['retry-after']).toBe('1');
    expect(shed.json()).toMatchObject({ code: 'KEEL_OVERLOADED' });
    expect((await app.inject({ url: '/health/ready' })).statusCode).toBe(200);
    expect((await app.inject({ url: '/metrics' })).statusCode).toBe(200);
    expect((await app.inject({ url: '/topics/0' })).statusCode).toBe(200);
    set({ delayMs: 1, utilization: 0.1, heapUsedRatio: 0.1 });
    clock.advance(10);
    expect((await app.inject({ url: '/topics/7' })).statusCode).toBe(200);
    expect(shedder.shedCount).toBe(1);
    const { body } = await metrics.scrape();
    expect(body).toMatch(/route="\/topics\/:id",status_class="5xx"\} 1/);
  });

  it('resets the shedder when the app is ready, so a start-up stall sheds no request', async () => {
    const clock = new FakeClock();
    const { shedder, set } = calmShedder(clock);
    set({ delayMs: 500, utilization: 0.1, heapUsedRatio: 0.1 });
    clock.advance(20);
    expect(shedder.isUnderPressure()).toBe(true);
    set({ delayMs: 1, utilization: 0.1, heapUsedRatio: 0.1 });
    const app = await build({ shedder });
    expect((await app.inject({ url: '/topics/7' })).statusCode).toBe(200);
    expect(shedder.shedCount).toBe(0);
  });

  it('serves a lone request at maxInFlight 1 (the cap counts the requests already in flight)', async () => {
    const metrics = own(new Metrics({ processMetrics: false }));
    const shedder = own(new LoadShedder({ clock: new FakeClock(), inFlight: () => metrics.http.inFlight, maxInFlight: 1 }));
    const app = await build({ shedder, metrics });
    expect((await app.inject({ url: '/topics/1' })).statusCode).toBe(200);
    expect(shedder.shedCount).toBe(0);
  });

  it('serves live, ready and the full report with orchestrator status codes', async () => {
    const health = new Health();
    let dbUp = true;
    health.register(
      'db',
      () => {
        if (!dbUp) throw new Error('locked');
      },
      { ttlMs: 0 },
    );
    health.register('redis', () => Promise.reject(new Error('ECONNREFUSED')), { kind: 'optional', ttlMs: 0 });
    const app = await build({ health });
    expect((await app.inject({ url: '/health/live' })).json()).toEqual({ status: 'ok' });
    expect((await app.inject({ url: '/health/ready' })).statusCode).toBe(200);
    const degraded = await app.inject({ url: '/health' });
    expect(degraded.statusCode).toBe(200);
    expect(degraded.json()).toMatchObject({
      status: 'degraded',
      checks: { db: { status: 'up' }, redis: { status: 'down', detail: 'ECONNREFUSED' } },
    });
    dbUp = false;
    expect((await app.inject({ url: '/health/ready' })).statusCode).toBe(503);
    const down = await app.inject({ url: '/health' });
    expect(down.statusCode).toBe(503);
    expect(down.json().status).toBe('unhealthy');
    expect((await app.inject({ url: '/health/live' })).statusCode).toBe(200);
  });

  it('guards /metrics with a bearer token', async () => {
    const metrics = own(new Metrics({ processMetrics: false }));
    const app = await build({ metrics, metricsRoute: { token: 's3cret' } });
    expect((await app.inject({ url: '/metrics' })).statusCode).toBe(401);
    const wrong = await app.inject({ url: '/metrics', headers: { authorization: 'Bearer s3crex' } });
    expect(wrong.statusCode).toBe(401);
    expect(wrong.headers['www-authenticate']).toBe('Bearer');
    const ok = await app.inject({ url: '/metrics', headers: { authorization: 'Bearer s3cret' } });
    expect(ok.statusCode).toBe(200);
    expect(ok.headers['content-type']).toContain('text/plain');
    expect(ok.body).toContain('keel_http_requests_total');
  });

  it('makes each request a span when an OpenTelemetry SDK is registered', async () => {
    const spans = recordSpans();
    const tracing = new Tracing();
    const app = await build({ tracing, otel: new OtelBridge({ tracing }) }, (a) => a.get('/ids', async () => tracing.current()?.spanId));
    const res = await app.inject({ url: '/ids', headers: { traceparent: TP } });
    expect(res.body).toBe('0000000000000001');
    expect(spans).toEqual([
      {
        name: 'GET /ids',
        attributes: expect.objectContaining({ 'http.route': '/ids', 'http.response.status_code': 200 }),
        parent: '00f067aa0ba902b7',
        ended: true,
      },
    ]);
  });

  it('puts the path without its query in the span url.path, so tokens in a query stay out of traces', async () => {
    const spans = recordSpans();
    const tracing = new Tracing();
    const app = await build({ tracing, otel: new OtelBridge({ tracing }) });
    await app.inject({ url: '/topics/7?token=s3cr3t&email=a@b.c' });
    expect(spans).toHaveLength(1);
    expect(spans[0]?.attributes['url.path']).toBe('/topics/7');
  });

  it('rejects a metrics route without metrics', async () => {
    const app = Fastify();
    own(app);
    await expect(app.register(keelFastify, { metricsRoute: { token: 'x' } })).rejects.toThrow(/metrics/);
  });
});
