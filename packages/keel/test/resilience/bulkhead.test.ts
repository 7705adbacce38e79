import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import { Bulkhead } from '../../src/resilience/bulkhead.ts';
import { type BulkheadRejectedError, isBulkheadRejectedError, isPolicyClosedError } from '../../src/resilience/errors.ts';
import { FakeClock } from '../../src/testing/index.ts';

function gate() {
  let open!: () => void;
  const p = new Promise<void>((r) => (open = r));
  return { p, open };
}

describe('Bulkhead', () => {
  it('runs up to maxConcurrent calls at once and queues the next', async () => {
    const clock = new FakeClock();
    const b = new Bulkhead({ clock, maxConcurrent: 2, maxQueue: 1 });
    const g = gate();
    let started = 0;
    const work = async () => {
      started++;
      await g.p;
    };
    const calls = [b.execute(work), b.execute(work), b.execute(work)];
    expect(started).toBe(2);
    expect(b.active).toBe(2);
    expect(b.queued).toBe(1);
    g.open();
    await Promise.all(calls);
    expect(started).toBe(3);
    expect(b.active).toBe(0);
    expect(clock.pending).toBe(0);
  });

  it('rejects with reason full when slots and queue are taken', async () => {
    const b = new Bulkhead({ clock: new FakeClock(), maxConcurrent: 1, maxQueue: 0 });
    const g = gate();
    const first = b.execute(() => g.p);
    const err = (await b.execute(async () => 1).catch((e: unknown) => e)) as BulkheadRejectedError;
    expect(isBulkheadRejectedError(err)).toBe(true);
    expect(err.reason).toBe('full');
    g.open();
    await first;
  });

  it('rejects a queued call with reason queue-timeout when it waits too long', async () => {
    const clock = new FakeClock();
    const b = new Bulkhead({ clock, maxConcurrent: 1, maxQueue: 5, queueTimeoutMs: 100 });
    const g = gate();
    const first = b.execute(() => g.p);
    const queued = b.execute(async () => 'never').catch((e: unknown) => e);
    clock.advance(100);
    expect(await queued).toMatchObject({ reason: 'queue-timeout' });
    expect(b.queued).toBe(0);
    g.open();
    await first;
    expect(clock.pending).toBe(0);
  });

  it('times queue waits on monotonic time, so a wall clock stepped back does not extend them', async () => {
    const fake = new FakeClock();
    let offset = 0;
    const clock = {
      now: () => fake.now() + offset,
      // A different origin from now(), as performance.now() has from Date.now().
      monotonic: () => fake.monotonic() - 1_700_000_000_000,
      setTimeout: (fn: () => void, ms: number) => fake.setTimeout(fn, ms),
      clearTimeout: (h: object) => fake.clearTimeout(h),
    };
    const b = new Bulkhead({ clock, maxConcurrent: 1, maxQueue: 5, queueTimeoutMs: 100 });
    const g = gate();
    const first = b.execute(() => g.p);
    let rejected = false;
    const queued = b
      .execute(async () => 'never')
      .catch((e: unknown) => e)
      .finally(() => (rejected = true));
    fake.advance(50);
    offset -= 3_000;
    fake.advance(49);
    await Promise.resolve();
    expect(rejected).toBe(false);
    fake.advance(1);
    expect(await queued).toMatchObject({ reason: 'queue-timeout' });
    g.open();
    await first;
  });

  it('removes a queued call whose caller aborts and drops its listener', async () => {
    const clock = new FakeClock();
    const b = new Bulkhead({ clock, maxConcurrent: 1 });
    const g = gate();
    const first = b.execute(() => g.p);
    const ac = new AbortController();
    const queued = b.execute(async () => 'never', { signal: ac.signal });
    ac.abort(new Error('left'));
    await expect(queued).rejects.toThrow('left');
    expect(b.queued).toBe(0);
    expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0);
    g.open();
    await first;
  });

  it('frees the slot when a call fails', async () => {
    const b = new Bulkhead({ clock: new FakeClock(), maxConcurrent: 1, maxQueue: 0 });
    await b
      .execute(async () => {
        throw new Error('x');
      })
      .catch(() => {});
    await expect(b.execute(async () => 'next')).resolves.toBe('next');
  });

  it('rejects queued calls on close and leaves running ones to finish', async () => {
    const clock = new FakeClock();
    const b = new Bulkhead({ clock, maxConcurrent: 1 });
    const g = gate();
    const running = b.execute(async () => {
      await g.p;
      return 'done';
    });
    const queued = b.execute(async () => 'never').catch((e: unknown) => e);
    await b.close();
    expect(isPolicyClosedError(await queued)).toBe(true);
    expect(clock.pending).toBe(0);
    g.open();
    await expect(running).resolves.toBe('done');
  });

  it('rejects bad options at construction', () => {
    expect(() => new Bulkhead({ maxConcurrent: 0 })).toThrow(/"maxConcurrent"/);
    expect(() => new Bulkhead({ maxQueue: -1 })).toThrow(/"maxQueue"/);
    expect(() => new Bulkhead({ queueTimeoutMs: 2 ** 40 })).toThrow(/"queueTimeoutMs"/);
  });
});
