import { lookup } from 'node:dns/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import {
  type Context,
  context,
  ROOT_CONTEXT,
  type Span,
  type SpanContext,
  type SpanOptions,
  type SpanStatus,
  type Tracer,
  trace,
} from '@opentelemetry/api';
import type { TimerHandle } from 'keel/clock';
import { OtelBridge, parseTraceparent } from 'keel/observe';
import { FakeClock } from 'keel/testing';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AlsContextManager } from '../../../../test-support/otel-context.ts';
import { PreviewWorker } from '../../src/services/previews/worker.ts';
import { bearer, createTestApp, register, type TestApp, waitFor } from '../helpers.ts';

type Mode = 'ok' | 'fail' | 'stall';

/** A real upstream the tests switch between answering, failing and stalling. */
class Upstream {
  mode: Mode = 'ok';
  requests = 0;
  /** The path of every request, in the order they came. */
  readonly paths: string[] = [];
  /** The `traceparent` each path was last requested with. */
  readonly traceparents = new Map<string, string | undefined>();
  readonly stalled: ServerResponse[] = [];
  readonly server: Server;
  constructor() {
    this.server = createServer((req, res) => this.#handle(req, res));
  }
  #handle(req: IncomingMessage, res: ServerResponse): void {
    this.requests++;
    const path = req.url ?? '/';
    this.paths.push(path);
    const traceparent = req.headers.traceparent;
    this.traceparents.set(path, typeof traceparent === 'string' ? traceparent : undefined);
    if (path === '/missing') return void res.writeHead(404).end();
    // A link that is gone for good, whatever the mode.
    if (path.startsWith('/dead')) return void res.writeHead(500).end('gone');
    if (path === '/json') return void res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    if (path === '/loop') return void res.writeHead(302, { location: '/loop' }).end();
    if (path === '/huge')
      return void res.writeHead(200, { 'content-type': 'text/html' }).end(`${' '.repeat(70_000)}<title>too late</title>`);
    if (this.mode === 'stall') return void this.stalled.push(res);
    if (this.mode === 'fail') return void res.writeHead(500).end('down');
    res
      .writeHead(200, { 'content-type': 'text/html; charset=utf-8' })
      .end(`<html><head><title>Page ${path} &amp; co</title></head></html>`);
  }
  release(): void {
    for (const res of this.stalled.splice(0)) res.writeHead(503).end();
  }
  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }
  url(path: string): string {
    return `http://127.0.0.1:${this.port}${path}`;
  }
}

let upstream: Upstream;
let t: TestApp;
let token: string;
const topicId = 1;

beforeAll(async () => {
  upstream = new Upstream();
  await new Promise<void>((r) => upstream.server.listen(0, '127.0.0.1', r));
});
// A fresh app per test: its worker's timers and connection pool belong to the test.
beforeEach(async () => {
  t = await createTestApp({
    seedOnEmpty: 'small',
    previews: { enabled: true, allowPrivateHosts: true, pollMs: 20, timeoutMs: 300, breakerOpenMs: 300, maxRetryDelayMs: 200 },
  });
  ({ token } = await register(t.app, 'linker'));
});
afterEach(async () => {
  upstream.release();
  upstream.mode = 'ok';
  await t.close();
  upstream.server.closeIdleConnections();
});
afterAll(async () => {
  upstream.release();
  upstream.server.closeAllConnections();
  await new Promise<void>((r) => upstream.server.close(() => r()));
});

const post = async (body: string) => {
  const res = await t.app.inject({ method: 'POST', url: `/api/v1/topics/${topicId}/posts`, headers: bearer(token), payload: { body } });
  expect(res.statusCode).toBe(201);
  return res.json() as { id: number; previews: Array<{ url: string; status: string; title: string | null }> };
};
const previewsOf = async (id: number) =>
  (
    (await t.app.inject({ url: `/api/v1/posts/${id}/previews` })).json() as {
      items: Array<{ url: string; status: string; title: string | null }>;
    }
  ).items;

