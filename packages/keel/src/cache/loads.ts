/**
 * The miss paths of the tiered cache: L2 reads, single-flight loads with hard/soft timeouts,
 * stale-while-revalidate, fail-safe with backoff, the cross-instance lease, and writes.
 * Kept apart from tiered-cache.ts so that file holds the public surface and the hit paths.
 */
import { type CacheHitMessage, CHANNELS, channel, type NamedMessage } from '../channels.ts';
import type { Clock } from '../clock.ts';
import type { Scope } from '../lifecycle/scope.ts';
import type { BusEncoder } from './bus.ts';
import { decodeHeader, Entry, encodeRecord, payloadOf } from './entry.ts';
import { CacheClosedError, CacheTimeoutError } from './errors.ts';
import type { CachedBody } from './http.ts';
import { KeyChanges } from './key-changes.ts';
import { leaseOrWait, Sleeper } from './lock.ts';
import type { GetOrSetOptions, ResolvedOptions, SetOptions } from './options.ts';
import type { LocalDeletes } from './pending.ts';
import { byteSize, jsonSerializer, toBuffer } from './serializer.ts';
import { Flight, type FlightMap, type LoaderContext } from './single-flight.ts';
import type { TagStamps } from './tags.ts';
import type { MemoryTier } from './tiers/memory.ts';
import type { RedisTier } from './tiers/redis.ts';

type AnyLoader = (context: LoaderContext) => unknown;
export type Kind = 'v' | 'b';

const EMPTY: readonly string[] = Object.freeze([]);
const entryValue = (e: Entry): unknown => e.value;
const noop = (): void => {};

export interface LoadsDeps {
  o: ResolvedOptions;
  l1: MemoryTier;
  l2: RedisTier | undefined;
  tags: TagStamps;
  flights: FlightMap;
  scope: Scope;
  /** Set when the bus is on: writes publish a message. */
  encoder: BusEncoder | undefined;
  /** This instance's deletes Redis may not have yet: L2 records they cover read as misses. */
  deletes: LocalDeletes;
  isClosed: () => boolean;
}

export class Loads {
  readonly sleeper: Sleeper;
  readonly #d: LoadsDeps;
  readonly #o: ResolvedOptions;
  readonly #clock: Clock;
  readonly #name: string;
  readonly #hitCh = channel(CHANNELS.cache.hit);
  readonly #missCh = channel(CHANNELS.cache.miss);
  readonly #staleCh = channel(CHANNELS.cache.stale);
  readonly #loadCh = channel(CHANNELS.cache.load);
  readonly #errCh = channel(CHANNELS.cache.loaderError);
  /**
   * Write/delete/clear generations (local or from the bus). An L2 read that started before
   * its key changed may hold the old value: it is returned (the read began first) but not put
   * into L1, where it would outlive the change. Per key, bounded: forgotten keys raise a floor.
   */
  readonly changes = new KeyChanges(4_096);

