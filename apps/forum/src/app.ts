/**
 * The composition root: the one place where the database, services and HTTP routes are created
 * and wired. Everything is created once here and released in reverse order when the app closes.
 */
import { createServer, type ServerOptions as HttpServerOptions, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyServerOptions, LogController } from 'fastify';
import { keelFastify } from 'keel/adapters/fastify';
import { Scope } from 'keel/lifecycle';
import { createLogger, Health, LoadShedder, Metrics, OtelBridge, Tracing } from 'keel/observe';
import type { Config } from './config.ts';
import { forumDashboard } from './dashboard/index.ts';
import { openStore } from './db/open.ts';
import { bearerToken } from './http/auth.ts';
import { frameworkErrors, installErrorHandling, StorageFailures } from './http/error-handler.ts';
import { FastReads } from './http/fast-reads.ts';
import { installValidation } from './http/validation.ts';
import { createLive } from './live/index.ts';
import { liveRoutes } from './live/routes.ts';
import { closeUpgradeAfterAnswer } from './live/upgrades.ts';
import { authRoutes } from './routes/auth.ts';
import { forumRoutes } from './routes/forums.ts';
import { postRoutes } from './routes/posts.ts';
import { searchRoutes } from './routes/search.ts';
import { topicRoutes } from './routes/topics.ts';
import { wikiRoutes } from './routes/wiki.ts';
import { createAuthService } from './services/auth.ts';
import { ForumCaches } from './services/cache.ts';
import { ForumEventBus } from './services/events.ts';
import { createForumService } from './services/forum.ts';
import type { Services } from './services/index.ts';
import { PreviewWorker } from './services/previews/worker.ts';
import { createSearchService } from './services/search.ts';
import { SearchIndexer } from './services/search-indexer.ts';
import { createWikiService } from './services/wiki.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** The bearer token the request carried, if well-formed (not yet checked against sessions). */
    token: string | undefined;
  }
  interface FastifyInstance {
    services: Services;
    /** Ends the connections that never end by themselves (live WebSockets with 1001, dashboard streams); a graceful shutdown calls it before draining. */
    endLongLived(): Promise<void>;
    /** Cached public reads answered before routing (http/fast-reads.ts); null when off. */
    fastReads: FastReads | null;
  }
}

export interface BuildOptions {
  /** Pass `false` to silence logs (tests). Default: pino at `config.logLevel`. */
  logger?: boolean;
  /** Where log lines go (tests capture them to check their trace ids). Default: stdout. */
  logStream?: Parameters<typeof createLogger>[1];
  /** How often the dashboard stream sends a snapshot, ms. Default 1,000. */
  dashboardIntervalMs?: number;
}

