/**
 * A real Redis server for tests, on a free loopback port, with no persistence. Start it in
 * `beforeAll`, stop it in `afterAll`. `stop()`/`start()` kill and restart it on the same port
 * inside a test (to script an outage); the process is exempt from the leak check because the
 * suite's `afterAll` owns it.
 *
 * @example
 * ```ts
 * let redis: RedisServer;
 * beforeAll(async () => { redis = await startRedis(); });
 * afterAll(() => redis.close());
 * ```
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createConnection, createServer } from 'node:net';
import { serverProcess } from './server-process.ts';

export interface RedisServer {
  readonly port: number;
  readonly url: string;
  /** True while the server process runs. */
  readonly running: boolean;
  /** Kills the server (SIGKILL: no clean shutdown, as in a crash). */
  stop(): Promise<void>;
  /** Starts it again on the same port; resolves once it answers PING. */
  start(): Promise<void>;
  /** Stops it for good. */
  close(): Promise<void>;
}

/** A port that was free a moment ago on 127.0.0.1. */
export async function freePort(): Promise<number> {
  const srv = createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const { port } = srv.address() as { port: number };
  srv.close();
  await once(srv, 'close');
  return port;
}

async function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = createConnection({ port, host: '127.0.0.1' });
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(500, () => done(false));
    sock.once('error', () => done(false));
    sock.once('connect', () => sock.write('PING\r\n'));
    sock.once('data', (d) => done(d.toString().startsWith('+PONG')));
  });
}

export async function startRedis(): Promise<RedisServer> {
  const port = await freePort();
  const server = serverProcess({
    name: 'redis-server',
    spawn: () =>
      spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--loglevel', 'warning'], {
        stdio: 'ignore',
      }),
    ready: () => ping(port),
    readyWithinMs: 10_000,
    exitHint: 'is redis-server installed? apt-get install redis-server',
    stopSignal: 'SIGKILL',
  });
  await server.start();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    get running() {
      return server.running;
    },
    stop: server.stop,
    start: server.start,
    close: server.stop,
  };
}
