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

/** A bus message: i = sender, s = sent at (ms), t = invalidation stamp, k = keys, g = tags, c = clear. */
export interface BusMessage {
  i: string;
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
    if (this.#lagCh.hasSubscribers && typeof m.s === 'number') {
      this.#lagCh.publish({ name: this.#o.name, lagMs: Math.max(0, this.#o.clock.now() - m.s) });
    }
    this.#o.onMessage(m);
  }
}

/** Encodes a message for the scripts to publish. */
export function encodeMessage(instanceId: string, sentAt: number, stamp: number, part: Partial<BusMessage>): string {
  return JSON.stringify({ i: instanceId, s: sentAt, t: stamp, ...part });
}
