/**
 * A TCP fault proxy: put it between a service and a dependency (Redis, PostgreSQL, an HTTP
 * upstream) and script outages at runtime, from a test (`proxy.set({...})`) or over its
 * HTTP control API (`POST /faults`). Faults:
 * - `latencyMs` ± `jitterMs`: added to every chunk the target sends back (so to each round
 *   trip), order preserved;
 * - `bandwidthBps`: bytes per second per connection and direction (0 = unlimited);
 * - `reset`: resets every open connection and each new one (TCP RST) while set;
 * - `blackhole`: connections are accepted (and kept) but nothing passes either way until it
 *   is lifted; the bytes are held (up to `maxQueuedBytes`, then the sender is paused) and
 *   delivered in order once it is. A network that stops delivering does not drop bytes from
 *   the middle of a TCP stream: dropping them left a surviving connection out of step (a
 *   request sent during the outage was never answered, so the next answer went to it);
 * - `refuse`: the listener closes, so new connections are refused (ECONNREFUSED); open ones stay.
 */
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';
import { objectOptions, optionError } from '../internal/options.ts';

/** The faults in force; {@link FaultProxy.set} merges a partial update. */
export interface Faults {
  latencyMs: number;
  jitterMs: number;
  bandwidthBps: number;
  reset: boolean;
  blackhole: boolean;
  refuse: boolean;
}

/** Options of {@link createFaultProxy}. */
export interface FaultProxyOptions {
  /** The dependency to forward to. */
  target: { host?: string; port: number };
  /** Where to listen. Default 127.0.0.1 on a free port. */
  listen?: { host?: string; port?: number };
  /** Start the HTTP control API on this port (0 = a free port). Default: no control API. */
  controlPort?: number;
  /** Initial faults. Default none. */
  faults?: Partial<Faults>;
  /** Bytes queued per connection and direction before the source is paused. Default 16 MiB. */
  maxQueuedBytes?: number;
}

/** A running fault proxy. */
export interface FaultProxy extends AsyncDisposable {
  readonly host: string;
  readonly port: number;
  /** `tcp://host:port`; for HTTP targets use `http://host:port`. */
  readonly url: string;
  /** The control API's port, when started. */
  readonly controlPort: number | undefined;
  readonly faults: Readonly<Faults>;
  /** Open client connections. */
  readonly connections: number;
  /** Merges `faults` into the current set; resolves once they are in force. */
  set(faults: Partial<Faults>): Promise<Readonly<Faults>>;
  /** Clears every fault. */
  reset(): Promise<Readonly<Faults>>;
  close(): Promise<void>;
}

const NONE: Faults = Object.freeze({ latencyMs: 0, jitterMs: 0, bandwidthBps: 0, reset: false, blackhole: false, refuse: false });

/** The defined fields of `input`, validated: an undefined field means "unchanged", never NaN. */
function validFaults(input: unknown): Partial<Faults> {
  const f = objectOptions('faults', input as Partial<Faults>);
  const out: Partial<Record<keyof Faults, number | boolean>> = {};
  for (const [k, v] of Object.entries(f)) {
    // Own keys only: `k in NONE` accepted inherited names such as "constructor" and "__proto__".
    if (!Object.hasOwn(NONE, k))
      throw optionError('faults', k, 'a known fault (latencyMs, jitterMs, bandwidthBps, reset, blackhole, refuse)', k);
    if (v === undefined) continue;
    if (typeof NONE[k as keyof Faults] === 'number') {
      if (!(typeof v === 'number' && Number.isFinite(v) && v >= 0)) throw optionError('faults', k, 'a finite number >= 0', v);
    } else if (typeof v !== 'boolean') throw optionError('faults', k, 'a boolean', v);
    out[k as keyof Faults] = v;
  }
  return out as Partial<Faults>;
}

