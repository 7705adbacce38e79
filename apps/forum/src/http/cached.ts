/**
 * Read routes answered from cached bytes: the body is serialized once (by the route's own
 * response schema, so a cached answer is byte-for-byte what an uncached one would be) and
 * stored with its strong ETag; a hit sends those bytes, and a matching If-None-Match gets a
 * 304 with no body.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { CACHE_CONTROL, type CachedBody, conditionalResponse, type TieredCache } from 'keel/cache';

const JSON_TYPE = 'application/json; charset=utf-8';

export interface CachedReadOptions {
  tags: string[];
  /** Overrides the cache's TTL (search results). */
  ttlMs?: number;
  /** Overrides the cache's grace period. */
  graceMs?: number;
}

/**
 * Answers `request` with the cached body under `key`, loading it with `load` on a miss.
 * Public, shared data only: the body must not depend on who asks.
 *
 * @example
 * ```ts
 * return sendCached(cache, request, reply, `ft:${id}`, () => service.listTopics(id), { tags: [`forum:${id}`] });
 * ```
 */
export async function sendCached(
  cache: TieredCache,
  request: FastifyRequest,
  reply: FastifyReply,
  key: string,
  load: () => unknown | Promise<unknown>,
  options: CachedReadOptions,
): Promise<FastifyReply> {
  const cached = await cache.getOrSetBody(key, async () => reply.serialize(await load()), {
    tags: options.tags,
    contentType: JSON_TYPE,
    ...(options.ttlMs !== undefined ? { ttlMs: options.ttlMs } : {}),
    ...(options.graceMs !== undefined ? { graceMs: options.graceMs } : {}),
  });
  // `no-cache`: browsers and proxies revalidate every time (a cheap 304), so nobody is shown a
  // body older than the last write. The 200's headers are built once per cached body.
  let headers = okHeaders.get(cached);
  if (headers === undefined) {
    const r = conditionalResponse(cached, {}, { cacheControl: CACHE_CONTROL.publicRevalidate });
    headers = r.headers;
    okHeaders.set(cached, headers);
  }
  // The next anonymous GET of this exact URL can be answered before Fastify (http/fast-reads.ts):
  // the route has validated it and computed its key, and nothing in the answer depends on the caller.
  if (request.method === 'GET' && request.headers.authorization === undefined) {
    request.server.fastReads?.remember(request.url, key, request.routeOptions.url ?? request.url);
  }
  if (request.headers['if-none-match'] !== undefined) {
    const r = conditionalResponse(cached, request.headers, { cacheControl: CACHE_CONTROL.publicRevalidate });
    if (r.status === 304) return reply.code(304).headers(r.headers).send();
  }
  return reply.headers(headers).send(cached.body);
}

const okHeaders = new WeakMap<CachedBody, Record<string, string>>();
