/**
 * How GracefulShutdown drains a server's connections (src/lifecycle/drain.ts), through real
 * sockets: keep-alive clients are told to close before their connections are, and nothing in
 * progress is cut off.
 */
import { EventEmitter } from 'node:events';
import { Agent, createServer, type RequestListener, request, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { GracefulShutdown } from '../../src/lifecycle/index.ts';
import { FakeClock } from '../../src/testing/index.ts';

const waitFor = async (cond: () => boolean, ms = 10_000): Promise<void> => {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > until) throw new Error('timed out waiting');
    await new Promise<void>((resolve) => setTimeout(resolve, 10));
  }
};

function harness(readinessDelayMs: number) {
  const clock = new FakeClock();
  let exitCode: number | undefined;
  const shutdown = new GracefulShutdown({
    readinessDelayMs,
    deadlineMs: 60_000,
    drainPollMs: 100,
    clock,
    signalSource: new EventEmitter(),
    logger: { info: () => {}, error: () => {} },
    exit: (code) => {
      exitCode = code;
    },
  });
  return { clock, shutdown, exitCode: () => exitCode };
}

/** A listening server whose server-side sockets are kept, newest last. */
async function listening(handler: RequestListener = (_req, res) => res.end('ok')) {
  const server = createServer(handler);
  const sockets: Socket[] = [];
  server.on('connection', (s: Socket) => sockets.push(s));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, sockets, port: (server.address() as { port: number }).port };
}

interface Answer {
  reused: boolean;
  status?: number;
  connection?: string;
  error?: string;
}

function get(agent: Agent, port: number, path = '/'): Promise<Answer> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path, agent }, (res) => {
      res.resume();
      res.once('end', () => resolve({ reused: req.reusedSocket, status: res.statusCode, connection: res.headers.connection }));
    });
    req.once('error', (err: NodeJS.ErrnoException) => resolve({ reused: req.reusedSocket, error: err.code }));
    req.end();
  });
}

/** A raw client connection, for requests written by hand and answers read slowly. */
async function rawClient(port: number) {
  const socket = connect(port, '127.0.0.1');
  const chunks: Buffer[] = [];
  let received = 0;
  let ended = false;
  socket.on('data', (d: Buffer) => {
    if (chunks.length < 1) chunks.push(d);
    received += d.length;
  });
  socket.once('end', () => {
    ended = true;
  });
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  return { socket, received: () => received, ended: () => ended, head: () => Buffer.concat(chunks).toString('latin1') };
}

const drainStarted = (server: Server) => waitFor(() => !server.listening);

