import type { FastifyPluginAsync } from 'fastify';
import { password, username } from '../http/schemas.ts';
import type { Services } from '../services/index.ts';

const credentials = {
  type: 'object',
  properties: { username, password },
  required: ['username', 'password'],
  additionalProperties: false,
} as const;

export function authRoutes(services: Services): FastifyPluginAsync {
  return async (app) => {
    app.post<{ Body: { username: string; password: string } }>(
      '/auth/register',
      { schema: { body: credentials } },
      async (request, reply) => {
        const session = await services.auth.register(request.body.username, request.body.password);
        return reply.code(201).send(session);
      },
    );

    app.post<{ Body: { username: string; password: string } }>('/auth/login', { schema: { body: credentials } }, async (request) =>
      services.auth.login(request.body.username, request.body.password, request.ip),
    );

    app.post('/auth/logout', async (request, reply) => {
      await services.auth.requireUser(request.token);
      await services.auth.logout(request.token as string);
      return reply.code(204).send();
    });

    app.get('/auth/me', async (request) => ({ user: await services.auth.requireUser(request.token) }));
  };
}