describe('link previews', () => {
  it('saves the post at once with its preview pending, then fills the title in the background', async () => {
    const created = await post(`see ${upstream.url('/hello')} for more`);
    expect(created.previews).toEqual([{ url: upstream.url('/hello'), status: 'pending', title: null }]);
    await waitFor(async () => (await previewsOf(created.id))[0]?.status === 'ready', 10_000, 'preview ready');
    expect((await previewsOf(created.id))[0]?.title).toBe('Page /hello & co');
  });

  it('never makes posting wait on a stalled upstream', async () => {
    upstream.mode = 'stall';
    await post(`stalls: ${upstream.url('/slow-1')}`);
    await waitFor(() => upstream.stalled.length > 0, 10_000, 'a stalled upstream request');
    // The upstream holds a request open; a second post is saved regardless.
    const second = await post(`also: ${upstream.url('/slow-2')}`);
    expect(second.previews[0]?.status).toBe('pending');
    expect(upstream.stalled.length).toBeGreaterThan(0);
  });

  it('opens the breaker while the upstream fails, keeps previews pending, and fills every one after recovery', async () => {
    upstream.mode = 'fail';
    const worker = t.app.services.previews;
    const ids: number[] = [];
    for (let i = 0; i < 8; i++) ids.push((await post(`link ${upstream.url(`/down-${i}`)}`)).id);
    await waitFor(() => worker?.breaker.state === 'open', 10_000, 'breaker open');
    for (const id of ids) expect((await previewsOf(id))[0]?.status).toBe('pending');

    upstream.mode = 'ok';
    await waitFor(
      async () => (await Promise.all(ids.map(previewsOf))).every((p) => p[0]?.status === 'ready'),
      10_000,
      'all previews ready',
    );
    expect(worker?.breaker.state).toBe('closed');
  });

  it.each([
    ['/missing', /404/],
    ['/json', /not an HTML page/],
    ['/loop', /too many redirects/],
    ['/huge', /no <title>/],
  ])('marks %s failed for good, recording why', async (path, reason) => {
    const created = await post(`x ${upstream.url(path)}`);
    await waitFor(async () => (await previewsOf(created.id))[0]?.status === 'failed', 10_000, 'preview failed');
    expect(t.app.services.repos!.db.prepare('SELECT error FROM link_previews WHERE post_id = ?').pluck().get(created.id)).toMatch(reason);
  });

  it('queues previews for URLs added by an edit', async () => {
    const created = await post('no links yet');
    expect(created.previews).toEqual([]);
    const res = await t.app.inject({
      method: 'PATCH',
      url: `/api/v1/posts/${created.id}`,
      headers: bearer(token),
      payload: { body: `now ${upstream.url('/edited')}` },
    });
    expect((res.json() as { previews: unknown[] }).previews).toHaveLength(1);
    await waitFor(async () => (await previewsOf(created.id))[0]?.status === 'ready', 10_000, 'edited preview ready');
  });
});

describe('link previews with dead links', () => {
  it('fails a link whose host does not resolve at once, without counting it against the breaker', async () => {
    const ids: number[] = [];
    for (let i = 0; i < 2; i++) {
      const links = [1, 2, 3].map((n) => `http://no-such-host-${i}-${n}.invalid/page`).join(' ');
      ids.push((await post(links)).id);
    }
    const rows = () =>
      t.app.services
        .repos!.db.prepare(`SELECT status, error, attempts FROM link_previews WHERE post_id IN (${ids.join(',')})`)
        .all() as Array<{ status: string; error: string; attempts: number }>;
    await waitFor(() => rows().every((r) => r.status === 'failed'), 10_000, 'unresolvable links failed');
    for (const r of rows()) expect(r).toMatchObject({ error: expect.stringMatching(/does not resolve/), attempts: 1 });
    // Six failures in a row would have opened it (the threshold is 5).
    expect(t.app.services.previews?.breaker.state).toBe('closed');
  });
});

/**
 * Fake time for a worker a test drives pass by pass. The worker's quick retry sleeps at most
 * 1 s, less than any other timer of these workers (the fetch deadline, the bulkhead's queue wait,
 * the poll): that sleep ends on the next turn of the event loop instead, so a pass ends by itself
 * and time moves only when the test moves it.
 */
