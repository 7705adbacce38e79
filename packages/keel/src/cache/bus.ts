/**
 * Cross-instance L1 invalidation over Redis pub/sub. Messages carry keys and tags only, never
 * values, so they stay small whatever is cached. Publishing happens inside the L2 write
 * scripts (one round trip per write); this class owns the subscriber connection (a subscribed
 * ioredis connection can run no other command, hence a separate one).
 *
 * Messages may be missed while the subscriber is disconnected, so on every reconnect the
 * owner clears its L1 (`onReconnect`).
 */
import type { Redis } from 'ioredis';
import { CHANNELS, channel } from '../channels.ts';
import type { Clock } from '../clock.ts';
import type { Scope } from '../lifecycle/scope.ts';

/** A bus message: i = sender, q = sender's sequence number, s = sent at (ms), t = invalidation stamp, k = keys, g = tags, c = clear. */
export interface BusMessage {
  i: string;
  q?: number;
  s: number;
  t: number;
  k?: string[];
  g?: string[];
  c?: 1;
}

export interface BusOptions {
  name: string;
  subscriber: Redis;
  channel: string;
  instanceId: string;
  clock: Clock;
  scope: Scope;
  onMessage: (m: BusMessage) => void;
  onReconnect: () => void;
  /** Liveness check of the subscriber connection. */
  heartbeatMs: number;
  /** Whether the cache opened the subscriber itself (only then is it reconnected by force). */
  owned: boolean;
}

export class Bus {
  readonly #o: BusOptions;
  readonly #lagCh = channel(CHANNELS.cache.busLag);
  #subscribed = false;
  #everSubscribed = false;

  constructor(o: BusOptions) {
    this.#o = o;
    const sub = o.subscriber;
    o.scope.on(sub, 'error', () => {});
    o.scope.on(sub, 'close', () => {
      this.#subscribed = false;
    });
    o.scope.on(sub, 'ready', () => this.#subscribe());
    o.scope.on(sub, 'message', (ch: string, text: string) => {
      if (ch === o.channel) this.#receive(text);
    });
    o.scope.add(() => sub.disconnect());
    if (sub.status === 'ready') this.#subscribe();
    o.scope.setInterval(() => this.#heartbeat(), o.heartbeatMs);
  }

  /**
   * A silent subscriber is indistinguishable from a healthy idle one, and a blackhole (or a
   * lost SUBSCRIBE) would leave L1 serving invalidated values for ever. So: PING every
   * heartbeat; no answer within one heartbeat, or still not subscribed, ⇒ reconnect, which
   * resubscribes and clears L1.
   */
  #heartbeat(): void {
    const sub = this.#o.subscriber;
    if (sub.status === 'connect' || sub.status === 'connecting') {
      // Connected at TCP level but never ready (or never connected) for two beats: start over.
      if (++this.#stuckBeats >= 2) {
        this.#stuckBeats = 0;
        if (this.#o.owned) sub.disconnect(true);
      }
      return;
    }
    this.#stuckBeats = 0;
    if (sub.status !== 'ready' || this.#pinging) return;
    if (!this.#subscribed) {
      if (++this.#unsubscribedBeats >= 2) this.#reconnect();
      else this.#subscribe();
      return;
    }
    this.#unsubscribedBeats = 0;
    this.#pinging = true;
    let answered = false;
    const cancel = this.#o.scope.setTimeout(() => {
      this.#pinging = false;
      if (!answered) this.#reconnect();
    }, this.#o.heartbeatMs);
    sub.ping().then(
      () => {
        answered = true;
        this.#pinging = false;
        cancel();
      },
      () => {},
    );
  }

  /**
   * A gap in a sender's sequence means messages were lost (a proxy that drops bytes, a
   * subscriber that was briefly away): L1 is cleared as on a reconnect. Senders seen are
   * bounded; a forgotten sender simply starts a new sequence.
   */
  #sequence(sender: string, q: number): void {
    const last = this.#seqs.get(sender);
    this.#seqs.delete(sender);
    this.#seqs.set(sender, q);
    if (this.#seqs.size > 1_000) this.#seqs.delete(this.#seqs.keys().next().value as string);
    if (last !== undefined && q !== last + 1) this.#o.onReconnect();
  }

  readonly #seqs = new Map<string, number>();
  #pinging = false;
  #unsubscribedBeats = 0;
  #stuckBeats = 0;

  #reconnect(): void {
    this.#subscribed = false;
    this.#unsubscribedBeats = 0;
    if (this.#o.owned && this.#o.subscriber.status === 'ready') this.#o.subscriber.disconnect(true);
  }

  /** True while subscribed: invalidations from other instances arrive. */
  get connected(): boolean {
    return this.#subscribed;
  }

  #subscribe(): void {
    this.#o.subscriber.subscribe(this.#o.channel).then(
      () => {
        this.#subscribed = true;
        if (this.#everSubscribed) this.#o.onReconnect();
        this.#everSubscribed = true;
      },
      () => {
        // The connection dropped again; the next 'ready' retries.
      },
    );
  }

  #receive(text: string): void {
    let m: BusMessage;
    try {
      m = JSON.parse(text) as BusMessage;
    } catch {
      return;
    }
    if (typeof m !== 'object' || m === null || m.i === this.#o.instanceId || typeof m.t !== 'number') return;
    if (typeof m.q === 'number') this.#sequence(m.i, m.q);
    if (this.#lagCh.hasSubscribers && typeof m.s === 'number') {
      this.#lagCh.publish({ name: this.#o.name, lagMs: Math.max(0, this.#o.clock.now() - m.s) });
    }
    this.#o.onMessage(m);
  }
}

/**
 * Numbers and encodes one instance's messages for the scripts to publish. Encoding is
 * synchronous with sending (no await between them in the tier), and Redis runs one
 * connection's scripts in order, so receivers see each sender's numbers in sequence. A
 * message that never got published (Redis down, breaker open) leaves a gap: receivers then
 * clear L1, which is merely conservative. A write Redis refuses still publishes its message
 * (tiers/scripts.ts): refusals are routine under races, and each one cleared every L1.
 */
export class BusEncoder {
  readonly #id: string;
  #seq = 0;

  constructor(instanceId: string) {
    this.#id = instanceId;
  }

  encode(sentAt: number, stamp: number, part: Partial<BusMessage>): string {
    return JSON.stringify({ i: this.#id, q: ++this.#seq, s: sentAt, t: stamp, ...part });
  }
}
