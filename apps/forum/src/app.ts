/**
 * The composition root: the one place where the database, services and HTTP routes are created
 * and wired. Everything is created once here and released in reverse order when the app closes.
 */
import Fastify, { type FastifyInstance, LogController } from 'fastify';
import { Scope } from 'keel/lifecycle';
import type { Config } from './config.ts';
import { openRepositories } from './db/index.ts';
import { DEMO_PASSWORD, seed } from './db/seed.ts';
import { bearerToken } from './http/auth.ts';
import { installErrorHandling } from './http/error-handler.ts';
import { installValidation } from './http/validation.ts';
import { createLive } from './live/index.ts';
import { liveRoutes } from './live/routes.ts';
import { authRoutes } from './routes/auth.ts';
import { forumRoutes } from './routes/forums.ts';
import { postRoutes } from './routes/posts.ts';
import { searchRoutes } from './routes/search.ts';
import { topicRoutes } from './routes/topics.ts';
import { wikiRoutes } from './routes/wiki.ts';
import { createAuthService } from './services/auth.ts';
import { ForumEventBus } from './services/events.ts';
import { createForumService } from './services/forum.ts';
import type { Services } from './services/index.ts';
import { hashPassword } from './services/passwords.ts';
import { PreviewWorker } from './services/previews/worker.ts';
import { createSearchService } from './services/search.ts';
import { createWikiService } from './services/wiki.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** The bearer token the request carried, if well-formed (not yet checked against sessions). */
    token: string | undefined;
  }
  interface FastifyInstance {
    services: Services;
  }
}

export interface BuildOptions {
  /** Pass `false` to silence logs (tests). Default: pino at `config.logLevel`. */
  logger?: boolean;
}

export async function buildApp(config: Config, options: BuildOptions = {}): Promise<FastifyInstance> {
  const scope = new Scope({ name: 'forum' });
  const repos = openRepositories(config.databasePath);
  scope.add(() => repos.close());
  if (config.seedOnEmpty !== 'none' && repos.isEmpty()) {
    seed(repos.db, config.seedOnEmpty, await hashPassword(DEMO_PASSWORD));
  }

  const events = new ForumEventBus();
  scope.add(() => events.removeAllListeners());
  const auth = createAuthService(repos, config);
  scope.add(auth);
  const services: Services = {
    repos,
    events,
    auth,
    forum: createForumService(repos, events, { maxDepth: config.threadMaxDepth, maxRows: config.threadMaxRows }),
    wiki: createWikiService(repos, events),
    search: createSearchService(repos),
    // Added to the scope after auth and repos, so it closes (1001 to every socket) before them.
    live: scope.add(createLive({ events, auth, repos, config })),
  };
  scope.setInterval(() => services.auth.sweepExpired(), config.sessionSweepMs);
  if (config.previews.enabled) {
    const previews = scope.add(new PreviewWorker(repos, config.previews));
    services.previews = previews;
    // A new post's previews start at once instead of at the next poll; never awaited by the post.
    events.on('post.created', () => previews.nudge());
    events.on('post.updated', () => previews.nudge());
  }

  const app = Fastify({
    logger: options.logger === false ? false : { level: config.logLevel },
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: config.bodyLimit,
    // Wiki titles may be 200 characters (percent-encoded, longer): the default 100 would 414 them.
    routerOptions: { maxParamLength: 1024 },
    return503OnClosing: true,
  });
  app.decorate('services', services);
  app.decorateRequest('token', undefined);
  app.addHook('onRequest', async (request) => {
    request.token = bearerToken(request);
  });
  installValidation(app);
  installErrorHandling(app);

  await app.register(
    async (api) => {
      await api.register(authRoutes(services));
      await api.register(forumRoutes(services));
      await api.register(topicRoutes(services));
      await api.register(postRoutes(services, config.threadMaxDepth));
      await api.register(wikiRoutes(services, config.wikiBodyLimit));
      await api.register(searchRoutes(services));
      await api.register(liveRoutes(services.live, services.auth));
    },
    { prefix: '/api/v1' },
  );

  app.addHook('onClose', async () => {
    await scope.close();
  });
  return app;
}
