import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import type { DashboardSnapshot } from '../../src/dashboard/sources.ts';
import { forumDashboard } from '../../src/dashboard/wire.ts';
import { metricsSnapshot, TOKEN } from './fixtures.ts';

let app: FastifyInstance | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

const parts = {
  metrics: { snapshot: () => metricsSnapshot(9) },
  health: { report: async () => ({ status: 'healthy' as const, checks: {} }) },
  live: { stats: () => ({ connections: 1, rooms: 1, subscriptions: 1, extra: 5 }) },
};

describe('forumDashboard', () => {
  it('stays off in production without a token', () => {
    expect(forumDashboard({ dashboardToken: undefined }, parts, { production: true })).toBeUndefined();
  });

  it('serves the forum parts behind the configured token', async () => {
    const plugin = forumDashboard({ dashboardToken: TOKEN }, parts, { production: true });
    app = Fastify();
    await app.register(plugin!);
    const res = await app.inject({ url: '/dashboard/data', headers: { authorization: `Bearer ${TOKEN}` } });
    const body = res.json() as DashboardSnapshot;
    expect(body.metrics?.windows['10s'].rps).toBe(9);
    expect(body.health?.status).toBe('healthy');
    expect(body.live?.connections).toBe(1);
    expect(body.slowSql).toBeNull();
  });

  it('generates a token in development', () => {
    expect(forumDashboard({ dashboardToken: undefined }, parts, { production: false })).toBeTypeOf('function');
  });
});
