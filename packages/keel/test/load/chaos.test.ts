import { request } from 'node:http';
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type PostgresServer, startPostgres } from '../../../../test-support/postgres.ts';
import { createFaultProxy, type FaultProxy } from '../../src/load/chaos.ts';
import { classify } from '../../src/resilience/classify.ts';
import { isTimeoutError } from '../../src/resilience/errors.ts';
import { retry } from '../../src/resilience/retry.ts';
import { timeout } from '../../src/resilience/timeout.ts';
import { startServer, type TestServer } from './servers.ts';

let echo: Server | undefined;
let proxy: FaultProxy | undefined;
let http: TestServer | undefined;
const sockets: Socket[] = [];

afterEach(async () => {
  for (const s of sockets) s.destroy();
  sockets.length = 0;
  await proxy?.close();
  await http?.close();
  if (echo) await new Promise((r) => echo!.close(r));
  echo = proxy = http = undefined;
});

async function startEcho(): Promise<number> {
  const conns = new Set<Socket>();
  echo = createServer((s) => {
    conns.add(s);
    s.on('close', () => conns.delete(s));
    s.on('error', () => {});
    s.pipe(s);
  });
  const close = echo.close.bind(echo);
  echo.close = ((cb?: (err?: Error) => void) => {
    for (const c of conns) c.destroy();
    return close(cb);
  }) as Server['close'];
  await new Promise<void>((r) => echo!.listen(0, '127.0.0.1', r));
  return (echo.address() as AddressInfo).port;
}

/** A port that was free a moment ago. */
async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

function open(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host: '127.0.0.1' });
    sockets.push(s);
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

/** Sends `data` and resolves with the echo (or 'timeout' after `ms`). */
function roundTrip(s: Socket, data: string, ms = 2000): Promise<string> {
  return new Promise((resolve) => {
    let got = '';
    const t = setTimeout(() => done('timeout'), ms);
    const onData = (c: Buffer): void => {
      got += c.toString();
      if (got.length >= data.length) done(got);
    };
    const done = (v: string): void => {
      clearTimeout(t);
      s.off('data', onData);
      resolve(v);
    };
    s.on('data', onData);
    s.write(data);
  });
}

/** POSTs `body` as JSON (a string is sent as it is). */
function post(port: number, path: string, body: unknown): Promise<{ status: number; json: unknown }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { port, host: '127.0.0.1', path, method: 'POST', agent: false, headers: { 'content-type': 'application/json' } },
      (res) => {
        let text = '';
        res.on('data', (c) => {
          text += c;
        });
        res.on('end', () => resolve({ status: res.statusCode!, json: JSON.parse(text) }));
      },
    );
    req.on('error', reject);
    req.end(typeof body === 'string' ? body : JSON.stringify(body));
  });
}