describe('GracefulShutdown draining keep-alive connections', () => {
  it('answers with Connection: close from the signal on, while the readiness delay still accepts', async () => {
    const h = harness(1_000);
    const { server, port } = await listening();
    h.shutdown.server(server);
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    expect((await get(agent, port)).connection).toBe('keep-alive');
    void h.shutdown.shutdown('test');
    expect(await get(agent, port)).toEqual({ reused: true, status: 200, connection: 'close' });
    h.clock.advance(1_000);
    await waitFor(() => h.exitCode() !== undefined);
    expect(h.exitCode()).toBe(0);
    agent.destroy();
  });

  it('answers with Connection: close from a Fastify app too', async () => {
    const h = harness(1_000);
    const app = Fastify();
    app.get('/', async () => 'ok');
    await app.listen({ port: 0, host: '127.0.0.1' });
    h.shutdown.server(app.server);
    const port = (app.server.address() as { port: number }).port;
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    expect((await get(agent, port)).connection).toBe('keep-alive');
    void h.shutdown.shutdown('test');
    expect(await get(agent, port)).toEqual({ reused: true, status: 200, connection: 'close' });
    h.clock.advance(1_000);
    await waitFor(() => h.exitCode() !== undefined);
    await app.close();
    agent.destroy();
  });

  it('sends an answer still being produced at the signal with Connection: close', async () => {
    const h = harness(1_000);
    let answer: (() => void) | undefined;
    const { server, port } = await listening((_req, res) => {
      answer = () => res.end('late');
    });
    h.shutdown.server(server);
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const pending = get(agent, port);
    await waitFor(() => answer !== undefined);
    void h.shutdown.shutdown('test');
    answer!();
    expect((await pending).connection).toBe('close');
    h.clock.advance(1_000);
    await waitFor(() => h.exitCode() !== undefined);
    agent.destroy();
  });

  it('answers a request sent on an idle keep-alive connection as draining starts', async () => {
    const h = harness(0);
    const { server, port } = await listening();
    h.shutdown.server(server);
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    await get(agent, port);
    void h.shutdown.shutdown('test');
    await drainStarted(server);
    // Closed under it, the client saw ECONNRESET (auditor, issue 7); now it is answered and told to close.
    expect(await get(agent, port)).toEqual({ reused: true, status: 200, connection: 'close' });
    await waitFor(() => h.exitCode() !== undefined);
    expect(h.exitCode()).toBe(0);
    agent.destroy();
  });

  it('closes a keep-alive connection once it has stayed quiet for drainPollMs', async () => {
    const h = harness(0);
    const { server, sockets, port } = await listening();
    h.shutdown.server(server);
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    await get(agent, port);
    void h.shutdown.shutdown('test');
    await drainStarted(server);
    expect(sockets[0]!.destroyed).toBe(false);
    h.clock.advance(100);
    expect(sockets[0]!.destroyed).toBe(true);
    await waitFor(() => h.exitCode() !== undefined);
    expect(h.exitCode()).toBe(0);
    agent.destroy();
  });

  it('keeps a connection whose request headers are still arriving, and answers it', async () => {
    const h = harness(0);
    const { server, sockets, port } = await listening();
    h.shutdown.server(server);
    const client = await rawClient(port);
    client.socket.write('GET / HTTP/1.1\r\nhost: x\r\n');
    await waitFor(() => (sockets[0]?.bytesRead ?? 0) > 0);
    void h.shutdown.shutdown('test');
    await drainStarted(server);
    for (let i = 0; i < 5; i++) h.clock.advance(100);
    expect(sockets[0]!.destroyed).toBe(false);
    client.socket.write('\r\n');
    await waitFor(() => client.ended());
    expect(client.head()).toMatch(/^HTTP\/1\.1 200 OK\r\n[\s\S]*Connection: close\r\n/);
    await waitFor(() => h.exitCode() !== undefined);
    expect(h.exitCode()).toBe(0);
    client.socket.destroy();
  });

  it('never cuts off an answer still being flushed to a slow reader', async () => {
    // Bigger than the loopback socket buffers, so most of it waits in the server's stream.
    const body = Buffer.alloc(32 * 1024 * 1024, 97);
    const h = harness(0);
    let answered = false;
    const { server, sockets, port } = await listening((_req, res) => {
      res.end(body);
      answered = true;
    });
    h.shutdown.server(server);
    const client = await rawClient(port);
    client.socket.pause();
    client.socket.write('GET / HTTP/1.1\r\nhost: x\r\n\r\n');
    await waitFor(() => answered && sockets[0]!.writableLength > 0);
    void h.shutdown.shutdown('test');
    await drainStarted(server);
    for (let i = 0; i < 5; i++) h.clock.advance(100);
    client.socket.resume();
    // The answer went out with keep-alive (before the signal): once it is read in full, the
    // connection is quiet and the sweeps close it.
    await waitFor(() => {
      h.clock.advance(100);
      return client.ended();
    });
    const headLength = client.head().indexOf('\r\n\r\n') + 4;
    expect(client.received() - headLength).toBe(body.length);
    await waitFor(() => h.exitCode() !== undefined);
    expect(h.exitCode()).toBe(0);
    client.socket.destroy();
  });
});
