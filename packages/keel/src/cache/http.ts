/**
 * HTTP caching helpers on plain values and web-standard headers, so any framework can use
 * them: ETags, the If-None-Match → 304 decision, Cache-Control presets and Vary. A cached
 * body ({@link CachedBody}) carries its bytes and ETag, so a hit is sent as is: no
 * re-stringify, no re-hash.
 */
import { createHash } from 'node:crypto';

/** A response body as the cache stores it: bytes, their strong ETag and content type. */
export interface CachedBody {
  readonly body: Buffer;
  readonly etag: string;
  readonly contentType: string;
}

/**
 * A strong ETag of some bytes: `"<length>-<sha1 base64url>"`.
 *
 * @example
 * ```ts
 * import { strongETag } from 'keel/cache';
 * strongETag('hello'); // '"5-qvTGHdzF6KLavt4PO0gs2a6pQ00"'
 * ```
 */
export function strongETag(bytes: string | Uint8Array): string {
  const buf = typeof bytes === 'string' ? Buffer.from(bytes, 'utf8') : bytes;
  return `"${buf.byteLength.toString(36)}-${createHash('sha1').update(buf).digest('base64url')}"`;
}

/**
 * A weak ETag: of a version you already have (a row's `updated_at`, a revision id), or of bytes.
 *
 * @example
 * ```ts
 * import { weakETag } from 'keel/cache';
 * weakETag({ version: 'topic-7-r42' }); // 'W/"topic-7-r42"'
 * ```
 */
export function weakETag(source: string | Uint8Array | { version: string | number }): string {
  if (typeof source === 'object' && !(source instanceof Uint8Array)) {
    return `W/"${String(source.version).replace(/["\\\s]/g, '_')}"`;
  }
  return `W/${strongETag(source)}`;
}

function opaque(tag: string): string {
  return tag.startsWith('W/') ? tag.slice(2) : tag;
}

/**
 * The If-None-Match decision with the weak comparison RFC 9110 requires for it: `*` matches
 * any current representation; lists are comma-separated; `W/` prefixes are ignored.
 *
 * @example
 * ```ts
 * import { ifNoneMatch } from 'keel/cache';
 * ifNoneMatch('W/"a", "b"', '"a"'); // true → answer 304
 * ```
 */
export function ifNoneMatch(header: string | readonly string[] | null | undefined, etag: string): boolean {
  if (header === undefined || header === null) return false;
  const value = typeof header === 'string' ? header : header.join(',');
  if (value.trim() === '*') return true;
  const want = opaque(etag);
  // Entity tags cannot contain commas outside quotes in practice; a quote-aware scan keeps
  // odd-but-legal tags like "a,b" intact. Empty list elements (`"a", , "b"`, a leading
  // comma, an empty repeated header) are skipped: RFC 9110 §5.6.1 says recipients accept them.
  const re = /[\s,]*(W\/)?"([^"]*)"\s*(?:,|$)/gy;
  for (let m = re.exec(value); m !== null; m = re.exec(value)) {
    if (`"${m[2]}"` === want) return true;
    if (re.lastIndex >= value.length) break;
  }
  return false;
}

export interface CacheControlOptions {
  /** `'public'` (shared caches may store) or `'private'` (only the browser). Default `'private'`. */
  visibility?: 'public' | 'private';
  maxAgeS?: number;
  /** Shared caches' max age (`s-maxage`). */
  sMaxAgeS?: number;
  staleWhileRevalidateS?: number;
  staleIfErrorS?: number;
  /** Store but revalidate every time (pair with an ETag). */
  noCache?: boolean;
  noStore?: boolean;
  mustRevalidate?: boolean;
  immutable?: boolean;
}

/**
 * Builds a Cache-Control value.
 *
 * @example
 * ```ts
 * import { cacheControl } from 'keel/cache';
 * cacheControl({ visibility: 'public', maxAgeS: 5, sMaxAgeS: 30, staleWhileRevalidateS: 60, staleIfErrorS: 86_400 });
 * // 'public, max-age=5, s-maxage=30, stale-while-revalidate=60, stale-if-error=86400'
 * ```
 */
export function cacheControl(o: CacheControlOptions): string {
  if (o.noStore) return 'no-store';
  const parts: string[] = [o.visibility ?? 'private'];
  if (o.noCache) parts.push('no-cache');
  const secs = (name: string, v: number | undefined): void => {
    if (v !== undefined && Number.isFinite(v) && v >= 0) parts.push(`${name}=${Math.floor(v)}`);
  };
  secs('max-age', o.maxAgeS);
  secs('s-maxage', o.sMaxAgeS);
  secs('stale-while-revalidate', o.staleWhileRevalidateS);
  secs('stale-if-error', o.staleIfErrorS);
  if (o.mustRevalidate) parts.push('must-revalidate');
  if (o.immutable) parts.push('immutable');
  return parts.join(', ');
}