describe('createFaultProxy', () => {
  it('forwards bytes both ways unchanged when no fault is set', async () => {
    proxy = await createFaultProxy({ target: { port: await startEcho() } });
    const s = await open(proxy.port);
    expect(await roundTrip(s, 'hello')).toBe('hello');
    expect(proxy.connections).toBe(1);
  });

  it('adds latency to each round trip', async () => {
    proxy = await createFaultProxy({ target: { port: await startEcho() }, faults: { latencyMs: 150 } });
    const s = await open(proxy.port);
    const t0 = performance.now();
    expect(await roundTrip(s, 'ping')).toBe('ping');
    expect(performance.now() - t0).toBeGreaterThanOrEqual(145);
  });

  it('limits bandwidth per connection', async () => {
    proxy = await createFaultProxy({ target: { port: await startEcho() } });
    await proxy.set({ bandwidthBps: 100_000 });
    const s = await open(proxy.port);
    const t0 = performance.now();
    const payload = 'x'.repeat(40_000);
    expect((await roundTrip(s, payload, 5000)).length).toBe(40_000);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(390);
  });

  it('blackholes open connections until the fault is cleared, then delivers the held bytes in order', async () => {
    proxy = await createFaultProxy({ target: { port: await startEcho() } });
    const s = await open(proxy.port);
    await proxy.set({ blackhole: true });
    expect(await roundTrip(s, 'held', 300)).toBe('timeout');
    await proxy.reset();
    // The bytes sent during the outage come first: dropping them put the stream out of step.
    expect(await roundTrip(s, 'back')).toBe('heldback');
  });

  it('holds at most maxQueuedBytes under a blackhole, pausing the sender', async () => {
    let received = 0;
    echo = createServer((s) => {
      s.on('data', (c: Buffer) => {
        received += c.length;
      });
      s.on('error', () => {});
    });
    await new Promise<void>((r) => echo!.listen(0, '127.0.0.1', r));
    proxy = await createFaultProxy({ target: { port: (echo.address() as AddressInfo).port }, maxQueuedBytes: 1024 * 1024 });
    const s = await open(proxy.port);
    await proxy.set({ blackhole: true });
    const chunk = Buffer.alloc(64 * 1024, 97);
    const limit = 64 * 1024 * 1024;
    let written = 0;
    // Write until the socket stops taking bytes (the proxy paused reading) or all were taken.
    while (written < limit) {
      written += chunk.length;
      if (!s.write(chunk)) {
        const drained = await new Promise<boolean>((resolve) => {
          const t = setTimeout(() => resolve(false), 500);
          s.once('drain', () => {
            clearTimeout(t);
            resolve(true);
          });
        });
        if (!drained) break;
      }
    }
    expect(received).toBe(0);
    // Socket buffers hold a few MiB; without the pause the proxy would have taken all 64 MiB.
    expect(written).toBeLessThan(limit / 2);
    await proxy.reset();
    for (let i = 0; i < 100 && received < written; i++) await new Promise((r) => setTimeout(r, 20));
    expect(received).toBeGreaterThan(0);
  });

  it('resets open connections and new ones while reset is set', async () => {
    proxy = await createFaultProxy({ target: { port: await startEcho() } });
    const s = await open(proxy.port);
    const closed = new Promise<string>((r) => {
      s.on('error', (e: NodeJS.ErrnoException) => r(e.code ?? 'error'));
      s.on('close', () => r('close'));
    });
    await proxy.set({ reset: true });
    expect(['ECONNRESET', 'close']).toContain(await closed);
    await proxy.reset();
    expect(await roundTrip(await open(proxy.port), 'again')).toBe('again');
  });

  it('refuses new connections while refuse is set, keeping open ones', async () => {
    proxy = await createFaultProxy({ target: { port: await startEcho() } });
    const kept = await open(proxy.port);
    await proxy.set({ refuse: true });
    await expect(open(proxy.port)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    expect(await roundTrip(kept, 'still')).toBe('still');
    await proxy.reset();
    expect(await roundTrip(await open(proxy.port), 'open')).toBe('open');
  });

  it('switches faults through the HTTP control API in front of an HTTP upstream', async () => {
    http = await startServer((_req, res) => res.end('upstream'));
    proxy = await createFaultProxy({ target: { port: http.port }, controlPort: 0 });
    const set = await post(proxy.controlPort!, '/faults', { latencyMs: 100 });
    expect(set).toEqual({ status: 200, json: expect.objectContaining({ latencyMs: 100 }) });
    const t0 = performance.now();
    const body = await new Promise<string>((resolve, reject) => {
      request({ port: proxy!.port, host: '127.0.0.1', agent: false }, (res) => {
        let text = '';
        res.on('data', (c) => {
          text += c;
        });
        res.on('end', () => resolve(text));
      })
        .on('error', reject)
        .end();
    });
    expect(body).toBe('upstream');
    expect(performance.now() - t0).toBeGreaterThanOrEqual(95);
    expect((await post(proxy.controlPort!, '/faults', { latencyMs: -1 })).status).toBe(400);
    expect((await post(proxy.controlPort!, '/reset', {})).json).toMatchObject({ latencyMs: 0 });
  });

  it('rejects invalid options with a TypeError naming the option', async () => {
    await expect(createFaultProxy({ target: { port: 0 } })).rejects.toThrow(/"target"/);
    await expect(createFaultProxy({ target: { port: 1 }, faults: { latencyMs: -5 } })).rejects.toThrow(/"latencyMs"/);
    await expect(createFaultProxy({ target: { port: 1 }, controlPort: -1 })).rejects.toThrow(/"controlPort"/);
  });

  it('ignores undefined fault fields instead of turning every delay into NaN', async () => {
    proxy = await createFaultProxy({ target: { port: await startEcho() }, faults: { latencyMs: undefined, jitterMs: 5 } });
    expect(proxy.faults).toMatchObject({ latencyMs: 0, jitterMs: 5 });
    await proxy.set({ latencyMs: 300, jitterMs: undefined });
    expect(proxy.faults).toMatchObject({ latencyMs: 300, jitterMs: 5 });
  });

  it('holds the target back while a slow reader is full, with one drain listener', async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error): void => {
      warnings.push(w.name);
    };
    process.on('warning', onWarning);
    const chunk = Buffer.alloc(64 * 1024, 97);
    const limit = 64 * 1024 * 1024;
    let written = 0;
    let upstream: Socket | undefined;
    echo = createServer((s) => {
      upstream = s;
      s.on('error', () => {});
      const pump = (): void => {
        while (written < limit) {
          written += chunk.length;
          if (!s.write(chunk)) return void s.once('drain', pump);
        }
      };
      pump();
    });
    try {
      await new Promise<void>((r) => echo!.listen(0, '127.0.0.1', r));
      const target = { port: (echo.address() as AddressInfo).port };
      proxy = await createFaultProxy({ target, faults: { latencyMs: 5 }, maxQueuedBytes: 1024 * 1024 });
      const reader = await open(proxy.port);
      reader.pause(); // never reads
      // Wait until the target stops getting rid of its bytes (or has sent them all).
      for (let last = -1; written !== last && written < limit; ) {
        last = written;
        await new Promise((r) => setTimeout(r, 200));
      }
      // Socket buffers hold a few MiB; writing on regardless took all 64 MiB into the proxy.
      expect(written).toBeLessThan(limit / 2);
      expect(warnings).not.toContain('MaxListenersExceededWarning');
    } finally {
      process.off('warning', onWarning);
      upstream?.destroy();
    }
  });

  it('applies concurrent updates one after another and closes every listener', async () => {
    proxy = await createFaultProxy({ target: { port: await startEcho() } });
    const port = proxy.port;
    await proxy.set({ refuse: true });
    const both = await Promise.allSettled([proxy.set({ refuse: false }), proxy.set({ latencyMs: 1 })]);
    expect(both.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled']);
    await proxy.close();
    await expect(open(port)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });

  it('rejects when the control port is taken and leaves the proxy port closed', async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const listenPort = await freePort();
    try {
      const controlPort = (blocker.address() as AddressInfo).port;
      await expect(
        createFaultProxy({ target: { port: await startEcho() }, listen: { port: listenPort }, controlPort }),
      ).rejects.toMatchObject({
        code: 'EADDRINUSE',
      });
      await expect(open(listenPort)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    } finally {
      await new Promise((r) => blocker.close(r));
    }
  });

  it('knows its port when started refused and opens that port when refusal ends', async () => {
    proxy = await createFaultProxy({ target: { port: await startEcho() }, faults: { refuse: true } });
    const port = proxy.port;
    expect(port).toBeGreaterThan(0);
    await expect(open(port)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    await proxy.set({ refuse: false });
    expect(proxy.port).toBe(port);
    expect(await roundTrip(await open(port), 'up')).toBe('up');
  });

  it('answers 400 to inherited names as fault fields', async () => {
    proxy = await createFaultProxy({ target: { port: await startEcho() }, controlPort: 0 });
    expect((await post(proxy.controlPort!, '/faults', { constructor: 1 })).status).toBe(400);
    expect((await post(proxy.controlPort!, '/faults', '{"__proto__":{"refuse":true}}')).status).toBe(400);
    expect(() => proxy!.set({ toString: 1 } as never)).toThrow(/"toString"/);
    expect(proxy.faults).toEqual({ latencyMs: 0, jitterMs: 0, bandwidthBps: 0, reset: false, blackhole: false, refuse: false });
  });
});

describe('createFaultProxy in front of a real PostgreSQL server', () => {
  let server: PostgresServer;
  const clients: pg.Client[] = [];
  const pools: pg.Pool[] = [];

  beforeAll(async () => {
    server = await startPostgres();
  });
  // Runs before the file's afterEach, so the proxy closes after its clients.
  afterEach(async () => {
    for (const c of clients.splice(0)) {
      // A blackholed connection never answers a Terminate; destroy it rather than wait.
      (c as unknown as { connection: { stream: Socket } }).connection.stream.destroy();
      await c.end().catch(() => {});
    }
    await Promise.all(pools.splice(0).map((p) => p.end()));
  });
  afterAll(() => server?.close());

  async function startProxy(): Promise<FaultProxy> {
    proxy = await createFaultProxy({ target: { port: server.port } });
    return proxy;
  }
  const urlVia = (p: FaultProxy) => `postgres://keel@127.0.0.1:${p.port}/keel`;
  async function client(p: FaultProxy): Promise<pg.Client> {
    const c = new pg.Client({ connectionString: urlVia(p) });
    c.on('error', () => {}); // a reset also reports here, beside the failed query
    clients.push(c);
    await c.connect();
    return c;
  }
  const failure = (promise: Promise<unknown>): Promise<unknown> =>
    promise.then(
      () => {
        throw new Error('expected a failure');
      },
      (e: unknown) => e,
    );

  it('adds latency to every query round trip', async () => {
    const p = await startProxy();
    const c = await client(p);
    await p.set({ latencyMs: 150 });
    const start = performance.now();
    expect((await c.query('SELECT 7 AS n')).rows).toEqual([{ n: 7 }]);
    expect(performance.now() - start).toBeGreaterThanOrEqual(145);
  });

  it('resets open connections with a transient error; a new connection works once the fault clears', async () => {
    const p = await startProxy();
    const c = await client(p);
    await p.set({ reset: true });
    const err = await failure(c.query('SELECT 1'));
    expect(err).toMatchObject({ code: 'ECONNRESET' });
    expect(classify(err).transient).toBe(true);
    await p.reset();
    expect((await (await client(p)).query('SELECT 2 AS n')).rows).toEqual([{ n: 2 }]);
  });

  it('blackholes a query, and a keel timeout ends the wait with a transient TimeoutError', async () => {
    const p = await startProxy();
    const c = await client(p);
    await p.set({ blackhole: true });
    const err = await failure(timeout(200, { strategy: 'aggressive' }).execute(() => c.query('SELECT 1')));
    expect(isTimeoutError(err)).toBe(true);
    expect(classify(err).transient).toBe(true);
  });

  it('answers a query sent during a blackhole once the fault is lifted', async () => {
    const p = await startProxy();
    const c = await client(p);
    await p.set({ blackhole: true });
    let answered = false;
    const query = c.query('SELECT 9 AS n').then((r) => {
      answered = true;
      return r;
    });
    await new Promise((r) => setTimeout(r, 200));
    expect(answered).toBe(false);
    await p.reset();
    expect((await query).rows).toEqual([{ n: 9 }]);
    // The connection is still in step: the next query gets its own answer.
    expect((await c.query('SELECT 10 AS n')).rows).toEqual([{ n: 10 }]);
  });

  it("blackholes new connections until pg's connect timeout, which classifies as transient", async () => {
    const p = await startProxy();
    await p.set({ blackhole: true });
    const lone = new pg.Client({ connectionString: urlVia(p), connectionTimeoutMillis: 100 });
    lone.on('error', () => {});
    const byClient = await failure(lone.connect());
    const pool = new pg.Pool({ connectionString: urlVia(p), connectionTimeoutMillis: 100 });
    pool.on('error', () => {});
    pools.push(pool);
    const byPool = await failure(pool.query('SELECT 1'));
    expect([classify(byClient), classify(byPool)]).toEqual([
      { transient: true, severity: 'medium', reason: 'postgres:connect-timeout' },
      { transient: true, severity: 'medium', reason: 'postgres:connect-timeout' },
    ]);
  });

  it('refuses new connections with a transient ECONNREFUSED while open ones keep working', async () => {
    const p = await startProxy();
    const open = await client(p);
    await p.set({ refuse: true });
    const err = await failure(client(p));
    expect(err).toMatchObject({ code: 'ECONNREFUSED' });
    expect(classify(err).transient).toBe(true);
    expect((await open.query('SELECT 3 AS n')).rows).toEqual([{ n: 3 }]);
  });

  it('lets a retry ride out a reset on a fresh pool connection', async () => {
    const p = await startProxy();
    const pool = new pg.Pool({ connectionString: urlVia(p), max: 2 });
    pool.on('error', () => {}); // an idle client's reset
    pools.push(pool);
    await pool.query('SELECT 1');
    await p.set({ reset: true });
    const reasons: string[] = [];
    let attempts = 0;
    const policy = retry({ maxAttempts: 3, backoff: { kind: 'constant', baseMs: 10 }, budget: false });
    const result = await policy.execute(async () => {
      attempts++;
      if (attempts === 2) await p.reset(); // the outage ends before the second attempt
      try {
        return await pool.query('SELECT 42 AS n');
      } catch (e) {
        reasons.push(classify(e).reason);
        throw e;
      }
    });
    expect(result.rows).toEqual([{ n: 42 }]);
    expect(attempts).toBe(2);
    expect(reasons).toHaveLength(1);
    expect(reasons[0]).toMatch(/^(network:ECONNRESET|postgres:connection-lost)$/);
  });

  it('classifies a server outage behind the proxy as transient, and the pool reconnects after it', async () => {
    const p = await startProxy();
    const pool = new pg.Pool({ connectionString: urlVia(p), max: 1 });
    pool.on('error', () => {});
    pools.push(pool);
    await pool.query('SELECT 1');
    await server.stop();
    const down = await failure(pool.query('SELECT 1'));
    expect(classify(down).transient).toBe(true);
    await server.start();
    expect((await pool.query('SELECT 5 AS n')).rows).toEqual([{ n: 5 }]);
  });
});
