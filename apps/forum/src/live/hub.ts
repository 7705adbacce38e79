/**
 * The live hub: every open `/api/v1/live` socket, the rooms it joined, presence, heartbeats,
 * and the one bounded send path. It takes anything shaped like a `ws` server socket, so the
 * route only translates (and tests can drive it with a plain `ws` server).
 */
import { realClock } from 'keel/clock';
import { type Resource, Scope } from 'keel/lifecycle';
import { type LiveLimits, liveLimits } from './limits.ts';
import { BYE, countMessages, HELLO, PRESENCE_TARGET, RemotePresence } from './presence.ts';
import { type ClientMessage, ClientProtocol, CloseCode, type ErrorCode, type MessageId, serverMessage } from './protocol.ts';
import { Rooms } from './rooms.ts';
import type { Fanout, FanoutState, LiveHubOptions, LiveSocket, LiveStats, LiveUser } from './types.ts';

export type { LiveLimits } from './limits.ts';
export { LIVE_DEFAULTS } from './limits.ts';
export type { Fanout, FanoutDeliver, FanoutState, LiveHubOptions, LiveSocket, LiveStats, LiveUser } from './types.ts';

interface Connection {
  readonly socket: LiveSocket;
  user: LiveUser | undefined;
  token: string | undefined;
  readonly topics: Set<number>;
  me: boolean;
  alive: boolean;
  bad: number;
  open: boolean;
  /**
   * Work waiting behind a lookup that answered with a promise (see #serial); undefined when
   * nothing is in progress. Keeps the socket's messages and private deliveries in order.
   */
  pending: Array<() => Step> | undefined;
}

/** One message's or delivery's handling: done at once, or when the promise settles (it never rejects). */
type Step = void | Promise<void>;
type Lookup<T> = T | Promise<T>;

const isPromise = <T>(v: Lookup<T>): v is Promise<T> => typeof (v as { then?: unknown } | undefined)?.then === 'function';

const OPEN = 1;

/**
 * Rooms, presence and heartbeats for the live WebSocket endpoint.
 *
 * @example
 * ```ts
 * const hub = new LiveHub({ authenticate: (token) => auth.authenticate(token) });
 * wss.on('connection', (socket) => hub.accept(socket));
 * hub.publishTopic(7, { type: 'post.created', topicId: 7, post });
 * hub.stats(); // { connections: 1, rooms: 1, subscriptions: 1, … }
 * await hub.close(); // every socket gets 1001
 * ```
 */
export class LiveHub implements AsyncDisposable {
  readonly limits: Readonly<LiveLimits>;
  readonly #scope: Scope;
  readonly #protocol = new ClientProtocol();
  readonly #authenticate: (token: string) => Lookup<LiveUser | undefined>;
  readonly #topicExists: (topicId: number) => Lookup<boolean>;
  readonly #fanout: Fanout | undefined;
  readonly #connections = new Set<Connection>();
  readonly #rooms = new Rooms<Connection>();
  /** Closing sockets and the cancel of each one's grace timer. */
  readonly #closing = new Map<LiveSocket, () => void>();
  /** Topics whose presence members must be told (a local or a remote count changed). */
  readonly #dirty = new Set<number>();
  /** Topics whose local count changed and is not yet announced to the other instances. */
  readonly #announce = new Set<number>();
  /** The other instances' counts; undefined without a fan-out. */
  readonly #remote: RemotePresence | undefined;
  #presenceTimer: (() => void) | undefined;
  #slow = 0;
  #timeouts = 0;
  #shutdown: Promise<void> | undefined;
  #drained: (() => void) | undefined;