class PassClock extends FakeClock {
  override setTimeout(fn: () => void, ms: number): TimerHandle {
    return ms <= 1_000 ? { immediate: setImmediate(fn) } : super.setTimeout(fn, ms);
  }
  override clearTimeout(handle: TimerHandle): void {
    const immediate = (handle as { immediate?: NodeJS.Immediate }).immediate;
    if (immediate) clearImmediate(immediate);
    else super.clearTimeout(handle);
  }
}

describe('link previews through a long upstream outage', () => {
  const OPEN_MS = 1_000;
  const MAX_ATTEMPTS = 3;
  let outage: TestApp;
  let clock: PassClock;
  let worker: PreviewWorker;
  let postId: number;
  beforeEach(async () => {
    // Previews off in the app, so the only worker is this one, on fake time.
    outage = await createTestApp({ seedOnEmpty: 'small', previews: { enabled: false } });
    clock = new PassClock();
    worker = new PreviewWorker(outage.app.services.store, {
      clock,
      allowPrivateHosts: true,
      pollMs: 3_600_000,
      timeoutMs: 30_000,
      breakerOpenMs: OPEN_MS,
      maxRetryDelayMs: OPEN_MS,
      maxAttempts: MAX_ATTEMPTS,
    });
    postId = outage.app.services.repos!.db.prepare('SELECT id FROM posts ORDER BY id LIMIT 1').pluck().get() as number;
  });
  afterEach(async () => {
    await worker.close();
    await outage.close();
  });

  /** Queues a preview of each path, due now on the fake clock. */
  const queue = (paths: string[]) =>
    outage.app.services.repos!.previews.enqueue(
      postId,
      paths.map((p) => upstream.url(p)),
      clock.now(),
    );
  const rows = () =>
    outage.app.services
      .repos!.db.prepare('SELECT url, status, attempts FROM link_previews WHERE post_id = ? ORDER BY id')
      .all(postId) as Array<{ url: string; status: string; attempts: number }>;
  /** Runs one pass to its end; resolves with the paths it requested. */
  const pass = async () => {
    const from = upstream.paths.length;
    worker.nudge();
    await worker.idle();
    return upstream.paths.slice(from);
  };
  /** Opens the breaker with the queued rows' first tries, each charged one attempt. */
  const trip = async () => {
    upstream.mode = 'fail';
    await pass();
    expect(worker.breaker.state).toBe('open');
    expect(rows().map((r) => r.attempts)).toEqual(rows().map(() => 1));
  };
  /** The probe of each of `n` breaker periods (each sent exactly one request). */
  const probes = async (n: number) => {
    const sent: string[] = [];
    for (let i = 0; i < n; i++) {
      clock.advance(OPEN_MS);
      const paths = await pass();
      expect(paths, 'one probe per breaker period, from a row still pending').toHaveLength(1);
      sent.push(...paths);
    }
    return sent;
  };
  /** Passes, a breaker period apart, until no row is pending (at most `max`). */
  const settle = async (max: number) => {
    for (let i = 0; i < max && rows().some((r) => r.status === 'pending'); i++) {
      clock.advance(OPEN_MS);
      await pass();
    }
  };

  it('keeps every preview pending through more failed probes than maxAttempts, then fills them all', async () => {
    const paths = ['/outage-1', '/outage-2', '/outage-3', '/outage-4'];
    queue(paths);
    await trip();
    await probes(paths.length * (MAX_ATTEMPTS + 1));
    // No probe was charged: each row still has only the attempt its closed-breaker try cost.
    expect(rows()).toEqual(paths.map((p) => ({ url: upstream.url(p), status: 'pending', attempts: 1 })));

    upstream.mode = 'ok';
    await settle(5);
    expect(rows().map((r) => r.status)).toEqual(paths.map(() => 'ready'));
    expect(worker.breaker.state).toBe('closed');
  });

  it('sends each half-open probe from another row, round the pending rows in queue order', async () => {
    const paths = ['/round-1', '/round-2', '/round-3'];
    queue(paths);
    await trip();
    // More rounds than a row has attempts: every row keeps its turn.
    const rounds = MAX_ATTEMPTS + 1;
    expect(await probes(paths.length * rounds)).toEqual(Array.from({ length: rounds }, () => paths).flat());
  });

  it('still fails a dead link after maxAttempts tries through the closed breaker, charging none of its probes', async () => {
    // Always 500, while the other links work once the upstream recovers.
    const paths = ['/dead-probe', '/alive-1', '/alive-2', '/alive-3'];
    queue(paths);
    await trip();
    const sent = await probes(paths.length * MAX_ATTEMPTS);
    expect(sent.filter((p) => p === '/dead-probe')).toHaveLength(MAX_ATTEMPTS);
    expect(rows().find((r) => r.url === upstream.url('/dead-probe'))).toMatchObject({ status: 'pending', attempts: 1 });

    upstream.mode = 'ok';
    await settle(10);
    expect(rows()).toEqual([
      { url: upstream.url('/dead-probe'), status: 'failed', attempts: MAX_ATTEMPTS },
      // The try that tripped the breaker and the one that filled it.
      ...paths.slice(1).map((p) => ({ url: upstream.url(p), status: 'ready', attempts: 2 })),
    ]);
    // Its failing tries never held the breaker open for the others.
    expect(worker.breaker.state).toBe('closed');
  });
});

