import { describe, expect, it } from 'vitest';
import { formatJson, formatReport } from '../../src/load/report.ts';
import { stalledResult } from './fixtures/result.ts';

describe('formatReport', () => {
  it('leads with percentiles, shows corrected and uncorrected rows, and puts mean last', () => {
    const text = formatReport(stalledResult);
    const corrected = text.split('\n').find((l) => l.startsWith('corrected'))!;
    expect(corrected).toMatch(/^corrected\s+0\.40\s+0\.90\s+940\.00\s+940\.00\s+950\.00\s+\(mean 50\.00, stdev 120\.00\)$/);
    expect(text).toMatch(/^uncorrected\s+0\.40/m);
    expect(text).toMatch(/schedule\s+2000 scheduled, 390 delayed, 0 missed/);
  });

  it('lists status codes, error kinds, threshold verdicts and warnings', () => {
    const text = formatReport(stalledResult);
    expect(text).toMatch(/status\s+200: 1990, 503: 10/);
    expect(text).toMatch(/10 non-2xx, 0 timeouts, 0 socket/);
    expect(text).toMatch(/FAIL p\(99\)<500\s+actual 940\.000; failed in 2\/10 windows/);
    expect(text).toMatch(/ok\s+rps>100/);
    expect(text).toMatch(/warning: coordinated omission/);
  });
});

describe('formatReport without responses', () => {
  it('says a latency threshold had nothing to measure instead of printing an actual of 0', () => {
    const text = formatReport({
      ...stalledResult,
      thresholds: [
        { source: 'p(99)<500', ok: false, actual: null, note: 'no responses, so no latency to measure', failedWindows: 1, windows: 1 },
      ],
    });
    expect(text).toMatch(/FAIL p\(99\)<500\s+not measured \(no responses, so no latency to measure\); failed in 1\/1 windows/);
  });
});

describe('formatJson', () => {
  it('round-trips the result as one JSON line', () => {
    const line = formatJson(stalledResult);
    expect(line.endsWith('\n')).toBe(true);
    expect(line.trim().includes('\n')).toBe(false);
    expect(JSON.parse(line)).toEqual(stalledResult);
  });
});
