/**
 * W3C trace context (traceparent/tracestate) and request ids, carried through a request in
 * AsyncLocalStorage. Parsing is strict (https://www.w3.org/TR/trace-context/): an invalid
 * `traceparent` starts a new trace rather than propagating garbage downstream.
 *
 * Hot-path notes: ids are drawn from a pooled buffer filled by `crypto.randomFillSync` (one
 * syscall per ~170 requests), and every id is generated lazily, so a request that never logs
 * and never calls out pays for none of them.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomFillSync } from 'node:crypto';
import { booleanOption, intOption, objectOptions, stringOption } from '../internal/options.ts';

const ZERO_TRACE = '00000000000000000000000000000000';
const ZERO_SPAN = '0000000000000000';
const HEX32 = /^[0-9a-f]{32}$/;
const HEX16 = /^[0-9a-f]{16}$/;
const HEX2 = /^[0-9a-f]{2}$/;
const POOL_BYTES = 4096;
/**
 * The one trace flag version 00 defines (sampled). The others are reserved and must be sent as
 * zero (W3C trace-context, "trace-flags"), so we never forward the bits a caller set.
 */
const SAMPLED = 0x01;
/** A tracestate of more members than this is invalid (W3C trace-context, "list") and is discarded whole. */
const TS_MAX_MEMBERS = 32;
/** Members longer than this go first when the list must be truncated (W3C, "Tracestate Limits"). */
const TS_BIG_MEMBER = 128;

/** A parsed `traceparent` header. */
export interface Traceparent {
  version: number;
  traceId: string;
  /** The caller's span id (the `parent-id` field). */
  parentId: string;
  flags: number;
}

/**
 * Parses a `traceparent` header strictly: lowercase hex, exact field lengths, version `ff`
 * and all-zero ids rejected; a future version is accepted when its first four fields parse
 * and anything after them follows a `-`. Returns undefined when invalid.
 *
 * @example
 * ```ts
 * import { parseTraceparent } from 'keel/observe';
 * parseTraceparent('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01');
 * // { version: 0, traceId: '4bf9…', parentId: '00f0…', flags: 1 }
 * ```
 */
export function parseTraceparent(header: string | undefined): Traceparent | undefined {
  if (typeof header !== 'string') return undefined;
  const value = header.trim();
  if (value.length < 55) return undefined;
  const version = value.slice(0, 2);
  if (!HEX2.test(version) || version === 'ff') return undefined;
  if (version === '00' ? value.length !== 55 : value.length > 55 && value[55] !== '-') return undefined;
  if (value[2] !== '-' || value[35] !== '-' || value[52] !== '-') return undefined;
  const traceId = value.slice(3, 35);
  const parentId = value.slice(36, 52);
  const flags = value.slice(53, 55);
  if (!HEX32.test(traceId) || traceId === ZERO_TRACE) return undefined;
  if (!HEX16.test(parentId) || parentId === ZERO_SPAN) return undefined;
  if (!HEX2.test(flags)) return undefined;
  return { version: Number.parseInt(version, 16), traceId, parentId, flags: Number.parseInt(flags, 16) };
}

const TS_KEY = /^(?:[a-z][a-z0-9_\-*/]{0,255}|[a-z0-9][a-z0-9_\-*/]{0,240}@[a-z][a-z0-9_\-*/]{0,13})$/;
// Printable ASCII except ',' and '=', not ending in a space, 1..256 chars.
const TS_VALUE = /^[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]$/;

/** Bounds for {@link parseTracestate}. */
export interface TracestateBounds {
  /** Most list members kept, up to 32. Default 32 (the spec's limit; a longer list is discarded). */
  maxMembers?: number;
  /** Most characters kept. Default 512. */
  maxLength?: number;
}

/**
 * Validates a `tracestate` header and returns it normalised (no empty members, no optional
 * whitespace), truncated to the bounds as the spec says: members over 128 characters are
 * dropped first, then members from the end. Returns undefined when any member is malformed, a
 * key repeats, or there are more than 32 members, since a vendor cannot trust a half-valid list
 * (the W3C test suite's strict level expects a 33-member list discarded, not cut to 32).
 *
 * @example
 * ```ts
 * import { parseTracestate } from 'keel/observe';
 * parseTracestate('congo=t61rcWkgMzE, rojo=00f067aa0ba902b7'); // 'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7'
 * ```
 */
