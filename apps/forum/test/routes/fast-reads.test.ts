/**
 * Cached public reads answered before Fastify (src/http/fast-reads.ts), through a real socket:
 * `app.inject` never reaches the HTTP server, where the fast path sits.
 */
import { createServer, type IncomingHttpHeaders, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { TieredCache } from 'keel/cache';
import { LoadShedder, Metrics, Tracing } from 'keel/observe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FastReads } from '../../src/http/fast-reads.ts';
import { bearer, createTestApp, register, type TestApp } from '../helpers.ts';

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

let t: TestApp;
let port: number;
let token: string;

function send(method: string, path: string, headers: Record<string, string> = {}, body?: string, to = port): Promise<Answer> {
  return new Promise((resolve, reject) => {
    // One connection per request, closed before the answer resolves: the leak check wants no socket left.
    const all = { connection: 'close', ...headers, ...(body === undefined ? {} : { 'content-length': String(Buffer.byteLength(body)) }) };
    const req = request({ host: '127.0.0.1', port: to, method, path, headers: all, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const answer = { status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() };
        if (req.socket?.destroyed) resolve(answer);
        else req.socket?.once('close', () => resolve(answer));
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

const served = () => t.app.fastReads?.served ?? -1;

/** Header names and values that must match between the two paths (not the per-request ones). */
function stable(headers: IncomingHttpHeaders): Record<string, unknown> {
  const { date: _d, 'x-request-id': _r, connection: _c, ...rest } = headers;
  return rest;
}

beforeAll(async () => {
  t = await createTestApp();
  await t.app.listen({ port: 0, host: '127.0.0.1' });
  port = (t.app.server.address() as AddressInfo).port;
  ({ token } = await register(t.app, 'fastreader'));
});

afterAll(async () => {
  await t.close();
});

describe('fast reads', () => {
  it('answers the second anonymous GET of a cached list with the same bytes and headers, before Fastify', async () => {
    const before = served();
    const first = await send('GET', '/api/v1/forums/1/topics');
    expect(first.status).toBe(200);
    expect(served()).toBe(before);
    const second = await send('GET', '/api/v1/forums/1/topics');
    expect(served()).toBe(before + 1);
    expect(second.status).toBe(200);
    expect(second.body).toBe(first.body);
    expect(stable(second.headers)).toEqual(stable(first.headers));
    expect(second.headers['x-request-id']).toMatch(/^[0-9a-f]{16}$/);
    expect(second.headers['x-request-id']).not.toBe(first.headers['x-request-id']);
  });

  it('echoes an incoming request id, as the plugin does', async () => {
    await send('GET', '/api/v1/forums/2/topics');
    const before = served();
    const res = await send('GET', '/api/v1/forums/2/topics', { 'x-request-id': 'caller-chose-this' });
    expect(served()).toBe(before + 1);
    expect(res.headers['x-request-id']).toBe('caller-chose-this');
  });

  it('answers a matching If-None-Match with a 304 and no body', async () => {
    const first = await send('GET', '/api/v1/forums/3/topics');
    const before = served();
    const res = await send('GET', '/api/v1/forums/3/topics', { 'if-none-match': String(first.headers.etag) });
    expect(served()).toBe(before + 1);
    expect(res.status).toBe(304);
    expect(res.body).toBe('');
    expect(res.headers.etag).toBe(first.headers.etag);
    expect(res.headers['cache-control']).toBe(first.headers['cache-control']);
  });

  it('falls through after a write, so the next read shows it (and the one after is fast again)', async () => {
    const list = JSON.parse((await send('GET', '/api/v1/forums/1/topics')).body) as { items: Array<{ id: number; postCount: number }> };
    const topic = list.items[list.items.length - 1]!;
    await send('GET', `/api/v1/topics/${topic.id}`);
    const reply = await send(
      'POST',
      `/api/v1/topics/${topic.id}/posts`,
      { ...bearer(token), 'content-type': 'application/json' },
      JSON.stringify({ body: 'a reply the next read must show' }),
    );
    expect(reply.status).toBe(201);
    const before = served();
    const read = await send('GET', `/api/v1/topics/${topic.id}`);
    expect(served()).toBe(before);
    expect(read.body).toContain('a reply the next read must show');
    // The writer's list shows the bump at once (authenticated: never a fast read); anonymous
    // readers get it within LIST_REFRESH_MS (test/services/cache.test.ts), fast meanwhile.
    const listAfter = JSON.parse((await send('GET', '/api/v1/forums/1/topics', bearer(token))).body) as { items: Array<{ id: number }> };
    expect(listAfter.items[0]!.id).toBe(topic.id);
    expect(served()).toBe(before);
    await send('GET', `/api/v1/topics/${topic.id}`);
    expect(served()).toBe(before + 1);
  });

  it('leaves requests with a token, HEAD and a body to Fastify', async () => {
    await send('GET', '/api/v1/forums/4/topics');
    const before = served();
    expect((await send('GET', '/api/v1/forums/4/topics', bearer(token))).status).toBe(200);
    expect((await send('HEAD', '/api/v1/forums/4/topics')).status).toBe(200);
    expect((await send('GET', '/api/v1/forums/4/topics', { 'content-type': 'text/plain' }, 'x')).status).toBe(200);
    expect(served()).toBe(before);
  });

  it('never remembers a URL the route rejected', async () => {
    const bad = await send('GET', '/api/v1/forums/1/topics?limit=0');
    expect(bad.status).toBe(400);
    const before = served();
    expect((await send('GET', '/api/v1/forums/1/topics?limit=0')).status).toBe(400);
    expect(served()).toBe(before);
  });
});

describe('FastReads', () => {
  const parts = () => {
    // scrapeCacheMs 0: each scrape renders now, so a count read right after a request is current.
    const metrics = new Metrics({ scrapeCacheMs: 0 });
    const cache = new TieredCache({ name: 'fast-reads-test' });
    return { metrics, cache, close: async () => Promise.all([metrics.close(), cache.close()]) };
  };

  /** A bare server that offers every request to `fr` and answers 404 itself otherwise. */
  async function serveWith(fr: FastReads): Promise<{ server: Server; port: number }> {
    const server = createServer((req, res) => {
      if (!fr.serve(req, res)) res.writeHead(404).end('fell through');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return { server, port: (server.address() as AddressInfo).port };
  }
  const stop = (server: Server) => new Promise((resolve) => server.close(resolve));

  it('counts fast answers in the RED metrics under the remembered route template', async () => {
    const p = parts();
    const fr = new FastReads({ cache: p.cache, tracing: new Tracing(), metrics: p.metrics });
    const { server, port: at } = await serveWith(fr);
    try {
      await p.cache.setBody('item:7', { id: 7 });
      fr.remember('/items/7', 'item:7', '/items/:id');
      for (let i = 0; i < 3; i++) expect((await send('GET', '/items/7', {}, undefined, at)).body).toBe('{"id":7}');
      const { body } = await p.metrics.scrape();
      expect(body).toMatch(/^keel_http_requests_total\{method="GET",route="\/items\/:id",status_class="2xx"\} 3$/m);
      expect(fr.served).toBe(3);
    } finally {
      await stop(server);
      await p.close();
    }
  });

  it('falls through while the shedder is under pressure, and for an entry no longer in the cache', async () => {
    const p = parts();
    let inFlight = 0;
    const shedder = new LoadShedder({ inFlight: () => inFlight, maxInFlight: 10, maxEventLoopDelayMs: 60_000 });
    const fr = new FastReads({ cache: p.cache, tracing: new Tracing(), metrics: p.metrics, shedder });
    const { server, port: at } = await serveWith(fr);
    try {
      await p.cache.setBody('item:1', { id: 1 });
      fr.remember('/items/1', 'item:1', '/items/:id');
      inFlight = 10;
      expect((await send('GET', '/items/1', {}, undefined, at)).status).toBe(404);
      inFlight = 0;
      expect((await send('GET', '/items/1', {}, undefined, at)).status).toBe(200);
      await p.cache.delete('item:1');
      expect((await send('GET', '/items/1', {}, undefined, at)).status).toBe(404);
      expect(fr.served).toBe(1);
    } finally {
      await stop(server);
      await shedder.close();
      await p.close();
    }
  });

  it('rejects bad options, naming the option', async () => {
    const p = parts();
    try {
      const tracing = new Tracing();
      expect(() => new FastReads({ cache: {} as TieredCache, tracing, metrics: p.metrics })).toThrow(/"cache"/);
      expect(() => new FastReads({ cache: p.cache, tracing: {} as Tracing, metrics: p.metrics })).toThrow(/"tracing"/);
      expect(() => new FastReads({ cache: p.cache, tracing, metrics: {} as Metrics })).toThrow(/"metrics"/);
      expect(() => new FastReads({ cache: p.cache, tracing, metrics: p.metrics, maxUrls: 0 })).toThrow(/"maxUrls"/);
    } finally {
      await p.close();
    }
  });

  it('remembers at most maxUrls URLs, forgetting the oldest, and forgets them all on close', async () => {
    const p = parts();
    try {
      const fr = new FastReads({ cache: p.cache, tracing: new Tracing(), metrics: p.metrics, maxUrls: 2 });
      fr.remember('/a', 'a', '/a');
      fr.remember('/b', 'b', '/b');
      fr.remember('/c', 'c', '/c');
      expect(fr.size).toBe(2);
      fr.close();
      expect(fr.size).toBe(0);
      fr.remember('/d', 'd', '/d');
      expect(fr.size).toBe(0);
    } finally {
      await p.close();
    }
  });
});