/** One direction of one connection: delays, throttles or holds chunks, in order. */
class Pipe {
  #queue: { at: number; chunk: Buffer }[] = [];
  #queued = 0;
  #last = 0;
  #timer: NodeJS.Timeout | undefined;
  #ending = false;
  /** The destination's buffer is full: nothing is written until its 'drain'. */
  #blocked = false;
  constructor(
    readonly from: Socket,
    readonly to: Socket,
    readonly delayed: boolean,
    readonly proxy: ProxyState,
  ) {
    from.on('data', (chunk: Buffer) => this.#push(chunk));
    // One listener for the pipe's life: a once('drain') per full write piled up listeners
    // (MaxListenersExceededWarning on a slow reader).
    to.on('drain', () => {
      this.#blocked = false;
      this.#flush();
    });
  }

  /** The source ended: end the destination once queued (delayed or held) chunks are delivered. */
  end(): void {
    this.#ending = true;
    if (this.#queue.length === 0 && !this.proxy.current.blackhole) this.to.end();
  }

  /** The blackhole was lifted: deliver what it held. */
  release(): void {
    this.#flush();
  }

  #push(chunk: Buffer): void {
    const f = this.proxy.current;
    const now = performance.now();
    let at = now;
    if (this.delayed && f.latencyMs + f.jitterMs > 0) at += Math.max(0, f.latencyMs + (Math.random() * 2 - 1) * f.jitterMs);
    at = Math.max(at, this.#last);
    if (f.bandwidthBps > 0) at = Math.max(at, this.#last) + (chunk.length * 1000) / f.bandwidthBps;
    this.#last = at;
    if (at <= now && this.#queue.length === 0 && !this.#blocked && !f.blackhole) {
      this.#write(chunk);
      return;
    }
    this.#queue.push({ at, chunk });
    this.#queued += chunk.length;
    if (this.#queued > this.proxy.maxQueuedBytes) this.from.pause();
    this.#arm();
  }

  #write(chunk: Buffer): void {
    if (!this.to.destroyed && !this.to.write(chunk)) {
      this.#blocked = true;
      this.from.pause();
    }
  }

  #arm(): void {
    // Under a blackhole nothing is due: release() flushes when it is lifted.
    if (this.#timer || this.#blocked || this.#queue.length === 0 || this.proxy.current.blackhole) return;
    // Node's timers count from the loop's cached millisecond and can fire up to ~1 ms early, so
    // the flush re-checks the due time against the monotonic clock: a chunk is never early, and a
    // 20 ms fault is at least 20 ms (it was ~19.9 at the median with Date.now and a 1 ms slack).
    this.#timer = setTimeout(() => this.#flush(), Math.max(1, Math.ceil(this.#queue[0]!.at - performance.now())));
  }

  #flush(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    // Held, not dropped: the queue (bounded by maxQueuedBytes, which pauses the source) waits.
    if (this.proxy.current.blackhole) return;
    const now = performance.now();
    // A full destination stops the flush: writing on regardless buffered everything the
    // source sent in the proxy's memory (200 MiB in 2.5 s to a client that read nothing).
    while (this.#queue.length > 0 && this.#queue[0]!.at <= now && !this.#blocked) {
      const { chunk } = this.#queue.shift()!;
      this.#queued -= chunk.length;
      this.#write(chunk);
    }
    // Resume only when both the queue has room and the destination drained; resuming on the
    // queue alone cancelled the pause a full write asked for. 'drain' flushes again.
    if (!this.#blocked && this.#queued <= this.proxy.maxQueuedBytes && this.from.isPaused()) this.from.resume();
    if (this.#ending && this.#queue.length === 0) this.to.end();
    this.#arm();
  }

  stop(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#queue.length = 0;
  }
}

class ProxyState {
  current: Faults;
  readonly maxQueuedBytes: number;
  server: Server;
  control: HttpServer | undefined;
  readonly pairs = new Set<{ client: Socket; upstream: Socket; pipes: Pipe[] }>();
  listening = false;
  host: string;
  port: number;
  /** The last queued apply/close; each waits for the one before (see apply). */
  #pending: Promise<unknown> = Promise.resolve();
  #closed = false;

  constructor(
    readonly target: { host: string; port: number },
    listen: { host: string; port: number },
    faults: Faults,
    maxQueuedBytes: number,
  ) {
    this.current = faults;
    this.maxQueuedBytes = maxQueuedBytes;
    this.host = listen.host;
    this.port = listen.port;
    this.server = createServer((client) => this.#accept(client));
  }

  #accept(client: Socket): void {
    if (this.current.reset) {
      client.resetAndDestroy();
      return;
    }
    const upstream = connect({ host: this.target.host, port: this.target.port });
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    const pair = { client, upstream, pipes: [new Pipe(client, upstream, false, this), new Pipe(upstream, client, true, this)] };
    this.pairs.add(pair);
    const end = (): void => {
      if (!this.pairs.delete(pair)) return;
      for (const p of pair.pipes) p.stop();
      client.destroy();
      upstream.destroy();
    };
    // The client going away ends the pair; the target going away first lets its delayed
    // bytes reach the client, then half-closes it (the client's close ends the pair).
    client.on('error', end);
    client.on('close', end);
    upstream.on('error', () => pair.pipes[1]!.end());
    client.on('end', () => pair.pipes[0]!.end());
    upstream.on('end', () => pair.pipes[1]!.end());
  }

  /** Binds the listener; the first bind fixes the port, so a refusal ends on the same one. */
  async listen(): Promise<void> {
    await listenOn(this.server, this.port, this.host);
    this.port = (this.server.address() as AddressInfo).port;
    this.listening = true;
  }

  /** Binds even when starting refused: `port` is known at once, and clearing refuse reuses it. */
  async start(): Promise<void> {
    await this.listen();
    if (this.current.refuse) this.#stopListening();
  }

  #stopListening(): void {
    // close() stops accepting at once; its callback would wait for open connections,
    // which refusal keeps, so a fresh server listens again when refusal ends.
    this.listening = false;
    this.server.close();
  }

  /**
   * Applies one update after every earlier one: two concurrent calls both saw "not
   * listening" and both bound (EADDRINUSE, and a listener close() never closed).
   */
  apply(update: Partial<Faults>): Promise<Faults> {
    const run = this.#pending.then(() => this.#apply(update));
    this.#pending = run.catch(() => {});
    return run;
  }

  async #apply(update: Partial<Faults>): Promise<Faults> {
    const lifted = this.current.blackhole && update.blackhole === false;
    this.current = Object.freeze({ ...this.current, ...update });
    if (this.#closed) return this.current;
    if (this.current.reset) for (const p of this.pairs) p.client.resetAndDestroy();
    if (lifted) for (const p of this.pairs) for (const pipe of p.pipes) pipe.release();
    if (this.current.refuse && this.listening) this.#stopListening();
    else if (!this.current.refuse && !this.listening) {
      this.server = createServer((client) => this.#accept(client));
      await this.listen();
    }
    return this.current;
  }

  /** Closes after any apply in progress, so none binds again after it. */
  close(): Promise<void> {
    const run = this.#pending.then(() => this.#close());
    this.#pending = run.catch(() => {});
    return run;
  }

  async #close(): Promise<void> {
    this.#closed = true;
    for (const p of this.pairs) {
      for (const pipe of p.pipes) pipe.stop();
      p.client.destroy();
      p.upstream.destroy();
    }
    this.pairs.clear();
    const closing: Promise<void>[] = [];
    if (this.listening) closing.push(new Promise((r) => this.server.close(() => r())));
    this.listening = false;
    if (this.control) {
      const c = this.control;
      c.closeAllConnections();
      closing.push(new Promise((r) => c.close(() => r())));
      this.control = undefined;
    }
    await Promise.all(closing);
  }
}

function listenOn(server: Server | HttpServer, port: number | undefined, host: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

function controlApi(proxy: ProxyState): HttpServer {
  return createHttpServer((req, res) => {
    const send = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    };
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= 64 * 1024) chunks.push(c);
    });
    req.on('end', () => {
      const route = `${req.method} ${req.url}`;
      if (route === 'GET /faults') return send(200, proxy.current);
      if (route === 'GET /stats') return send(200, { connections: proxy.pairs.size, listening: proxy.listening, target: proxy.target });
      if (route === 'POST /reset' || route === 'DELETE /faults') return void proxy.apply({ ...NONE }).then((f) => send(200, f));
      if (route !== 'POST /faults') return send(404, { error: 'routes: GET /faults, POST /faults, POST /reset, GET /stats' });
      if (size > 64 * 1024) return send(413, { error: 'body too large' });
      let update: Partial<Faults>;
      try {
        update = validFaults(JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}'));
      } catch (err) {
        return send(400, { error: (err as Error).message });
      }
      proxy.apply(update).then(
        (f) => send(200, f),
        (err: Error) => send(500, { error: err.message }),
      );
    });
  });
}

