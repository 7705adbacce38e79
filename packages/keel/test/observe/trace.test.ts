import { describe, expect, it } from 'vitest';
import { IdSource, parseTraceparent, parseTracestate, Tracing } from '../../src/observe/index.ts';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN = '00f067aa0ba902b7';
const VALID = `00-${TRACE}-${SPAN}-01`;

describe('parseTraceparent', () => {
  it('parses a valid version 00 header', () => {
    expect(parseTraceparent(VALID)).toEqual({ version: 0, traceId: TRACE, parentId: SPAN, flags: 1 });
  });

  it('keeps unknown flag bits', () => {
    expect(parseTraceparent(`00-${TRACE}-${SPAN}-ff`)?.flags).toBe(255);
  });

  it('rejects an all-zero trace id', () => {
    expect(parseTraceparent(`00-${'0'.repeat(32)}-${SPAN}-01`)).toBeUndefined();
  });

  it('rejects an all-zero span id', () => {
    expect(parseTraceparent(`00-${TRACE}-${'0'.repeat(16)}-01`)).toBeUndefined();
  });

  it('rejects version ff', () => {
    expect(parseTraceparent(`ff-${TRACE}-${SPAN}-01`)).toBeUndefined();
  });

  it.each([
    ['short trace id', `00-${TRACE.slice(1)}-${SPAN}-01`],
    ['long span id', `00-${TRACE}-${SPAN}0-01`],
    ['one-char flags', `00-${TRACE}-${SPAN}-1`],
    ['uppercase hex', `00-${TRACE.toUpperCase()}-${SPAN}-01`],
    ['non-hex', `00-${TRACE.slice(0, 31)}g-${SPAN}-01`],
    ['wrong separator', `00_${TRACE}-${SPAN}-01`],
    ['trailing data on version 00', `${VALID}-extra`],
    ['non-hex version', `0x-${TRACE}-${SPAN}-01`],
    ['empty', ''],
  ])('rejects a %s', (_what, header) => {
    expect(parseTraceparent(header)).toBeUndefined();
  });

  it('accepts a future version with extra fields after a dash', () => {
    expect(parseTraceparent(`01-${TRACE}-${SPAN}-01-what-the-future-holds`)).toEqual({
      version: 1,
      traceId: TRACE,
      parentId: SPAN,
      flags: 1,
    });
  });

  it('accepts a future version of exactly the known length', () => {
    expect(parseTraceparent(`cc-${TRACE}-${SPAN}-00`)?.version).toBe(0xcc);
  });

  it('rejects a future version whose extra data does not start with a dash', () => {
    expect(parseTraceparent(`01-${TRACE}-${SPAN}-01x`)).toBeUndefined();
  });
});

describe('parseTracestate', () => {
  it('normalises optional whitespace and empty members', () => {
    expect(parseTracestate('congo=t61rcWkgMzE, ,rojo=00f067aa0ba902b7 ')).toBe('congo=t61rcWkgMzE,rojo=00f067aa0ba902b7');
  });

  it('joins repeated headers', () => {
    expect(parseTracestate(['a=1', 'b=2'])).toBe('a=1,b=2');
  });

  it('accepts multi-tenant keys', () => {
    expect(parseTracestate('fw529a3039@dt=abc')).toBe('fw529a3039@dt=abc');
  });

  it.each([
    ['an uppercase key', 'Congo=1'],
    ['a member without =', 'congo'],
    ['a value with a comma-free but = sign', 'a=b=c'],
    ['a value ending in a space', 'a=b \u0001'],
    ['a duplicate key', 'a=1,a=2'],
  ])('drops the whole header for %s', (_what, header) => {
    expect(parseTracestate(header)).toBeUndefined();
  });

  it('keeps a list of 32 members, the most the spec allows', () => {
    const header = Array.from({ length: 32 }, (_, i) => `k${i}=v`).join(',');
    expect(parseTracestate(header)).toBe(header);
  });

  it('drops a list of more than 32 members whole, as the W3C test suite expects at its strict level', () => {
    const header = Array.from({ length: 33 }, (_, i) => `k${i}=v`).join(',');
    expect(parseTracestate(header)).toBeUndefined();
  });

  it('keeps at most maxMembers members, dropping members from the end', () => {
    expect(parseTracestate('a=1,b=2,c=3', { maxMembers: 2 })).toBe('a=1,b=2');
  });

  it('drops members over 128 characters before members from the end when the list is too long', () => {
    const big = `big=${'x'.repeat(200)}`;
    const small = Array.from({ length: 30 }, (_, i) => `k${i}=vvvvvvvvvv`);
    expect(parseTracestate([big, ...small].join(','))).toBe(small.join(','));
  });

  it('keeps a member over 128 characters when the list fits', () => {
    const big = `big=${'x'.repeat(200)}`;
    expect(parseTracestate(`${big},a=1`)).toBe(`${big},a=1`);
  });

  it('keeps at most maxLength characters, dropping members from the end', () => {
    const header = Array.from({ length: 10 }, (_, i) => `k${i}=${'x'.repeat(100)}`).join(',');
    const kept = parseTracestate(header, { maxLength: 512 }) as string;
    expect(kept.length).toBeLessThanOrEqual(512);
    expect(kept.split(',')).toHaveLength(4);
  });
});

