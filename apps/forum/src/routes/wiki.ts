import type { FastifyPluginAsync } from 'fastify';
import { sendCached } from '../http/cached.ts';
import { decodeCursor, page } from '../http/cursor.ts';
import { id, namespace, pageTitle, paginationQuery } from '../http/schemas.ts';
import { tags } from '../services/cache.ts';
import type { Services } from '../services/index.ts';

const pageParams = {
  type: 'object',
  properties: { namespace, title: pageTitle },
  required: ['namespace', 'title'],
  additionalProperties: false,
} as const;

export function wikiRoutes(services: Services, bodyLimit: number): FastifyPluginAsync {
  return async (app) => {
    app.get<{ Params: { namespace: string; title: string } }>(
      '/wiki/:namespace/:title',
      { schema: { params: pageParams } },
      async (request, reply) => {
        const { namespace, title } = request.params;
        return sendCached(services.caches.pages, request, reply, `page:${namespace}:${title}`, () => services.wiki.get(namespace, title), {
          tags: [tags.page(namespace, title)],
        });
      },
    );

    app.put<{
      Params: { namespace: string; title: string };
      Body: { content: string; comment?: string; baseRevision?: number | null; categories?: string[] };
    }>(
      '/wiki/:namespace/:title',
      {
        bodyLimit,
        schema: {
          params: pageParams,
          body: {
            type: 'object',
            properties: {
              content: { type: 'string', maxLength: 400_000 },
              comment: { type: 'string', maxLength: 500 },
              baseRevision: { anyOf: [id, { type: 'null' }] },
              categories: {
                type: 'array',
                maxItems: 20,
                uniqueItems: true,
                items: { type: 'string', pattern: '^[\\p{L}\\p{N}][\\p{L}\\p{N} _-]{0,63}$' },
              },
            },
            required: ['content'],
            additionalProperties: false,
          },
        },
      },
      async (request, reply) => {
        const user = await services.auth.requireUser(request.token);
        services.caches.noteWriter(user.id);
        const { content, comment = '', baseRevision = null, categories } = request.body;
        const { page: result, created } = await services.wiki.put(request.params.namespace, request.params.title, user, {
          content,
          comment,
          baseRevision,
          categories,
        });
        return reply.code(created ? 201 : 200).send(result);
      },
    );

    app.get<{ Params: { namespace: string; title: string }; Querystring: { limit: number; cursor?: string } }>(
      '/wiki/:namespace/:title/revisions',
      { schema: { params: pageParams, querystring: paginationQuery } },
      async (request, reply) => {
        const { limit, cursor } = request.query;
        const { namespace, title } = request.params;
        const c = decodeCursor(cursor, 'nn') as [number, number] | null;
        return sendCached(
          services.caches.pages,
          request,
          reply,
          `revisions:${namespace}:${title}:${limit}:${cursor ?? ''}`,
          async () =>
            page(await services.wiki.revisions(namespace, title, c && { createdAt: c[0], id: c[1] }, limit), limit, (r) => [
              r.createdAt,
              r.id,
            ]),
          { tags: [tags.page(namespace, title)] },
        );
      },
    );
  };
}
