import { Writable } from 'node:stream';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { createLogger, requestLogger, Tracing, traceMixin } from '../../src/observe/index.ts';
import { bindTraceContext } from '../../src/observe/log.ts';

function capture(): { stream: Writable; lines: () => Record<string, unknown>[] } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  });
  return {
    stream,
    lines: () =>
      chunks
        .join('')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

const TP = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

describe('createLogger', () => {
  it('adds the trace, span and request ids to every line inside a request', async () => {
    const tracing = new Tracing();
    const out = capture();
    const log = createLogger({ tracing }, out.stream);
    const ctx = tracing.fromHeaders({ traceparent: TP, 'x-request-id': 'r-1' });
    await tracing.run(ctx, async () => {
      log.info('first');
      await new Promise<void>((resolve) => setImmediate(resolve));
      log.warn({ extra: 1 }, 'second');
    });
    const [first, second] = out.lines();
    for (const line of [first, second]) {
      expect(line).toMatchObject({ trace_id: '4bf92f3577b34da6a3ce929d0e0e4736', span_id: ctx.spanId, request_id: 'r-1' });
    }
    expect(second).toMatchObject({ extra: 1, msg: 'second' });
  });

  it('adds nothing outside a request', () => {
    const tracing = new Tracing();
    const out = capture();
    createLogger({ tracing }, out.stream).info('outside');
    expect(out.lines()[0]).not.toHaveProperty('trace_id');
  });

  it('keeps a user mixin', () => {
    const tracing = new Tracing();
    const out = capture();
    const log = createLogger({ tracing, mixin: () => ({ service: 'forum' }) }, out.stream);
    tracing.run(tracing.create(), () => log.info('x'));
    expect(out.lines()[0]).toMatchObject({ service: 'forum', trace_id: expect.stringMatching(/^[0-9a-f]{32}$/) });
  });

  it('gives child loggers the ids too', () => {
    const tracing = new Tracing();
    const out = capture();
    const child = createLogger({ tracing }, out.stream).child({ component: 'db' });
    tracing.run(tracing.fromHeaders({ 'x-request-id': 'r-2' }), () => child.info('q'));
    expect(out.lines()[0]).toMatchObject({ component: 'db', request_id: 'r-2' });
  });

  it('reads the ids of a context bound to the logger writing a line outside any request', () => {
    const tracing = new Tracing();
    const out = capture();
    const log = createLogger({ tracing }, out.stream);
    const ctx = tracing.fromHeaders({ traceparent: TP, 'x-request-id': 'early' });
    const child = log.child({});
    bindTraceContext(child, ctx);
    child.info('before any hook');
    log.info('the root logger');
    expect(out.lines()).toEqual([
      expect.objectContaining({ trace_id: '4bf92f3577b34da6a3ce929d0e0e4736', span_id: ctx.spanId, request_id: 'early' }),
      expect.not.objectContaining({ request_id: expect.anything() }),
    ]);
  });

  it('logs no span id, and a trace id only when the caller sent one, for a provisionally bound context', () => {
    const tracing = new Tracing();
    const out = capture();
    const log = createLogger({ tracing }, out.stream);
    const propagated = log.child({});
    bindTraceContext(propagated, tracing.fromHeaders({ traceparent: TP, 'x-request-id': 'p-1' }), true);
    const fresh = log.child({});
    bindTraceContext(fresh, tracing.fromHeaders({ 'x-request-id': 'p-2' }), true);
    propagated.info('propagated');
    fresh.info('fresh');
    const [a, b] = out.lines();
    expect(a).toMatchObject({ trace_id: '4bf92f3577b34da6a3ce929d0e0e4736', request_id: 'p-1' });
    expect(a).not.toHaveProperty('span_id');
    expect(b).toMatchObject({ request_id: 'p-2' });
    expect(b).not.toHaveProperty('trace_id');
    expect(b).not.toHaveProperty('span_id');
  });

  it('needs a tracing', () => {
    expect(() => createLogger({} as never)).toThrow(/tracing/);
  });
});

describe('traceMixin', () => {
  it('works as a plain pino mixin', () => {
    const tracing = new Tracing();
    const out = capture();
    const log = pino({ mixin: traceMixin(tracing) }, out.stream);
    tracing.run(tracing.fromHeaders({ 'x-request-id': 'm-1' }), () => log.info('x'));
    expect(out.lines()[0]).toMatchObject({ request_id: 'm-1' });
  });
});

describe('requestLogger', () => {
  it('binds the ids so lines logged after the request still carry them', () => {
    const tracing = new Tracing();
    const out = capture();
    const base = pino(out.stream);
    const bound = tracing.run(tracing.fromHeaders({ 'x-request-id': 'late' }), () => requestLogger(base, tracing));
    bound.info('after');
    expect(out.lines()[0]).toMatchObject({ request_id: 'late' });
  });

  it('returns the logger itself outside a request', () => {
    const tracing = new Tracing();
    const base = pino({ enabled: false });
    expect(requestLogger(base, tracing)).toBe(base);
  });
});
