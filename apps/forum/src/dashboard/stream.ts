import type { ServerResponse } from 'node:http';
import type { Clock, TimerHandle } from 'keel/clock';

export interface SseHubOptions {
  /** Time between events. */
  intervalMs: number;
  /** Concurrent streams at most; {@link SseHub.add} refuses the next one. */
  maxStreams: number;
  /** Consecutive ticks a client may stay unwritable before it is dropped. */
  maxSkips: number;
  /** The event payload (one JSON line), built once per tick for every client. */
  frame: () => string;
  clock: Clock;
}

interface Client {
  res: ServerResponse;
  skips: number;
}

/** Counters, for tests and the report. */
export interface SseHubStats {
  streams: number;
  sent: number;
  skipped: number;
  dropped: number;
}

/**
 * Server-sent events to every open dashboard from one timer.
 *
 * The timer runs only while a stream is open, and each tick serialises the snapshot once for
 * all clients. A client whose socket has not drained the previous event is skipped for that
 * tick instead of having another event queued behind it, so a stalled page holds at most
 * one event of memory; after `maxSkips` consecutive skips it is dropped.
 *
 * @example
 * ```ts
 * const hub = new SseHub({ intervalMs: 1000, maxStreams: 16, maxSkips: 30, frame: () => '{}', clock: realClock });
 * if (!hub.add(res)) res.writeHead(503).end();
 * // later, on shutdown:
 * hub.close();
 * ```
 */
export class SseHub {
  readonly #options: SseHubOptions;
  readonly #clients = new Set<Client>();
  #timer: TimerHandle | undefined;
  #closed = false;
  #sent = 0;
  #skipped = 0;
  #dropped = 0;

  constructor(options: SseHubOptions) {
    this.#options = options;
  }

  get stats(): SseHubStats {
    return { streams: this.#clients.size, sent: this.#sent, skipped: this.#skipped, dropped: this.#dropped };
  }

  /** False once closed or at `maxStreams`. */
  get accepting(): boolean {
    return !this.#closed && this.#clients.size < this.#options.maxStreams;
  }

  /**
   * Starts streaming to `res` (headers included) with an immediate first event. Returns `false`,
   * and ends `res` with a 503, when not {@link accepting}.
   */
  add(res: ServerResponse): boolean {
    if (!this.accepting) {
      res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '5', connection: 'close' });
      res.end('{"error":"unavailable","message":"too many dashboard streams open"}');
      return false;
    }
    const client: Client = { res, skips: 0 };
    this.#clients.add(client);
    res.on('close', () => this.#remove(client));
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      // Proxies (nginx) buffer responses by default, which would batch the events.
      'x-accel-buffering': 'no',
      // Ending a stream (shutdown) then closes the socket instead of leaving an idle keep-alive.
      connection: 'close',
    });
    res.write(`retry: ${Math.max(1_000, this.#options.intervalMs * 2)}\n\n`);
    this.#write(client, this.#event());
    this.#schedule();
    return true;
  }

  /** Ends every stream and stops the timer; later {@link add} calls are refused. */
  close(): void {
    this.#closed = true;
    this.#stop();
    for (const client of this.#clients) client.res.end();
    this.#clients.clear();
  }

  #event(): string {
    return `data: ${this.#options.frame()}\n\n`;
  }

  #write(client: Client, event: string): void {
    client.res.write(event);
    this.#sent++;
  }

  #tick(): void {
    this.#timer = undefined;
    if (this.#clients.size === 0) return;
    let event: string | undefined;
    for (const client of this.#clients) {
      if (client.res.writableNeedDrain) {
        this.#skipped++;
        if (++client.skips > this.#options.maxSkips) {
          this.#dropped++;
          client.res.destroy();
        }
        continue;
      }
      client.skips = 0;
      event ??= this.#event();
      this.#write(client, event);
    }
    this.#schedule();
  }

  #schedule(): void {
    if (this.#timer !== undefined || this.#closed || this.#clients.size === 0) return;
    this.#timer = this.#options.clock.setTimeout(() => this.#tick(), this.#options.intervalMs);
  }

  #stop(): void {
    if (this.#timer === undefined) return;
    this.#options.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #remove(client: Client): void {
    if (!this.#clients.delete(client)) return;
    if (this.#clients.size === 0) this.#stop();
  }
}