  constructor(d: LoadsDeps) {
    this.#d = d;
    this.#o = d.o;
    this.#clock = d.o.clock;
    this.#name = d.o.name;
    const name = d.o.name;
    this.#msg = Object.freeze({
      l1: Object.freeze({ name, tier: 'l1' as const }),
      l2: Object.freeze({ name, tier: 'l2' as const }),
      named: Object.freeze({ name }),
    });
    this.sleeper = new Sleeper(d.o.clock);
    this.#fenceMs = d.o.l2 ? Math.max(d.o.l2.fenceMs, d.o.hardTimeoutMs) : 0;
    this.#l2TimeoutMs = d.o.l2 ? d.o.l2.timeoutMs : 0;
  }

  readonly #fenceMs: number;
  readonly #l2TimeoutMs: number;
  readonly #msg: { l1: CacheHitMessage; l2: CacheHitMessage; named: NamedMessage };

  async getSlow(key: string, e: Entry | undefined): Promise<unknown> {
    const { l1, l2, tags } = this.#d;
    let fresh: Entry | undefined;
    if (e !== undefined) {
      const now = this.#clock.now();
      if (!tags.valid(e.born, e.tags) || now >= e.graceUntil) l1.delete(key);
      else if (now < e.expiresAt) fresh = e;
    }
    if (!l2 || this.#d.isClosed()) return fresh?.value;
    const gen = this.changes.now;
    const r = await this.readL2(key);
    if (r && this.#clock.now() < r.expiresAt) {
      if (this.#hitCh.hasSubscribers) this.#hitCh.publish(this.#msg.l2);
      this.#admit(key, r, gen);
      return r.value;
    }
    return fresh?.value;
  }

  getOrSetSlow(key: string, loader: AnyLoader, o: GetOrSetOptions | undefined, e: Entry | undefined, kind: Kind): Promise<unknown> {
    if (e !== undefined) {
      const now = this.#clock.now();
      if (!this.#d.tags.valid(e.born, e.tags) || now >= e.graceUntil) {
        this.#d.l1.delete(key);
      } else if (now < e.expiresAt) {
        // Fresh but past its refresh point (eager refresh, or L1's own shorter TTL): serve it
        // and refresh in the background (L2 first, so an L1 TTL costs no loader call).
        if (this.#hitCh.hasSubscribers) this.#hitCh.publish(this.#msg.l1);
        if (now >= e.retryAt) {
          const f = this.#flight(key, loader, o, e, kind);
          if (now >= e.eagerAt) f.force = true;
          f.promise.catch(noop);
        }
        return Promise.resolve(e.value);
      } else {
        return this.#serveStale(key, loader, o, e, kind, now);
      }
    }
    return this.#flight(key, loader, o, undefined, kind).promise.then(entryValue);
  }

  #serveStale(key: string, loader: AnyLoader, o: GetOrSetOptions | undefined, e: Entry, kind: Kind, now: number): Promise<unknown> {
    if (now < e.retryAt) return this.#stale(e);
    const f = this.#flight(key, loader, o, e, kind);
    const soft = o?.softTimeoutMs ?? this.#o.softTimeoutMs;
    if (soft <= 0) {
      f.promise.catch(noop);
      return this.#stale(e);
    }
    // One soft deadline per flight, however many stale callers wait on it.
    f.soft ??= this.#softDeadline(f, soft);
    const deadline = f.soft;
    return new Promise((resolve) => {
      let done = false;
      const stale = (): void => {
        if (done) return;
        done = true;
        resolve(this.#stale(e));
      };
      f.promise.then((r) => {
        if (r === e) return stale();
        if (done) return;
        done = true;
        resolve(r.value);
      }, stale);
      deadline.then(stale);
    });
  }

  /** Resolves after `ms` unless the flight settles first (then it never resolves; the race is over). */
  #softDeadline(f: Flight, ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      if (this.#d.isClosed()) return resolve();
      const cancel = this.#d.scope.setTimeout(resolve, ms);
      f.promise.then(cancel, cancel);
    });
  }

  #stale(e: Entry): Promise<unknown> {
    if (this.#staleCh.hasSubscribers) this.#staleCh.publish(this.#msg.named);
    return Promise.resolve(e.value);
  }

  #flight(key: string, loader: AnyLoader, o: GetOrSetOptions | undefined, stale: Entry | undefined, kind: Kind): Flight {
    const flights = this.#d.flights;
    let f = flights.get(key);
    if (f !== undefined) {
      if (stale !== undefined && f.stale === undefined) f.stale = stale;
      return f;
    }
    f = new Flight(o?.tags ?? EMPTY, stale);
    flights.set(key, f);
    f.promise = this.#run(key, loader, o, f, kind);
    return f;
  }

  /**
   * One flight: the L2 lookup, then the lease wait and the load, all within the hard timeout.
   * Resolves the entry, a stale value (SWR or fail-safe), or rejects. An L2 hit creates no
   * timer, no closure and no promise beyond its one async frame (each frame is a promise and
   * a hop per hit): the lookup is bounded by the L2 timeout, and its time is taken off the
   * hard timeout the load gets; only a hard timeout shorter than the L2 timeout arms a timer
   * around the lookup itself (r14 in the cache audit).
   */
  async #run(key: string, loader: AnyLoader, o: GetOrSetOptions | undefined, f: Flight, kind: Kind): Promise<Entry> {
    const hard = o?.hardTimeoutMs ?? this.#o.hardTimeoutMs;
    const gen = this.changes.now;
    let left = hard;
    try {
      if (this.#d.l2) {
        const start = this.#clock.now();
        const r = hard < this.#l2TimeoutMs ? await this.#guard(key, f, hard, hard, this.readL2(key)) : await this.readL2(key);
        if (r !== undefined && this.#isFresh(r, f)) {
          this.#d.flights.settle(key, f);
          return this.#l2Hit(key, r, f, gen);
        }
        left = hard - (this.#clock.now() - start);
        // Stale in L2 and nothing in L1 (a flight with an L1 entry has its own stale value).
        if (r !== undefined && f.stale === undefined) {
          f.stale = r;
          return this.#swrFromL2(r, o, this.#load(key, loader, o, f, kind, gen, left, hard));
        }
      }
    } catch (error) {
      // The hard timeout (or close) ended the lookup.
      this.#d.flights.settle(key, f);
      return this.#fallBack(key, f, error);
    }
    return this.#load(key, loader, o, f, kind, gen, left, hard);
  }

  /** The lease wait and the load within what is `left` of the hard timeout; ends the flight. */
  async #load(
    key: string,
    loader: AnyLoader,
    o: GetOrSetOptions | undefined,
    f: Flight,
    kind: Kind,
    gen: number,
    left: number,
    hard: number,
  ): Promise<Entry> {
    try {
      if (left <= 0) throw this.#timedOut(key, f, hard);
      return await this.#guard(key, f, left, hard, this.#leaseAndLoad(key, loader, o, f, kind, gen, left));
    } catch (error) {
      return this.#fallBack(key, f, error);
    } finally {
      this.#d.flights.settle(key, f);
    }
  }

  /** After a failure: the fail-safe stale value, or the error. */
  #fallBack(key: string, f: Flight, error: unknown): Entry {
    const s = this.#failSafe(key, f);
    if (s) return s;
    throw error;
  }

  /**
   * Stale-while-revalidate for a stale value found in L2 (none in L1: `l1: false`, or a cold
   * L1 on another instance): the flight's callers get it at once, or after the soft timeout
   * if the fresh value has not come by then, while `load` goes on (r5 in the cache audit).
   */
  #swrFromL2(r: Entry, o: GetOrSetOptions | undefined, load: Promise<Entry>): Promise<Entry> | Entry {
    const soft = o?.softTimeoutMs ?? this.#o.softTimeoutMs;
    if (soft <= 0) {
      load.catch(noop);
      if (this.#staleCh.hasSubscribers) this.#staleCh.publish(this.#msg.named);
      return r;
    }
    return new Promise<Entry>((resolve, reject) => {
      const cancel = this.#d.scope.setTimeout(() => {
        if (this.#staleCh.hasSubscribers) this.#staleCh.publish(this.#msg.named);
        resolve(r);
      }, soft);
      load.then(
        (e) => {
          cancel();
          resolve(e);
        },
        (error) => {
          cancel();
          reject(error);
        },
      );
    });
  }

  /** Fresh, and (for an eager refresh) newer than the value being refreshed. */
  #isFresh(r: Entry, f: Flight): boolean {
    if (this.#clock.now() >= r.expiresAt) return false;
    return !(f.force && f.stale !== undefined && r.born <= f.stale.born);
  }

  /**
   * Bounds `work` by the hard timeout and by close (`f.kill`). When the guard wins, `work`
   * goes on in the background and its result is still stored (unless the flight was detached).
   */
  #guard<T>(key: string, f: Flight, ms: number, hard: number, work: Promise<T>): Promise<T> {
    work.catch(noop);
    if (this.#d.isClosed()) return Promise.reject(new CacheClosedError(this.#name));
    let cancel: (() => void) | undefined;
    const guard = new Promise<never>((_, reject) => {
      f.kill = reject;
      cancel = this.#d.scope.setTimeout(() => reject(this.#timedOut(key, f, hard)), ms);
    });
    return Promise.race([work, guard]).finally(() => {
      cancel?.();
      f.kill = undefined;
    });
  }

  /** The hard timeout passed: the loader's signal aborts, and the failure is counted. */
  #timedOut(key: string, f: Flight, hard: number): CacheTimeoutError {
    const error = new CacheTimeoutError(this.#name, key, hard);
    f.abort(error);
    this.#loaderError(error);
    return error;
  }

  async #leaseAndLoad(
    key: string,
    loader: AnyLoader,
    o: GetOrSetOptions | undefined,
    f: Flight,
    kind: Kind,
    gen: number,
    left: number,
  ): Promise<Entry> {
    const l2 = this.#d.l2;
    let token: string | undefined;
    const lock = this.#o.lock;
    if (l2 && lock && !this.#d.isClosed()) {
      const readFresh = async (): Promise<Entry | undefined> => {
        const x = await this.readL2(key);
        return x !== undefined && this.#isFresh(x, f) ? x : undefined;
      };
      // At most half of what is left of the hard timeout: a holder that died leaves its lease
      // behind, and the waiter must still have time to load itself rather than time out (r10).
      // The other half is the cache's only estimate of a load: the holder, alive, is running
      // the same one, and one that has not finished in that time is no faster than ours.
      const waitMs = Math.min(lock.waitMs, left / 2);
      const res = await leaseOrWait(l2, key, lock, waitMs, this.#clock, this.sleeper, readFresh, this.#d.isClosed);
      if ('found' in res) return this.#l2Hit(key, res.found, f, gen);
      token = res.token;
    }
    if (this.#missCh.hasSubscribers) this.#missCh.publish(this.#msg.named);
    const born = this.#d.tags.stamp();
    const start = this.#clock.now();
    let value: unknown;
    try {
      value = await loader(f);
    } catch (error) {
      if (this.#loadCh.hasSubscribers) this.#loadCh.publish({ name: this.#name, durationMs: this.#clock.now() - start, ok: false });
      this.#loaderError(error);
      if (token !== undefined && l2 && !this.#d.isClosed()) void l2.unlock(key, token);
      throw error;
    }
    if (this.#loadCh.hasSubscribers) this.#loadCh.publish({ name: this.#name, durationMs: this.#clock.now() - start, ok: true });
    // The L2 write is awaited (bounded by the L2 timeout): once getOrSet resolves, every
    // instance can read the value, and a lease is released only after the value is there.
    const entry = await this.store(key, value, born, o, f, kind);
    // After close() the lease is left to expire: the connection is gone (r11).
    if (token !== undefined && l2 && !this.#d.isClosed()) await l2.unlock(key, token);
    return entry;
  }

  #l2Hit(key: string, r: Entry, f: Flight, gen: number): Entry {
    if (this.#hitCh.hasSubscribers) this.#hitCh.publish(this.#msg.l2);
    if (!f.detached) this.#admit(key, r, gen);
    return r;
  }

  #loaderError(error: unknown): void {
    if (this.#errCh.hasSubscribers) this.#errCh.publish({ name: this.#name, error });
  }

  /** The stale value to serve after a failure, with the next retry pushed back; or undefined. */
  #failSafe(key: string, f: Flight): Entry | undefined {
    const s = f.stale;
    if (!s) return undefined;
    const now = this.#clock.now();
    if (now >= s.graceUntil || !this.#d.tags.valid(s.born, s.tags)) return undefined;
    s.failures++;
    s.retryAt = now + Math.min(this.#o.retryBackoffMs * 2 ** Math.min(s.failures - 1, 30), this.#o.maxRetryBackoffMs);
    // Keep it in L1 (it may have come from L2) so the backoff holds for the next callers.
    if (!f.detached && this.#d.l1.entry(key) === undefined) this.#d.l1.set(key, s);
    if (this.#staleCh.hasSubscribers) this.#staleCh.publish(this.#msg.named);
    return s;
  }

  #admit(key: string, e: Entry, gen: number): void {
    if (!this.changes.changedSince(key, gen) && !this.#d.isClosed() && this.#d.tags.valid(e.born, e.tags)) {
      this.#d.l1.set(key, e);
    }
  }

  /** A valid (not invalidated, within grace) entry from L2, or undefined. Never rejects. */
  async readL2(key: string): Promise<Entry | undefined> {
    const l2 = this.#d.l2;
    if (!l2) return undefined;
    const got = await l2.read(key);
    if (!got) return undefined;
    const buf = got.record;
    const r = decodeHeader(buf);
    if (!r || r.born <= got.clearedAt || this.#d.deletes.hides(key, r.born)) return undefined;
    const now = this.#clock.now();
    if (now >= r.graceUntil || !this.#d.tags.valid(r.born, r.tags)) return undefined;
    let value: unknown;
    let size = buf.byteLength - r.offset;
    try {
      if (r.kind === 'v' && !r.compressed && this.#o.serializer === jsonSerializer) {
        // The default serializer, without the payload Buffer view it would need (≈ 4 % of an L2 hit's CPU).
        value = JSON.parse(buf.toString('utf8', r.offset));
      } else {
        const payload = payloadOf(buf, r);
        if (payload === undefined) return undefined;
        size = payload.byteLength;
        value =
          r.kind === 'b'
            ? ({ body: payload, etag: r.etag, contentType: r.contentType } satisfies CachedBody)
            : this.#o.serializer.deserialize(payload);
      }
    } catch {
      return undefined;
    }
    const l1Ttl = this.#o.l1.ttlMs;
    let refreshAt = l1Ttl === undefined ? r.expiresAt : Math.min(r.expiresAt, now + l1Ttl);
    // The record keeps no TTL, so the eager point is taken from born (the load's start): its
    // TTL plus the load's duration, which moves the point earlier by (1 - eagerRefresh) × that
    // duration, never later. Without it an entry read from L2 never refreshed early (r4).
    const eagerAt = this.#o.eagerRefresh < 1 ? r.born + (r.expiresAt - r.born) * this.#o.eagerRefresh : Number.POSITIVE_INFINITY;
    if (eagerAt < refreshAt) refreshAt = eagerAt;
    const tags = r.tags.length === 0 ? EMPTY : r.tags;
    const e = new Entry(value, size, r.born, r.expiresAt, r.graceUntil, refreshAt, tags);
    e.eagerAt = eagerAt;
    return e;
  }

  /**
   * Builds the entry for a loaded or set value and writes it to L1 and L2, unless an
   * invalidation overtook the load (then the value is returned but stored nowhere).
   */
  async store(key: string, value: unknown, born: number, o: SetOptions | undefined, f: Flight | undefined, kind: Kind): Promise<Entry> {
    const { l1, l2, tags: stamps } = this.#d;
    const now = this.#clock.now();
    const ttl = o?.ttlMs ?? this.#o.ttlMs;
    const grace = o?.graceMs ?? this.#o.graceMs;
    const tags = o?.tags && o.tags.length > 0 ? Object.freeze([...o.tags]) : EMPTY;
    const expiresAt = now + ttl;
    const graceUntil = expiresAt + grace;
    let refreshAt = Math.min(expiresAt, now + (this.#o.l1.ttlMs ?? ttl));
    const eagerAt = this.#o.eagerRefresh < 1 ? now + ttl * this.#o.eagerRefresh : Number.POSITIVE_INFINITY;
    if (eagerAt < refreshAt) refreshAt = eagerAt;
    let payload: string | Uint8Array | undefined;
    let etag = '';
    let contentType = '';
    if (value !== undefined) {
      if (kind === 'b') {
        const b = value as CachedBody;
        payload = b.body;
        etag = b.etag;
        contentType = b.contentType;
      } else {
        try {
          payload = this.#o.serializer.serialize(value);
        } catch (error) {
          this.#loaderError(error);
        }
      }
    }
    const size = payload === undefined ? 0 : byteSize(payload);
    const entry = new Entry(value, size, born, expiresAt, graceUntil, refreshAt, tags);
    entry.eagerAt = eagerAt;
    if (payload === undefined || f?.detached || this.#d.isClosed() || !stamps.valid(born, tags)) return entry;
    this.changes.touch(key);
    l1.set(key, entry);
    // A load older than the fence could outlive the stamps that would refuse it: L1 only.
    if (l2 && now - born < this.#fenceMs) {
      const record = encodeRecord(
        { kind, born, expiresAt, graceUntil, tags, etag, contentType },
        toBuffer(payload),
        this.#o.compressThreshold,
      );
      const message = this.#d.encoder ? this.#d.encoder.encode(now, born, { k: [key] }) : '';
      const outcome = await l2.write(key, record, graceUntil - now, born, tags, message);
      // Refused: Redis holds a later change (an invalidation this instance may not have heard
      // of, or a later write), so our copy must not outlive it here either. A failed write
      // keeps it: without Redis, L1 is all there is.
      if (outcome === 'fenced') l1.deleteEntry(key, entry);
    }
    return entry;
  }
}
