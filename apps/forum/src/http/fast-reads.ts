/**
 * Cached public reads answered before Fastify: a micro-cache in front of the app, the way a
 * reverse proxy's cache would sit in front of it, but in the same process and invalidated by
 * the same tags.
 *
 * Why: a topic-list hit through Fastify costs ~31 µs of CPU here, against ~14 µs for a bare
 * `node:http` answer (benchmarks/RESULTS.md, forum). Routing, schema validation, hooks, the
 * reply machinery and the plugin's per-request context are most of the difference, and none of
 * them changes a hit's bytes. This path answers only what the real route already answered:
 *
 * - `sendCached` remembers, per exact request URL, the cache key and route template the route
 *   computed from its validated input. Only anonymous GETs are remembered and served, so a
 *   route that reads the caller (search's bypass for recent writers) always runs for callers
 *   with a token.
 * - A hit is a fresh L1 entry of the same cache the route reads (`peek`): stale, missing or
 *   invalidated entries fall through to Fastify, which refreshes them. So invalidation, grace
 *   and read-your-writes are exactly the route's.
 * - The answer has the route's headers (request id, ETag, Cache-Control, content type and
 *   length) and a 304 for a matching If-None-Match; the RED metrics count it under the route.
 * - Under load-shedding pressure, after close starts, and for anything unusual (HEAD, a body,
 *   an upgrade, a token) it falls through, so the plugin's shedding, Fastify's 503 on closing
 *   and every route rule still apply.
 *
 * It runs no async work, so it needs no AsyncLocalStorage context, and it logs nothing.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { CACHE_CONTROL, type CachedBody, ifNoneMatch, type TieredCache } from 'keel/cache';
import type { LoadShedder, Metrics, Tracing } from 'keel/observe';

export interface FastReadsOptions {
  /** The cache `sendCached` stores bodies in. */
  cache: TieredCache;
  /** Request ids are accepted or made the same way the Keel plugin does. */
  tracing: Tracing;
  /** RED metrics: a fast answer is counted under its route template. */
  metrics: Metrics;
  /** While it is under pressure, requests fall through to the plugin, which sheds them. */
  shedder?: LoadShedder;
  /** URLs remembered (oldest forgotten first). Default 10,000. */
  maxUrls?: number;
}

interface Route {
  key: string;
  route: string;
}

const CACHE_CONTROL_VALUE = CACHE_CONTROL.publicRevalidate;

/** Answers remembered anonymous GETs from fresh cached bytes; everything else goes to Fastify. */
export class FastReads {
  readonly #cache: TieredCache;
  readonly #tracing: Tracing;
  readonly #http: Metrics['http'];
  readonly #shedder: LoadShedder | undefined;
  readonly #maxUrls: number;
  readonly #urls = new Map<string, Route>();
  /** The 200's headers without the request id, built once per cached body. */
  readonly #headers = new WeakMap<CachedBody, string[]>();
  readonly #requestIdHeader: string;
  #open = true;
  #served = 0;

  constructor(options: FastReadsOptions) {
    if (typeof options?.cache?.peek !== 'function') throw new TypeError('FastReads: "cache" must be a TieredCache');
    if (typeof options.tracing?.fromHeaders !== 'function') throw new TypeError('FastReads: "tracing" must be a Tracing');
    if (typeof options.metrics?.http?.start !== 'function') throw new TypeError('FastReads: "metrics" must be a Metrics');
    const maxUrls = options.maxUrls ?? 10_000;
    if (!Number.isInteger(maxUrls) || maxUrls < 1) throw new TypeError(`FastReads: "maxUrls" must be a positive integer (got ${maxUrls})`);
    this.#cache = options.cache;
    this.#tracing = options.tracing;
    this.#http = options.metrics.http;
    this.#shedder = options.shedder;
    this.#maxUrls = maxUrls;
    this.#requestIdHeader = options.tracing.requestIdHeader;
  }

  /** Requests answered here since start. */
  get served(): number {
    return this.#served;
  }

  /** URLs remembered now. */
  get size(): number {
    return this.#urls.size;
  }

  /**
   * Remembers that an anonymous GET of `url` is answered by the cached body under `key`
   * (called by `sendCached`, after the route validated the request and computed the key).
   */
  remember(url: string, key: string, route: string): void {
    if (!this.#open || this.#urls.has(url)) return;
    if (this.#urls.size >= this.#maxUrls) {
      const oldest = this.#urls.keys().next().value;
      if (oldest !== undefined) this.#urls.delete(oldest);
    }
    this.#urls.set(url, { key, route });
  }

  /** Answers `req` if it is a remembered anonymous GET with a fresh cached body; returns whether it did. */
  serve(req: IncomingMessage, res: ServerResponse): boolean {
    if (!this.#open || req.method !== 'GET') return false;
    const url = req.url;
    if (url === undefined) return false;
    const route = this.#urls.get(url);
    if (route === undefined) return false;
    const h = req.headers;
    if (
      h.authorization !== undefined ||
      h['content-length'] !== undefined ||
      h['transfer-encoding'] !== undefined ||
      h.upgrade !== undefined
    ) {
      return false;
    }
    if (this.#shedder?.isUnderPressure() === true) return false;
    const cached = this.#cache.peek<CachedBody>(route.key);
    if (cached === undefined) return false;

    const mark = this.#http.start();
    const requestId = this.#tracing.fromHeaders(h).requestId;
    let status = 200;
    const inm = h['if-none-match'];
    if (inm !== undefined && ifNoneMatch(inm, cached.etag)) {
      status = 304;
      res.writeHead(304, [this.#requestIdHeader, requestId, 'etag', cached.etag, 'cache-control', CACHE_CONTROL_VALUE]);
      res.end();
    } else {
      let headers = this.#headers.get(cached);
      if (headers === undefined) {
        headers = [
          'etag',
          cached.etag,
          'cache-control',
          CACHE_CONTROL_VALUE,
          'content-type',
          cached.contentType,
          'content-length',
          String(cached.body.byteLength),
        ];
        this.#headers.set(cached, headers);
      }
      res.writeHead(200, [this.#requestIdHeader, requestId, ...headers]);
      res.end(cached.body);
    }
    this.#served++;
    this.#http.end(mark, 'GET', route.route, status);
    return true;
  }

  /** Stops answering (the app is closing: Fastify answers from now on, with its 503s) and forgets every URL. */
  close(): void {
    this.#open = false;
    this.#urls.clear();
  }
}
