import type { FastifyPluginAsync } from 'fastify';
import { decodeCursor, page } from '../http/cursor.ts';
import { id, namespace, pageTitle, paginationQuery } from '../http/schemas.ts';
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
      async (request) => services.wiki.get(request.params.namespace, request.params.title),
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
        const user = services.auth.requireUser(request.token);
        const { content, comment = '', baseRevision = null, categories } = request.body;
        const { page: result, created } = services.wiki.put(request.params.namespace, request.params.title, user, {
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
      async (request) => {
        const { limit, cursor } = request.query;
        const c = decodeCursor(cursor, 'nn') as [number, number] | null;
        const items = services.wiki.revisions(request.params.namespace, request.params.title, c && { createdAt: c[0], id: c[1] }, limit);
        return page(items, limit, (r) => [r.createdAt, r.id]);
      },
    );
  };
}