export function parseTracestate(header: string | string[] | undefined, bounds: TracestateBounds = {}): string | undefined {
  if (header === undefined) return undefined;
  const raw = Array.isArray(header) ? header.join(',') : header;
  if (typeof raw !== 'string' || raw.length === 0) return undefined;
  const maxMembers = bounds.maxMembers ?? 32;
  const maxLength = bounds.maxLength ?? 512;
  const seen = new Set<string>();
  let members: string[] = [];
  let length = -1; // of the joined list: one comma fewer than members
  for (const part of raw.split(',')) {
    const member = part.trim();
    if (member.length === 0) continue;
    const eq = member.indexOf('=');
    if (eq <= 0) return undefined;
    const key = member.slice(0, eq);
    if (!TS_KEY.test(key) || !TS_VALUE.test(member.slice(eq + 1)) || seen.has(key)) return undefined;
    if (members.length === TS_MAX_MEMBERS) return undefined;
    seen.add(key);
    members.push(member);
    length += member.length + 1;
  }
  if (members.length === 0) return undefined;
  if (members.length <= maxMembers && length <= maxLength) return members.join(',');
  members = members.filter((m) => m.length <= TS_BIG_MEMBER);
  const kept: string[] = [];
  length = -1;
  for (const member of members) {
    if (kept.length === maxMembers || length + member.length + 1 > maxLength) break;
    kept.push(member);
    length += member.length + 1;
  }
  return kept.length > 0 ? kept.join(',') : undefined;
}

/**
 * Random lowercase-hex ids from a pooled buffer; never all zeros. One per {@link Tracing}.
 *
 * @example
 * ```ts
 * import { IdSource } from 'keel/observe';
 * const ids = new IdSource();
 * ids.traceId(); // '9f3c…' (32 hex chars)
 * ids.spanId(); // 'a1b2…' (16 hex chars)
 * ```
 */
export class IdSource {
  #pool = Buffer.allocUnsafe(POOL_BYTES);
  #offset = POOL_BYTES;

  #hex(bytes: number): string {
    if (this.#offset + bytes > POOL_BYTES) {
      randomFillSync(this.#pool);
      this.#offset = 0;
    }
    const s = this.#pool.toString('hex', this.#offset, this.#offset + bytes);
    this.#offset += bytes;
    return s;
  }

  /** 32 hex chars. */
  traceId(): string {
    const id = this.#hex(16);
    return id === ZERO_TRACE ? this.traceId() : id;
  }

  /** 16 hex chars. */
  spanId(): string {
    const id = this.#hex(8);
    return id === ZERO_SPAN ? this.spanId() : id;
  }
}

/**
 * The trace context of one request. The trace id comes from the caller's `traceparent` or
 * is new; the span id is this service's own span for the request. Ids are made on first read.
 *
 * @example
 * ```ts
 * import { Tracing } from 'keel/observe';
 * const ctx = new Tracing().fromHeaders({ 'x-request-id': 'r-1' });
 * ctx.requestId; // 'r-1'
 * ctx.traceparent(); // '00-<trace id>-<span id>-01', for an outgoing call
 * ```
 */
export class TraceContext {
  readonly #ids: IdSource;
  #traceId: string | undefined;
  #spanId: string | undefined;
  #requestId: string | undefined;
  /** The caller's span id, when a valid `traceparent` came in. */
  readonly parentId: string | undefined;
  /** Trace flags (bit 0: sampled). */
  flags: number;
  /** The validated incoming `tracestate`, forwarded as is. */
  readonly traceState: string | undefined;

  constructor(
    ids: IdSource,
    parent: Traceparent | undefined,
    traceState: string | undefined,
    requestId: string | undefined,
    flags: number,
  ) {
    this.#ids = ids;
    this.#traceId = parent?.traceId;
    this.parentId = parent?.parentId;
    this.flags = parent ? parent.flags & SAMPLED : flags;
    this.traceState = parent ? traceState : undefined;
    this.#requestId = requestId;
  }

