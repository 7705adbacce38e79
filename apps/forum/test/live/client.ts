/**
 * A real `ws` client for the live tests, typed for the calls they make (the repo has no
 * @types/ws), with a message log so tests await messages instead of sleeping.
 */
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import type { LiveSocket } from '../../src/live/hub.ts';
import { waitFor } from '../helpers.ts';

interface RawWs {
  readonly readyState: number;
  readonly _socket: Socket;
  on(event: 'message', fn: (data: Buffer, isBinary: boolean) => void): void;
  on(event: 'close', fn: (code: number, reason: Buffer) => void): void;
  on(event: 'open' | 'ping' | 'pong', fn: () => void): void;
  on(event: 'error', fn: (err: Error) => void): void;
  on(event: 'unexpected-response', fn: (req: unknown, res: { statusCode: number; resume(): void }) => void): void;
  send(data: string | Buffer, options?: { binary?: boolean }): void;
  close(code?: number): void;
  terminate(): void;
}
const ws = createRequire(import.meta.url)('ws') as {
  WebSocket: new (url: string, options?: { headers?: Record<string, string>; autoPong?: boolean }) => RawWs;
  WebSocketServer: new (options: { port: number; host: string; maxPayload?: number }) => RawServer;
};
const WsCtor = ws.WebSocket;

interface RawServer {
  address(): { port: number };
  on(event: 'listening', fn: () => void): void;
  on(event: 'connection', fn: (socket: LiveSocket) => void): void;
  close(cb: () => void): void;
}

/** A plain `ws` server on a free loopback port, for driving the hub without Fastify. */
export async function startWsServer(onConnection: (socket: LiveSocket) => void): Promise<{ url: string; close(): Promise<void> }> {
  const server = new ws.WebSocketServer({ port: 0, host: '127.0.0.1', maxPayload: 4096 });
  await new Promise<void>((resolve) => server.on('listening', resolve));
  server.on('connection', onConnection);
  return {
    url: `ws://127.0.0.1:${server.address().port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

export type Msg = { type: string; [k: string]: unknown };

export class LiveClient {
  readonly ws: RawWs;
  readonly messages: Msg[] = [];
  pings = 0;
  closeCode: number | undefined;
  /** Set when the upgrade was answered with an HTTP status instead of 101. */
  status: number | undefined;
  readonly closed: Promise<number>;
  readonly opened: Promise<void>;

  constructor(url: string, options: { headers?: Record<string, string>; autoPong?: boolean } = {}) {
    this.ws = new WsCtor(url, options);
    this.ws.on('message', (data) => this.messages.push(JSON.parse(String(data)) as Msg));
    this.ws.on('ping', () => this.pings++);
    this.ws.on('error', () => {});
    this.opened = new Promise((resolve, reject) => {
      this.ws.on('open', resolve);
      this.ws.on('unexpected-response', (_req, res) => {
        this.status = res.statusCode;
        res.resume();
        this.ws.terminate();
        reject(new Error(`upgrade answered ${res.statusCode}`));
      });
    });
    this.opened.catch(() => {});
    this.closed = new Promise((resolve) =>
      this.ws.on('close', (code) => {
        this.closeCode = code;
        resolve(code);
      }),
    );
  }

  static async open(url: string, options?: { headers?: Record<string, string>; autoPong?: boolean }): Promise<LiveClient> {
    const c = new LiveClient(url, options);
    await c.opened;
    return c;
  }

  send(msg: object | string): void {
    this.ws.send(typeof msg === 'string' ? msg : JSON.stringify(msg));
  }

  /** Waits for the first message (after index `from`) that matches, and returns it. */
  async next(match: (m: Msg) => boolean, from = 0, what = 'a message'): Promise<Msg> {
    let found: Msg | undefined;
    await waitFor(
      () => {
        found = this.messages.slice(from).find(match);
        return found !== undefined;
      },
      5_000,
      what,
    );
    return found as Msg;
  }

  /** Sends a message and waits for its reply (correlated by `id`). */
  async request(msg: { type: string; [k: string]: unknown }): Promise<Msg> {
    const id = `r${Math.random().toString(36).slice(2)}`;
    this.send({ ...msg, id });
    return this.next((m) => m.id === id, 0, `reply to ${msg.type}`);
  }

  count(match: (m: Msg) => boolean): number {
    return this.messages.filter(match).length;
  }

  async close(): Promise<void> {
    if (this.closeCode === undefined && this.ws.readyState <= 1) this.ws.close();
    await this.closed;
  }
}
