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
 * Every command has a deadline (`timeoutMs`), and each connection is PINGed every `probeMs`.
 * A blackhole that drops bytes (keel chaos) never answers and never closes the socket: before
 * deadlines, 1,000 publishes lost in one held every in-flight slot for good, so fan-out stayed
 * dead after Redis returned while health said fine (audit 7). Now a command past its deadline
 * frees its slot and drops its connection, which reconnects and resubscribes; ioredis matches
 * replies to commands in order, so a connection that lost one reply cannot be trusted again.
 * The publisher counts as down from a timeout until a command on it is answered again.
 *
 * The subscriber subscribes on every 'ready', so an instance started while Redis is down joins
 * the channel once Redis is up: ioredis's own resubscribe only repeats channels that a SUBSCRIBE
 * got a reply for, and the first one failed at start (maxRetriesPerRequest), so such an
 * instance never received anything. {@link RedisFanout.state} says whether both halves work.
 */
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { Redis, type RedisOptions } from 'ioredis';
import { type Clock, realClock } from 'keel/clock';
import { Scope } from 'keel/lifecycle';
import type { Fanout, FanoutDeliver, FanoutState } from './hub.ts';
import { ReplyDeadlines } from './reply-deadlines.ts';

export interface RedisFanoutOptions {
  /** `redis://host:port/db`. */
  url: string;
  /** Pub/sub channel shared by the instances. Default `'forum:live'`. */
  channel?: string;
  /** This instance's id in envelopes. Default a random UUID. */
  instanceId?: string;
  /** Publishes awaiting Redis before new ones are dropped. Default 1,000. */
  maxInFlight?: number;
  /**
   * How long a command (a publish, SUBSCRIBE, a probe) waits for its reply; past it the command
   * counts as lost and its connection is dropped and reconnected. Default 1,000 ms.
   */
  timeoutMs?: number;
  /** How often each connection is PINGed, so a silent Redis is noticed with nothing to publish. Default 5,000 ms. */
  probeMs?: number;
  /** Clock of the deadlines and the probe. Default: the real clock. */
  clock?: Clock;
  /** Called each time the subscriber's SUBSCRIBE is acknowledged (at start and after each reconnect). Default: nothing. */
  onSubscribed?: () => void;
}

/** `t<topicId>`, `u<userId>`, or `p` (presence announcements). */
const TARGET = /^(?:[tu][1-9][0-9]{0,15}|p)$/;
/** How long close() waits for publishes in flight (a presence `bye`, say) before it disconnects. */
const CLOSE_DRAIN_MS = 500;

