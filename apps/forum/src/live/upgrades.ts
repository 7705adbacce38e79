/**
 * Upgrade requests that end as plain HTTP answers.
 *
 * Node hands an upgrade request's socket to the 'upgrade' listener and forgets it: no HTTP
 * server timeout or keep-alive logic touches it again. @fastify/websocket (registered by the live
 * routes) routes every upgrade through Fastify, but only its own routes' hooks destroy the socket
 * after a normal answer. An upgrade to any other path (404, 401, even a 200), one shed by keel's
 * onRequest before those hooks run, or one refused by the router (a bad URL) kept its socket in
 * CLOSE-WAIT forever, and with it keel's in-flight count (it ends on the response's 'close', which
 * comes with the socket's): six such requests shed every request at `SHED_MAX_IN_FLIGHT=5`, and a
 * SIGTERM waited for them until its deadline.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';

/**
 * Destroys the socket of an upgrade request once its HTTP answer has been written; a no-op for
 * ordinary requests (one property read, so it can sit in a root hook on the hot path).
 *
 * @example
 * ```ts
 * app.addHook('onRequest', (request, reply, done) => {
 *   closeUpgradeAfterAnswer(request, reply);
 *   done();
 * });
 * ```
 */
export function closeUpgradeAfterAnswer(request: FastifyRequest, reply: FastifyReply): void {
  // Node sets `upgrade` only on requests it gave to the 'upgrade' event (not typed in @types/node);
  // a stray Upgrade header on an ordinary request keeps its keep-alive connection.
  if ((request.raw as { upgrade?: boolean }).upgrade !== true) return;
  const socket = request.raw.socket;
  // 'finish' means the answer has been handed to the kernel, so destroying loses none of it. A
  // request that became a WebSocket never finishes its response (ws writes the 101 itself), so
  // its socket is left alone.
  reply.raw.on('finish', () => socket.destroy());
}
