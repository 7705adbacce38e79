import { FakeClock, flushMicrotasks } from 'keel/testing';
import { describe, expect, it } from 'vitest';
import { Collector } from '../../src/dashboard/collector.ts';
import type { HealthSummary } from '../../src/dashboard/sources.ts';
import { metricsSnapshot } from './fixtures.ts';

const healthy: HealthSummary = { status: 'healthy', checks: { db: { status: 'up', latency_ms: 1 } } };
const degraded: HealthSummary = { status: 'degraded', checks: { redis: { status: 'down', latency_ms: 1 } } };

function collector(health: () => Promise<HealthSummary>, clock = new FakeClock()) {
  return new Collector(
    { metrics: () => metricsSnapshot(), health },
    { intervalMs: 1000, sloMs: 127, errorRateSlo: 0.01, healthTimeoutMs: 500, clock, streams: () => 2 },
  );
}

describe('Collector', () => {
  it('gives a snapshot at once with the last known health and refreshes it in the background', async () => {
    let report = healthy;
    const c = collector(async () => report);
    expect(c.snapshot().health).toBeNull();
    await flushMicrotasks();
    report = degraded;
    // The last known report, while the next read starts.
    expect(c.snapshot().health?.status).toBe('healthy');
    await flushMicrotasks();
    expect(c.snapshot().health?.status).toBe('degraded');
  });

  it('never runs two health reads at once', async () => {
    let calls = 0;
    let release: (r: HealthSummary) => void = () => {};
    const c = collector(() => {
      calls++;
      return new Promise((r) => {
        release = r;
      });
    });
    for (let i = 0; i < 5; i++) c.snapshot();
    expect(calls).toBe(1);
    release(healthy);
    await flushMicrotasks();
    c.snapshot();
    expect(calls).toBe(2);
  });

  it('keeps the last report and names the error when the health source fails', async () => {
    let fail = false;
    const c = collector(async () => {
      if (fail) throw new Error('health broke');
      return healthy;
    });
    await c.fresh();
    fail = true;
    const snap = await c.fresh();
    expect(snap.health?.status).toBe('healthy');
    expect(snap.errors).toEqual([{ source: 'health', message: 'health broke' }]);
  });

  it('waits for a current report in fresh(), at most healthTimeoutMs', async () => {
    const clock = new FakeClock();
    const c = collector(() => new Promise(() => {}), clock);
    let done = false;
    const pending = c.fresh().then((s) => {
      done = true;
      return s;
    });
    await flushMicrotasks();
    expect(done).toBe(false);
    clock.advance(500);
    const snap = await pending;
    expect(snap.health).toBeNull();
    expect(clock.pending).toBe(0);
  });

  it("waits in fresh() for the slowest statements' plans, and a stream tick never asks for them", async () => {
    const clock = new FakeClock();
    let plans = 0;
    let release: () => void = () => {};
    const c = new Collector(
      {
        metrics: () => metricsSnapshot(),
        slowSql: () => [],
        slowSqlPlans: () => {
          plans++;
          return new Promise<void>((r) => {
            release = r;
          });
        },
      },
      { intervalMs: 1000, sloMs: 127, errorRateSlo: 0.01, healthTimeoutMs: 500, clock, streams: () => 0 },
    );
    c.snapshot();
    expect(plans).toBe(0);
    let done = false;
    const pending = c.fresh().then(() => {
      done = true;
    });
    await flushMicrotasks();
    expect(plans).toBe(1);
    expect(done).toBe(false);
    release();
    await pending;
    expect(clock.pending).toBe(0);
  });

  it('builds the snapshot in fresh() when the plans source fails, or stalls past healthTimeoutMs', async () => {
    const clock = new FakeClock();
    const sources = (slowSqlPlans: () => Promise<void>) =>
      new Collector(
        { metrics: () => metricsSnapshot(), slowSql: () => [], slowSqlPlans },
        { intervalMs: 1000, sloMs: 127, errorRateSlo: 0.01, healthTimeoutMs: 500, clock, streams: () => 0 },
      );
    await expect(sources(() => Promise.reject(new Error('no server'))).fresh()).resolves.toMatchObject({ slowSql: [], errors: [] });
    const stalled = sources(() => new Promise(() => {})).fresh();
    await flushMicrotasks();
    clock.advance(500);
    await expect(stalled).resolves.toMatchObject({ slowSql: [] });
  });

  it('stamps the snapshot with the clock, the frame settings and the viewers', () => {
    const clock = new FakeClock(5_000);
    const snap = collector(async () => healthy, clock).snapshot();
    expect(snap).toMatchObject({ at: 5_000, intervalMs: 1000, sloMs: 127, viewers: 2 });
  });
});
