/**
 * A minimal HTTP/1.1 keep-alive connection for the load generator's hot path: requests are
 * pre-serialized buffers, the parser reads only the status, Content-Length, chunked framing
 * and `Connection: close`. Measured against undici's `Pool` (50 connections, pipelining 1,
 * a bare request loop without latency recording), both pinned to one core against a
 * node:http hello world on another, two runs each: undici ≈ 30.7k / 31.5k req/s, `keel load
 * -c 50` ≈ 43.6k / 43.8k req/s (1.4x), which the brief's "≥ autocannon" target needs.
 */
import { connect, type Socket } from 'node:net';

const CRLFCRLF = Buffer.from('\r\n\r\n');
const MAX_HEAD = 64 * 1024;

enum State {
  Head = 0,
  Body = 1,
  ChunkSize = 2,
  ChunkData = 3,
  Trailer = 4,
  UntilClose = 5,
}

const CONTENT_LENGTH = Buffer.from('content-length:');
const CONNECTION = Buffer.from('connection:');
const TRANSFER_ENCODING = Buffer.from('transfer-encoding:');
const head = { length: -1, chunked: false, close: false };

/** True when `buf` at `at` starts with `name` (lower case), ignoring ASCII case. */
function startsWith(buf: Buffer, at: number, name: Buffer): boolean {
  for (let k = 0; k < name.length; k++) if ((buf[at + k]! | 0x20) !== name[k]) return false;
  return true;
}

/** True when the header value in [from, to) contains `word` (lower case), ignoring case. */
function valueHas(buf: Buffer, from: number, to: number, word: string): boolean {
  return buf.toString('latin1', from, to).toLowerCase().includes(word);
}

/**
 * Reads the three framing headers straight from the bytes, so the common response costs no
 * string allocation (the first version lower-cased a string of every head). Returns a shared
 * object, valid until the next call.
 */
function scanHead(buf: Buffer, start: number, end: number): typeof head {
  head.length = -1;
  head.chunked = false;
  head.close = false;
  let p = buf.indexOf(10, start) + 1;
  while (p > 0 && p < end) {
    const eol = buf.indexOf(13, p);
    const stop = eol < 0 || eol > end ? end : eol;
    const c = buf[p]! | 0x20;
    if (c === 0x63) {
      if (startsWith(buf, p, CONTENT_LENGTH)) {
        let n = 0;
        for (let k = p + CONTENT_LENGTH.length; k < stop; k++) {
          const d = buf[k]! - 48;
          if (d >= 0 && d <= 9) n = n * 10 + d;
        }
        head.length = n;
      } else if (startsWith(buf, p, CONNECTION)) head.close = valueHas(buf, p + CONNECTION.length, stop, 'close');
    } else if (c === 0x74 && startsWith(buf, p, TRANSFER_ENCODING)) {
      head.chunked = valueHas(buf, p + TRANSFER_ENCODING.length, stop, 'chunked');
    }
    p = stop + 2;
  }
  return head;
}

/** Receives each completed response (or failure) of a connection, in request order. */
export interface ConnectionSink {
  /** A response completed; `bytes` counts the response's bytes. */
  response(conn: HttpConnection, status: number, bytes: number): void;
  /**
   * The connection failed; `lost` requests in flight were lost. `lost` is 0 when it failed
   * with nothing in flight: the connect was refused or failed, or the connection was dropped
   * before its first response.
   */
  failed(conn: HttpConnection, lost: number, err: Error): void;
  /** The connection is usable (connected, or reconnected). */
  ready(conn: HttpConnection): void;
}

/** One keep-alive connection; pipelined requests complete in order. */
export class HttpConnection {
  /** Requests written and not yet answered. */
  inFlight = 0;
  /** Per-request bookkeeping the runner keeps (intended, sent times), FIFO with the wire. */
  readonly intended: number[] = [];
  readonly sent: number[] = [];
  connected = false;
  readonly id: number;
  #socket: Socket | undefined;
  #host: string;
  #port: number;
  #sink: ConnectionSink;
  #pending: Buffer | null = null;
  #state = State.Head;
  #remaining = 0;
  #status = 0;
  #bytes = 0;
  #close = false;
  #noBody: boolean[] = [];
  /** The requests in flight, kept to write them again when the server closes before answering them. */
  #bufs: Buffer[] = [];
  /** Responses completed on the current socket. */
  #served = 0;
  #closed = false;
  #retry: NodeJS.Timeout | undefined;

  constructor(id: number, host: string, port: number, sink: ConnectionSink) {
    this.id = id;
    this.#host = host;
    this.#port = port;
    this.#sink = sink;
    this.#open();
  }

