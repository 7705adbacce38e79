/**
 * The final table and the JSON form of a {@link LoadResult}. Percentiles lead; mean and
 * stdev come last because a latency distribution is not normal and they hide the tail.
 */
import type { LatencySummary } from './histogram.ts';
import type { LoadResult } from './runner.ts';

function row(name: string, h: LatencySummary): string {
  const cells = [h.p50, h.p90, h.p99, h.p999, h.max].map((v) => `${v.toFixed(2)}`.padStart(10));
  return `${name.padEnd(22)}${cells.join('')}   (mean ${h.mean.toFixed(2)}, stdev ${h.stdev.toFixed(2)})`;
}

/**
 * The human-readable report: latency table, counts, thresholds, warnings.
 *
 * @example
 * ```ts
 * const result = await runLoad({ url, durationMs: 2000 });
 * process.stdout.write(formatReport(result));
 * ```
 */
export function formatReport(r: LoadResult): string {
  const lines: string[] = [];
  const target = r.model === 'open' ? `open model, target ${r.targetRate} req/s` : `closed model, pipelining ${r.pipelining}`;
  lines.push(`keel load ${r.url}: ${r.connections} connections, ${target}, ${(r.durationMs / 1000).toFixed(1)} s`);
  lines.push('');
  lines.push(`${'latency (ms)'.padEnd(22)}${['p50', 'p90', 'p99', 'p99.9', 'max'].map((s) => s.padStart(10)).join('')}`);
  lines.push(row(r.model === 'open' ? 'corrected' : 'latency', r.latency));
  if (r.model === 'open') lines.push(row('uncorrected', r.uncorrected));
  lines.push('');
  lines.push(`requests   ${r.completed} completed, ${r.sent} sent, ${r.rps} req/s, ${(r.bytes / 1e6).toFixed(1)} MB read`);
  if (r.model === 'open') lines.push(`schedule   ${r.expected} scheduled, ${r.delayed} delayed, ${r.missed} missed`);
  const codes = Object.entries(r.statusCodes)
    .map(([c, n]) => `${c}: ${n}`)
    .join(', ');
  lines.push(`status     ${codes || 'none'}`);
  if (r.warmup) {
    const w = r.warmup;
    lines.push(
      `warm-up    ${(w.durationMs / 1000).toFixed(1)} s before the run, not counted: ${w.completed} completed, ${w.errors} errors, p99 ${w.p99} ms`,
    );
  }
  const e = r.errors;
  lines.push(
    `errors     ${e.total} (${(e.rate * 100).toFixed(2)}%): ${e.non2xx} non-2xx, ${e.timeouts} timeouts, ${e.socket} socket, ${e.unsent} unsent; ${e.connections} connection errors`,
  );
  if (r.thresholds.length > 0) {
    lines.push('');
    lines.push('thresholds');
    for (const t of r.thresholds) {
      const actual = t.actual === null ? `not measured (${t.note})` : `actual ${t.actual.toFixed(3)}`;
      lines.push(`  ${t.ok ? 'ok  ' : 'FAIL'} ${t.source.padEnd(16)} ${actual}; failed in ${t.failedWindows}/${t.windows} windows`);
    }
  }
  for (const w of r.warnings) lines.push(`warning: ${w}`);
  return `${lines.join('\n')}\n`;
}

/**
 * The machine-readable report (stable field names; windows included for charts).
 *
 * @example
 * ```ts
 * writeFileSync('result.json', formatJson(await runLoad({ url })));
 * ```
 */
export function formatJson(r: LoadResult): string {
  return `${JSON.stringify(r)}\n`;
}
