/**
 * A self-contained HTML report: inline SVG charts (latency over time, throughput, error
 * rate) with every threshold drawn as a dashed line on the chart of its metric, and the
 * summary tables. No script, no CDN: the file opens anywhere, offline, and can be attached
 * to a CI run.
 */
import type { LoadResult } from './runner.ts';
import { parseThreshold, type Threshold } from './thresholds.ts';

const esc = (s: string): string => s.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);

interface Series {
  name: string;
  color: string;
  values: number[];
}

function chart(title: string, unit: string, xs: number[], series: Series[], lines: { label: string; value: number }[]): string {
  const W = 760;
  const H = 240;
  const L = 56;
  const B = 28;
  const all = [...series.flatMap((s) => s.values), ...lines.map((l) => l.value), 1];
  const yMax = Math.max(...all) * 1.1;
  const xMax = Math.max(1, xs.at(-1) ?? 1);
  const x = (v: number): number => L + ((W - L - 10) * v) / xMax;
  const y = (v: number): number => H - B - ((H - B - 10) * v) / yMax;
  const paths = series
    .map((s) => {
      const d = s.values.map((v, i) => `${i === 0 ? 'M' : 'L'}${x(xs[i]!).toFixed(1)},${y(v).toFixed(1)}`).join('');
      return `<path d="${d}" fill="none" stroke="${s.color}" stroke-width="1.5"/>`;
    })
    .join('');
  const th = lines
    .map(
      (l) =>
        `<line x1="${L}" x2="${W - 10}" y1="${y(l.value).toFixed(1)}" y2="${y(l.value).toFixed(1)}" stroke="#c00" stroke-dasharray="6 4"/>` +
        `<text x="${W - 12}" y="${(y(l.value) - 4).toFixed(1)}" text-anchor="end" fill="#c00" font-size="11">${esc(l.label)}</text>`,
    )
    .join('');
  const ticks = [0, 0.25, 0.5, 0.75, 1]
    .map(
      (f) =>
        `<text x="${L - 6}" y="${y(yMax * f).toFixed(1)}" text-anchor="end" font-size="10">${(yMax * f).toFixed(yMax < 10 ? 1 : 0)}</text>`,
    )
    .join('');
  const legend = series
    .map((s, i) => `<text x="${L + 10 + i * 110}" y="14" fill="${s.color}" font-size="12">■ ${esc(s.name)}</text>`)
    .join('');
  return `<h2>${esc(title)}</h2><svg viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(title)}">
<rect x="${L}" y="10" width="${W - L - 10}" height="${H - B - 10}" fill="#fafafa" stroke="#ddd"/>${ticks}${legend}${paths}${th}
<text x="${L}" y="${H - 8}" font-size="10">0 s</text><text x="${W - 10}" y="${H - 8}" text-anchor="end" font-size="10">${(xMax / 1000).toFixed(0)} s</text>
<text x="12" y="${H / 2}" font-size="10" transform="rotate(-90 12 ${H / 2})">${esc(unit)}</text></svg>`;
}

/**
 * Renders a result as one HTML page.
 *
 * @example
 * ```ts
 * writeFileSync('report.html', renderHtmlReport(await runLoad({ url, rate: 500, durationMs: 30000 })));
 * ```
 */
export function renderHtmlReport(r: LoadResult): string {
  const xs = r.windows.map((w) => w.t);
  // Parsed with the thresholds' own parser: the regexes before it missed min and rate and
  // any threshold written with spaces (`p( 99 ) < 500`), so those lines were never drawn.
  const parsed = r.thresholds.flatMap((t) => {
    try {
      return [parseThreshold(t.source)];
    } catch {
      return [];
    }
  });
  const linesFor = (metrics: Threshold['metric'][], scale = 1) =>
    parsed.filter((t) => metrics.includes(t.metric)).map((t) => ({ label: t.source, value: t.value * scale }));
  const latency = chart(
    'Latency over time (corrected, per window)',
    'ms',
    xs,
    [
      { name: 'p50', color: '#1f77b4', values: r.windows.map((w) => w.p50) },
      { name: 'p99', color: '#ff7f0e', values: r.windows.map((w) => w.p99) },
      { name: 'max', color: '#999', values: r.windows.map((w) => w.max) },
    ],
    linesFor(['p', 'med', 'avg', 'min', 'max']),
  );
  const throughput = chart(
    'Throughput',
    'req/s',
    xs,
    [{ name: 'req/s', color: '#2ca02c', values: r.windows.map((w) => w.rps) }],
    linesFor(['rps']),
  );
  // The error rate has a chart of its own: a count per window on the req/s axis was neither
  // a rate nor comparable with the req/s beside it.
  const errors = chart(
    'Error rate (errors / attempts, per window)',
    '% of attempts',
    xs,
    [{ name: 'error rate', color: '#d62728', values: r.windows.map((w) => (w.attempts === 0 ? 0 : (100 * w.errors) / w.attempts)) }],
    linesFor(['rate'], 100),
  );
  const row = (name: string, h: LoadResult['latency']): string =>
    `<tr><th>${name}</th>${[h.p50, h.p90, h.p95, h.p99, h.p999, h.max].map((v) => `<td>${v.toFixed(2)}</td>`).join('')}</tr>`;
  const thresholds = r.thresholds
    .map(
      (t) =>
        `<tr class="${t.ok ? 'ok' : 'fail'}"><td>${t.ok ? 'ok' : 'FAIL'}</td><td>${esc(t.source)}</td><td>${t.actual === null ? esc(`not measured (${t.note})`) : t.actual.toFixed(3)}</td><td>${t.failedWindows}/${t.windows}</td></tr>`,
    )
    .join('');
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>keel load ${esc(r.url)}</title>
<style>body{font:14px system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ddd;padding:4px 10px;text-align:right}.fail{color:#c00;font-weight:bold}.warn{color:#a60}</style></head><body>
<h1>keel load — ${esc(r.url)}</h1>
<p>${r.model} model, ${r.connections} connections${r.targetRate ? `, target ${r.targetRate} req/s` : ''}, ${(r.durationMs / 1000).toFixed(1)} s: <b>${r.rps} req/s</b>, ${r.completed} responses, errors ${r.errors.total} (${(r.errors.rate * 100).toFixed(2)}%). Verdict: <b class="${r.ok ? '' : 'fail'}">${r.ok ? 'pass' : 'FAIL'}</b></p>
${r.warnings.map((w) => `<p class="warn">⚠ ${esc(w)}</p>`).join('')}
<table><tr><th>latency (ms)</th><th>p50</th><th>p90</th><th>p95</th><th>p99</th><th>p99.9</th><th>max</th></tr>${row(r.model === 'open' ? 'corrected' : 'latency', r.latency)}${r.model === 'open' ? row('uncorrected', r.uncorrected) : ''}</table>
${r.thresholds.length ? `<table><tr><th></th><th>threshold</th><th>actual</th><th>failed windows</th></tr>${thresholds}</table>` : ''}
${latency}${throughput}${errors}
<p>Status codes: ${esc(JSON.stringify(r.statusCodes))}; timeouts ${r.errors.timeouts}; socket errors ${r.errors.socket}; unsent ${r.errors.unsent}; connection errors ${r.errors.connections}.</p>
</body></html>
`;
}
