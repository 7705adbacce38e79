import { describe, expect, it } from 'vitest';
import { renderHtmlReport } from '../../src/load/html-report.ts';
import { stalledResult } from './fixtures/result.ts';

describe('renderHtmlReport', () => {
  it('is self-contained: inline SVG, no script, no external URL', () => {
    const html = renderHtmlReport(stalledResult);
    expect(html.match(/<svg/g)).toHaveLength(3);
    expect(html).not.toMatch(/<script|<link|src=/);
    expect(html.replaceAll('http://127.0.0.1:3000/', '')).not.toMatch(/https?:\/\//);
  });

  it('draws latency thresholds on the latency chart and rps thresholds on the throughput chart', () => {
    const [latency, throughput] = renderHtmlReport(stalledResult).split('<h2>').slice(1);
    expect(latency).toMatch(/stroke-dasharray[^>]*\/><text[^>]*>p\(99\)&#60;500</);
    expect(throughput).toMatch(/>rps&#62;100</);
    expect(latency).not.toMatch(/rps&#62;100/);
  });

  it('shows the verdict, the warnings and both latency rows', () => {
    const html = renderHtmlReport(stalledResult);
    expect(html).toMatch(/Verdict: <b class="fail">FAIL/);
    expect(html).toMatch(/coordinated omission/);
    expect(html).toMatch(/<th>uncorrected<\/th>/);
  });

  it('escapes the URL and thresholds', () => {
    const html = renderHtmlReport({ ...stalledResult, url: 'http://x/<script>' });
    expect(html).not.toMatch(/<script>/);
  });

  it('draws min, avg and thresholds written with spaces on the latency chart, and rate on the error-rate chart', () => {
    const thresholds = ['min>0.1', 'avg < 50', 'p( 99 ) < 500', 'rate<0.01'].map((source) => ({
      source,
      ok: true,
      actual: 1,
      failedWindows: 0,
      windows: 10,
    }));
    const [latency, throughput, errors] = renderHtmlReport({ ...stalledResult, thresholds })
      .split('<h2>')
      .slice(1);
    const line = (label: string) => new RegExp(`stroke-dasharray[^>]*/><text[^>]*>${label}<`);
    expect(latency).toMatch(line('min&#62;0.1'));
    expect(latency).toMatch(line('avg &#60; 50'));
    expect(latency).toMatch(line('p\\( 99 \\) &#60; 500'));
    expect(errors).toMatch(line('rate&#60;0.01'));
    expect(latency).not.toMatch(/rate&#60;/);
    expect(throughput).not.toMatch(/stroke-dasharray/);
  });

  it('charts the error rate in % on its own chart, not as a count on the req/s axis', () => {
    const [, throughput, errors] = renderHtmlReport(stalledResult).split('<h2>').slice(1);
    expect(throughput).not.toMatch(/errors/);
    expect(errors).toMatch(/^Error rate/);
    expect(errors).toMatch(/% of attempts/);
    // 1 error in 200 attempts per window: 0.5 %, drawn on an axis scaled to it (top tick 1.1).
    expect(errors).toMatch(/>1\.1<\/text>/);
  });
});
