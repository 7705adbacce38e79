import { describe, expect, it } from 'vitest';
import { renderHtmlReport } from '../../src/load/html-report.ts';
import { stalledResult } from './fixtures/result.ts';

describe('renderHtmlReport', () => {
  it('is self-contained: inline SVG, no script, no external URL', () => {
    const html = renderHtmlReport(stalledResult);
    expect(html.match(/<svg/g)).toHaveLength(2);
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
});
