import type { FastifyPluginAsync } from 'fastify';
import { sendCached } from '../http/cached.ts';
import { decodeCursor, encodeCursor } from '../http/cursor.ts';
import { id, idParams, pagination, postBody, postResponse, topicResponse } from '../http/schemas.ts';
import { tags } from '../services/cache.ts';
import type { Services } from '../services/index.ts';

export function topicRoutes(services: Services): FastifyPluginAsync {
  return async (app) => {
    app.get<{ Params: { id: number }; Querystring: { limit: number; cursor?: string } }>(
      '/topics/:id',
      {
        schema: {
          params: idParams,
          querystring: { type: 'object', properties: pagination, additionalProperties: false },
          response: {
            200: {
              type: 'object',
              properties: { topic: topicResponse, posts: { type: 'array', items: postResponse }, nextCursor: { type: ['string', 'null'] } },
            },
          },
        },
      },
      async (request, reply) => {
        const { limit, cursor } = request.query;
        const topicId = request.params.id;
        const c = decodeCursor(cursor, 'nn') as [number, number] | null;
        return sendCached(
          services.caches.pages,
          request,
          reply,
          `topic:${topicId}:${limit}:${cursor ?? ''}`,
          () => load(topicId, c, limit),
          {
            tags: [tags.topic(topicId)],
          },
        );
      },
    );

    async function load(topicId: number, c: [number, number] | null, limit: number) {
      const { topic, posts } = await services.forum.getTopic(topicId, c && { createdAt: c[0], id: c[1] }, limit);
      // `limit` counts root posts; the cursor is the last root shown.
      let roots = 0;
      let lastRoot: (typeof posts)[number] | undefined;
      for (const p of posts) {
        if (p.threadDepth === 0) {
          roots++;
          lastRoot = p;
        }
      }
      return { topic, posts, nextCursor: roots === limit && lastRoot ? encodeCursor([lastRoot.createdAt, lastRoot.id]) : null };
    }

    app.post<{ Params: { id: number }; Body: { body: string; parentId?: number } }>(
      '/topics/:id/posts',
      {
        schema: {
          params: idParams,
          body: { type: 'object', properties: { body: postBody, parentId: id }, required: ['body'], additionalProperties: false },
        },
      },
      async (request, reply) => {
        const user = await services.auth.requireUser(request.token);
        return reply
          .code(201)
          .send(await services.forum.createPost(request.params.id, user, request.body.body, request.body.parentId ?? null));
      },
    );
  };
}
