import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import { type AddressInfo, connect, type Socket } from 'node:net';
import { FakeClock } from 'keel/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { SseHub, type SseHubOptions } from '../../src/dashboard/stream.ts';
import { waitFor } from '../helpers.ts';

let server: Server | undefined;
let hub: SseHub | undefined;
const sockets: Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  hub?.close();
  if (server) {
    server.closeAllConnections();
    await new Promise((r) => server!.close(r));
  }
  server = undefined;
  hub = undefined;
});

/** A real HTTP server whose every request becomes a stream of `hub`. */
async function serve(options: Partial<SseHubOptions> & { clock: FakeClock }): Promise<number> {
  const h = new SseHub({ intervalMs: 1000, maxStreams: 4, maxSkips: 3, frame: () => '{"n":1}', ...options });
  hub = h;
  server = createServer((_req, res) => {
    h.add(res);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

/** A raw client that sends the request and then reads nothing, so the server's socket fills up. */
async function stalledClient(port: number): Promise<Socket> {
  const socket = connect({ port, host: '127.0.0.1' });
  sockets.push(socket);
  await once(socket, 'connect');
  socket.write('GET /stream HTTP/1.1\r\nHost: x\r\n\r\n');
  socket.pause();
  return socket;
}

// 1 MiB per event: a client that reads nothing fills the kernel's loopback buffers in a few.
const BIG = JSON.stringify({ pad: 'x'.repeat(1 << 20) });

/** One interval, then one turn of the event loop so the socket can flush what it can. */
async function tick(clock: FakeClock): Promise<void> {
  clock.advance(1000);
  await new Promise<void>((r) => setImmediate(r));
}

async function tickUntilSkipping(clock: FakeClock): Promise<void> {
  for (let i = 0; i < 100 && hub!.stats.skipped === 0; i++) await tick(clock);
  expect(hub!.stats.skipped).toBe(1);
}

describe('SseHub', () => {
  it('serialises the frame once per tick for every client', async () => {
    const clock = new FakeClock();
    let frames = 0;
    const port = await serve({
      clock,
      frame: () => {
        frames++;
        return '{}';
      },
    });
    const a = await stalledClient(port);
    const b = await stalledClient(port);
    a.resume();
    b.resume();
    await waitFor(() => hub!.stats.streams === 2);
    const before = frames;
    clock.advance(1000);
    expect(frames - before).toBe(1);
    expect(hub!.stats.sent).toBe(4);
  });

  it('skips a client whose socket has not drained, then drops it after maxSkips', async () => {
    const clock = new FakeClock();
    const port = await serve({ clock, frame: () => BIG, maxSkips: 3 });
    await stalledClient(port);
    await waitFor(() => hub!.stats.streams === 1);
    await tickUntilSkipping(clock);
    const { sent } = hub!.stats;
    // Stalled: no further event is queued behind the unsent one.
    await tick(clock);
    await tick(clock);
    expect(hub!.stats).toMatchObject({ sent, skipped: 3, dropped: 0 });
    await tick(clock);
    expect(hub!.stats.dropped).toBe(1);
    await waitFor(() => hub!.stats.streams === 0);
    expect(clock.pending).toBe(0);
  });

  it('writes again once a slow client catches up', async () => {
    const clock = new FakeClock();
    const port = await serve({ clock, frame: () => BIG, maxSkips: 1000 });
    const socket = await stalledClient(port);
    await waitFor(() => hub!.stats.streams === 1);
    await tickUntilSkipping(clock);
    const { sent } = hub!.stats;
    socket.on('data', () => {});
    socket.resume();
    // Draining is real I/O: tick until the next event goes out.
    await waitFor(async () => {
      await tick(clock);
      return hub!.stats.sent > sent;
    });
    expect(hub!.stats.dropped).toBe(0);
  });

  it('refuses a stream over maxStreams with a 503', async () => {
    const clock = new FakeClock();
    const port = await serve({ clock, maxStreams: 1 });
    await stalledClient(port);
    await waitFor(() => hub!.stats.streams === 1);
    const res = await fetch(`http://127.0.0.1:${port}/`);
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ error: 'unavailable' });
  });

  it('ends every stream and stops the timer on close, and refuses streams after', async () => {
    const clock = new FakeClock();
    const port = await serve({ clock });
    const socket = await stalledClient(port);
    socket.resume();
    await waitFor(() => hub!.stats.streams === 1);
    expect(clock.pending).toBe(1);
    const ended = once(socket, 'end');
    hub!.close();
    await ended;
    expect(clock.pending).toBe(0);
    expect(hub!.accepting).toBe(false);
  });
});
