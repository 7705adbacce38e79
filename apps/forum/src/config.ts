import { join, resolve } from 'node:path';
import { LIVE_DEFAULTS, type LiveLimits } from './live/limits.ts';
import { APP_DIR } from './paths.ts';
import type { CacheConfig } from './services/cache.ts';
import type { PreviewWorkerOptions } from './services/previews/worker.ts';
import type { SearchOptions } from './services/search.ts';

export interface Config {
  /** TCP port. Env `PORT`. Default `3000`. */
  port: number;
  /** Listen address. Env `HOST`. Default `'127.0.0.1'`. */
  host: string;
  /** SQLite file (unused when `databaseUrl` is set). Env `DATABASE_PATH`. Default `apps/forum/data/forum.db`. */
  databasePath: string;
  /**
   * A PostgreSQL server to use instead of the SQLite file (`postgres://user:pass@host:5432/db`),
   * so several instances can share one database. Env `DATABASE_URL`. Default: none (SQLite).
   */
  databaseUrl: string | undefined;
  /** Connections each instance opens to PostgreSQL at most. Env `DATABASE_POOL_MAX`. Default 10. */
  databasePoolMax: number;
  /** How long a write waits for a SQLite lock held by another connection, ms; past it the request gets a 503. Env `DB_BUSY_TIMEOUT_MS`. Default 5,000. */
  dbBusyTimeoutMs: number;
  /** pino level. Env `LOG_LEVEL`. Default `'info'` (`'warn'` when `NODE_ENV=production`). */
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** Session lifetime in ms. Env `SESSION_TTL_MS`. Default 7 days. */
  sessionTtlMs: number;
  /** How often expired sessions are deleted, ms. Env `SESSION_SWEEP_MS`. Default 10 minutes. */
  sessionSweepMs: number;
  /** Largest request body in bytes (wiki pages may be larger: see `wikiBodyLimit`). Env `BODY_LIMIT`. Default 64 KiB. */
  bodyLimit: number;
  /** Largest wiki PUT body in bytes. Env `WIKI_BODY_LIMIT`. Default 512 KiB. */
  wikiBodyLimit: number;
  /** Scale seeded on first start when the database is empty, or `'none'`. Env `SEED_ON_EMPTY`. Default `'small'`. */
  seedOnEmpty: 'none' | 'small' | 'medium' | 'large';
  /** Failed-login budget per account per 15 minutes. Env `LOGIN_ACCOUNT_LIMIT`. Default 5. */
  loginAccountLimit: number;
  /** Login attempts per IP address per minute. Env `LOGIN_IP_LIMIT`. Default 20. */
  loginIpLimit: number;
  /** Reply depth read below each root post. Env `THREAD_MAX_DEPTH`. Default 5. */
  threadMaxDepth: number;
  /** Rows one thread read may return. Env `THREAD_MAX_ROWS`. Default 1,000. */
  threadMaxRows: number;
  /**
   * Link previews for URLs in posts. Env `PREVIEWS` (`on`/`off`, default `on`) and
   * `PREVIEW_ALLOW_PRIVATE_HOSTS` (`true`/`false`, default `false`); the other options keep the
   * defaults of {@link PreviewWorkerOptions}.
   */
  previews: PreviewWorkerOptions & { enabled: boolean };
  /** Redis, optional: live updates fan out across instances through it. Env `REDIS_URL`. Default unset (one instance). */
  redisUrl: string | undefined;
  /**
   * The `/dashboard` token (at least 16 characters). Env `DASHBOARD_TOKEN`, else `METRICS_TOKEN` if it is that long.
   * Default unset: a random token is generated at start in development (its URL logged once),
   * and in production the dashboard stays off.
   */
  dashboardToken: string | undefined;
  /**
   * Live updates (`/api/v1/live`). Env `LIVE_HEARTBEAT_MS` (30,000), `LIVE_MAX_CONNECTIONS` (10,000),
   * `LIVE_MAX_SUBSCRIPTIONS` (50), `LIVE_MAX_BUFFERED_BYTES` (1 MiB), `LIVE_MAX_PAYLOAD` (4 KiB),
   * `LIVE_MAX_BAD_MESSAGES` (5), `LIVE_PRESENCE_MS` (100), `LIVE_CLOSE_GRACE_MS` (1,000),
   * `LIVE_PRESENCE_REFRESH_MS` (5,000), `LIVE_MAX_REMOTE_PRESENCE` (100,000); see {@link LiveLimits}.
   */
  live: LiveLimits;
  /**
   * Bearer token for `/metrics` (at least 16 characters). Env `METRICS_TOKEN`, else `DASHBOARD_TOKEN`.
   * Default unset: `/metrics` is not served (it is never served without a token).
   */
  metricsToken: string | undefined;
  /**
   * The read caches (see services/cache.ts). Env `CACHE_TTL_MS` (default 60,000), `CACHE_GRACE_MS`
   * (300,000), `SEARCH_CACHE_TTL_MS` (10,000), `LIST_REFRESH_MS` (250: a reply's bump of its
   * forum's topic list reaches other readers within this; 0 at once), `CACHE_MAX_ENTRIES` (20,000), `CACHE_MAX_BYTES`
   * (32 MiB), `CACHE_L2_TIMEOUT_MS` (150). With `REDIS_URL` the caches add Redis as L2 and
   * invalidate across instances.
   */
  cache: Omit<CacheConfig, 'redisUrl'>;
  /** Search workers. Env `SEARCH_WORKERS` (threads ranking FTS queries off the event loop; default 1; 0 runs them on the main thread; on PostgreSQL, searches running in the server at once), `SEARCH_MAX_QUEUE` (default 256: beyond it, 503), `SEARCH_TIMEOUT_MS` (default 5,000: a query waiting and running longer gets 503) and `SEARCH_INDEX_DELAY_MS` (default 100: a new post is searchable within it, at once for its writer). */
  search: SearchOptions & { indexDelayMs: number };
  /** Graceful shutdown; see `GracefulShutdown` in keel/lifecycle. */
  shutdown: {
    /** Not-ready but still serving for this long after SIGTERM, so load balancers notice. Env `SHUTDOWN_DELAY_MS`. Default 5,000 in production, 0 otherwise. */
    readinessDelayMs: number;
    /** Everything (delay, drain, close) must finish within this, or the process exits 1. Env `SHUTDOWN_DEADLINE_MS`. Default 25,000. */
    deadlineMs: number;
  };
  /**
   * Load shedding: new requests get a fast 503 with Retry-After once a figure has been over its
   * threshold for two 100 ms intervals in a row (in-flight: at once), and until it has been back
   * in its band for a second; each start and end is logged. Env `SHED_MAX_EVENT_LOOP_DELAY_MS`
   * (default 200), `SHED_MAX_IN_FLIGHT` (default 5,000), `SHED_MAX_HEAP_RATIO` (percent of the
   * heap limit, default 95). Event-loop utilisation is not a threshold: a busy, healthy server
   * runs near 1.0 (see docs/observe.md).
   */
  shedding: { maxEventLoopDelayMs: number; maxInFlight: number; maxHeapUsedRatio: number };
  /**
   * Cached public reads answered before Fastify routes them (http/fast-reads.ts). Env
   * `FAST_READS` (`on`/`off`, default `on`) and `FAST_READS_MAX_URLS` (URLs remembered, default 10,000).
   */
  fastReads: { enabled: boolean; maxUrls: number };
}

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
const SCALES = ['none', 'small', 'medium', 'large'] as const;

