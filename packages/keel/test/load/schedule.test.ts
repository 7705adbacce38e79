import { describe, expect, it } from 'vitest';
import { parseDuration, parseStages, Schedule } from '../../src/load/schedule.ts';

function times(s: Schedule): number[] {
  const out: number[] = [];
  let t = s.rateAt(0) > 0 ? 0 : s.next(0);
  while (t !== Number.POSITIVE_INFINITY) {
    out.push(t);
    t = s.next(t);
  }
  return out;
}

describe('Schedule', () => {
  it('spaces a constant rate evenly: 100 req/s for 1 s is 100 requests 10 ms apart', () => {
    const t = times(new Schedule({ rate: 100, durationMs: 1000 }));
    expect(t).toHaveLength(100);
    expect(t[1]! - t[0]!).toBeCloseTo(10);
    expect(t[99]!).toBeCloseTo(990);
  });

  it('ramps stages linearly, sending about the integral of the rate', () => {
    const s = new Schedule({ stages: parseStages('1s:100,1s:100,1s:0') });
    expect(s.expectedCount()).toBe(200);
    const t = times(s);
    expect(t.length).toBeGreaterThan(185);
    expect(t.length).toBeLessThan(215);
    const inFlat = t.filter((x) => x >= 1000 && x < 2000).length;
    expect(inFlat).toBeGreaterThanOrEqual(99);
    expect(inFlat).toBeLessThanOrEqual(101);
  });

  it('reports the rate at a time inside a ramp', () => {
    const s = new Schedule({ stages: [{ durationMs: 1000, target: 200 }] });
    expect(s.rateAt(500)).toBe(100);
    expect(s.rateAt(1500)).toBe(0);
  });

  it('rejects a non-positive rate', () => {
    expect(() => new Schedule({ rate: 0, durationMs: 1000 })).toThrow(/"rate"/);
  });

  it('starts a ramp at its first share, so every scheduled request falls before the end', () => {
    const ramp = new Schedule({ stages: parseStages('1s:10') });
    const t: number[] = [];
    for (let x = ramp.first(); x !== Number.POSITIVE_INFINITY; x = ramp.next(x)) t.push(x);
    expect(t).toHaveLength(ramp.expectedCount());
    expect(t[0]).toBe(0);
    expect(t.at(-1)!).toBeLessThan(950);
    const idle = new Schedule({ stages: parseStages('2s:0,1s:50') });
    expect(idle.first()).toBe(2000);
  });

  it('schedules exactly the expected count on a long ramp down to 0', () => {
    const s = new Schedule({ stages: parseStages('30s:100,1m:2000,30s:0') });
    let n = 0;
    for (let x = s.first(); x !== Number.POSITIVE_INFINITY; x = s.next(x)) n++;
    expect(n).toBe(s.expectedCount());
  });
});

describe('parseStages / parseDuration', () => {
  it('parses the issue example', () => {
    expect(parseStages('30s:100,1m:2000,30s:0')).toEqual([
      { durationMs: 30_000, target: 100 },
      { durationMs: 60_000, target: 2000 },
      { durationMs: 30_000, target: 0 },
    ]);
  });

  it('parses units and bare seconds', () => {
    expect([parseDuration('250ms'), parseDuration('2'), parseDuration('1.5m'), parseDuration('1h')]).toEqual([
      250, 2000, 90_000, 3_600_000,
    ]);
  });

  it('rejects malformed stages and durations', () => {
    expect(() => parseStages('30s')).toThrow(/invalid stage/);
    expect(() => parseStages('30s:-1')).toThrow(/invalid stage/);
    expect(() => parseDuration('soon')).toThrow(/invalid duration/);
  });
});
