import { describe, expect, it } from 'vitest';
import { CallDeadlines } from '../../../src/cache/tiers/deadlines.ts';
import { isPolicyClosedError, isTimeoutError } from '../../../src/resilience/index.ts';
import { FakeClock } from '../../../src/testing/fake-clock.ts';
import { unhandledDuring } from '../helpers.ts';

const never = () => new Promise<never>(() => {});

describe('CallDeadlines', () => {
  it('passes a result through when the work settles in time', async () => {
    const d = new CallDeadlines(new FakeClock(), 100, 'l2');
    expect(await d.race(Promise.resolve(7))).toBe(7);
    d.close();
  });

  it('passes a rejection through', async () => {
    const d = new CallDeadlines(new FakeClock(), 100, 'l2');
    await expect(d.race(Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    d.close();
  });

  it('rejects with a TimeoutError exactly at the deadline', async () => {
    const clock = new FakeClock();
    const d = new CallDeadlines(clock, 100, 'l2');
    let outcome: unknown = 'pending';
    d.race(never()).catch((e) => {
      outcome = e;
    });
    await clock.advanceAsync(99);
    expect(outcome).toBe('pending');
    await clock.advanceAsync(1);
    expect(isTimeoutError(outcome)).toBe(true);
    d.close();
  });

  it('times each call out from its own start, with one timer for all', async () => {
    const clock = new FakeClock();
    const d = new CallDeadlines(clock, 100, 'l2');
    const out: string[] = [];
    d.race(never()).catch(() => out.push('first'));
    await clock.advanceAsync(60);
    d.race(never()).catch(() => out.push('second'));
    expect(clock.pending).toBe(1);
    await clock.advanceAsync(40);
    expect(out).toEqual(['first']);
    await clock.advanceAsync(60);
    expect(out).toEqual(['first', 'second']);
    d.close();
  });

  it('leaves no timer behind once idle and closed', async () => {
    const clock = new FakeClock();
    const d = new CallDeadlines(clock, 100, 'l2');
    await d.race(Promise.resolve(1));
    d.close();
    expect(clock.pending).toBe(0);
  });

  it('rejects calls in flight and new calls after close', async () => {
    const d = new CallDeadlines(new FakeClock(), 100, 'l2');
    const inFlight = d.race(never()).catch((e) => e);
    d.close();
    expect(isPolicyClosedError(await inFlight)).toBe(true);
    expect(isPolicyClosedError(await d.race(Promise.resolve(1)).catch((e) => e))).toBe(true);
  });

  it('handles the rejection of work issued before a call made after close (no unhandled rejection)', async () => {
    const d = new CallDeadlines(new FakeClock(), 100, 'l2');
    d.close();
    let outcome: unknown;
    const unhandled = await unhandledDuring(async () => {
      let fail!: (e: unknown) => void;
      // An ioredis command sent on a connection that close() ended: it rejects by itself.
      const work = new Promise<never>((_, reject) => {
        fail = reject;
      });
      const raced = d.race(work).catch((e) => e);
      fail(new Error('Connection is closed.'));
      outcome = await raced;
    });
    expect(unhandled).toEqual([]);
    expect(isPolicyClosedError(outcome)).toBe(true);
  });
});
