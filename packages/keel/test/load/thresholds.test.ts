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
  it('counts failing windows apart from the run-wide verdict', () => {
    const set = new ThresholdSet(['p(99)<120', 'rate<0.01']);
    set.window(input({ percentile: () => 200 }));
    set.window(input());
    const [p99, rate] = set.finish(input());
    expect(p99).toMatchObject({ ok: true, actual: 99, failedWindows: 1, windows: 2 });
    expect(rate).toMatchObject({ ok: true, failedWindows: 0 });
  });

  it('skips rps when deciding abort-on-fail mid-run', () => {
    const set = new ThresholdSet(['rps>1000000', 'p(50)<10']);
    expect(set.failing(input())).toEqual(['p(50)<10']);
  });

  it('lists the percentiles windows must keep', () => {
    expect(new ThresholdSet(['p(95)<1', 'p(99.9)<2', 'rate<1']).percentiles).toEqual([95, 99.9]);
  });
});
