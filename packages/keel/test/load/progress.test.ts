import { describe, expect, it } from 'vitest';
import type { WindowStats } from '../../src/load/histogram.ts';
import { createProgress } from '../../src/load/progress.ts';

const w: WindowStats = {
  t: 0,
  count: 100,
  attempts: 100,
  errors: 2,
  rps: 1234,
  min: 0.5,
  mean: 2,
  p50: 1.5,
  p90: 2,
  p95: 3,
  p99: 9.25,
  max: 12,
  extra: {},
  partial: false,
};

describe('createProgress', () => {
  it('rewrites one line on a TTY and clears it when done', () => {
    const out: string[] = [];
    const p = createProgress({ isTTY: true, write: (s) => out.push(s) });
    p.onWindow(w, 1000);
    p.onWindow(w, 2000);
    p.done();
    expect(out).toHaveLength(3);
    expect(out[0]!.startsWith('\r\x1b[2K')).toBe(true);
    expect(out[0]!.slice(5)).toMatch(/^\s+1s\s+1234 req\/s\s+p50 1\.5 ms\s+p99 9\.3 ms\s+errors 2$/);
    expect(out[2]).toBe('\r\x1b[2K');
  });

  it('prints a plain line only every plainEveryMs when not a TTY', () => {
    const out: string[] = [];
    const p = createProgress({ write: (s) => out.push(s) }, 5000);
    for (let t = 1000; t <= 10_000; t += 1000) p.onWindow(w, t);
    p.done();
    expect(out).toHaveLength(2);
    expect(out.every((l) => l.endsWith('\n') && !l.includes('\x1b'))).toBe(true);
  });
});