describe('IdSource', () => {
  it('makes lowercase hex ids of the right length that differ', () => {
    const ids = new IdSource();
    const traces = new Set(Array.from({ length: 1_000 }, () => ids.traceId()));
    expect(traces.size).toBe(1_000);
    for (const t of traces) expect(t).toMatch(/^[0-9a-f]{32}$/);
    expect(ids.spanId()).toMatch(/^[0-9a-f]{16}$/);
  });
});

describe('Tracing', () => {
  it('continues the caller trace with a new span of its own', () => {
    const ctx = new Tracing().fromHeaders({ traceparent: VALID, tracestate: 'congo=t61rcWkgMzE' });
    expect(ctx.traceId).toBe(TRACE);
    expect(ctx.parentId).toBe(SPAN);
    expect(ctx.spanId).not.toBe(SPAN);
    expect(ctx.traceState).toBe('congo=t61rcWkgMzE');
    expect(ctx.traceparent()).toBe(`00-${TRACE}-${ctx.spanId}-01`);
  });

  it('starts a new trace when traceparent is invalid, and ignores its tracestate', () => {
    const ctx = new Tracing().fromHeaders({ traceparent: `ff-${TRACE}-${SPAN}-01`, tracestate: 'a=1' });
    expect(ctx.traceId).not.toBe(TRACE);
    expect(ctx.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(ctx.parentId).toBeUndefined();
    expect(ctx.traceState).toBeUndefined();
  });

  it('propagates only the sampled flag, sending the reserved flag bits as zero', () => {
    const ctx = new Tracing().fromHeaders({ traceparent: `00-${TRACE}-${SPAN}-ff` });
    expect(ctx.flags).toBe(1);
    expect(ctx.traceparent()).toBe(`00-${TRACE}-${ctx.spanId}-01`);
    expect(new Tracing().fromHeaders({ traceparent: `00-${TRACE}-${SPAN}-fe` }).traceparent()).toMatch(/-00$/);
  });

  it('keeps only the sampled flag of an adopted span', () => {
    const ctx = new Tracing().create();
    ctx.adopt(TRACE, SPAN, 0x03);
    expect(ctx.traceparent()).toBe(`00-${TRACE}-${SPAN}-01`);
  });

  it('treats several traceparent headers as invalid', () => {
    const ctx = new Tracing().fromHeaders({ traceparent: `${VALID}, ${VALID}` });
    expect(ctx.parentId).toBeUndefined();
  });

  it('marks new traces sampled unless told not to', () => {
    expect(new Tracing().create().traceparent().endsWith('-01')).toBe(true);
    expect(new Tracing({ sampled: false }).create().traceparent().endsWith('-00')).toBe(true);
  });

  it('ignores incoming context when trustIncoming is false', () => {
    const ctx = new Tracing({ trustIncoming: false }).fromHeaders({ traceparent: VALID, 'x-request-id': 'abc' });
    expect(ctx.traceId).not.toBe(TRACE);
    expect(ctx.requestId).not.toBe('abc');
  });

  it('accepts a well-formed request id', () => {
    expect(new Tracing().fromHeaders({ 'x-request-id': 'req-42.a:b' }).requestId).toBe('req-42.a:b');
  });

  it('generates a request id when none came', () => {
    const id = new Tracing().fromHeaders({}).requestId;
    expect(id).toMatch(/^[0-9a-f]{16}$/);
  });

  it('sanitises a request id with unsafe characters', () => {
    expect(new Tracing().fromHeaders({ 'x-request-id': 'abc\r\ndef <script>' }).requestId).toBe('abcdefscript');
  });

  it('truncates a long request id', () => {
    expect(new Tracing({ maxRequestIdLength: 8 }).fromHeaders({ 'x-request-id': 'a'.repeat(100) }).requestId).toBe('aaaaaaaa');
  });

  it('generates a request id when nothing safe is left', () => {
    expect(new Tracing().fromHeaders({ 'x-request-id': '<<>>' }).requestId).toMatch(/^[0-9a-f]{16}$/);
  });

  it('reads a configured request id header', () => {
    expect(new Tracing({ requestIdHeader: 'X-Correlation-Id' }).fromHeaders({ 'x-correlation-id': 'c1' }).requestId).toBe('c1');
  });

  it('reads web Headers', () => {
    const ctx = new Tracing().fromHeaders(new Headers({ traceparent: VALID, 'x-request-id': 'web' }));
    expect(ctx.traceId).toBe(TRACE);
    expect(ctx.requestId).toBe('web');
  });

  it('carries the context through awaits and timers', async () => {
    const tracing = new Tracing();
    const ctx = tracing.create();
    const seen = await tracing.run(ctx, async () => {
      await new Promise<void>((resolve) => setImmediate(resolve));
      return tracing.current();
    });
    expect(seen).toBe(ctx);
    expect(tracing.current()).toBeUndefined();
  });

  it('keeps the contexts of two instances apart', () => {
    const a = new Tracing();
    const b = new Tracing();
    a.run(a.create(), () => expect(b.current()).toBeUndefined());
  });

  it('names the option in a TypeError', () => {
    expect(() => new Tracing({ maxRequestIdLength: 0 })).toThrow(/maxRequestIdLength/);
  });

  it('rejects tracestateMaxMembers over 32, a list the spec calls invalid', () => {
    expect(() => new Tracing({ tracestateMaxMembers: 33 })).toThrow(/option "tracestateMaxMembers"/);
  });
});