/**
 * Starts a fault proxy.
 *
 * @example
 * ```ts
 * import { createFaultProxy } from 'keel/load';
 * const proxy = await createFaultProxy({ target: { port: 6379 } });
 * const redis = new Redis({ port: proxy.port });
 * await proxy.set({ latencyMs: 200, jitterMs: 50 }); // slow Redis
 * await proxy.set({ blackhole: true });              // Redis stops answering
 * await proxy.reset();
 * await proxy.close();
 * ```
 */
export async function createFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  const o = objectOptions('createFaultProxy', options);
  const t = o.target;
  if (!t || typeof t !== 'object' || !Number.isInteger(t.port) || t.port < 1 || t.port > 65535) {
    throw optionError('createFaultProxy', 'target', 'an object with a port (1-65535)', t);
  }
  const listenPort = o.listen?.port ?? 0;
  if (!Number.isInteger(listenPort) || listenPort < 0 || listenPort > 65535)
    throw optionError('createFaultProxy', 'listen.port', 'a port (0-65535)', listenPort);
  if (o.controlPort !== undefined && !(Number.isInteger(o.controlPort) && o.controlPort >= 0 && o.controlPort <= 65535)) {
    throw optionError('createFaultProxy', 'controlPort', 'a port (0-65535)', o.controlPort);
  }
  const maxQueued = o.maxQueuedBytes ?? 16 * 1024 * 1024;
  if (!(Number.isInteger(maxQueued) && maxQueued > 0)) throw optionError('createFaultProxy', 'maxQueuedBytes', 'an integer > 0', maxQueued);
  const initial = Object.freeze({ ...NONE, ...validFaults(o.faults ?? {}) });
  const proxy = new ProxyState(
    { host: t.host ?? '127.0.0.1', port: t.port },
    { host: o.listen?.host ?? '127.0.0.1', port: listenPort },
    initial,
    maxQueued,
  );
  await proxy.start();
  let controlPort: number | undefined;
  if (o.controlPort !== undefined) {
    const control = controlApi(proxy);
    try {
      await listenOn(control, o.controlPort, proxy.host);
    } catch (err) {
      // A taken control port rejects the call instead of throwing uncaught, and leaves no listener open.
      await proxy.close();
      throw err;
    }
    proxy.control = control;
    controlPort = (control.address() as AddressInfo).port;
  }
  let closed: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closed ??= proxy.close();
    return closed;
  };
  return {
    get host() {
      return proxy.host;
    },
    get port() {
      return proxy.port;
    },
    get url() {
      return `tcp://${proxy.host}:${proxy.port}`;
    },
    controlPort,
    get faults() {
      return proxy.current;
    },
    get connections() {
      return proxy.pairs.size;
    },
    set: (faults) => proxy.apply(validFaults(faults)),
    reset: () => proxy.apply({ ...NONE }),
    close,
    [Symbol.asyncDispose]: close,
  };
}