function int(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new Error(`config: ${name} must be an integer from ${min} to ${max} (got ${JSON.stringify(raw)})`);
  return n;
}

function oneOf<T extends string>(env: NodeJS.ProcessEnv, name: string, allowed: readonly T[], fallback: T): T {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!(allowed as readonly string[]).includes(raw))
    throw new Error(`config: ${name} must be one of ${allowed.join(', ')} (got ${JSON.stringify(raw)})`);
  return raw as T;
}

function databaseUrl(env: NodeJS.ProcessEnv): string | undefined {
  const raw = env.DATABASE_URL;
  if (raw === undefined || raw === '') return undefined;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new Error('config: DATABASE_URL must be a URL like postgres://user:password@host:5432/forum');
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:')
    throw new Error(`config: DATABASE_URL must be a postgres:// URL (got ${url.protocol}//); for SQLite set DATABASE_PATH`);
  return raw;
}

function token(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  if (raw.length < 16) throw new Error(`config: ${name} must be at least 16 characters`);
  return raw;
}

/** Reads the config from the environment, with defaults; throws naming the variable on bad input. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: Partial<Config> = {}): Config {
  const production = env.NODE_ENV === 'production';
  const config: Config = {
    port: int(env, 'PORT', 3000, 0, 65535),
    host: env.HOST || '127.0.0.1',
    // ':memory:' is SQLite's in-memory database, not a file name to resolve against the cwd.
    databasePath: env.DATABASE_PATH
      ? env.DATABASE_PATH === ':memory:'
        ? ':memory:'
        : resolve(env.DATABASE_PATH)
      : join(APP_DIR, 'data', 'forum.db'),
    databaseUrl: databaseUrl(env),
    databasePoolMax: int(env, 'DATABASE_POOL_MAX', 10, 1, 1_000),
    dbBusyTimeoutMs: int(env, 'DB_BUSY_TIMEOUT_MS', 5_000, 0, 60_000),
    logLevel: oneOf(env, 'LOG_LEVEL', LEVELS, production ? 'warn' : 'info'),
    sessionTtlMs: int(env, 'SESSION_TTL_MS', 7 * 86_400_000, 60_000, 365 * 86_400_000),
    sessionSweepMs: int(env, 'SESSION_SWEEP_MS', 600_000, 1_000, 86_400_000),
    bodyLimit: int(env, 'BODY_LIMIT', 64 * 1024, 1024, 16 * 1024 * 1024),
    wikiBodyLimit: int(env, 'WIKI_BODY_LIMIT', 512 * 1024, 1024, 16 * 1024 * 1024),
    seedOnEmpty: oneOf(env, 'SEED_ON_EMPTY', SCALES, 'small'),
    loginAccountLimit: int(env, 'LOGIN_ACCOUNT_LIMIT', 5, 1, 1000),
    loginIpLimit: int(env, 'LOGIN_IP_LIMIT', 20, 1, 100_000),
    threadMaxDepth: int(env, 'THREAD_MAX_DEPTH', 5, 1, 50),
    threadMaxRows: int(env, 'THREAD_MAX_ROWS', 1_000, 10, 100_000),
    previews: {
      enabled: oneOf(env, 'PREVIEWS', ['on', 'off'] as const, 'on') === 'on',
      allowPrivateHosts: oneOf(env, 'PREVIEW_ALLOW_PRIVATE_HOSTS', ['true', 'false'] as const, 'false') === 'true',
    },
    redisUrl: env.REDIS_URL || undefined,
    // METRICS_TOKEN is shared only when it is long enough; its own route may accept shorter ones.
    dashboardToken: token(env, 'DASHBOARD_TOKEN') ?? ((env.METRICS_TOKEN?.length ?? 0) >= 16 ? env.METRICS_TOKEN : undefined),
    live: {
      heartbeatMs: int(env, 'LIVE_HEARTBEAT_MS', LIVE_DEFAULTS.heartbeatMs, 10, 3_600_000),
      maxConnections: int(env, 'LIVE_MAX_CONNECTIONS', LIVE_DEFAULTS.maxConnections, 1, 1_000_000),
      maxSubscriptions: int(env, 'LIVE_MAX_SUBSCRIPTIONS', LIVE_DEFAULTS.maxSubscriptions, 1, 10_000),
      maxBufferedBytes: int(env, 'LIVE_MAX_BUFFERED_BYTES', LIVE_DEFAULTS.maxBufferedBytes, 1024, 256 * 1024 * 1024),
      maxPayload: int(env, 'LIVE_MAX_PAYLOAD', LIVE_DEFAULTS.maxPayload, 64, 1024 * 1024),
      maxBadMessages: int(env, 'LIVE_MAX_BAD_MESSAGES', LIVE_DEFAULTS.maxBadMessages, 1, 1000),
      presenceMs: int(env, 'LIVE_PRESENCE_MS', LIVE_DEFAULTS.presenceMs, 0, 60_000),
      closeGraceMs: int(env, 'LIVE_CLOSE_GRACE_MS', LIVE_DEFAULTS.closeGraceMs, 0, 60_000),
      presenceRefreshMs: int(env, 'LIVE_PRESENCE_REFRESH_MS', LIVE_DEFAULTS.presenceRefreshMs, 100, 3_600_000),
      maxRemotePresence: int(env, 'LIVE_MAX_REMOTE_PRESENCE', LIVE_DEFAULTS.maxRemotePresence, 1, 10_000_000),
      maxPending: int(env, 'LIVE_MAX_PENDING', LIVE_DEFAULTS.maxPending, 1, 10_000),
    },
    cache: {
      ttlMs: int(env, 'CACHE_TTL_MS', 60_000, 1, 86_400_000),
      graceMs: int(env, 'CACHE_GRACE_MS', 300_000, 0, 86_400_000),
      searchTtlMs: int(env, 'SEARCH_CACHE_TTL_MS', 10_000, 1, 3_600_000),
      listRefreshMs: int(env, 'LIST_REFRESH_MS', 250, 0, 60_000),
      maxEntries: int(env, 'CACHE_MAX_ENTRIES', 20_000, 1, 10_000_000),
      maxBytes: int(env, 'CACHE_MAX_BYTES', 32 * 1024 * 1024, 1024, 16 * 1024 * 1024 * 1024),
      l2TimeoutMs: int(env, 'CACHE_L2_TIMEOUT_MS', 150, 1, 60_000),
    },
    search: {
      workers: int(env, 'SEARCH_WORKERS', 1, 0, 64),
      maxQueue: int(env, 'SEARCH_MAX_QUEUE', 256, 1, 100_000),
      timeoutMs: int(env, 'SEARCH_TIMEOUT_MS', 5_000, 1, 600_000),
      indexDelayMs: int(env, 'SEARCH_INDEX_DELAY_MS', 100, 0, 60_000),
    },
    metricsToken: token(env, 'METRICS_TOKEN') ?? token(env, 'DASHBOARD_TOKEN'),
    shutdown: {
      readinessDelayMs: int(env, 'SHUTDOWN_DELAY_MS', production ? 5_000 : 0, 0, 600_000),
      deadlineMs: int(env, 'SHUTDOWN_DEADLINE_MS', 25_000, 100, 3_600_000),
    },
    shedding: {
      maxEventLoopDelayMs: int(env, 'SHED_MAX_EVENT_LOOP_DELAY_MS', 200, 1, 60_000),
      maxInFlight: int(env, 'SHED_MAX_IN_FLIGHT', 5_000, 1, 1_000_000),
      maxHeapUsedRatio: int(env, 'SHED_MAX_HEAP_RATIO', 95, 1, 100) / 100,
    },
    fastReads: {
      enabled: oneOf(env, 'FAST_READS', ['on', 'off'], 'on') === 'on',
      maxUrls: int(env, 'FAST_READS_MAX_URLS', 10_000, 1, 1_000_000),
    },
    ...overrides,
  };
  const { readinessDelayMs, deadlineMs } = config.shutdown;
  if (deadlineMs <= readinessDelayMs) {
    // The deadline covers the delay, the drain and the close: it must leave room after the delay.
    throw new Error(
      `config: SHUTDOWN_DEADLINE_MS (${deadlineMs}) must be greater than SHUTDOWN_DELAY_MS (${readinessDelayMs}); it covers the delay, the drain and the close`,
    );
  }
  return config;
}