  get traceId(): string {
    if (this.#traceId === undefined) this.#traceId = this.#ids.traceId();
    return this.#traceId;
  }

  get spanId(): string {
    if (this.#spanId === undefined) this.#spanId = this.#ids.spanId();
    return this.#spanId;
  }

  /** Takes the ids of a span started for this request (OpenTelemetry), so logs and outgoing calls name it. */
  adopt(traceId: string, spanId: string, flags: number): void {
    this.#traceId = traceId;
    this.#spanId = spanId;
    this.flags = flags & SAMPLED;
  }

  /** The incoming `x-request-id` (sanitised) or a generated one. */
  get requestId(): string {
    if (this.#requestId === undefined) this.#requestId = this.#ids.spanId();
    return this.#requestId;
  }

  /** The `traceparent` to send on an outgoing call made for this request. */
  traceparent(): string {
    return `00-${this.traceId}-${this.spanId}-${this.flags < 16 ? '0' : ''}${this.flags.toString(16)}`;
  }
}

/** Request headers as Node gives them, or anything with a `get(name)` (web `Headers`). */
export type HeaderSource = Record<string, string | string[] | undefined> | { get(name: string): string | null };

export interface TracingOptions {
  /** Header carrying the request id. Default `'x-request-id'`. */
  requestIdHeader?: string;
  /** Longest incoming request id kept (longer ones are truncated). Default 128. */
  maxRequestIdLength?: number;
  /** Honour incoming `traceparent`/`tracestate` and request ids. Default true; false at an untrusted edge. */
  trustIncoming?: boolean;
  /** Whether new traces start sampled (flag `01`). Default true. */
  sampled?: boolean;
  /** Most `tracestate` members kept. Default 32. */
  tracestateMaxMembers?: number;
  /** Most `tracestate` characters kept. Default 512. */
  tracestateMaxLength?: number;
}

const REQUEST_ID_OK = /^[A-Za-z0-9._:@/+=-]+$/;
const REQUEST_ID_BAD = /[^A-Za-z0-9._:@/+=-]/g;

/**
 * Creates per-request {@link TraceContext}s from headers and carries them through the async
 * work of the request. Each instance has its own AsyncLocalStorage: share one instance
 * between the adapter, the logger and outgoing-call propagation.
 *
 * @example
 * ```ts
 * import { Tracing } from 'keel/observe';
 * const tracing = new Tracing();
 * const ctx = tracing.fromHeaders({ traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' });
 * await tracing.run(ctx, async () => {
 *   tracing.current()?.traceId; // '4bf92f3577b34da6a3ce929d0e0e4736'
 * });
 * ```
 */
export class Tracing {
  readonly requestIdHeader: string;
  readonly #maxRequestIdLength: number;
  readonly #trustIncoming: boolean;
  readonly #flags: number;
  readonly #bounds: Required<TracestateBounds>;
  readonly #ids = new IdSource();
  readonly #storage = new AsyncLocalStorage<TraceContext>();

  constructor(options?: TracingOptions) {
    const o = objectOptions('Tracing', options);
    this.requestIdHeader = stringOption('Tracing', 'requestIdHeader', o.requestIdHeader, 'x-request-id').toLowerCase();
    this.#maxRequestIdLength = intOption('Tracing', 'maxRequestIdLength', o.maxRequestIdLength, 128, { min: 1, max: 1024 });
    this.#trustIncoming = booleanOption('Tracing', 'trustIncoming', o.trustIncoming, true);
    this.#flags = booleanOption('Tracing', 'sampled', o.sampled, true) ? 1 : 0;
    this.#bounds = {
      maxMembers: intOption('Tracing', 'tracestateMaxMembers', o.tracestateMaxMembers, TS_MAX_MEMBERS, { min: 1, max: TS_MAX_MEMBERS }),
      maxLength: intOption('Tracing', 'tracestateMaxLength', o.tracestateMaxLength, 512, { min: 1 }),
    };
  }

  /** The id source, shared with anything that makes ids for this tracing (spans of outgoing calls). */
  get ids(): IdSource {
    return this.#ids;
  }

  /** Sanitises an incoming request id: keeps `[A-Za-z0-9._:@/+=-]`, bounded length; undefined when nothing is left. */
  sanitizeRequestId(value: string | string[] | null | undefined): string | undefined {
    const v = Array.isArray(value) ? value[0] : value;
    if (typeof v !== 'string' || v.length === 0) return undefined;
    if (v.length <= this.#maxRequestIdLength && REQUEST_ID_OK.test(v)) return v;
    const clean = v.replace(REQUEST_ID_BAD, '').slice(0, this.#maxRequestIdLength);
    return clean.length > 0 ? clean : undefined;
  }

  /** A context for an incoming request. */
  fromHeaders(headers: HeaderSource | undefined): TraceContext {
    if (!this.#trustIncoming || headers === undefined) return new TraceContext(this.#ids, undefined, undefined, undefined, this.#flags);
    const get = typeof headers.get === 'function';
    const h = headers as Record<string, string | string[] | undefined>;
    const tp = get ? (headers as { get(n: string): string | null }).get('traceparent') : h.traceparent;
    // Several traceparent headers are ambiguous: the spec says treat them as invalid.
    const parent = typeof tp === 'string' && !tp.includes(',') ? parseTraceparent(tp) : undefined;
    let state: string | undefined;
    if (parent) {
      const ts = get ? (headers as { get(n: string): string | null }).get('tracestate') : h.tracestate;
      if (ts) state = parseTracestate(ts, this.#bounds);
    }
    const rid = get ? (headers as { get(n: string): string | null }).get(this.requestIdHeader) : h[this.requestIdHeader];
    return new TraceContext(this.#ids, parent, state, rid ? this.sanitizeRequestId(rid) : undefined, this.#flags);
  }

  /** A context with no incoming headers (a job, a message consumer). */
  create(): TraceContext {
    return new TraceContext(this.#ids, undefined, undefined, undefined, this.#flags);
  }

  /** Runs `fn` with `ctx` as the current context for everything it starts. */
  run<R>(ctx: TraceContext, fn: () => R): R {
    return this.#storage.run(ctx, fn);
  }

  /** The context of the request being handled, if any. */
  current(): TraceContext | undefined {
    return this.#storage.getStore();
  }
}
