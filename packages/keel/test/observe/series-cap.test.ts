import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { CounterFamily, GaugeFamily, HistogramFamily, observe, type SeriesLimit } from '../../src/observe/series-cap.ts';

function limit(cap: number): SeriesLimit & { drops: string[] } {
  const drops: string[] = [];
  return { cap, drops, dropped: (metric) => drops.push(metric) };
}

async function render(...families: object[]): Promise<string> {
  const registry = new Registry();
  for (const f of families) registry.registerMetric(f as never);
  return registry.metrics();
}

describe('series families', () => {
  it('creates a series once and returns the same object for the same label values', () => {
    const c = new CounterFamily({ name: 'a_total', help: 'a', labelNames: ['x', 'y'] }, limit(10));
    expect(c.series('1', '2')).toBe(c.series('1', '2'));
    expect(c.series('1', '2')).not.toBe(c.series('12', ''));
    expect(c.size).toBe(2);
  });

  it('drops series beyond the cap and reports each dropped sample', () => {
    const l = limit(2);
    const c = new CounterFamily({ name: 'a_total', help: 'a', labelNames: ['x'] }, l);
    c.inc(['1']);
    c.inc(['2']);
    c.inc(['3']);
    c.inc(['4']);
    c.inc(['1']);
    expect(c.size).toBe(2);
    expect(l.drops).toEqual(['a_total', 'a_total']);
    expect(c.series('1')?.value).toBe(2);
  });

  it('renders counters and gauges through a prom-client Registry', async () => {
    const c = new CounterFamily({ name: 'jobs_total', help: 'Jobs.', labelNames: ['queue'] }, limit(10));
    const g = new GaugeFamily({ name: 'depth', help: 'Depth.' }, limit(10));
    c.inc(['mail'], 3);
    g.set([], 7);
    const text = await render(c, g);
    expect(text).toContain('# TYPE jobs_total counter\njobs_total{queue="mail"} 3');
    expect(text).toContain('# TYPE depth gauge\ndepth 7');
  });

  it('escapes label values in the exposition', async () => {
    const c = new CounterFamily({ name: 'e_total', help: 'e', labelNames: ['v'] }, limit(10));
    c.inc(['a"b\\c\nd']);
    expect(await render(c)).toContain('e_total{v="a\\"b\\\\c\\nd"} 1');
  });

  it('renders histogram buckets cumulatively with +Inf, sum and count', async () => {
    const h = new HistogramFamily({ name: 'd_seconds', help: 'd' }, limit(1), [0.1, 1]);
    h.observe([], 0.05);
    h.observe([], 0.5);
    h.observe([], 5);
    const text = await render(h);
    expect(text).toContain('d_seconds_bucket{le="0.1"} 1\nd_seconds_bucket{le="1"} 2\nd_seconds_bucket{le="+Inf"} 3');
    expect(text).toContain('d_seconds_sum 5.55');
    expect(text).toContain('d_seconds_count 3');
  });

  it('counts a value equal to an edge in that edge bucket (le is inclusive)', () => {
    const h = new HistogramFamily({ name: 'd_seconds', help: 'd' }, limit(1), [0.127, 1]);
    const s = h.series();
    if (!s) throw new Error('no series');
    observe(h.bounds, s, 0.127);
    expect([...s.counts]).toEqual([1, 0, 0]);
  });

  it('records a negative or NaN value as 0 so the sum stays a number', () => {
    const h = new HistogramFamily({ name: 'd_seconds', help: 'd' }, limit(1), [1]);
    h.observe([], -3);
    h.observe([], Number.NaN);
    const s = h.series();
    expect(s?.sum).toBe(0);
    expect(s?.count).toBe(2);
  });

  it('runs collect before each render', async () => {
    let n = 0;
    const g: GaugeFamily = new GaugeFamily({ name: 'n', help: 'n', collect: () => g.set([], ++n) }, limit(1));
    expect(await render(g)).toContain('n 1');
    expect((await g.get()).values[0]?.value).toBe(2);
  });

  it('rejects histogram bounds that are not increasing finite numbers', () => {
    expect(() => new HistogramFamily({ name: 'h', help: 'h' }, limit(1), [1, 0.1])).toThrow(/option "bounds"/);
    expect(() => new HistogramFamily({ name: 'h', help: 'h' }, limit(1), [0.1, 0.1])).toThrow(/option "bounds"/);
    expect(() => new HistogramFamily({ name: 'h', help: 'h' }, limit(1), [0.1, Number.NaN])).toThrow(/option "bounds"/);
  });

  it('rejects a name Prometheus would not accept', () => {
    expect(() => new HistogramFamily({ name: 'job-seconds', help: 'h' }, limit(1), [1])).toThrow(/HistogramFamily option "name"/);
    expect(() => new CounterFamily({ name: '1_total', help: 'c' }, limit(1))).toThrow(/CounterFamily option "name"/);
  });

  it('zeroes every series on reset and keeps the objects callers hold', async () => {
    const c = new CounterFamily({ name: 'a_total', help: 'a', labelNames: ['x'] }, limit(10));
    const held = c.series('1');
    c.inc(['1'], 3);
    c.reset();
    expect(c.series('1')).toBe(held);
    expect((await c.get()).values).toEqual([{ value: 0, labels: { x: '1' } }]);
  });

  it('zeroes the buckets, sum and count of a histogram series on reset', () => {
    const h = new HistogramFamily({ name: 'h_seconds', help: 'h' }, limit(1), [0.1, 1]);
    h.observe([], 0.5);
    h.reset();
    expect(h.series()).toMatchObject({ sum: 0, count: 0, counts: new Float64Array([0, 0, 0]) });
  });
});