/** Whether this machine's own name resolves to loopback (Debian's /etc/hosts maps it to 127.0.1.1). */
const hostIsLoopback = await lookup(hostname(), { family: 4 }).then(
  (a) => a.address.startsWith('127.'),
  () => false,
);

describe('link previews without private hosts allowed', () => {
  /** Posts `url` to an app with the default (strict) previews; resolves with the error it failed with. */
  async function refused(url: string): Promise<string> {
    const strict = await createTestApp({ seedOnEmpty: 'small', previews: { enabled: true, pollMs: 20 } });
    try {
      const user = await register(strict.app, 'strict');
      const before = upstream.requests;
      const res = await strict.app.inject({
        method: 'POST',
        url: '/api/v1/topics/1/posts',
        headers: bearer(user.token),
        payload: { body: url },
      });
      const id = (res.json() as { id: number }).id;
      await waitFor(() => strict.app.services.repos!.previews.ofPost(id)[0]?.status === 'failed', 10_000, 'refused');
      expect(upstream.requests).toBe(before);
      return strict.app.services.repos!.db.prepare('SELECT error FROM link_previews WHERE post_id = ?').pluck().get(id) as string;
    } finally {
      await strict.close();
    }
  }

  it('refuses to fetch loopback addresses', async () => {
    expect(await refused(upstream.url('/private'))).toMatch(/not allowed/);
  });

  it('refuses an IPv4-mapped IPv6 loopback address', async () => {
    expect(await refused(`http://[::ffff:127.0.0.1]:${upstream.port}/mapped`)).toMatch(/not allowed/);
  });

  it('refuses a host name that resolves to a loopback address, checked at connect time', async () => {
    // The test needs a name that is not `localhost` (refused by name, before any lookup) but
    // resolves to loopback without DNS: the machine's own name does on Debian.
    expect(hostIsLoopback, `${hostname()} should resolve to 127.x through /etc/hosts`).toBe(true);
    expect(await refused(`http://${hostname()}:${upstream.port}/named`)).toMatch(/not allowed/);
  });
});

/** A caller's trace context, as a client or a proxy in front of the forum would send it. */
const CALLER_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const CALLER_SPAN = '00f067aa0ba902b7';
const storedTraceparent = (postId: number): string | null =>
  t.app.services.repos!.db.prepare('SELECT traceparent FROM link_previews WHERE post_id = ?').pluck().get(postId) as string | null;

