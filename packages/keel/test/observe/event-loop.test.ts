import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { EventLoopMonitor } from '../../src/observe/event-loop.ts';
import { FakeClock } from '../../src/testing/fake-clock.ts';

function block(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // spin: the point is to hold the event loop
  }
}

const open: EventLoopMonitor[] = [];
function monitor(clock: FakeClock, windowMs = 10_000, resolutionMs = 5): EventLoopMonitor {
  const m = new EventLoopMonitor({ clock, windowMs, resolutionMs });
  open.push(m);
  return m;
}

afterEach(async () => {
  await Promise.all(open.splice(0).map((m) => m.close()));
});

describe('EventLoopMonitor', () => {
  it('reports 0 before any sample was taken', () => {
    const m = monitor(new FakeClock());
    expect(m.delayMs(99)).toBe(0);
    expect(m.maxDelayMs()).toBe(0);
  });

  it('sees a blocked event loop in its delay percentiles', async () => {
    const m = monitor(new FakeClock());
    await sleep(20);
    block(200);
    await sleep(80);
    expect(m.maxDelayMs()).toBeGreaterThanOrEqual(150);
    expect(m.delayMs(100)).toBeGreaterThanOrEqual(150);
    expect(m.delayMs(50)).toBeLessThan(m.maxDelayMs());
  });

  it('reads an idle loop as almost no delay, not as its sampling interval', async () => {
    // monitorEventLoopDelay counts the interval in every sample: idle read ≥ resolutionMs.
    const m = monitor(new FakeClock(), 10_000, 20);
    await sleep(300);
    expect(m.delayMs(50)).toBeLessThan(10);
  });

  it('reads a loop blocked most of the time in its median, counting the samples the blocked timer missed', async () => {
    const m = monitor(new FakeClock());
    await sleep(200); // ≈ 40 idle samples
    for (let i = 0; i < 12; i++) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      block(50); // one late tick per turn; 12 turns alone would be outvoted by the idle samples
    }
    await sleep(10);
    expect(m.delayMs(50)).toBeGreaterThanOrEqual(10);
  });

  it('keeps the previous window readable right after a reset, then forgets it a window later', async () => {
    const clock = new FakeClock();
    const m = monitor(clock, 1_000);
    await sleep(20);
    block(400);
    await sleep(80);
    clock.advance(1_000); // window 1 (with the block) is now the previous one
    expect(m.maxDelayMs()).toBeGreaterThanOrEqual(350);
    await sleep(150); // window 2 collects quiet samples
    clock.advance(1_000); // window 2 is now the previous one; the block is gone
    // A busy machine can stall a quiet window too, but not for most of a 400 ms block.
    expect(m.maxDelayMs()).toBeLessThan(300);
  });

  it('measures utilisation over the window, not since start', async () => {
    const clock = new FakeClock();
    const m = monitor(clock, 1_000);
    block(150);
    expect(m.utilization()).toBeGreaterThan(0.5);
    clock.advance(1_000);
    await sleep(300); // an idle window
    expect(m.utilization()).toBeLessThan(0.5);
  });

  it('answers utilisation from the previous window while the new one is too young', () => {
    const clock = new FakeClock();
    const m = monitor(clock, 1_000);
    block(150);
    clock.advance(1_000);
    expect(m.utilization()).toBeGreaterThan(0.5);
  });

  it('caches a sample for its resolution and reads heap and RSS', () => {
    const m = monitor(new FakeClock());
    const a = m.sample();
    const b = m.sample();
    expect(b).toBe(a);
    expect(a.heapUsedBytes).toBeGreaterThan(0);
    expect(a.heapTotalBytes).toBeGreaterThanOrEqual(a.heapUsedBytes);
    expect(a.heapLimitBytes).toBeGreaterThan(a.heapTotalBytes);
    expect(a.rssBytes).toBeGreaterThan(0);
    block(10);
    expect(m.sample()).not.toBe(a);
  });

  it('resets its window on the injected clock and leaves no timer after close', async () => {
    const clock = new FakeClock();
    const m = new EventLoopMonitor({ clock, windowMs: 1_000 });
    expect(clock.pending).toBe(1);
    await m.close();
    expect(clock.pending).toBe(0);
    expect(m.closed).toBe(true);
    await m.close();
  });

  it.each([
    [{ resolutionMs: 0 }, /resolutionMs/],
    [{ resolutionMs: 2.5 }, /resolutionMs/],
    [{ windowMs: 50 }, /windowMs/],
    [{ windowMs: Number.POSITIVE_INFINITY }, /windowMs/],
    [{ windowMs: 2 ** 31 }, /windowMs/],
    [{ windowMs: 200, resolutionMs: 50 }, /windowMs/],
    [{ clock: {} }, /clock/],
  ])('rejects bad options %o with a TypeError naming the option', (options, name) => {
    expect(() => new EventLoopMonitor(options as never)).toThrow(TypeError);
    expect(() => new EventLoopMonitor(options as never)).toThrow(name);
  });
});
