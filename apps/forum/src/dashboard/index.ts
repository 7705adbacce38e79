/** The performance dashboard: the route plugin, its sources contract and the token helper. */
export { resolveDashboardToken } from './auth.ts';
export type { DashboardOptions } from './routes.ts';
export { dashboardRoutes } from './routes.ts';
export type {
  DashboardSnapshot,
  DashboardSources,
  HealthSummary,
  LiveStats,
  MetricsSnapshot,
  WindowStats,
} from './sources.ts';
export type { ForumDashboardParts } from './wire.ts';
export { forumDashboard } from './wire.ts';
