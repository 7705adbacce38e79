/**
 * Presence across instances: each instance announces its own per-topic subscriber counts over
 * the fan-out, and keeps the counts the others announced, so a room's `count` is the whole
 * cluster's. No Redis round trip per join: announcements ride the fan-out's fire-and-forget
 * publishes, coalesced like the local presence messages.
 *
 * An instance that crashes says nothing, so every remote count expires `ttlMs` after it was
 * last announced, and each instance re-announces all of its rooms every refresh. An instance
 * that shuts down says `bye`, and one that (re)subscribes says `hello`, which the others answer
 * with their counts. Messages are plain ASCII on the target `p`:
 *
 * - `c <topicId>:<count>,…` this origin's counts (0 removes its entry)
 * - `h` hello: announce your counts
 * - `b` bye: forget my counts
 */
import type { Clock } from 'keel/clock';

/** The fan-out target of presence messages. */
export const PRESENCE_TARGET = 'p';

/** Topics per `c` message, so a snapshot of many rooms goes in messages of bounded size (~12 KB). */
export const ENTRIES_PER_MESSAGE = 500;

const ID = /^[1-9][0-9]{0,15}$/;
const COUNT = /^(?:0|[1-9][0-9]{0,8})$/;

export interface RemotePresenceOptions {
  /** How long an announced count stands without being announced again, ms. */
  ttlMs: number;
  /** (topic, instance) counts held at most; new ones past it are dropped and counted. */
  maxEntries: number;
  clock: Clock;
}

interface Entry {
  count: number;
  at: number;
}

/** What a presence message asks of the receiving hub. */
export type PresenceEffect = { kind: 'changed'; topics: number[] } | { kind: 'hello' } | { kind: 'bad' };

/** `c` messages for `counts`, at most {@link ENTRIES_PER_MESSAGE} topics each. */
export function countMessages(counts: Iterable<readonly [number, number]>): string[] {
  const out: string[] = [];
  let parts: string[] = [];
  for (const [topicId, count] of counts) {
    parts.push(`${topicId}:${count}`);
    if (parts.length === ENTRIES_PER_MESSAGE) {
      out.push(`c ${parts.join(',')}`);
      parts = [];
    }
  }
  if (parts.length > 0) out.push(`c ${parts.join(',')}`);
  return out;
}

export const HELLO = 'h';
export const BYE = 'b';

/** The counts other instances announced, by topic and instance, each with its expiry. */
export class RemotePresence {
  readonly #byTopic = new Map<number, Map<string, Entry>>();
  readonly #ttlMs: number;
  readonly #maxEntries: number;
  readonly #clock: Clock;
  #entries = 0;
  #dropped = 0;
  #bad = 0;

  constructor(options: RemotePresenceOptions) {
    this.#ttlMs = options.ttlMs;
    this.#maxEntries = options.maxEntries;
    this.#clock = options.clock;
  }

  /** The other instances' subscribers of a topic (expired counts are not included). */
  count(topicId: number): number {
    const byOrigin = this.#byTopic.get(topicId);
    if (!byOrigin) return 0;
    const fresh = this.#clock.now() - this.#ttlMs;
    let n = 0;
    for (const e of byOrigin.values()) if (e.at >= fresh) n += e.count;
    return n;
  }

  /** Applies a presence message from `origin` (never this instance). */
  apply(origin: string, payload: string): PresenceEffect {
    if (payload === HELLO) return { kind: 'hello' };
    if (payload === BYE) return { kind: 'changed', topics: this.forget(origin) };
    const parsed = payload.startsWith('c ') ? parseCounts(payload.slice(2)) : undefined;
    if (!parsed) {
      this.#bad++;
      return { kind: 'bad' };
    }
    const at = this.#clock.now();
    const topics: number[] = [];
    for (const [topicId, count] of parsed) if (this.#set(topicId, origin, count, at)) topics.push(topicId);
    return { kind: 'changed', topics };
  }

  /** Drops every count of `origin`; returns the topics whose total changed. */
  forget(origin: string): number[] {
    const topics: number[] = [];
    for (const [topicId, byOrigin] of this.#byTopic) {
      const e = byOrigin.get(origin);
      if (!e) continue;
      this.#remove(topicId, byOrigin, origin);
      if (e.count > 0) topics.push(topicId);
    }
    return topics;
  }

  /** Removes the counts past their expiry; returns the topics whose total changed. */
  sweep(): number[] {
    const fresh = this.#clock.now() - this.#ttlMs;
    const topics: number[] = [];
    for (const [topicId, byOrigin] of this.#byTopic) {
      let changed = false;
      for (const [origin, e] of byOrigin) {
        if (e.at >= fresh) continue;
        this.#remove(topicId, byOrigin, origin);
        if (e.count > 0) changed = true;
      }
      if (changed) topics.push(topicId);
    }
    return topics;
  }

  stats(): { remotePresence: number; presenceDropped: number; presenceBad: number } {
    return { remotePresence: this.#entries, presenceDropped: this.#dropped, presenceBad: this.#bad };
  }

  /** Sets one count; true when the topic's total may have changed. */
  #set(topicId: number, origin: string, count: number, at: number): boolean {
    let byOrigin = this.#byTopic.get(topicId);
    const e = byOrigin?.get(origin);
    if (count === 0) {
      if (!e || !byOrigin) return false;
      this.#remove(topicId, byOrigin, origin);
      return e.count > 0;
    }
    if (e) {
      const changed = e.count !== count;
      e.count = count;
      e.at = at;
      return changed;
    }
    if (this.#entries >= this.#maxEntries) {
      this.#dropped++;
      return false;
    }
    if (!byOrigin) {
      byOrigin = new Map();
      this.#byTopic.set(topicId, byOrigin);
    }
    byOrigin.set(origin, { count, at });
    this.#entries++;
    return true;
  }

  #remove(topicId: number, byOrigin: Map<string, Entry>, origin: string): void {
    if (!byOrigin.delete(origin)) return;
    this.#entries--;
    if (byOrigin.size === 0) this.#byTopic.delete(topicId);
  }
}

/** `12:3,14:0` as pairs, or undefined if any part is malformed (the whole message is ignored). */
function parseCounts(text: string): Array<[number, number]> | undefined {
  const parts = text.split(',');
  if (parts.length > ENTRIES_PER_MESSAGE) return undefined;
  const out: Array<[number, number]> = [];
  for (const part of parts) {
    const colon = part.indexOf(':');
    if (colon < 0) return undefined;
    const id = part.slice(0, colon);
    const count = part.slice(colon + 1);
    if (!ID.test(id) || !COUNT.test(count)) return undefined;
    const topicId = Number(id);
    if (!Number.isSafeInteger(topicId)) return undefined;
    out.push([topicId, Number(count)]);
  }
  return out;
}