describe('link previews in the trace of the post that linked them', () => {
  const tracedPost = async (body: string, flags = '01') => {
    const res = await t.app.inject({
      method: 'POST',
      url: `/api/v1/topics/${topicId}/posts`,
      headers: { ...bearer(token), traceparent: `00-${CALLER_TRACE}-${CALLER_SPAN}-${flags}` },
      payload: { body },
    });
    expect(res.statusCode).toBe(201);
    return (res.json() as { id: number }).id;
  };

  it("continues the posting request's trace in the upstream call, with a span id of its own", async () => {
    const id = await tracedPost(`see ${upstream.url('/traced')}`);
    await waitFor(async () => (await previewsOf(id))[0]?.status === 'ready', 10_000, 'preview ready');
    const stored = parseTraceparent(storedTraceparent(id) ?? undefined);
    const sent = parseTraceparent(upstream.traceparents.get('/traced'));
    expect(stored?.traceId).toBe(CALLER_TRACE);
    expect(sent).toMatchObject({ version: 0, traceId: CALLER_TRACE, flags: 1 });
    // Not the caller's span nor the request's own (stored) one: the fetch is a span of its own.
    expect([CALLER_SPAN, stored?.parentId]).not.toContain(sent?.parentId);
  });

  it("keeps an unsampled posting request's trace unsampled upstream", async () => {
    const id = await tracedPost(`see ${upstream.url('/unsampled')}`, '00');
    await waitFor(async () => (await previewsOf(id))[0]?.status === 'ready', 10_000, 'preview ready');
    expect(parseTraceparent(upstream.traceparents.get('/unsampled'))).toMatchObject({ traceId: CALLER_TRACE, flags: 0 });
  });

  it("records the editing request's trace context on the previews an edit queues", async () => {
    const created = await post('no links yet');
    const res = await t.app.inject({
      method: 'PATCH',
      url: `/api/v1/posts/${created.id}`,
      headers: { ...bearer(token), traceparent: `00-${CALLER_TRACE}-${CALLER_SPAN}-01` },
      payload: { body: `now ${upstream.url('/edited-traced')}` },
    });
    expect(res.statusCode).toBe(200);
    expect(parseTraceparent(storedTraceparent(created.id) ?? undefined)?.traceId).toBe(CALLER_TRACE);
  });

  it('starts a new trace for a preview queued without a trace context', async () => {
    const created = await post('no links yet');
    // Outside any request, as rows queued before migration 006 were: nothing to continue.
    t.app.services.repos!.previews.enqueue(created.id, [upstream.url('/untraced')], Date.now());
    expect(storedTraceparent(created.id)).toBeNull();
    t.app.services.previews?.nudge();
    await waitFor(async () => (await previewsOf(created.id))[0]?.status === 'ready', 10_000, 'preview ready');
    const sent = parseTraceparent(upstream.traceparents.get('/untraced'));
    expect(sent).toMatchObject({ version: 0, flags: 1 });
    expect(sent?.traceId).not.toBe(CALLER_TRACE);
  });

  it.each([
    ['arbitrary text', 'not a trace context'],
    ['an all-zero trace id', `00-${'0'.repeat(32)}-${CALLER_SPAN}-01`],
    ['a traceparent with text after it', `00-${CALLER_TRACE}-${CALLER_SPAN}-01-${'x'.repeat(500)}`],
  ])('stores no trace context for %s', async (_what, value) => {
    const created = await post('no links yet');
    t.app.services.repos!.previews.traceFrom(() => value);
    t.app.services.repos!.previews.enqueue(created.id, [upstream.url('/bad-context')], Date.now());
    expect(storedTraceparent(created.id)).toBeNull();
  });

  it('stores a well-formed trace context as version 00 with only the sampled flag', async () => {
    const created = await post('no links yet');
    t.app.services.repos!.previews.traceFrom(() => `00-${CALLER_TRACE}-${CALLER_SPAN}-ff`);
    t.app.services.repos!.previews.enqueue(created.id, [upstream.url('/flags')], Date.now());
    expect(storedTraceparent(created.id)).toBe(`00-${CALLER_TRACE}-${CALLER_SPAN}-01`);
  });
});

