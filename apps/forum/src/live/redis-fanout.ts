/**
 * Cross-instance fan-out for the live hub over one Redis pub/sub channel.
 *
 * The instance that committed an event delivers it to its own sockets directly and publishes
 * it once; every instance's subscriber delivers what others published and skips its own
 * (the origin id is in the envelope), so no socket sees an event twice. The envelope is text,
 * `<origin>\n<target>\n<payload>`: the payload is the already-serialized server message, so a
 * receiving instance forwards the bytes without parsing them (JSON never holds a raw newline).
 *
 * A dead or slow Redis never blocks a write: publishing has no offline queue (it fails at once
 * while disconnected) and at most `maxInFlight` publishes wait for a reply; beyond that events
 * are dropped for other instances and counted. Events missed during an outage are not replayed.
 *
 * The subscriber subscribes on every 'ready', so an instance started while Redis is down joins
 * the channel once Redis is up: ioredis's own resubscribe only repeats channels that a SUBSCRIBE
 * got a reply for, and the first one failed at start (maxRetriesPerRequest), so such an
 * instance never received anything. {@link RedisFanout.state} says whether both halves work.
 */
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { Redis } from 'ioredis';
import type { Fanout, FanoutState } from './hub.ts';

export interface RedisFanoutOptions {
  /** `redis://host:port/db`. */
  url: string;
  /** Pub/sub channel shared by the instances. Default `'forum:live'`. */
  channel?: string;
  /** This instance's id in envelopes. Default a random UUID. */
  instanceId?: string;
  /** Publishes awaiting Redis before new ones are dropped. Default 1,000. */
  maxInFlight?: number;
}

const TARGET = /^[tu][1-9][0-9]{0,15}$/;

/**
 * @example
 * ```ts
 * const hub = new LiveHub({ authenticate, fanout: (deliver) => new RedisFanout({ url: process.env.REDIS_URL! }, deliver) });
 * ```
 */
export class RedisFanout implements Fanout {
  readonly instanceId: string;
  readonly #channel: string;
  readonly #maxInFlight: number;
  readonly #pub: Redis;
  readonly #sub: Redis;
  #inFlight = 0;
  #published = 0;
  #received = 0;
  #ownSkipped = 0;
  #dropped = 0;
  #errors = 0;
  /** Whether the subscriber's current connection has acknowledged SUBSCRIBE. */
  #subscribed = false;
  readonly #subscribedWaiters: Array<() => void> = [];
  #closing: Promise<void> | undefined;

  constructor(options: RedisFanoutOptions, deliver: (target: string, payload: string) => void) {
    if (typeof options?.url !== 'string' || !/^rediss?:\/\//.test(options.url))
      throw new TypeError('live: RedisFanout option "url" must be a redis:// URL');
    if (typeof deliver !== 'function') throw new TypeError('live: RedisFanout needs a deliver function');
    this.#channel = options.channel ?? 'forum:live';
    this.instanceId = options.instanceId ?? randomUUID();
    this.#maxInFlight = options.maxInFlight ?? 1_000;
    if (!Number.isInteger(this.#maxInFlight) || this.#maxInFlight < 1)
      throw new TypeError(`live: RedisFanout option "maxInFlight" must be an integer >= 1 (got ${options.maxInFlight})`);
    const common = { maxRetriesPerRequest: 1, connectTimeout: 2_000, retryStrategy: (n: number) => Math.min(50 * 2 ** n, 2_000) };
    this.#pub = new Redis(options.url, { ...common, enableOfflineQueue: false });
    // One way to (re)subscribe, below, instead of ioredis's autoResubscribe as well.
    this.#sub = new Redis(options.url, { ...common, autoResubscribe: false });
    const onError = (): void => {
      this.#errors++;
    };
    this.#pub.on('error', onError);
    this.#sub.on('error', onError);
    // 'ready' comes after each (re)connect, at start too. A SUBSCRIBE lost with its connection is
    // sent again at the next 'ready'.
    this.#sub.on('ready', () => {
      this.#sub.subscribe(this.#channel).then(() => {
        // Replies arrive only on a live connection, so this one is subscribed.
        this.#subscribed = true;
        for (const wake of this.#subscribedWaiters.splice(0)) wake();
      }, onError);
    });
    this.#sub.on('close', () => {
      this.#subscribed = false;
    });
    this.#sub.on('message', (_channel: string, message: string) => {
      const a = message.indexOf('\n');
      const b = a < 0 ? -1 : message.indexOf('\n', a + 1);
      if (b < 0) return;
      if (message.slice(0, a) === this.instanceId) {
        this.#ownSkipped++;
        return;
      }
      const target = message.slice(a + 1, b);
      if (!TARGET.test(target)) return;
      this.#received++;
      deliver(target, message.slice(b + 1));
    });
  }

  /** Resolves once the publisher is ready and the subscriber subscribed (tests). */
  async ready(): Promise<void> {
    if (this.#pub.status !== 'ready') await once(this.#pub, 'ready');
    if (!this.#subscribed) await new Promise<void>((resolve) => this.#subscribedWaiters.push(resolve));
  }

  /**
   * Whether events reach this instance (`subscribed`) and leave it (`publishing`); both false
   * while Redis is unreachable. For a health check: either false means degraded live updates.
   */
  state(): FanoutState {
    return { subscribed: this.#subscribed, publishing: this.#pub.status === 'ready' };
  }

  publish(target: string, payload: string): void {
    if (this.#closing || this.#inFlight >= this.#maxInFlight || this.#pub.status !== 'ready') {
      this.#dropped++;
      return;
    }
    this.#inFlight++;
    this.#pub.publish(this.#channel, `${this.instanceId}\n${target}\n${payload}`).then(
      () => {
        this.#inFlight--;
        this.#published++;
      },
      () => {
        this.#inFlight--;
        this.#dropped++;
      },
    );
  }

  stats(): Record<string, number> {
    return {
      published: this.#published,
      received: this.#received,
      ownSkipped: this.#ownSkipped,
      dropped: this.#dropped,
      connectionErrors: this.#errors,
      inFlight: this.#inFlight,
      subscribed: this.#subscribed ? 1 : 0,
    };
  }

  /** Disconnects both connections; resolves when their sockets have ended (at most 1 s). */
  close(): Promise<void> {
    this.#closing ??= Promise.all([this.#pub, this.#sub].map(end)).then(() => undefined);
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

async function end(r: Redis): Promise<void> {
  if (r.status === 'end') return;
  const ended = new Promise<void>((resolve) => r.once('end', () => resolve()));
  r.disconnect();
  let timer: NodeJS.Timeout | undefined;
  // A connection stuck in reconnect may never emit 'end' again; its socket is gone already.
  await Promise.race([ended, new Promise<void>((resolve) => (timer = setTimeout(resolve, 1_000)))]);
  clearTimeout(timer);
}
