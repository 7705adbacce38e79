import type { FastifyPluginAsync } from 'fastify';
import { sendCached } from '../http/cached.ts';
import { decodeCursor, page } from '../http/cursor.ts';
import { badRequest } from '../http/errors.ts';
import { id, namespace, pagination } from '../http/schemas.ts';
import { tags } from '../services/cache.ts';
import type { Services } from '../services/index.ts';

const date = { type: 'string', format: 'date-time' } as const;

interface SearchQuery {
  q: string;
  type: 'all' | 'post' | 'page';
  forum?: number;
  namespace?: string;
  author?: number;
  from?: string;
  to?: string;
  limit: number;
  cursor?: string;
}

/**
 * A date-time query value as epoch ms. ajv's format admits values Date.parse does not (a leap
 * second, `…T23:59:60Z`): their NaN would bind as NULL and drop the filter without a word.
 */
function instant(value: string | undefined, field: 'from' | 'to'): number | null {
  if (value === undefined) return null;
  const ms = Date.parse(value);
  if (!Number.isFinite(ms)) throw badRequest(field, `querystring: ${field} is not a date-time this service can read`);
  return ms;
}

export function searchRoutes(services: Services): FastifyPluginAsync {
  return async (app) => {
    app.get<{ Querystring: SearchQuery }>(
      '/search',
      {
        schema: {
          querystring: {
            type: 'object',
            properties: {
              q: { type: 'string', minLength: 1, maxLength: 200 },
              type: { type: 'string', enum: ['all', 'post', 'page'], default: 'all' },
              forum: id,
              namespace,
              author: id,
              from: date,
              to: date,
              ...pagination,
            },
            required: ['q'],
            additionalProperties: false,
          },
        },
      },
      async (request, reply) => {
        const { q, type, limit, cursor } = request.query;
        const from = instant(request.query.from, 'from');
        const to = instant(request.query.to, 'to');
        if (from !== null && to !== null && from >= to) throw badRequest('to', 'to must be after from');
        const c = decodeCursor(cursor, 'nsn') as [number, 'page' | 'post', number] | null;
        if (c && c[1] !== 'page' && c[1] !== 'post') throw badRequest('cursor', 'cursor is not valid');
        const filters = {
          forumId: request.query.forum ?? null,
          namespace: request.query.namespace ?? null,
          authorId: request.query.author ?? null,
          from,
          to,
        };
        const run = async () =>
          page(await services.search.search(q, type, filters, c && { rank: c[0], kind: c[1], id: c[2] }, limit), limit, (h) => [
            h.rank,
            h.kind,
            h.id,
          ]);
        // Results are cached for a short TTL rather than invalidated per write (any post can
        // change any query's results); a user who just wrote reads past the cache and the
        // index's batching delay, so they always find their own words.
        const user = request.token ? await services.auth.authenticate(request.token) : undefined;
        if (user && services.caches.wroteRecently(user.id)) {
          // New posts are indexed within SEARCH_INDEX_DELAY_MS; a writer's are indexed now.
          services.searchIndex?.flush();
          return run();
        }
        const key = `search:${JSON.stringify([q, type, limit, cursor ?? '', filters.forumId, filters.namespace, filters.authorId, from, to])}`;
        return sendCached(services.caches.pages, request, reply, key, run, {
          tags: [tags.search],
          ttlMs: services.caches.searchTtlMs,
          // Expired results are served while one refresh runs (or when it fails), for at most
          // the TTL again; a writer's bypass (wroteRecently) covers TTL + grace.
          graceMs: services.caches.searchGraceMs,
        });
      },
    );
  };
}
