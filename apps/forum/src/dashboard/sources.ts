/**
 * What the dashboard reads, and the one JSON snapshot it sends to the page.
 *
 * The dashboard depends on plain functions, not on `keel/observe`'s objects or the live hub (only
 * on their data shapes), so each part can be swapped (a test source, a second instance) and a
 * missing part only blanks its panel.
 */
import type { MetricsSnapshot, WindowStats } from 'keel/observe';
import type { SqlStat } from '../db/query-stats.ts';

/** The in-process metrics the page charts: `keel/observe`'s `Metrics.snapshot()`. */
export type { MetricsSnapshot, WindowStats };

/** The health report (structurally `keel/observe`'s `HealthReport`). */
export interface HealthSummary {
  status: 'healthy' | 'degraded' | 'unhealthy';
  shutting_down?: boolean;
  checks: Record<string, { status: string; latency_ms: number; kind?: string; detail?: unknown }>;
}

/** Live-update connection counts (the live hub's `stats()`). */
export interface LiveStats {
  connections: number;
  rooms: number;
  subscriptions: number;
}

/**
 * Where the dashboard gets its figures. Only `metrics` is required; a source left out shows
 * as "not configured" on the page.
 *
 * @example
 * ```ts
 * const sources: DashboardSources = {
 *   metrics: () => metrics.snapshot(),
 *   health: () => health.report(),
 *   slowSql: () => repos.statements.stats.top(),
 *   live: () => liveHub.stats(),
 * };
 * ```
 */
export interface DashboardSources {
  metrics(): MetricsSnapshot;
  health?(): Promise<HealthSummary>;
  slowSql?(): SqlStat[];
  /**
   * Resolves once the slowest statements' plans are ready, where they are explained
   * asynchronously (PostgreSQL); `GET /dashboard/data` waits for it as for health, a stream tick never.
   */
  slowSqlPlans?(): Promise<void>;
  live?(): LiveStats;
}

/** One frame of the page, as `GET /dashboard/data` returns it and each SSE event carries it. */
export interface DashboardSnapshot {
  at: number;
  intervalMs: number;
  sloMs: number;
  /** The error-rate objective, a fraction of responses (0.01 = 1 %). */
  errorRateSlo: number;
  /** Dashboard streams open now. */
  viewers: number;
  metrics: MetricsSnapshot | null;
  health: HealthSummary | null;
  slowSql: SqlStat[] | null;
  live: LiveStats | null;
  /** Sources that threw this time, with the message (the page shows them rather than going blank silently). */
  errors: Array<{ source: string; message: string }>;
}

const MAX_DETAIL = 200;
const MAX_SQL = 2_000;

/** A check detail as short text: Error objects serialise to `{}` otherwise. */
function detailText(detail: unknown): string | undefined {
  if (detail === undefined || detail === null) return undefined;
  if (detail instanceof Error) return `${detail.name}: ${detail.message}`.slice(0, MAX_DETAIL);
  if (typeof detail === 'string') return detail.slice(0, MAX_DETAIL);
  try {
    return JSON.stringify(detail).slice(0, MAX_DETAIL);
  } catch {
    return String(detail).slice(0, MAX_DETAIL);
  }
}

/** The report with each check's detail reduced to bounded text. */
export function summariseHealth(report: HealthSummary): HealthSummary {
  const checks: HealthSummary['checks'] = {};
  for (const [name, c] of Object.entries(report.checks)) {
    const detail = detailText(c.detail);
    checks[name] = { status: c.status, latency_ms: c.latency_ms, ...(c.kind ? { kind: c.kind } : {}), ...(detail ? { detail } : {}) };
  }
  return { status: report.status, ...(report.shutting_down ? { shutting_down: true } : {}), checks };
}

/** Reads the synchronous sources into a snapshot, catching each one's failure separately. */
export function readSources(
  sources: DashboardSources,
  health: HealthSummary | null,
  frame: { at: number; intervalMs: number; sloMs: number; errorRateSlo: number; viewers: number },
): DashboardSnapshot {
  const errors: DashboardSnapshot['errors'] = [];
  const read = <T>(source: string, fn: (() => T) | undefined): T | null => {
    if (!fn) return null;
    try {
      return fn();
    } catch (err) {
      errors.push({ source, message: err instanceof Error ? err.message : String(err) });
      return null;
    }
  };
  const slowSql = read('slowSql', sources.slowSql && (() => sources.slowSql!()));
  return {
    ...frame,
    metrics: read('metrics', () => sources.metrics()),
    health,
    slowSql: slowSql?.map((s) => (s.sql.length > MAX_SQL ? { ...s, sql: `${s.sql.slice(0, MAX_SQL)}…` } : s)) ?? null,
    live: read('live', sources.live && (() => sources.live!())),
    errors,
  };
}