  constructor(options: LiveHubOptions) {
    if (typeof options?.authenticate !== 'function') throw new TypeError('live: LiveHub option "authenticate" must be a function');
    this.limits = liveLimits(options);
    this.#authenticate = options.authenticate;
    this.#topicExists = options.topicExists ?? (() => true);
    const clock = options.clock ?? realClock;
    this.#scope = new Scope({ name: 'live-hub', clock });
    // One interval for every socket: a timer per socket would cost ~460 ns per tick each (DESIGN.md).
    this.#scope.setInterval(() => this.#heartbeat(), this.limits.heartbeatMs);
    if (options.fanout) {
      this.#remote = new RemotePresence({
        ttlMs: 3 * this.limits.presenceRefreshMs,
        maxEntries: this.limits.maxRemotePresence,
        clock,
      });
      this.#fanout = this.#scope.add(
        options.fanout(
          (target, payload, origin) => (target === PRESENCE_TARGET ? this.#onPresence(origin, payload) : this.#deliver(target, payload)),
          () => this.#joinedCluster(),
        ),
      );
      this.#scope.setInterval(() => this.#refreshPresence(), this.limits.presenceRefreshMs);
    }
  }

  /** True when a new socket would be refused. */
  get full(): boolean {
    return this.#shutdown !== undefined || this.#connections.size >= this.limits.maxConnections;
  }

  /** Whether a user notification could reach anyone (always true with a fan-out). */
  get hasUserListeners(): boolean {
    return this.#fanout !== undefined || this.#rooms.userCount > 0;
  }

  /** The fan-out's state, or undefined without one (a single instance). */
  fanoutState(): FanoutState | undefined {
    return this.#fanout?.state();
  }

  /** Ties a resource (an event listener's remover, say) to the hub's lifetime. */
  adopt<T extends Resource>(resource: T): T {
    return this.#scope.add(resource);
  }

  /**
   * Takes an open socket; `user`/`token` come from an upgrade request that carried a valid
   * session. Returns false when refused (closed with 1013 when full, 1001 when shutting down).
   */
  accept(socket: LiveSocket, auth: { user?: LiveUser; token?: string } = {}): boolean {
    if (this.#shutdown || this.#connections.size >= this.limits.maxConnections) {
      socket.on('close', () => this.#ended(socket));
      socket.on('error', () => {});
      if (this.#shutdown) this.#closeSocket(socket, CloseCode.goingAway, 'server shutdown');
      else this.#closeSocket(socket, CloseCode.tryAgainLater, 'server full');
      return false;
    }
    const user = auth.user;
    const conn: Connection = {
      socket,
      user,
      token: user && auth.token,
      topics: new Set(),
      me: false,
      alive: true,
      bad: 0,
      open: true,
      pending: undefined,
    };
    this.#connections.add(conn);
    socket.on('message', (data, isBinary) => this.#onMessage(conn, data, isBinary));
    socket.on('pong', () => {
      conn.alive = true;
    });
    socket.on('close', () => {
      this.#leaveAll(conn);
      this.#ended(socket);
    });
    // ws answers protocol errors (1007 bad UTF-8, 1009 too big) itself, then emits 'error' and
    // 'close'; a reset emits 'close' only. Either way the rooms are left at once.
    socket.on('error', () => this.#drop(conn, undefined, ''));
    return true;
  }

  /** Sends an event to every local subscriber of a topic, and to the other instances. */
  publishTopic(topicId: number, message: object): void {
    this.#publish(`t${topicId}`, JSON.stringify(message));
  }

  /** Sends an event to a user's private `me` channel, here and on the other instances. */
  notifyUser(userId: number, message: object): void {
    this.#publish(`u${userId}`, JSON.stringify(message));
  }

  /** Subscribers of a topic: this instance's, plus what the other instances announced (presence.ts). */
  presence(topicId: number): number {
    return this.#localPresence(topicId) + (this.#remote?.count(topicId) ?? 0);
  }

  #localPresence(topicId: number): number {
    return this.#rooms.topic(topicId)?.size ?? 0;
  }

  stats(): LiveStats {
    const s: LiveStats = {
      connections: this.#connections.size,
      rooms: this.#rooms.topicCount,
      subscriptions: this.#rooms.subscriptions,
      channels: this.#rooms.userCount,
      closing: this.#closing.size,
      slowConsumers: this.#slow,
      heartbeatTimeouts: this.#timeouts,
    };
    if (this.#fanout) s.fanout = this.#fanout.stats();
    if (this.#remote) s.presence = this.#remote.stats();
    return s;
  }

  #publish(target: string, payload: string): void {
    this.#deliver(target, payload);
    this.#fanout?.publish(target, payload);
  }

  /**
   * Re-checks the session of each socket on a user's `me` channel and closes the channel of
   * those whose session has ended; the forum calls it on logout, so the channel closes at once
   * instead of at the next heartbeat.
   */
  sessionEnded(userId: number): void {
    const members = this.#rooms.user(userId);
    if (!members) return;
    // A copy: #forget removes members from the set being iterated.
    for (const conn of [...members]) this.#serial(conn, () => this.#stillAuthorized(conn, undefined));
  }

  #deliver(target: string, payload: string): void {
    const members = this.#rooms.target(target);
    if (!members) return;
    // Once per payload, not per member: a room of thousands shares one count.
    const bytes = Buffer.byteLength(payload);
    if (target[0] !== 'u') {
      for (const conn of members) this.#send(conn, payload, bytes);
      return;
    }
    // Private data: the session is checked before each delivery, since it may have ended on
    // another instance or expired since the last heartbeat (a lookup per reply, and a `me`
    // channel has a handful of sockets, not a room's thousands).
    for (const conn of [...members]) this.#serial(conn, () => this.#stillAuthorized(conn, () => this.#send(conn, payload, bytes)));
  }

  /**
   * Runs `then` if the socket's session is still valid; otherwise closes its `me` channel and
   * tells the socket. A store that answers asynchronously makes this a promise.
   */
  #stillAuthorized(conn: Connection, then: (() => void) | undefined): Step {
    const verdict = (user: LiveUser | undefined): void => {
      if (!conn.open) return;
      if (user) {
        then?.();
        return;
      }
      this.#forget(conn);
      this.#reply(conn, 'session_expired', 'the session ended; the me channel is closed', undefined);
    };
    if (!conn.token) return verdict(undefined);
    return this.#look(this.#authenticate, conn.token, verdict);
  }

  /**
   * Calls `fn(lookup(arg))` at once when the lookup answers synchronously (SQLite, a cached
   * session), or when its promise settles; a failed lookup counts as "no" (a database outage
   * must not let a socket past a session check).
   */
  #look<A, T>(lookup: (arg: A) => Lookup<T | undefined>, arg: A, fn: (value: T | undefined) => void): Step {
    let value: Lookup<T | undefined>;
    try {
      value = lookup(arg);
    } catch {
      value = undefined;
    }
    if (!isPromise(value)) return fn(value);
    return value.then(fn, () => fn(undefined));
  }

  /**
   * Runs a socket's steps one after another: at once while nothing waits, else after the step in
   * progress. Only a step that returned a promise holds the ones behind it, so with synchronous
   * lookups this is a plain call. At most `maxPending` wait; one more closes the socket (1008).
   */
  #serial(conn: Connection, step: () => Step): void {
    if (conn.pending) {
      if (conn.pending.length >= this.limits.maxPending) this.#drop(conn, CloseCode.policyViolation, 'too many messages in flight');
      else conn.pending.push(step);
      return;
    }
    const result = step();
    if (!isPromise(result)) return;
    const queue: Array<() => Step> = [];
    conn.pending = queue;
    const next = (): void => {
      while (conn.open) {
        const following = queue.shift();
        if (!following) break;
        const r = following();
        if (isPromise(r)) {
          void r.then(next);
          return;
        }
      }
      conn.pending = undefined;
    };
    void result.then(next);
  }

  /**
   * The one send path: it never queues past `maxBufferedBytes`; a slow reader is dropped instead.
   * `bytes` is the UTF-8 size, the unit of `bufferedAmount`: `data.length` counts UTF-16 units,
   * so CJK text (3 bytes a unit) would queue three times the bound.
   */
  #send(conn: Connection, data: string, bytes = Buffer.byteLength(data)): void {
    if (!conn.open || conn.socket.readyState !== OPEN) return;
    if (conn.socket.bufferedAmount + bytes > this.limits.maxBufferedBytes) {
      this.#slow++;
      this.#drop(conn, CloseCode.slowConsumer, 'slow consumer');
      return;
    }
    conn.socket.send(data);
  }

  #reply(conn: Connection, code: ErrorCode, message: string, id: MessageId | undefined): void {
    this.#send(conn, serverMessage.error(code, message, id));
  }

  #onMessage(conn: Connection, data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean): void {
    if (!conn.open) return;
    conn.alive = true;
    if (isBinary) {
      this.#drop(conn, CloseCode.unsupportedData, 'text frames only');
      return;
    }
    const parsed = this.#protocol.parse(String(data));
    if (parsed.ok) this.#serial(conn, () => this.#handle(conn, parsed.message));
    else this.#serial(conn, () => this.#bad(conn, parsed.code, parsed.reason, parsed.id));
  }

  #bad(conn: Connection, code: 'bad_json' | 'bad_message' | 'unauthorized', reason: string, id: MessageId | undefined): void {
    this.#reply(conn, code, reason, id);
    if (++conn.bad < this.limits.maxBadMessages) return;
    this.#drop(conn, code === 'bad_json' ? CloseCode.invalidPayload : CloseCode.policyViolation, 'too many bad messages');
  }

  #handle(conn: Connection, m: ClientMessage): Step {
    if (!conn.open) return;
    if (m.type === 'ping') this.#send(conn, serverMessage.pong(m.id));
    else if (m.type === 'auth') return this.#auth(conn, m.token, m.id);
    else if (m.type === 'subscribe') {
      if ('topicId' in m) return this.#joinTopic(conn, m.topicId, m.id);
      return this.#joinMe(conn, m.id);
    } else if ('topicId' in m) {
      this.#leaveTopic(conn, m.topicId);
      this.#send(conn, serverMessage.unsubscribed({ topicId: m.topicId }, m.id));
    } else {
      this.#leaveMe(conn);
      this.#send(conn, serverMessage.unsubscribed({ channel: 'me' }, m.id));
    }
  }

  #auth(conn: Connection, token: string, id: MessageId | undefined): Step {
    if (conn.user) {
      this.#reply(conn, 'already_authenticated', 'this socket has a session', id);
      return;
    }
    return this.#look(this.#authenticate, token, (user) => {
      if (!conn.open) return;
      if (!user) {
        this.#bad(conn, 'unauthorized', 'unknown or expired session', id);
        return;
      }
      conn.user = user;
      conn.token = token;
      this.#send(conn, serverMessage.authenticated(user, id));
    });
  }

  #atLimit(conn: Connection, id: MessageId | undefined): boolean {
    if (conn.topics.size + (conn.me ? 1 : 0) < this.limits.maxSubscriptions) return false;
    this.#reply(conn, 'too_many_subscriptions', `at most ${this.limits.maxSubscriptions} subscriptions per socket`, id);
    return true;
  }

  #joinTopic(conn: Connection, topicId: number, id: MessageId | undefined): Step {
    const subscribed = (): void => this.#send(conn, serverMessage.subscribed({ topicId }, this.presence(topicId), id));
    if (conn.topics.has(topicId)) return subscribed();
    if (this.#atLimit(conn, id)) return;
    return this.#look(this.#topicExists, topicId, (exists) => {
      // A socket that closed while the lookup ran must not join a room: nothing would leave it.
      if (!conn.open) return;
      if (!exists) {
        this.#reply(conn, 'not_found', `topic ${topicId} not found`, id);
        return;
      }
      conn.topics.add(topicId);
      this.#rooms.joinTopic(topicId, conn);
      this.#presenceChanged(topicId);
      subscribed();
    });
  }

  #joinMe(conn: Connection, id: MessageId | undefined): Step {
    // The channel carries replies to the user's posts, which is private data: the session is
    // checked again now, since it may have expired or been logged out after the upgrade.
    const join = (user: LiveUser | undefined): void => {
      if (!conn.open) return;
      if (!user) {
        this.#forget(conn);
        this.#reply(conn, 'unauthorized', 'the me channel needs a valid session', id);
        return;
      }
      if (!conn.me) {
        if (this.#atLimit(conn, id)) return;
        conn.me = true;
        this.#rooms.joinUser(user.id, conn);
      }
      this.#send(conn, serverMessage.subscribed({ channel: 'me' }, undefined, id));
    };
    if (!conn.token) return join(undefined);
    return this.#look(this.#authenticate, conn.token, join);
  }

  #leaveTopic(conn: Connection, topicId: number): void {
    if (!conn.topics.delete(topicId)) return;
    this.#rooms.leaveTopic(topicId, conn);
    this.#presenceChanged(topicId);
  }

  #leaveMe(conn: Connection): void {
    if (!conn.me || !conn.user) return;
    conn.me = false;
    this.#rooms.leaveUser(conn.user.id, conn);
  }

  /** Drops the socket's session: it leaves its private channel and is anonymous from now on. */
  #forget(conn: Connection): void {
    this.#leaveMe(conn);
    conn.user = undefined;
    conn.token = undefined;
  }

  /** Idempotent: every disconnect path (close, error, heartbeat, slow reader, shutdown) ends here. */
  #leaveAll(conn: Connection): void {
    if (!conn.open) return;
    conn.open = false;
    this.#connections.delete(conn);
    for (const topicId of conn.topics) this.#leaveTopic(conn, topicId);
    this.#leaveMe(conn);
  }

  /** `local`: this instance's count changed, so the other instances are told too. */
  #presenceChanged(topicId: number, local = true): void {
    if (this.#scope.closed) return;
    this.#dirty.add(topicId);
    if (local && this.#fanout) this.#announce.add(topicId);
    if (this.limits.presenceMs === 0) {
      this.#flushPresence();
      return;
    }
    // Coalesced: a burst of n joins costs each member one presence message, not n, and the
    // other instances one announcement.
    this.#presenceTimer ??= this.#scope.setTimeout(() => {
      this.#presenceTimer = undefined;
      this.#flushPresence();
    }, this.limits.presenceMs);
  }

  #flushPresence(): void {
    const topics = [...this.#dirty];
    this.#dirty.clear();
    for (const t of topics) this.#broadcastPresence(t);
    if (this.#announce.size === 0) return;
    const announce = [...this.#announce].map((t) => [t, this.#localPresence(t)] as const);
    this.#announce.clear();
    this.#publishCounts(announce);
  }

  /** Another instance's presence message: members of the topics it changed are told. */
  #onPresence(origin: string, payload: string): void {
    const effect = this.#remote?.apply(origin, payload);
    if (effect?.kind === 'hello') this.#announceAll();
    else if (effect?.kind === 'changed') this.#remoteChanged(effect.topics);
  }

  /** Subscribed to the channel (at start, after a reconnect): ask for the others' counts, give ours. */
  #joinedCluster(): void {
    if (this.#scope.closed) return;
    this.#fanout?.publish(PRESENCE_TARGET, HELLO);
    this.#announceAll();
  }

  /** Every refresh: forget what crashed instances announced, and re-announce every local room. */
  #refreshPresence(): void {
    this.#remoteChanged(this.#remote?.sweep() ?? []);
    this.#announceAll();
  }

  #announceAll(): void {
    const counts: Array<readonly [number, number]> = [];
    for (const [topicId, members] of this.#rooms.topics()) counts.push([topicId, members.size]);
    this.#publishCounts(counts);
  }

  /** Other instances' counts changed for `topics`: the local members of those rooms are told. */
  #remoteChanged(topics: Iterable<number>): void {
    for (const t of topics) if (this.#rooms.topic(t)) this.#presenceChanged(t, false);
  }

  #publishCounts(counts: Iterable<readonly [number, number]>): void {
    for (const m of countMessages(counts)) this.#fanout?.publish(PRESENCE_TARGET, m);
  }

  #broadcastPresence(topicId: number): void {
    const room = this.#rooms.topic(topicId);
    if (!room) return;
    const payload = serverMessage.presence(topicId, this.presence(topicId));
    const bytes = Buffer.byteLength(payload);
    for (const conn of room) this.#send(conn, payload, bytes);
  }

  #heartbeat(): void {
    for (const conn of this.#connections) {
      if (!conn.alive) {
        // No pong (nor any frame) for a whole interval: the peer is gone or stuck.
        this.#timeouts++;
        this.#leaveAll(conn);
        this.#closing.set(conn.socket, () => {});
        conn.socket.terminate();
        continue;
      }
      conn.alive = false;
      conn.socket.ping();
      // Expiry has no event: a socket on its me channel learns of it here at the latest.
      if (conn.me) this.#serial(conn, () => this.#stillAuthorized(conn, undefined));
    }
  }

  /** Leaves every room now, then closes (code undefined: ws is closing the socket already). */
  #drop(conn: Connection, code: number | undefined, reason: string): void {
    this.#leaveAll(conn);
    this.#closeSocket(conn.socket, code, reason);
  }

  #closeSocket(socket: LiveSocket, code: number | undefined, reason: string): void {
    if (this.#closing.has(socket)) return;
    if (this.#scope.closed) {
      socket.terminate();
      return;
    }
    // A peer that never answers the close frame (paused, gone) is cut off after the grace.
    this.#closing.set(
      socket,
      this.#scope.setTimeout(() => socket.terminate(), this.limits.closeGraceMs),
    );
    if (code !== undefined && socket.readyState === OPEN) socket.close(code, reason);
  }

  #ended(socket: LiveSocket): void {
    const cancel = this.#closing.get(socket);
    if (!cancel) return;
    cancel();
    this.#closing.delete(socket);
    if (this.#closing.size === 0) this.#drained?.();
  }

  /** Closes every socket with 1001 and waits for them (at most `closeGraceMs`), then stops timers and the fan-out. */
  close(): Promise<void> {
    this.#shutdown ??= this.#close();
    return this.#shutdown;
  }

  async #close(): Promise<void> {
    for (const conn of [...this.#connections]) this.#drop(conn, CloseCode.goingAway, 'server shutdown');
    if (this.#closing.size > 0) await new Promise<void>((resolve) => (this.#drained = resolve));
    this.#dirty.clear();
    this.#announce.clear();
    // The others stop counting this instance's subscribers now, not when the counts expire.
    this.#fanout?.publish(PRESENCE_TARGET, BYE);
    await this.#scope.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
