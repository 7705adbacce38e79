import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent, request } from 'undici';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { propagateTraceContext, Tracing, traceInterceptor } from '../../src/observe/index.ts';

const TP = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
let server: Server;
let url: string;
let seen: IncomingHttpHeaders[];

beforeEach(async () => {
  seen = [];
  server = createServer((req, res) => {
    seen.push(req.headers);
    res.setHeader('connection', 'close');
    res.end('ok');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
});

afterEach(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

describe('propagateTraceContext', () => {
  it('adds traceparent and tracestate to undici requests made inside a request', async () => {
    const tracing = new Tracing();
    using _ = propagateTraceContext(tracing);
    const agent = new Agent();
    const ctx = tracing.fromHeaders({ traceparent: TP, tracestate: 'congo=t61' });
    await tracing.run(ctx, async () => {
      const res = await request(url, { dispatcher: agent });
      await res.body.text();
    });
    await agent.close();
    expect(seen[0]?.traceparent).toBe(`00-4bf92f3577b34da6a3ce929d0e0e4736-${ctx.spanId}-01`);
    expect(seen[0]?.tracestate).toBe('congo=t61');
  });

  it('adds traceparent to global fetch calls', async () => {
    const tracing = new Tracing();
    using _ = propagateTraceContext(tracing);
    const ctx = tracing.create();
    await tracing.run(ctx, async () => {
      const res = await fetch(url);
      await res.text();
    });
    expect(seen[0]?.traceparent).toBe(ctx.traceparent());
  });

  it('adds nothing outside a request', async () => {
    const tracing = new Tracing();
    using _ = propagateTraceContext(tracing);
    const res = await fetch(url);
    await res.text();
    expect(seen[0]?.traceparent).toBeUndefined();
  });

  it('leaves a traceparent the caller set', async () => {
    const tracing = new Tracing();
    using _ = propagateTraceContext(tracing);
    await tracing.run(tracing.create(), async () => {
      const res = await fetch(url, { headers: { traceparent: TP } });
      await res.text();
    });
    expect(seen[0]?.traceparent).toBe(TP);
  });

  it('stops after close', async () => {
    const tracing = new Tracing();
    propagateTraceContext(tracing).close();
    await tracing.run(tracing.create(), async () => {
      const res = await fetch(url);
      await res.text();
    });
    expect(seen[0]?.traceparent).toBeUndefined();
  });
});

describe('traceInterceptor', () => {
  it('adds traceparent through a composed dispatcher', async () => {
    const tracing = new Tracing();
    const agent = new Agent();
    const traced = agent.compose(traceInterceptor(tracing));
    const ctx = tracing.create();
    await tracing.run(ctx, async () => {
      const res = await request(url, { dispatcher: traced, headers: { 'x-app': '1' } });
      await res.body.text();
    });
    await agent.close();
    expect(seen[0]?.traceparent).toBe(ctx.traceparent());
    expect(seen[0]?.['x-app']).toBe('1');
  });

  it('keeps array headers and a caller traceparent', async () => {
    const tracing = new Tracing();
    const agent = new Agent();
    const traced = agent.compose(traceInterceptor(tracing));
    await tracing.run(tracing.create(), async () => {
      const res = await request(url, { dispatcher: traced, headers: ['traceparent', TP] });
      await res.body.text();
    });
    await agent.close();
    expect(seen[0]?.traceparent).toBe(TP);
  });
});
