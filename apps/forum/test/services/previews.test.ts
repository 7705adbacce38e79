import { lookup } from 'node:dns/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { bearer, createTestApp, register, type TestApp, waitFor } from '../helpers.ts';

type Mode = 'ok' | 'fail' | 'stall';

/** A real upstream the tests switch between answering, failing and stalling. */
class Upstream {
  mode: Mode = 'ok';
  requests = 0;
  readonly stalled: ServerResponse[] = [];
  readonly server: Server;
  constructor() {
    this.server = createServer((req, res) => this.#handle(req, res));
  }
  #handle(req: IncomingMessage, res: ServerResponse): void {
    this.requests++;
    const path = req.url ?? '/';
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
    expect(t.app.services.repos.db.prepare('SELECT error FROM link_previews WHERE post_id = ?').pluck().get(created.id)).toMatch(reason);
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
  it('records an attempt for every probe a dead link sent, so it ends failed instead of holding the breaker open', async () => {
    // The 4 dead links fail 5 requests in a row, so the breaker opens, and from then on every
    // request is a half-open probe. The breaker stays open longer than the worker's quick
    // retry waits, so a retry after a failed probe meets the open breaker.
    const dead = await createTestApp({
      seedOnEmpty: 'small',
      previews: {
        enabled: true,
        allowPrivateHosts: true,
        pollMs: 20,
        timeoutMs: 300,
        breakerOpenMs: 300,
        maxRetryDelayMs: 100,
        maxAttempts: 3,
      },
    });
    try {
      const user = await register(dead.app, 'deadlinks');
      const ids: number[] = [];
      for (const body of [`${upstream.url('/dead-1')} ${upstream.url('/dead-2')} ${upstream.url('/dead-3')}`, upstream.url('/dead-4')]) {
        const res = await dead.app.inject({
          method: 'POST',
          url: '/api/v1/topics/1/posts',
          headers: bearer(user.token),
          payload: { body },
        });
        ids.push((res.json() as { id: number }).id);
      }
      const rows = () =>
        dead.app.services.repos.db
          .prepare(`SELECT status, attempts FROM link_previews WHERE post_id IN (${ids.join(',')})`)
          .all() as Array<{ status: string; attempts: number }>;
      // A probe that reached the upstream counts, so no dead row stays pending (and the probe) for ever.
      await waitFor(() => rows().every((r) => r.status === 'failed'), 15_000, 'every dead link failed');
      expect(rows().map((r) => r.attempts)).toEqual([3, 3, 3, 3]);
    } finally {
      await dead.close();
    }
  });

  it('fails a link whose host does not resolve at once, without counting it against the breaker', async () => {
    const ids: number[] = [];
    for (let i = 0; i < 2; i++) {
      const links = [1, 2, 3].map((n) => `http://no-such-host-${i}-${n}.invalid/page`).join(' ');
      ids.push((await post(links)).id);
    }
    const rows = () =>
      t.app.services.repos.db
        .prepare(`SELECT status, error, attempts FROM link_previews WHERE post_id IN (${ids.join(',')})`)
        .all() as Array<{ status: string; error: string; attempts: number }>;
    await waitFor(() => rows().every((r) => r.status === 'failed'), 10_000, 'unresolvable links failed');
    for (const r of rows()) expect(r).toMatchObject({ error: expect.stringMatching(/does not resolve/), attempts: 1 });
    // Six failures in a row would have opened it (the threshold is 5).
    expect(t.app.services.previews?.breaker.state).toBe('closed');
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
      await waitFor(() => strict.app.services.repos.previews.ofPost(id)[0]?.status === 'failed', 10_000, 'refused');
      expect(upstream.requests).toBe(before);
      return strict.app.services.repos.db.prepare('SELECT error FROM link_previews WHERE post_id = ?').pluck().get(id) as string;
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
