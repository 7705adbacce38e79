/**
 * One `node:http` server's part of a graceful shutdown (internal to GracefulShutdown): it
 * tracks the server's connections, makes every answer from the first signal on tell
 * keep-alive clients to close, and, once listening has stopped, closes the connections that
 * stay quiet.
 *
 * Why not Node's `server.close()` and `closeIdleConnections()` as they are: on Node 20 both
 * destroy at once every connection Node counts as idle, and that includes
 * - a connection whose client has just sent its next request, not yet read by Node: the
 *   client gets ECONNRESET and, for a POST, cannot know whether it was applied (audit of
 *   issue 7: one reset per keep-alive connection when the readiness delay ended), and
 * - a connection whose answer was `end()`-ed but is still being flushed (measured: a 64 MB
 *   answer to a slow reader arrived 3.9 MB in).
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Scope } from './scope.ts';

/** What Node keeps on a server-side HTTP socket (node:_http_server) that the drain reads. */
interface HttpSocket extends Socket {
  /** The answer being written, until it has been handed to the socket in full. */
  _httpMessage?: { headersSent: boolean; shouldKeepAlive: boolean } | null;
  /** `null` once the connection was upgraded (a WebSocket), or closed. */
  parser?: { duration?(): number } | null;
}

function noop(): void {}

/**
 * Quiet: no request being read, no answer being written or flushed. `parser.duration()` is 0
 * exactly when no request has begun (Node's own idle test), so a request whose headers are
 * still arriving counts as in progress.
 */
function isQuiet(socket: HttpSocket): boolean {
  const parser = socket.parser;
  // No parser: upgraded, and no longer HTTP. beforeDrain hooks end those (a WebSocket with
  // 1001); a drain that cut them would skip the close handshake.
  if (typeof parser?.duration !== 'function') return false;
  return parser.duration() === 0 && !socket._httpMessage && socket.writableLength === 0;
}

export class ServerDrain {
  readonly #server: Server;
  readonly #scope: Scope;
  readonly #sockets = new Set<HttpSocket>();
  /** Each connection's `bytesRead` at the last sweep that found it quiet. */
  readonly #quiet = new Map<HttpSocket, number>();

  /** `scope` is the coordinator's: it removes the listeners and stops the sweeps. */
  constructor(server: Server, scope: Scope) {
    this.#server = server;
    this.#scope = scope;
    scope.on(server, 'connection', (socket: HttpSocket) => {
      this.#sockets.add(socket);
      socket.once('close', () => {
        this.#sockets.delete(socket);
        this.#quiet.delete(socket);
      });
    });
  }

  /** Open connections. */
  get size(): number {
    return this.#sockets.size;
  }

  /**
   * From now on every answer goes out with `Connection: close`, including those being
   * produced now, so a keep-alive client sends its next request on a new connection (to
   * another instance once the load balancer noticed) instead of racing our close. Node then
   * ends each such connection itself once the answer is out.
   */
  closeAfterResponses(): void {
    const closeAfter = (_req: IncomingMessage, res: ServerResponse): void => {
      res.shouldKeepAlive = false;
    };
    // Prepended: the handler given to createServer (Fastify's too) is an earlier 'request'
    // listener and may answer synchronously, after which the headers are gone.
    this.#server.prependListener('request', closeAfter);
    this.#scope.add(() => this.#server.off('request', closeAfter));
    for (const socket of this.#sockets) {
      const res = socket._httpMessage;
      if (res && !res.headersSent) res.shouldKeepAlive = false;
    }
  }

  /**
   * Stops accepting and resolves once every connection has ended. Every `pollMs` it closes
   * the connections that stayed quiet since the previous sweep (no byte read), so a client
   * that reuses a connection within `pollMs` of its last answer is not cut off: those are
   * the clients that reuse connections at all. Its answers carry `Connection: close` anyway.
   */
  drain(pollMs: number): Promise<void> {
    return new Promise<void>((resolve) => {
      this.#sweep();
      const stop = this.#scope.setInterval(() => this.#sweep(), pollMs);
      this.#closeListening(() => {
        stop();
        resolve();
      });
    });
  }

  /** Forced exit: ends every connection now. */
  destroyAll(): void {
    this.#server.closeAllConnections();
    for (const socket of this.#sockets) socket.destroy();
  }

  #sweep(): void {
    for (const socket of this.#sockets) {
      const bytes = socket.bytesRead;
      if (!isQuiet(socket)) this.#quiet.delete(socket);
      else if (this.#quiet.get(socket) === bytes) socket.destroy();
      else this.#quiet.set(socket, bytes);
    }
  }

  /** `server.close(cb)` without the immediate closeIdleConnections() it does first (see top). */
  #closeListening(cb: () => void): void {
    const server = this.#server;
    const own = Object.getOwnPropertyDescriptor(server, 'closeIdleConnections');
    Object.defineProperty(server, 'closeIdleConnections', { value: noop, configurable: true, writable: true });
    try {
      server.close(() => cb());
    } finally {
      if (own) Object.defineProperty(server, 'closeIdleConnections', own);
      else delete (server as { closeIdleConnections?: unknown }).closeIdleConnections;
    }
  }
}