/**
 * Ready-made Cache-Control values for the common cases.
 *
 * @example
 * ```ts
 * import { CACHE_CONTROL } from 'keel/cache';
 * reply.header('cache-control', CACHE_CONTROL.privateRevalidate);
 * ```
 */
export const CACHE_CONTROL = Object.freeze({
  /** Never stored (secrets, per-request data). */
  noStore: 'no-store',
  /** Per-user data: the browser keeps it but asks again each time (a 304 is cheap with an ETag). */
  privateRevalidate: 'private, no-cache',
  /** Shared data that must always be revalidated (e.g. pages with a logged-in variant behind `Vary`). */
  publicRevalidate: 'public, no-cache',
  /** Shared, briefly cacheable data: CDNs may keep it 30 s and serve it stale while refreshing or on errors. */
  publicShort: cacheControl({ visibility: 'public', maxAgeS: 5, sMaxAgeS: 30, staleWhileRevalidateS: 60, staleIfErrorS: 86_400 }),
  /** Fingerprinted static assets. */
  immutable: cacheControl({ visibility: 'public', maxAgeS: 31_536_000, immutable: true }),
});

/**
 * Merges fields into a Vary value (case-insensitive, no duplicates; `*` absorbs everything).
 *
 * @example
 * ```ts
 * import { vary } from 'keel/cache';
 * vary('Accept-Encoding', 'Authorization', 'accept-encoding'); // 'Accept-Encoding, Authorization'
 * ```
 */
export function vary(existing: string | undefined, ...fields: string[]): string {
  const out: string[] = [];
  const seen = new Set<string>();
  for (const part of [...(existing ? existing.split(',') : []), ...fields]) {
    const f = part.trim();
    if (f === '') continue;
    if (f === '*') return '*';
    const lower = f.toLowerCase();
    if (!seen.has(lower)) {
      seen.add(lower);
      out.push(f);
    }
  }
  return out.join(', ');
}

/** Request headers as Node gives them or as a web `Headers`. */
export type RequestHeaders = Headers | Readonly<Record<string, string | readonly string[] | undefined>>;

function header(h: RequestHeaders, name: string): string | readonly string[] | undefined {
  if (typeof (h as Headers).get === 'function') return (h as Headers).get(name) ?? undefined;
  return (h as Record<string, string | readonly string[] | undefined>)[name];
}

export interface ConditionalOptions {
  /** Cache-Control value. Default {@link CACHE_CONTROL.privateRevalidate}. */
  cacheControl?: string;
  /** Vary fields. Default: none. */
  vary?: readonly string[];
}

/** What to send: status, headers, and the body (undefined for a 304). */
export interface ConditionalResponse {
  status: 200 | 304;
  headers: Record<string, string>;
  body: Buffer | undefined;
}

/**
 * Decides 200 or 304 for a cached body against the request's If-None-Match, with the
 * headers both need (a 304 repeats ETag, Cache-Control and Vary, per RFC 9110 §15.4.5).
 *
 * @example
 * ```ts
 * import { conditionalResponse } from 'keel/cache';
 * const cached = await cache.getOrSetBody('topics:1', () => repo.topics(1), { tags: ['forum:1'] });
 * const r = conditionalResponse(cached, request.headers, { cacheControl: 'private, no-cache' });
 * reply.code(r.status).headers(r.headers).send(r.body);
 * ```
 */
export function conditionalResponse(cached: CachedBody, requestHeaders: RequestHeaders, o: ConditionalOptions = {}): ConditionalResponse {
  const headers: Record<string, string> = {
    etag: cached.etag,
    'cache-control': o.cacheControl ?? CACHE_CONTROL.privateRevalidate,
  };
  if (o.vary && o.vary.length > 0) headers.vary = vary(undefined, ...o.vary);
  if (ifNoneMatch(header(requestHeaders, 'if-none-match'), cached.etag)) return { status: 304, headers, body: undefined };
  headers['content-type'] = cached.contentType;
  headers['content-length'] = String(cached.body.byteLength);
  return { status: 200, headers, body: cached.body };
}

/**
 * Builds a {@link CachedBody}: objects, arrays, numbers, booleans and null are JSON;
 * strings and bytes are taken as they are.
 *
 * @example
 * ```ts
 * import { toCachedBody } from 'keel/cache';
 * const b = toCachedBody({ ok: true }); // b.contentType === 'application/json; charset=utf-8'
 * ```
 */
export function toCachedBody(content: unknown, contentType?: string): CachedBody {
  let body: Buffer;
  let type: string;
  if (typeof content === 'string') {
    body = Buffer.from(content, 'utf8');
    type = 'text/plain; charset=utf-8';
  } else if (content instanceof Uint8Array) {
    body = Buffer.isBuffer(content) ? content : Buffer.from(content.buffer, content.byteOffset, content.byteLength);
    type = 'application/octet-stream';
  } else {
    body = Buffer.from(JSON.stringify(content ?? null), 'utf8');
    type = 'application/json; charset=utf-8';
  }
  return { body, etag: strongETag(body), contentType: contentType ?? type };
}
