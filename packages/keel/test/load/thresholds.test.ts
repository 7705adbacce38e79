import { describe, expect, it } from 'vitest';
import { checkThreshold, parseThreshold, type ThresholdInput, ThresholdSet } from '../../src/load/thresholds.ts';

const input = (over: Partial<ThresholdInput> = {}): ThresholdInput => ({
  percentile: (p) => p, // p(95) = 95 ms, for readable tests
  med: 50,
  avg: 40,
  min: 1,
  max: 100,
  rate: 0.005,
  rps: 2500,
  count: 1000,
  attempts: 1005,
  ...over,
});

describe('parseThreshold', () => {
  it('parses k6 expressions', () => {
    expect(parseThreshold('p(95)<127')).toMatchObject({ metric: 'p', percentile: 95, op: '<', value: 127 });
    expect(parseThreshold(' p(99.9) <= 500 ')).toMatchObject({ percentile: 99.9, op: '<=', value: 500 });
    expect(parseThreshold('rate<0.01')).toMatchObject({ metric: 'rate', value: 0.01 });
    expect(parseThreshold('rps>2000')).toMatchObject({ metric: 'rps', op: '>' });
  });

  it('rejects unknown metrics, missing operators and out-of-range percentiles', () => {
    expect(() => parseThreshold('p95<1')).toThrow(/invalid threshold "p95<1"/);
    expect(() => parseThreshold('rate')).toThrow(/invalid threshold/);
    expect(() => parseThreshold('p(101)<1')).toThrow(/percentile/);
  });
});

describe('checkThreshold', () => {
  it('passes and fails on the named metric', () => {
    expect(checkThreshold(parseThreshold('p(95)<127'), input())).toBe(true);
    expect(checkThreshold(parseThreshold('p(99)<98'), input())).toBe(false);
    expect(checkThreshold(parseThreshold('rate<0.01'), input({ rate: 0.02 }))).toBe(false);
    expect(checkThreshold(parseThreshold('rps>2000'), input())).toBe(true);
    expect(checkThreshold(parseThreshold('max<=100'), input())).toBe(true);
  });
});

describe('ThresholdSet', () => {
  it('fails a threshold that one window failed although the run-wide value passes', () => {
    const set = new ThresholdSet(['p(99)<120', 'rate<0.01']);
    set.window(input({ percentile: () => 200 }));
    set.window(input());
    const [p99, rate] = set.finish(input());
    expect(p99).toMatchObject({ ok: false, actual: 99, failedWindows: 1, windows: 2 });
    expect(rate).toMatchObject({ ok: true, failedWindows: 0 });
  });

  it('returns the thresholds a window failed, rps included', () => {
    const set = new ThresholdSet(['rps>1000000', 'p(50)<10', 'rate<0.01']);
    expect(set.window(input())).toEqual(['rps>1000000', 'p(50)<10']);
  });

  it('re-judges the last window in place when a window is folded into it', () => {
    const set = new ThresholdSet(['p(99)<120']);
    set.window(input());
    set.window(input({ percentile: () => 200 }));
    set.window(input(), true);
    expect(set.finish(input())[0]).toMatchObject({ ok: true, failedWindows: 0, windows: 2 });
  });

  it('fails latency thresholds over zero responses instead of passing on a zero, and says why', () => {
    const set = new ThresholdSet(['p(99)<500', 'max<1000', 'rps>=0']);
    const [p99, max, rps] = set.finish(input({ percentile: () => 0, max: 0, rps: 0, count: 0, rate: 1, attempts: 580 }));
    expect(p99).toMatchObject({ ok: false, actual: null, note: 'no responses, so no latency to measure' });
    expect(max).toMatchObject({ ok: false, actual: null });
    expect(rps).toMatchObject({ ok: true, actual: 0 });
  });

  it('judges only rps in a window where requests were in flight and none ended', () => {
    const set = new ThresholdSet(['p(99)<500', 'rate<0.01', 'rps>100']);
    const stalled = input({ percentile: () => 0, rps: 0, rate: 0, count: 0, attempts: 0 });
    expect(set.window(stalled)).toEqual(['rps>100']);
    expect(set.finish(input()).map((r) => [r.failedWindows, r.windows])).toEqual([
      [0, 0],
      [0, 0],
      [1, 1],
    ]);
  });

  it('fails a rate threshold when nothing was attempted', () => {
    const set = new ThresholdSet(['rate<0.01']);
    expect(set.finish(input({ rate: 0, count: 0, attempts: 0 }))[0]).toMatchObject({ ok: false, actual: null });
  });

  it('lists the percentiles windows must keep', () => {
    expect(new ThresholdSet(['p(95)<1', 'p(99.9)<2', 'rate<1']).percentiles).toEqual([95, 99.9]);
  });
});