/** The spans a minimal tracer provider, registered through @opentelemetry/api, was asked for. */
class RecordingTracer implements Tracer {
  readonly spans: Array<{ name: string; parent: SpanContext | undefined; attributes: SpanOptions['attributes']; ended: boolean }> = [];
  startSpan(name: string, options?: SpanOptions, ctx?: Context): Span {
    const record = { name, parent: trace.getSpanContext(ctx ?? context.active()), attributes: options?.attributes, ended: false };
    this.spans.push(record);
    const sc: SpanContext = { traceId: record.parent?.traceId ?? CALLER_TRACE, spanId: 'a1b2c3d4e5f60718', traceFlags: 1 };
    const span: Span = {
      spanContext: () => sc,
      setAttribute: () => span,
      setAttributes: () => span,
      addEvent: () => span,
      addLink: () => span,
      addLinks: () => span,
      setStatus: (_s: SpanStatus) => span,
      updateName: () => span,
      end: () => {
        record.ended = true;
      },
      isRecording: () => !record.ended,
      recordException: () => {},
    };
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

describe('link previews with OpenTelemetry', () => {
  let tracer: RecordingTracer;
  let otelApp: TestApp;
  let worker: PreviewWorker;
  beforeEach(async () => {
    tracer = new RecordingTracer();
    trace.setGlobalTracerProvider({ getTracer: () => tracer });
    // Previews off in the app, so the only worker is this one, with the bridge.
    otelApp = await createTestApp({ seedOnEmpty: 'small', previews: { enabled: false } });
    const tracing = otelApp.app.keel.tracing;
    worker = new PreviewWorker(otelApp.app.services.store, {
      tracing,
      otel: new OtelBridge({ tracing }),
      allowPrivateHosts: true,
      pollMs: 60_000,
    });
  });
  afterEach(async () => {
    await worker.close();
    await otelApp.close();
    trace.disable();
    context.disable();
  });
  /** Posts a link to `path` in a request that continues the caller's trace. */
  const tracedLink = async (path: string) => {
    const user = await register(otelApp.app, 'otel');
    const res = await otelApp.app.inject({
      method: 'POST',
      url: `/api/v1/topics/${topicId}/posts`,
      headers: { ...bearer(user.token), traceparent: `00-${CALLER_TRACE}-${CALLER_SPAN}-01` },
      payload: { body: upstream.url(path) },
    });
    expect(res.statusCode).toBe(201);
  };

  it("makes each preview's run through the policies a span in the posting request's trace", async () => {
    await tracedLink('/otel');
    worker.nudge();
    await worker.idle();
    const sent = parseTraceparent(upstream.traceparents.get('/otel'));
    // The app hands its bridge to the keel plugin too, so the POST itself is a span as well.
    expect(tracer.spans.filter((span) => span.name === 'previews')).toEqual([
      {
        name: 'previews',
        // The fetch's own span, the one the upstream call names as its parent.
        parent: expect.objectContaining({ traceId: CALLER_TRACE, spanId: sent?.parentId }),
        attributes: { 'keel.policy': 'previews' },
        ended: true,
      },
    ]);
  });

  it("makes the posting request a span in the caller's trace, as the app passes its bridge to the keel plugin", async () => {
    await tracedLink('/otel-request');
    // Registering the poster was a request (a span) of its own, in a trace of its own.
    const inCallerTrace = tracer.spans.filter((span) => span.name !== 'previews' && span.parent?.traceId === CALLER_TRACE);
    expect(inCallerTrace).toEqual([
      expect.objectContaining({ name: 'POST', parent: expect.objectContaining({ spanId: CALLER_SPAN }), ended: true }),
    ]);
  });

  it("keeps a pass nudged inside another span out of that span's trace", async () => {
    context.setGlobalContextManager(new AlsContextManager());
    await tracedLink('/otel-nudged');
    // As when a request that is itself an active span (another post's) nudges the worker.
    const other = trace.wrapSpanContext({ traceId: 'a'.repeat(32), spanId: 'b'.repeat(16), traceFlags: 1 });
    context.with(trace.setSpan(ROOT_CONTEXT, other), () => worker.nudge());
    await worker.idle();
    expect(tracer.spans.filter((span) => span.name === 'previews').map((span) => span.parent?.traceId)).toEqual([CALLER_TRACE]);
  });

  it('names an otel option that is not an OtelBridge', () => {
    expect(() => new PreviewWorker(t.app.services.store, { otel: {} as never })).toThrow(/PreviewWorker option "otel"/);
  });

  it('names a tracing option that is not a Tracing', () => {
    expect(() => new PreviewWorker(t.app.services.store, { tracing: {} as never })).toThrow(/PreviewWorker option "tracing"/);
  });
});
