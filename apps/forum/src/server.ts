/**
 * Starts the forum: config from the environment, listen, and a graceful shutdown on
 * SIGTERM/SIGINT (keel/lifecycle): not-ready at once, keep serving for the readiness delay so
 * load balancers notice, end live sockets and streams, drain in-flight requests, then close
 * everything in reverse order of creation. A second signal or the deadline forces exit 1.
 */
import { GracefulShutdown } from 'keel/lifecycle';
import { buildApp } from './app.ts';
import { loadConfig } from './config.ts';

const config = loadConfig(process.env);
const app = await buildApp(config);
const shutdown = new GracefulShutdown({
  readinessDelayMs: config.shutdown.readinessDelayMs,
  deadlineMs: config.shutdown.deadlineMs,
  health: app.keel.health,
  logger: app.log,
});
shutdown.server(app.server);
shutdown.beforeDrain(() => app.endLongLived());
shutdown.add(() => app.close());
await app.listen({ port: config.port, host: config.host });
