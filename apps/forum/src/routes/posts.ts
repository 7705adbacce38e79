import type { FastifyPluginAsync } from 'fastify';
import { decodeCursor, encodeCursor } from '../http/cursor.ts';
import { notFound } from '../http/errors.ts';
import { idParams, pagination, postBody, postResponse } from '../http/schemas.ts';
import type { Services } from '../services/index.ts';

export function postRoutes(services: Services, maxDepth: number): FastifyPluginAsync {
  return async (app) => {
    app.patch<{ Params: { id: number }; Body: { body: string } }>(
      '/posts/:id',
      {
        schema: {
          params: idParams,
          body: { type: 'object', properties: { body: postBody }, required: ['body'], additionalProperties: false },
        },
      },
      async (request) => {
        const user = await services.auth.requireUser(request.token);
        const post = await services.forum.editPost(request.params.id, user, request.body.body);
        return { ...post, previews: await services.store.previews.ofPost(post.id) };
      },
    );

    app.delete<{ Params: { id: number } }>('/posts/:id', { schema: { params: idParams } }, async (request, reply) => {
      const user = await services.auth.requireUser(request.token);
      await services.forum.deletePost(request.params.id, user);
      return reply.code(204).send();
    });

    app.get<{ Params: { id: number } }>('/posts/:id/previews', { schema: { params: idParams } }, async (request) => {
      if (!(await services.store.posts.byId(request.params.id))) throw notFound('post');
      return { items: await services.store.previews.ofPost(request.params.id) };
    });

    // Without a cursor: the post and its replies. When the row bound cut the post's direct
    // replies, `nextCursor` continues them: with it, the page holds the direct replies after
    // the cursor, each with its own replies.
    app.get<{ Params: { id: number }; Querystring: { depth: number; cursor?: string } }>(
      '/posts/:id/thread',
      {
        schema: {
          params: idParams,
          querystring: {
            type: 'object',
            properties: { depth: { type: 'integer', minimum: 1, maximum: maxDepth, default: maxDepth }, cursor: pagination.cursor },
            additionalProperties: false,
          },
          response: {
            200: {
              type: 'object',
              properties: { items: { type: 'array', items: postResponse }, nextCursor: { type: ['string', 'null'] } },
            },
          },
        },
      },
      async (request) => {
        const c = decodeCursor(request.query.cursor, 'nn') as [number, number] | null;
        const { items, next } = await services.forum.thread(request.params.id, request.query.depth, c && { createdAt: c[0], id: c[1] });
        return { items, nextCursor: next ? encodeCursor([next.createdAt, next.id]) : null };
      },
    );
  };
}
