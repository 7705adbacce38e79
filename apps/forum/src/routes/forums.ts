import type { FastifyPluginAsync } from 'fastify';
import { sendCached } from '../http/cached.ts';
import { decodeCursor, page } from '../http/cursor.ts';
import { idParams, listOf, paginationQuery, postBody, topicResponse, topicTitle } from '../http/schemas.ts';
import { tags } from '../services/cache.ts';
import type { Services } from '../services/index.ts';

const forumResponse = {
  type: 'object',
  properties: {
    id: { type: 'integer' },
    slug: { type: 'string' },
    name: { type: 'string' },
    description: { type: 'string' },
    position: { type: 'integer' },
    topicCount: { type: 'integer' },
  },
} as const;

export function forumRoutes(services: Services): FastifyPluginAsync {
  return async (app) => {
    app.get<{ Querystring: { limit: number; cursor?: string } }>(
      '/forums',
      { schema: { querystring: paginationQuery, response: { 200: listOf(forumResponse) } } },
      async (request, reply) => {
        const { limit, cursor } = request.query;
        const c = decodeCursor(cursor, 'nn') as [number, number] | null;
        return sendCached(
          services.caches.pages,
          request,
          reply,
          `forums:${limit}:${cursor ?? ''}`,
          async () => page(await services.forum.listForums(c && { position: c[0], id: c[1] }, limit), limit, (f) => [f.position, f.id]),
          { tags: [tags.forums] },
        );
      },
    );

    app.get<{ Params: { id: number }; Querystring: { limit: number; cursor?: string } }>(
      '/forums/:id/topics',
      { schema: { params: idParams, querystring: paginationQuery, response: { 200: listOf(topicResponse) } } },
      async (request, reply) => {
        const { limit, cursor } = request.query;
        const forumId = request.params.id;
        const c = decodeCursor(cursor, 'nn') as [number, number] | null;
        const run = async () =>
          page(await services.forum.listTopics(forumId, c && { updatedAt: c[0], id: c[1] }, limit), limit, (t) => [t.updatedAt, t.id]);
        // A reply bumps its forum's cached list within listRefreshMs (see services/cache.ts); its
        // writer reads past the cache for that long, so they see their reply's bump at once.
        const caches = services.caches;
        if (request.token && caches.listRefreshMs > 0) {
          const user = await services.auth.authenticate(request.token);
          if (user && caches.wroteWithin(user.id, caches.listRefreshMs)) return run();
        }
        return sendCached(caches.pages, request, reply, `topics:${forumId}:${limit}:${cursor ?? ''}`, run, {
          tags: [tags.forum(forumId)],
        });
      },
    );

    app.post<{ Params: { id: number }; Body: { title: string; body: string } }>(
      '/forums/:id/topics',
      {
        schema: {
          params: idParams,
          body: {
            type: 'object',
            properties: { title: topicTitle, body: postBody },
            required: ['title', 'body'],
            additionalProperties: false,
          },
        },
      },
      async (request, reply) => {
        const user = await services.auth.requireUser(request.token);
        const result = await services.forum.createTopic(request.params.id, user, request.body.title.trim(), request.body.body);
        return reply.code(201).send(result);
      },
    );
  };
}
