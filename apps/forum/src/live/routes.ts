/**
 * `GET /api/v1/live`: the WebSocket endpoint. Only translation lives here: the upgrade is
 * authenticated (bearer header or `?token=`; an invalid token is a 401, no token is an
 * anonymous socket), refused with 503 when the hub is full, and the socket handed to the hub.
 * A plain GET without an upgrade is a 426 in the JSON error shape.
 */
import websocket from '@fastify/websocket';
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { HttpError, unauthorized } from '../http/errors.ts';
import type { LiveHub, LiveUser } from './hub.ts';

const TOKEN = /^[A-Za-z0-9_-]{16,128}$/;

/**
 * @example
 * ```ts
 * await app.register(liveRoutes(hub, services.auth), { prefix: '/api/v1' });
 * // ws://host/api/v1/live?token=… then {"type":"subscribe","topicId":1}
 * ```
 */
export function liveRoutes(
  hub: LiveHub,
  auth: { authenticate(token: string): LiveUser | undefined | Promise<LiveUser | undefined> },
): FastifyPluginAsync {
  return async (app) => {
    const sessions = new WeakMap<FastifyRequest, { user: LiveUser; token: string }>();
    await app.register(websocket, {
      // perMessageDeflate stays off (ws's server default): zlib contexts cost ~300 KB per socket.
      options: { maxPayload: hub.limits.maxPayload },
      // Replaces the plugin's own preClose, which closes sockets with no status code: shutdown
      // sends 1001 and waits (bounded by closeGraceMs) before the HTTP server closes.
      preClose: async () => {
        await hub.close();
        app.websocketServer.close();
      },
      // The hub watches each socket's 'error' and closes it; ws has sent its close code already.
      errorHandler: (err, _socket, request) => request.log.debug({ err }, 'live socket error'),
    });

    app.route<{ Querystring: { token?: string } }>({
      method: 'GET',
      url: '/live',
      // An open socket is not a request in flight, nor its lifetime a latency: measured, 20 idle
      // sockets shed all HTTP at SHED_MAX_IN_FLIGHT=20 and the slowest route read 12 s. Shedding
      // still applies to the upgrade; `hub.limits.maxConnections` bounds the sockets.
      config: { keel: { metrics: false } },
      schema: { querystring: { type: 'object', properties: { token: { type: 'string' } } } },
      preHandler: async (request) => {
        const header = request.headers.authorization;
        const token = header ? request.token : request.query.token;
        if ((header || request.query.token !== undefined) && (!token || !TOKEN.test(token))) throw unauthorized();
        if (token) {
          const user = await auth.authenticate(token);
          if (!user) throw unauthorized();
          sessions.set(request, { user, token });
        }
        if (hub.full)
          throw new HttpError(503, 'unavailable', 'too many live connections; try again later', { headers: { 'retry-after': '5' } });
      },
      // A plain GET (no upgrade). The plugin's default for a `websocket: true` route is a 404 with
      // an empty body, which reads as "no such route".
      handler: async () => {
        throw new HttpError(426, 'upgrade_required', 'this endpoint speaks WebSocket only: send an upgrade request', {
          headers: { upgrade: 'websocket' },
        });
      },
      wsHandler: (socket, request) => {
        hub.accept(socket, sessions.get(request) ?? {});
      },
    });
  };
}
