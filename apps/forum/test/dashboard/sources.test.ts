import { describe, expect, it } from 'vitest';
import { readSources, summariseHealth } from '../../src/dashboard/sources.ts';
import { metricsSnapshot } from './fixtures.ts';

const frame = { at: 1, intervalMs: 1000, sloMs: 127, errorRateSlo: 0.01, viewers: 0 };

describe('summariseHealth', () => {
  it('turns each check detail into bounded text', () => {
    const s = summariseHealth({
      status: 'degraded',
      checks: {
        redis: { status: 'down', latency_ms: 5, kind: 'optional', detail: new TypeError('connect ECONNREFUSED') },
        db: { status: 'up', latency_ms: 1, detail: { rows: 1 } },
        long: { status: 'up', latency_ms: 1, detail: 'x'.repeat(1000) },
        none: { status: 'up', latency_ms: 1 },
      },
    });
    expect(s.checks.redis).toEqual({ status: 'down', latency_ms: 5, kind: 'optional', detail: 'TypeError: connect ECONNREFUSED' });
    expect(s.checks.db?.detail).toBe('{"rows":1}');
    expect(s.checks.long?.detail).toHaveLength(200);
    expect(s.checks.none).toEqual({ status: 'up', latency_ms: 1 });
  });
});

describe('readSources', () => {
  it('reads every source, leaving the unconfigured ones null', () => {
    const snap = readSources({ metrics: () => metricsSnapshot(5) }, null, frame);
    expect(snap).toMatchObject({ ...frame, health: null, slowSql: null, live: null, errors: [] });
    expect(snap.metrics?.windows['10s'].rps).toBe(5);
  });

  it('catches each failing source separately', () => {
    const snap = readSources(
      {
        metrics: () => metricsSnapshot(),
        slowSql: () => {
          throw new Error('db closed');
        },
        live: () => ({ connections: 2, rooms: 1, subscriptions: 1 }),
      },
      null,
      frame,
    );
    expect(snap.metrics).not.toBeNull();
    expect(snap.slowSql).toBeNull();
    expect(snap.live?.connections).toBe(2);
    expect(snap.errors).toEqual([{ source: 'slowSql', message: 'db closed' }]);
  });

  it('truncates very long SQL text', () => {
    const sql = `SELECT ${'x, '.repeat(2000)}1`;
    const snap = readSources(
      {
        metrics: () => metricsSnapshot(),
        slowSql: () => [{ name: 'big', sql, count: 1, totalMs: 1, p50Ms: 1, p99Ms: 1, maxMs: 1, plan: [] }],
      },
      null,
      frame,
    );
    expect(snap.slowSql?.[0]?.sql.length).toBe(2001);
  });
});