export async function buildApp(config: Config, options: BuildOptions = {}): Promise<FastifyInstance> {
  const scope = new Scope({ name: 'forum' });
  let opened: Awaited<ReturnType<typeof openStore>>;
  try {
    opened = await openStore(config, scope);
  } catch (err) {
    await scope.close();
    throw err;
  }
  const { store, repos, checkpointer } = opened;
  const writable = (): Promise<void> | undefined => checkpointer?.writable();

  // Observability first, so every later part can report through it (and it closes last).
  const tracing = new Tracing();
  // Requests and the preview policies become spans once the user registers an OpenTelemetry
  // SDK; without one this is a global read per use.
  const otel = new OtelBridge({ tracing });
  // Made before everything that logs (the shedder, the services); Fastify is handed the same
  // instance below. Every log line inside a request carries its trace_id, span_id and request_id.
  const logger =
    options.logger === false ? undefined : (createLogger({ tracing, level: config.logLevel }, options.logStream) as FastifyBaseLogger);
  const metrics = scope.add(new Metrics());
  const health = scope.add(new Health({ timeoutMs: 1_000, ttlMs: 1_000 }));
  // Reads a real row (SELECT 1 touches no page of the file, so it passed with the file gone bad).
  health.register(store.kind, () => store.ping());
  // A full disk still answers reads: writes refused for lack of storage in the last 30 s
  // degrade the report (reads go on, so readiness stays up). SQLite's file only: PostgreSQL's
  // server reports its own disk.
  const storageFailures = new StorageFailures(30_000);
  if (store.kind === 'sqlite') {
    health.register(
      'sqlite-storage',
      () => {
        const ago = storageFailures.recentMs();
        if (ago !== undefined)
          throw new Error(`a write failed for lack of storage ${Math.round(ago / 1000)} s ago (disk full or read-only)`);
      },
      { kind: 'optional' },
    );
  }
  const shedder = scope.add(
    new LoadShedder({
      inFlight: () => metrics.http.inFlight,
      maxInFlight: config.shedding.maxInFlight,
      maxEventLoopDelayMs: config.shedding.maxEventLoopDelayMs,
      maxHeapUsedRatio: config.shedding.maxHeapUsedRatio,
      // A saturated but healthy server runs at ELU ~1.0 while answering in microseconds; shedding
      // on it would turn full throughput into 503s. Delay and in-flight show real queueing.
      maxEventLoopUtilization: Number.POSITIVE_INFINITY,
      // What on-call reads first: when shedding began, on which figure, and what it turned away.
      onChange: (m) => {
        if (m.underPressure) logger?.warn({ reason: m.reason, sample: m.sample }, 'load shedding started');
        else logger?.info({ reason: m.reason, shed: m.shed }, 'load shedding ended');
      },
    }),
  );

  const events = new ForumEventBus();
  scope.add(() => events.removeAllListeners());
  // Before auth (it reads sessions through it) and after the observability it reports to.
  const caches = scope.add(new ForumCaches({ ...config.cache, redisUrl: config.redisUrl }, events));
  if (config.redisUrl) {
    await caches.pages.ready(2_000);
    // Optional: without Redis the caches run L1-only, so the service is degraded, not down.
    health.register(
      'redis',
      () => {
        if (caches.pages.stats().l2 !== 'up') throw new Error('redis unreachable: caches are serving from memory only');
      },
      { kind: 'optional' },
    );
  }
  const auth = createAuthService(store, { ...config, sessions: caches.sessions, events });
  scope.add(auth);
  const services: Services = {
    store,
    ...(repos ? { repos } : {}),
    events,
    auth,
    forum: createForumService(store, events, { maxDepth: config.threadMaxDepth, maxRows: config.threadMaxRows }),
    wiki: createWikiService(store, events),
    search: scope.add(
      createSearchService(store, config.databasePath, config.search, {
        onError: (err) =>
          logger?.error({ err }, 'search failed in its worker (a waiting request gets 503; a cache refresh keeps the stale results)'),
      }),
    ),
    // SQLite indexes posts for search after they commit; PostgreSQL as it writes them. After the
    // store, so it closes (indexing what is pending) before the database does.
    ...(repos
      ? {
          searchIndex: scope.add(
            new SearchIndexer(repos, events, {
              delayMs: config.search.indexDelayMs,
              writable,
              // Each batch writes a new segment; the worker merges them, off the event loop.
              onIndexed: () => checkpointer?.requestMerge(),
              onError: (err) => logger?.warn({ err }, 'search indexing failed; retrying'),
            }),
          ),
        }
      : {}),
    caches,
    // Added to the scope after auth and repos, so it closes (1001 to every socket) before them.
    live: scope.add(createLive({ events, auth, store, config })),
    ...(checkpointer ? { checkpointer } : {}),
  };
  if (config.redisUrl) {
    // Optional, as 'redis' above: without the fan-out this instance still serves, but its live
    // sockets miss the other instances' events (or they miss its own), so it shows as degraded.
    health.register(
      'live-fanout',
      () => {
        const state = services.live.fanoutState();
        if (state && !state.subscribed) throw new Error("not subscribed to Redis: other instances' live events do not arrive here");
        if (state && !state.publishing)
          throw new Error("Redis publisher down or not answering in time: this instance's live events do not reach the others");
      },
      { kind: 'optional' },
    );
  }
  scope.setInterval(() => services.auth.sweepExpired(), config.sessionSweepMs);
  if (config.previews.enabled) {
    const previews = scope.add(new PreviewWorker(store, { ...config.previews, tracing, otel }));
    services.previews = previews;
    // A new post's previews start at once instead of at the next poll; never awaited by the post.
    events.on('post.created', () => previews.nudge());
    events.on('post.updated', () => previews.nudge());
  }

  // Remembered anonymous GETs with a fresh cached body are answered before Fastify routes them,
  // so no Fastify hook runs for them: a hook that must see every request (an IP block list, a
  // rate limit) needs FAST_READS=off or a check in FastReads.serve.
  const fastReads = config.fastReads.enabled
    ? new FastReads({ cache: caches.pages, tracing, metrics, shedder, maxUrls: config.fastReads.maxUrls })
    : null;
  const app = Fastify({
    ...(fastReads ? { serverFactory: fastReadsServer(fastReads) } : {}),
    ...(logger ? { loggerInstance: logger } : { logger: false }),
    logController: new LogController({ disableRequestLogging: true }),
    // request.log is the root logger: the trace mixin already puts the request's ids on every
    // line, and Fastify's per-request pino child cost 18% of a cached read's throughput.
    childLoggerFactory: (logger) => logger,
    bodyLimit: config.bodyLimit,
    // Wiki titles may be 200 characters (percent-encoded, longer): the default 100 would 414 them.
    routerOptions: { maxParamLength: 1024 },
    // The router answers these before any hook runs, so an upgrade request refused here needs
    // its socket closed here too (live/upgrades.ts).
    frameworkErrors: (err, request, reply) => {
      closeUpgradeAfterAnswer(request, reply);
      frameworkErrors(err, request, reply);
    },
    return503OnClosing: true,
  });
  app.decorate('services', services);
  app.decorate('fastReads', fastReads);
  if (fastReads) {
    // From the start of close, every request goes through Fastify, which answers 503 and closes.
    app.addHook('preClose', (done) => {
      fastReads.close();
      done();
    });
  }
  app.decorateRequest('token', undefined);
  // Callback style: an async hook costs a promise per request on every route. Root and before
  // keel's plugin (whose onRequest may shed), so that every upgrade request answered over HTTP,
  // on any path, gets its socket closed (live/upgrades.ts); in the existing hook rather than a
  // hook of its own, because ordinary requests then pay one property read for it.
  app.addHook('onRequest', (request, reply, done) => {
    request.token = bearerToken(request);
    closeUpgradeAfterAnswer(request, reply);
    done();
  });
  // A request that writes waits out a checkpoint's pause in writes (a few ms, bounded by the
  // Checkpointer's pauseMaxMs) instead of blocking the event loop on SQLite's write lock.
  // Reads never wait.
  if (checkpointer) {
    app.addHook('preHandler', (request, _reply, done) => {
      const paused = request.method === 'GET' || request.method === 'HEAD' ? undefined : writable();
      if (paused === undefined) done();
      else void paused.then(() => done());
    });
  }
  installValidation(app);
  installErrorHandling(app, storageFailures);
  // A write's reply waits for its cache invalidations to reach Redis (each wait bounded by the L2
  // timeout): this instance's next read sees the write at once, L2 never serves the old value
  // again, and other instances' memory drops it when the bus delivers (a few ms; measured in
  // test/routes/cache.test.ts).
  app.addHook('onSend', (request, _reply, payload, done) => {
    if (request.method === 'GET' || request.method === 'HEAD' || !caches.hasPending) return done(null, payload);
    caches.settle().then(
      () => done(null, payload),
      () => done(null, payload),
    );
  });
  await app.register(keelFastify, {
    tracing,
    otel,
    metrics,
    health,
    shedder,
    metricsRoute: config.metricsToken ? { token: config.metricsToken } : false,
    // The dashboard must stay visible while the service sheds load.
    exempt: ['/dashboard', '/dashboard/*'],
  });
  const longLived: Array<() => Promise<void>> = [() => services.live.close()];
  app.decorate('endLongLived', async () => {
    await Promise.all(longLived.map((end) => end()));
  });
  const dashboard = forumDashboard(
    config,
    { metrics, health, statements: store, live: services.live },
    { onStreams: (end) => longLived.push(end), ...(options.dashboardIntervalMs ? { intervalMs: options.dashboardIntervalMs } : {}) },
  );
  if (dashboard) await app.register(dashboard);

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

/**
 * An HTTP server that offers each request to `fastReads` first. A `serverFactory` replaces the
 * server Fastify would make, so it applies Fastify's timeouts the way Fastify does.
 */
function fastReadsServer(fastReads: FastReads) {
  return (handler: (req: IncomingMessage, res: ServerResponse) => void, opts: FastifyServerOptions): Server => {
    const server = createServer((opts as { http?: HttpServerOptions }).http ?? {}, (req, res) => {
      if (!fastReads.serve(req, res)) handler(req, res);
    });
    if (opts.keepAliveTimeout !== undefined) server.keepAliveTimeout = opts.keepAliveTimeout;
    if (opts.requestTimeout !== undefined) server.requestTimeout = opts.requestTimeout;
    if (opts.connectionTimeout !== undefined) server.setTimeout(opts.connectionTimeout);
    if (opts.maxRequestsPerSocket !== undefined && opts.maxRequestsPerSocket > 0) server.maxRequestsPerSocket = opts.maxRequestsPerSocket;
    return server;
  };
}
