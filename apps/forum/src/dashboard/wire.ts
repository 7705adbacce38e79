import type { FastifyPluginAsync } from 'fastify';
import type { MetricsSnapshot } from 'keel/observe';
import type { Config } from '../config.ts';
import type { QueryStats } from '../db/query-stats.ts';
import { resolveDashboardToken } from './auth.ts';
import { type DashboardOptions, dashboardRoutes } from './routes.ts';
import type { HealthSummary, LiveStats } from './sources.ts';

/** The forum's parts the dashboard reads (each one's own object, so app.ts passes what it built). */
export interface ForumDashboardParts {
  metrics: { snapshot(): MetricsSnapshot };
  health?: { report(): Promise<HealthSummary> };
  statements?: { stats: QueryStats };
  live?: { stats(): LiveStats };
}

/**
 * The dashboard plugin for the forum, or `undefined` when it must stay off (production without
 * `DASHBOARD_TOKEN`). A development start without a token gets a random one and logs the URL once.
 *
 * @example
 * ```ts
 * const dashboard = forumDashboard(config, { metrics, health, statements: store, live: services.live });
 * if (dashboard) await app.register(dashboard);
 * ```
 */
export function forumDashboard(
  config: Pick<Config, 'dashboardToken'>,
  parts: ForumDashboardParts,
  options: Omit<DashboardOptions, 'token' | 'sources'> & { production?: boolean } = {},
): FastifyPluginAsync | undefined {
  const { production = process.env.NODE_ENV === 'production', ...rest } = options;
  const { token, generated } = resolveDashboardToken(config.dashboardToken, production);
  if (token === undefined) return undefined;
  const { metrics, health, statements, live } = parts;
  return dashboardRoutes({
    logUrl: generated,
    ...rest,
    token,
    sources: {
      metrics: () => metrics.snapshot(),
      ...(health ? { health: () => health.report() } : {}),
      ...(statements ? { slowSql: () => statements.stats.top(), slowSqlPlans: () => statements.stats.explainTop() } : {}),
      ...(live ? { live: () => live.stats() } : {}),
    },
  });
}
