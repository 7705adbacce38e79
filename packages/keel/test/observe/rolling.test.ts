import { describe, expect, it } from 'vitest';
import { binOf, LATENCY_BINS, RollingCounter, RollingHistogram, valueOfBin } from '../../src/observe/rolling.ts';
import { FakeClock } from '../../src/testing/fake-clock.ts';

describe('latency bins', () => {
  it('map every latency to a bin whose value is within 6.25 % of it', () => {
    for (let ms = 0.016; ms < 2_000_000; ms *= 1.07) {
      const v = valueOfBin(binOf(ms));
      expect(Math.abs(v - ms) / ms).toBeLessThanOrEqual(0.0625 + 1e-9);
    }
  });

  it('keep every latency inside the fixed bin range', () => {
    for (const ms of [-1, 0, Number.NaN, 0.0001, 1e12, Number.POSITIVE_INFINITY]) {
      const b = binOf(ms);
      expect(b).toBeGreaterThanOrEqual(0);
      expect(b).toBeLessThan(LATENCY_BINS);
    }
  });
});

describe('RollingHistogram', () => {
  it('reports percentiles of what was recorded', () => {
    const clock = new FakeClock();
    const r = new RollingHistogram({ clock });
    for (let i = 1; i <= 100; i++) r.record(clock.now(), i, false);
    const s = r.stats(10_000);
    expect(s.count).toBe(100);
    expect(s.p50Ms).toBeCloseTo(50, -1);
    expect(Math.abs(s.p95Ms - 95) / 95).toBeLessThan(0.07);
    expect(Math.abs(s.p99Ms - 99) / 99).toBeLessThan(0.07);
  });

  it('reports the share of errors', () => {
    const clock = new FakeClock();
    const r = new RollingHistogram({ clock });
    for (let i = 0; i < 8; i++) r.record(clock.now(), 5, i < 2);
    expect(r.stats(10_000).errorRate).toBe(0.25);
  });

  it('reports zeros for an empty window', () => {
    const r = new RollingHistogram({ clock: new FakeClock() });
    expect(r.stats(60_000)).toEqual({ count: 0, rps: 0, errorRate: 0, p50Ms: 0, p95Ms: 0, p99Ms: 0 });
  });

  it('rolls requests off the 10 s window but keeps them in the 1 min and 5 min windows', () => {
    const clock = new FakeClock(1_700_000_000_000);
    const r = new RollingHistogram({ clock });
    r.record(clock.now(), 100, true);
    clock.advance(11_000);
    r.record(clock.now(), 5, false);
    expect(r.stats(10_000).count).toBe(1);
    expect(r.stats(10_000).errorRate).toBe(0);
    expect(r.stats(60_000).count).toBe(2);
    clock.advance(60_000);
    expect(r.stats(60_000).count).toBe(0);
    expect(r.stats(300_000).count).toBe(2);
    clock.advance(300_000);
    expect(r.stats(300_000).count).toBe(0);
  });

  it('computes req/s over the window once the recorder is older than it', () => {
    const clock = new FakeClock(1_700_000_000_000);
    const r = new RollingHistogram({ clock });
    clock.advance(20_000);
    for (let s = 0; s < 10; s++) {
      for (let i = 0; i < 50; i++) r.record(clock.now(), 1, false);
      clock.advance(1_000);
    }
    // The window is the current second (just begun, empty) and the 9 before it: 450 requests in 9 s.
    const stats = r.stats(10_000);
    expect(stats.count).toBe(450);
    expect(stats.rps).toBe(50);
  });

  it('computes req/s over its own age while younger than the window', () => {
    const clock = new FakeClock(1_700_000_000_000);
    const r = new RollingHistogram({ clock });
    for (let i = 0; i < 20; i++) r.record(clock.now(), 1, false);
    clock.advance(2_000);
    expect(r.stats(60_000).rps).toBe(10);
  });

  it('reuses its buckets, so an hour of traffic leaves only the last 5 minutes', () => {
    const clock = new FakeClock(1_700_000_000_000);
    const r = new RollingHistogram({ clock });
    for (let s = 0; s < 3_600; s++) {
      r.record(clock.now(), 1, false);
      clock.advance(1_000);
    }
    expect(r.stats(300_000).count).toBe(299);
  });

  it('clears a reused bucket of its old latencies', () => {
    const clock = new FakeClock(1_700_000_000_000);
    const r = new RollingHistogram({ clock, buckets: 10 });
    r.record(clock.now(), 5_000, false);
    clock.advance(10_000); // same slot, next lap
    r.record(clock.now(), 1, false);
    expect(r.stats(10_000).p99Ms).toBeLessThan(2);
  });
});

describe('rolling options', () => {
  it('names a missing clock', () => {
    expect(() => new RollingHistogram({} as never)).toThrow(/RollingHistogram option "clock"/);
    expect(() => new RollingCounter(undefined as never)).toThrow(/RollingCounter option "clock"/);
  });

  it('names a bucket width under 1 ms', () => {
    expect(() => new RollingHistogram({ clock: new FakeClock(), bucketMs: 0 })).toThrow(/option "bucketMs"/);
  });

  it('names a bucket count that is not a positive integer', () => {
    expect(() => new RollingCounter({ clock: new FakeClock(), buckets: -1 })).toThrow(/option "buckets"/);
    expect(() => new RollingHistogram({ clock: new FakeClock(), buckets: 1.5 })).toThrow(/option "buckets"/);
  });
});

describe('RollingCounter', () => {
  it('sums what was added in the window and keeps the total', () => {
    const clock = new FakeClock(1_700_000_000_000);
    const c = new RollingCounter({ clock, buckets: 10 });
    c.add(2);
    clock.advance(5_000);
    c.add(3);
    expect(c.sum(10_000)).toBe(5);
    clock.advance(6_000);
    expect(c.sum(10_000)).toBe(3);
    clock.advance(10_000);
    expect(c.sum(10_000)).toBe(0);
    expect(c.total).toBe(5);
  });
});