  #open(): void {
    const socket = connect({ host: this.#host, port: this.#port, noDelay: true });
    this.#socket = socket;
    this.#pending = null;
    this.#state = State.Head;
    this.#served = 0;
    socket.on('connect', () => {
      this.connected = true;
      this.#sink.ready(this);
    });
    socket.on('data', (chunk: Buffer) => {
      if (socket === this.#socket) this.#onData(socket, chunk);
    });
    socket.on('error', () => {});
    socket.on('close', (hadError) => this.#onClose(socket, hadError));
  }

  /** Writes one request. `head` marks a HEAD request, whose response has no body. */
  write(buf: Buffer, intended: number, sent: number, head = false): void {
    this.inFlight++;
    this.intended.push(intended);
    this.sent.push(sent);
    this.#noBody.push(head);
    this.#bufs.push(buf);
    // Before 'connect' (a reconnect after Connection: close) the socket queues the write.
    this.#socket!.write(buf);
  }

  /** Drops the socket (counting in-flight requests as lost) and reconnects. */
  abort(err: Error): void {
    const s = this.#socket;
    if (!s) return;
    this.#fail(err);
    this.#socket = undefined;
    s.destroy();
    if (!this.#closed) this.#open();
  }

  /** Closes for good. */
  close(): Promise<void> {
    this.#closed = true;
    if (this.#retry) clearTimeout(this.#retry);
    const s = this.#socket;
    this.#socket = undefined;
    if (!s || s.destroyed) return Promise.resolve();
    return new Promise((resolve) => {
      s.once('close', () => resolve());
      s.destroy();
    });
  }

  #fail(err: Error): void {
    const lost = this.inFlight;
    this.inFlight = 0;
    this.intended.length = 0;
    this.sent.length = 0;
    this.#noBody.length = 0;
    this.#bufs.length = 0;
    this.connected = false;
    this.#sink.failed(this, lost, err);
  }

  #onClose(socket: Socket, hadError: boolean): void {
    if (socket !== this.#socket) return;
    if (this.#state === State.UntilClose && this.inFlight > 0 && !hadError) {
      // The close ends a body delimited by it: a complete response, then a new connection.
      this.#close = true;
      this.#complete();
      return;
    }
    this.#socket = undefined;
    if (this.#served > 0 && this.inFlight === 0 && !hadError && !this.#closed) {
      // The server closed an idle keep-alive connection, as it may (RFC 9112 §9.6): not an
      // error. It served this one, so reconnecting at once cannot spin on a dead target.
      this.connected = false;
      this.#open();
      return;
    }
    if (this.inFlight > 0 || !this.#closed) this.#fail(new Error('socket closed'));
    // Reconnect after a short pause so a refusing target does not make a hot loop.
    if (!this.#closed) {
      this.#retry = setTimeout(() => {
        this.#retry = undefined;
        if (!this.#closed && !this.#socket) this.#open();
      }, 50);
    }
  }

  #complete(): void {
    this.inFlight--;
    this.#noBody.shift();
    this.#bufs.shift();
    this.#served++;
    const status = this.#status;
    const bytes = this.#bytes;
    this.#state = State.Head;
    // The server closes after this response (Connection: close, or a body ended by the
    // close), so the next request must not go on this socket: written there, it was lost and
    // every such response was followed by a socket error (3,299 in 3,300 responses).
    if (this.#close) {
      this.#close = false;
      this.#reconnect();
    }
    this.#sink.response(this, status, bytes);
  }

  /**
   * Leaves a socket the server is closing after a complete response and opens another.
   * Requests pipelined behind that response were never answered, so they are written again
   * on the new socket (RFC 9112 §9.3.2), keeping their intended and sent times.
   */
  #reconnect(): void {
    const old = this.#socket;
    this.#socket = undefined;
    this.connected = false;
    old?.destroy();
    if (this.#closed) return;
    this.#open();
    for (const buf of this.#bufs) this.#socket!.write(buf);
  }

  #onData(socket: Socket, chunk: Buffer): void {
    let buf = chunk;
    if (this.#pending !== null) {
      buf = Buffer.concat([this.#pending, chunk]);
      this.#pending = null;
    }
    const len = buf.length;
    let i = 0;
    // A response that closes the connection swaps the socket: the rest of this chunk is not
    // the new socket's.
    while (i < len && this.#socket === socket) {
      const state = this.#state;
      if (state === State.Head) {
        const end = buf.indexOf(CRLFCRLF, i);
        if (end < 0) {
          if (len - i > MAX_HEAD) {
            this.abort(new Error('response head too large'));
            return;
          }
          this.#pending = buf.subarray(i);
          return;
        }
        this.#status = (buf[i + 9]! - 48) * 100 + (buf[i + 10]! - 48) * 10 + (buf[i + 11]! - 48);
        this.#bytes = end + 4 - i;
        const head = scanHead(buf, i, end);
        this.#close = head.close;
        i = end + 4;
        const s = this.#status;
        if (this.#noBody[0] || s === 204 || s === 304 || s < 200) {
          if (s >= 100 && s < 200) continue;
          this.#complete();
          continue;
        }
        if (head.chunked) {
          this.#state = State.ChunkSize;
          continue;
        }
        if (head.length < 0) {
          this.#state = State.UntilClose;
          this.#close = true;
          i = len;
          continue;
        }
        this.#remaining = head.length;
        if (this.#remaining === 0) this.#complete();
        else this.#state = State.Body;
      } else if (state === State.Body || state === State.ChunkData) {
        const take = Math.min(this.#remaining, len - i);
        i += take;
        this.#bytes += take;
        this.#remaining -= take;
        if (this.#remaining === 0) {
          if (state === State.Body) this.#complete();
          else this.#state = State.ChunkSize;
        }
      } else if (state === State.ChunkSize || state === State.Trailer) {
        const eol = buf.indexOf(13, i);
        if (eol < 0 || eol + 1 >= len) {
          this.#pending = buf.subarray(i);
          return;
        }
        const line = buf.toString('latin1', i, eol);
        this.#bytes += eol + 2 - i;
        i = eol + 2;
        if (state === State.Trailer) {
          if (line.length === 0) this.#complete();
          continue;
        }
        const size = Number.parseInt(line, 16);
        if (Number.isNaN(size)) {
          this.abort(new Error('bad chunk size'));
          return;
        }
        if (size === 0) this.#state = State.Trailer;
        else {
          this.#remaining = size + 2;
          this.#state = State.ChunkData;
        }
      } else {
        this.#bytes += len - i;
        i = len;
      }
    }
  }
}
