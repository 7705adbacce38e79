import { describe, expect, it } from 'vitest';
import { Health } from '../../src/observe/index.ts';
import { FakeClock, flushMicrotasks } from '../../src/testing/index.ts';

const never = () => new Promise<never>(() => {});

describe('Health', () => {
  it('reports healthy with each check status, latency and detail', async () => {
    const clock = new FakeClock();
    const health = new Health({ clock });
    health.register('db', async () => {
      await new Promise<void>((resolve) => clock.setTimeout(resolve, 12));
      return 'select 1';
    });
    const pending = health.report();
    await clock.advanceAsync(12);
    expect(await pending).toEqual({
      status: 'healthy',
      checks: { db: { status: 'up', kind: 'critical', latency_ms: 12, detail: 'select 1' } },
    });
  });

  it('times a slow check out at its own timeout while others pass', async () => {
    const clock = new FakeClock();
    const health = new Health({ clock, timeoutMs: 1_000 });
    health.register('slow', never, { timeoutMs: 50 });
    health.register('fast', () => undefined);
    const pending = health.report();
    await clock.advanceAsync(50);
    const report = await pending;
    expect(report.status).toBe('unhealthy');
    expect(report.checks.slow).toMatchObject({ status: 'down', latency_ms: 50, detail: expect.stringMatching(/timed out after 50 ms/) });
    expect(report.checks.fast?.status).toBe('up');
  });

  it('counts a synchronous check that returned after its timeout as timed out', async () => {
    const clock = new FakeClock();
    const health = new Health({ clock, timeoutMs: 50 });
    // Sync work cannot be interrupted and holds the loop, so no timer fires while it runs.
    health.register('sqlite', () => clock.set(clock.now() + 300));
    const res = await health.reportResponse();
    expect(res.statusCode).toBe(503);
    expect(res.body).toMatchObject({
      status: 'unhealthy',
      checks: {
        sqlite: { status: 'down', latency_ms: 300, detail: expect.stringMatching(/timed out after 50 ms \(it answered after 300 ms\)/) },
      },
    });
  });

  /** A check whose first call hangs, ignoring its signal, until `settle()`; later calls answer at once. */
  function hangingOnce(health: Health): { calls: () => number; settle: () => void } {
    let calls = 0;
    let settle: () => void = () => {};
    health.register('db', () => {
      if (calls++ > 0) return undefined;
      return new Promise<void>((resolve) => {
        settle = resolve;
      });
    });
    return { calls: () => calls, settle: () => settle() };
  }

  it('starts no second call of a check while a timed-out call is pending, and reports it down as still running', async () => {
    const clock = new FakeClock();
    const health = new Health({ clock, timeoutMs: 20, ttlMs: 0 });
    const db = hangingOnce(health);
    const first = health.check('db');
    await clock.advanceAsync(20);
    expect(await first).toMatchObject({ status: 'down', latency_ms: 20 });
    clock.advance(30);
    for (let i = 0; i < 4; i++) {
      expect(await health.check('db')).toMatchObject({ status: 'down', latency_ms: 50, detail: expect.stringMatching(/still running/) });
    }
    expect((await health.ready()).statusCode).toBe(503);
    expect(db.calls()).toBe(1);
  });

  it('calls a check again once its timed-out call has settled', async () => {
    const clock = new FakeClock();
    const health = new Health({ clock, timeoutMs: 20, ttlMs: 0 });
    const db = hangingOnce(health);
    const first = health.check('db');
    await clock.advanceAsync(20);
    await first;
    db.settle();
    await flushMicrotasks();
    expect(await health.check('db')).toMatchObject({ status: 'up' });
    expect(db.calls()).toBe(2);
  });

  it('aborts the signal of a check that timed out', async () => {
    const clock = new FakeClock();
    const health = new Health({ clock });
    let signal: AbortSignal | undefined;
    health.register(
      'db',
      (s) => {
        signal = s;
        return never();
      },
      { timeoutMs: 10 },
    );
    const pending = health.check('db');
    await clock.advanceAsync(10);
    await pending;
    expect(signal?.aborted).toBe(true);
  });

  it('reuses a result within its TTL and runs the check again after', async () => {
    const clock = new FakeClock();
    const health = new Health({ clock, ttlMs: 1_000 });
    let runs = 0;
    health.register('db', () => {
      runs++;
    });
    await health.report();
    clock.advance(999);
    await health.report();
    expect(runs).toBe(1);
    clock.advance(1);
    await health.report();
    expect(runs).toBe(2);
  });

  it('shares one run between concurrent probes', async () => {
    const clock = new FakeClock();
    const health = new Health({ clock });
    let runs = 0;
    health.register('db', () => {
      runs++;
      return new Promise<void>((resolve) => clock.setTimeout(resolve, 5));
    });
    const probes = [health.ready(), health.ready(), health.report()];
    await clock.advanceAsync(5);
    await Promise.all(probes);
    expect(runs).toBe(1);
  });

  it('answers 503 unhealthy when a critical check fails', async () => {
    const health = new Health();
    health.register('db', () => {
      throw new Error('SQLITE_BUSY');
    });
    const res = await health.reportResponse();
    expect(res.statusCode).toBe(503);
    expect(res.body).toMatchObject({ status: 'unhealthy', checks: { db: { status: 'down', detail: 'SQLITE_BUSY' } } });
    expect((await health.ready()).statusCode).toBe(503);
  });

  it('answers 200 degraded when only an optional check fails, and stays ready', async () => {
    const health = new Health();
    health.register('db', () => undefined);
    health.register('redis', () => Promise.reject(new Error('ECONNREFUSED')), { kind: 'optional' });
    const res = await health.reportResponse();
    expect(res.statusCode).toBe(200);
    expect(res.body.status).toBe('degraded');
    expect(await health.ready()).toEqual({ statusCode: 200, body: { status: 'ok' } });
  });

  it('runs only critical checks for readiness', async () => {
    const health = new Health();
    let optionalRuns = 0;
    health.register('db', () => undefined);
    health.register('search', () => void optionalRuns++, { kind: 'optional' });
    await health.ready();
    expect(optionalRuns).toBe(0);
  });

  it('never runs a check for liveness', async () => {
    const health = new Health();
    let runs = 0;
    health.register('db', () => {
      runs++;
      throw new Error('down');
    });
    expect(health.live()).toEqual({ statusCode: 200, body: { status: 'ok' } });
    await flushMicrotasks();
    expect(runs).toBe(0);
  });

  it('is not ready while shutting down, even with every check up', async () => {
    const health = new Health();
    health.register('db', () => undefined);
    health.markShuttingDown();
    expect(await health.ready()).toEqual({ statusCode: 503, body: { status: 'shutting_down' } });
    const report = await health.reportResponse();
    expect(report.statusCode).toBe(503);
    expect(report.body).toMatchObject({ status: 'unhealthy', shutting_down: true });
  });

  it('caps the number of checks', () => {
    const health = new Health({ maxChecks: 1 });
    health.register('a', () => undefined);
    expect(() => health.register('b', () => undefined)).toThrow(/maxChecks/);
    health.register('a', () => undefined);
  });

  it('names the bad option', () => {
    expect(() => new Health({ timeoutMs: 0 })).toThrow(/timeoutMs/);
    expect(() => new Health().register('x', () => undefined, { kind: 'maybe' as never })).toThrow(/kind/);
  });

  it('rejects register() without a check function or a name', () => {
    const health = new Health();
    expect(() => (health.register as (name: unknown) => unknown)('db')).toThrow(/option "fn"/);
    expect(() => health.register(undefined as never, () => undefined)).toThrow(/option "name"/);
    expect(() => health.register('', () => undefined)).toThrow(/option "name"/);
  });

  it('rejects a timeout no timer can hold (Infinity, over 2^31 - 1 ms)', () => {
    expect(() => new Health({ timeoutMs: Number.POSITIVE_INFINITY })).toThrow(/option "timeoutMs"/);
    expect(() => new Health({ timeoutMs: 3e9 })).toThrow(/option "timeoutMs"/);
    expect(() => new Health().register('db', () => undefined, { timeoutMs: 3e9 })).toThrow(/option "timeoutMs"/);
  });
});