function positive(options: RedisFanoutOptions, name: 'maxInFlight' | 'timeoutMs' | 'probeMs', fallback: number): number {
  const v = options[name] ?? fallback;
  if (!Number.isInteger(v) || v < 1)
    throw new TypeError(`live: RedisFanout option "${name}" must be an integer >= 1 (got ${options[name]})`);
  return v;
}

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
  readonly #scope: Scope;
  readonly #deadlines: ReplyDeadlines;
  #inFlight = 0;
  /** Events (`t…`/`u…` targets) and presence announcements (`p`), counted apart. */
  #published = 0;
  #received = 0;
  #presencePublished = 0;
  #presenceReceived = 0;
  #ownSkipped = 0;
  #dropped = 0;
  #errors = 0;
  #timeouts = 0;
  #probesAnswered = 0;
  /** Whether the subscriber's current connection has acknowledged SUBSCRIBE. */
  #subscribed = false;
  /** False from a publisher command's timeout until one is answered again. */
  #pubAnswering = true;
  /** Connections already told to drop (once per connection: each disconnect adds a listener). */
  readonly #dropping = new Set<Redis>();
  readonly #probing = new Set<Redis>();
  readonly #subscribedWaiters: Array<() => void> = [];
  #closing: Promise<void> | undefined;

  constructor(options: RedisFanoutOptions, deliver: FanoutDeliver) {
    if (typeof options?.url !== 'string' || !/^rediss?:\/\//.test(options.url))
      throw new TypeError('live: RedisFanout option "url" must be a redis:// URL');
    if (typeof deliver !== 'function') throw new TypeError('live: RedisFanout needs a deliver function');
    this.#channel = options.channel ?? 'forum:live';
    this.instanceId = options.instanceId ?? randomUUID();
    this.#maxInFlight = positive(options, 'maxInFlight', 1_000);
    const timeoutMs = positive(options, 'timeoutMs', 1_000);
    const probeMs = positive(options, 'probeMs', 5_000);
    const clock = options.clock ?? realClock;
    if (options.onSubscribed !== undefined && typeof options.onSubscribed !== 'function')
      throw new TypeError('live: RedisFanout option "onSubscribed" must be a function');
    const onSubscribed = options.onSubscribed ?? (() => {});
    this.#scope = new Scope({ name: 'live-fanout', clock });
    this.#deadlines = new ReplyDeadlines(clock, timeoutMs);
    const common: RedisOptions = {
      maxRetriesPerRequest: 1,
      connectTimeout: 2_000,
      retryStrategy: (n: number) => Math.min(50 * 2 ** n, 2_000),
      // As keel's Redis tier (cache/tiers/redis.ts): no INFO nor CLIENT SETINFO before 'ready'.
      // connectTimeout ends at the TCP connect, so against a blackhole either would wait for
      // ever with the connection stuck in 'connect', never 'ready', never reconnected.
      enableReadyCheck: false,
      disableClientInfo: true,
      // Commands in flight when a connection drops have timed out or will fail: resending them
      // after a byte-dropping blackhole would pair later replies with the wrong commands.
      autoResendUnfulfilledCommands: false,
    };
    this.#pub = new Redis(options.url, { ...common, enableOfflineQueue: false });
    // One way to (re)subscribe, below, instead of ioredis's autoResubscribe as well.
    this.#sub = new Redis(options.url, { ...common, autoResubscribe: false });
    const onError = (): void => {
      this.#errors++;
    };
    this.#pub.on('error', onError);
    this.#sub.on('error', onError);
    this.#pub.on('ready', () => {
      this.#dropping.delete(this.#pub);
      // After a timeout the new connection proves itself before health says it works.
      if (!this.#pubAnswering) this.#probe(this.#pub);
    });
    // 'ready' comes after each (re)connect, at start too. A SUBSCRIBE lost with its connection is
    // sent again at the next 'ready'.
    this.#sub.on('ready', () => {
      this.#dropping.delete(this.#sub);
      const settle = this.#deadlines.add(() => this.#timedOut(this.#sub));
      this.#sub.subscribe(this.#channel).then(
        () => {
          if (!settle()) return;
          // Replies arrive only on a live connection, so this one is subscribed.
          this.#subscribed = true;
          for (const wake of this.#subscribedWaiters.splice(0)) wake();
          onSubscribed();
        },
        () => {
          settle();
          onError();
        },
      );
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
      if (target === 'p') this.#presenceReceived++;
      else this.#received++;
      deliver(target, message.slice(b + 1), message.slice(0, a));
    });
    this.#scope.setInterval(() => {
      this.#probe(this.#pub);
      this.#probe(this.#sub);
    }, probeMs);
  }

  /** Resolves once the publisher is ready and the subscriber subscribed (tests). */
  async ready(): Promise<void> {
    if (this.#pub.status !== 'ready') await once(this.#pub, 'ready');
    if (!this.#subscribed) await new Promise<void>((resolve) => this.#subscribedWaiters.push(resolve));
  }

  /**
   * Whether events reach this instance (`subscribed`) and leave it (`publishing`); false while
   * Redis is unreachable or does not answer in time. For a health check: either false means
   * degraded live updates.
   */
  state(): FanoutState {
    return { subscribed: this.#subscribed, publishing: this.#pub.status === 'ready' && this.#pubAnswering };
  }

  publish(target: string, payload: string): void {
    if (this.#closing || this.#inFlight >= this.#maxInFlight || this.#pub.status !== 'ready') {
      this.#dropped++;
      return;
    }
    this.#inFlight++;
    // Whoever comes first, the reply or the deadline, gives the slot back; the other does nothing.
    const settle = this.#deadlines.add(() => {
      this.#inFlight--;
      this.#dropped++;
      this.#timedOut(this.#pub);
    });
    this.#pub.publish(this.#channel, `${this.instanceId}\n${target}\n${payload}`).then(
      () => {
        if (!settle()) return;
        this.#inFlight--;
        if (target === 'p') this.#presencePublished++;
        else this.#published++;
        this.#pubAnswering = true;
      },
      () => {
        if (!settle()) return;
        this.#inFlight--;
        this.#dropped++;
      },
    );
  }

  stats(): Record<string, number> {
    return {
      published: this.#published,
      received: this.#received,
      presencePublished: this.#presencePublished,
      presenceReceived: this.#presenceReceived,
      ownSkipped: this.#ownSkipped,
      dropped: this.#dropped,
      connectionErrors: this.#errors,
      timeouts: this.#timeouts,
      probesAnswered: this.#probesAnswered,
      inFlight: this.#inFlight,
      subscribed: this.#subscribed ? 1 : 0,
    };
  }

  /** A PING under the deadline on a ready connection, one at a time per connection. */
  #probe(r: Redis): void {
    if (this.#closing || r.status !== 'ready' || this.#probing.has(r)) return;
    this.#probing.add(r);
    const settle = this.#deadlines.add(() => {
      this.#probing.delete(r);
      this.#timedOut(r);
    });
    r.ping().then(
      () => {
        if (!settle()) return;
        this.#probing.delete(r);
        this.#probesAnswered++;
        if (r === this.#pub) this.#pubAnswering = true;
      },
      () => {
        if (settle()) this.#probing.delete(r);
      },
    );
  }

  /** A command on `r` got no reply in time: Redis stopped answering, so the connection goes. */
  #timedOut(r: Redis): void {
    this.#timeouts++;
    if (r === this.#pub) this.#pubAnswering = false;
    else this.#subscribed = false;
    if (this.#closing || r.status !== 'ready' || this.#dropping.has(r)) return;
    this.#dropping.add(r);
    r.disconnect(true);
  }

  /**
   * Lets the publishes in flight get their replies (at most 500 ms), then disconnects both
   * connections; resolves when their sockets have ended (at most 1 s more).
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      // What was published just before close (the hub's presence `bye`) still reaches the others.
      for (const start = performance.now(); this.#inFlight > 0 && performance.now() - start < CLOSE_DRAIN_MS; )
        await new Promise((resolve) => setTimeout(resolve, 5));
      this.#deadlines.close();
      await this.#scope.close();
      await Promise.all([this.#pub, this.#sub].map(end));
    })();
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
