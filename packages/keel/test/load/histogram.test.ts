import { describe, expect, it } from 'vitest';
import { LatencyRecorder, summarize } from '../../src/load/histogram.ts';

describe('LatencyRecorder', () => {
  it('records corrected latency from the intended time and uncorrected from the send time', () => {
    const rec = new LatencyRecorder();
    rec.record(0, 900, 1000, false); // waited 900 ms for a connection, served in 100 ms
    expect(summarize(rec.corrected).max).toBeCloseTo(1000, 0);
    expect(summarize(rec.uncorrected).max).toBeCloseTo(100, 0);
    rec.destroy();
  });

  it('closes windows with their own percentiles, errors and rate', () => {
    const rec = new LatencyRecorder(10, [75]);
    for (let i = 1; i <= 100; i++) rec.record(0, 0, i, i > 98);
    rec.recordError();
    const w = rec.roll(1000);
    expect(w).toMatchObject({ t: 0, count: 100, errors: 3, rps: 100 });
    expect(w.p50).toBeCloseTo(50, 0);
    expect(w.extra['75']).toBeCloseTo(75, 0);
    const next = rec.roll(2000);
    expect(next).toMatchObject({ t: 1000, count: 0, errors: 0 });
    rec.destroy();
  });

  it('keeps at most maxWindows windows, dropping the oldest', () => {
    const rec = new LatencyRecorder(3);
    for (let i = 1; i <= 5; i++) rec.roll(i * 1000);
    expect(rec.windows.map((w) => w.t)).toEqual([2000, 3000, 4000]);
    expect(rec.droppedWindows).toBe(2);
    rec.destroy();
  });

  it('skips the uncorrected histogram when asked (closed model)', () => {
    const rec = new LatencyRecorder(10, [], false);
    rec.record(0, 0, 5, false);
    expect(rec.uncorrected.totalCount).toBe(0);
    expect(rec.corrected.totalCount).toBe(1);
    rec.destroy();
  });

  it('gives each window its own min and mean, and counts lost requests as attempts', () => {
    const rec = new LatencyRecorder();
    for (let i = 1; i <= 4; i++) rec.record(0, 0, i * 10, false); // 10, 20, 30, 40 ms
    rec.recordError();
    const w = rec.roll(1000);
    expect(w.min).toBeCloseTo(10, 1);
    expect(w.mean).toBeCloseTo(25, 1);
    expect(w).toMatchObject({ count: 4, attempts: 5, errors: 1, partial: false });
    rec.destroy();
  });

  it('folds a sliver at the end into the last window, over the real span of both', () => {
    const rec = new LatencyRecorder();
    for (let i = 0; i < 1000; i++) rec.record(0, 0, 10, false);
    rec.roll(1000);
    for (let i = 0; i < 4; i++) rec.record(990, 990, 1000, i === 0); // drained in the last millisecond
    rec.recordError();
    const w = rec.fold(1001);
    expect(rec.windows).toEqual([w]);
    expect(w).toMatchObject({ t: 0, count: 1004, attempts: 1005, errors: 2, rps: 1003, partial: true });
    expect(w.max).toBeCloseTo(10, 1);
    rec.destroy();
  });
});
