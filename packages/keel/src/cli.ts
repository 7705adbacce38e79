/**
 * The `keel` command line: `keel load | soak | chaos | help`. Exit codes: 0 ok, 1 a
 * threshold or the soak verdict failed, 2 a usage error (bad flag or value).
 */
import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { createFaultProxy, type Faults } from './load/chaos.ts';
import { CHAOS, type CommandSpec, commandHelp, LOAD, SOAK } from './load/cli-flags.ts';
import { type HeapSampler, httpHeapSampler, inspectorHeapSampler } from './load/heap-sampler.ts';
import { renderHtmlReport } from './load/html-report.ts';
import { createProgress } from './load/progress.ts';
import { formatJson, formatReport } from './load/report.ts';
import { runLoad } from './load/runner.ts';
import { loadScenario } from './load/scenario.ts';
import { parseDuration, parseStages } from './load/schedule.ts';
import { runSoak } from './load/soak.ts';
import { parseBytes } from './load/stats.ts';

/** Where the CLI writes, and what stops `keel chaos` (tests pass their own). */
export interface CliIo {
  stdout: { write(s: string): unknown; isTTY?: boolean };
  stderr: { write(s: string): unknown; isTTY?: boolean };
  signal?: AbortSignal;
}

class UsageError extends Error {}

const USAGE = `usage: keel <command> [options]

  keel load <url> [options]     drive HTTP load (closed model, or open with --rate/--stages)
  keel soak <url> [options]     run N cycles and fail on memory growth per cycle
  keel chaos --target host:port  TCP fault proxy with an HTTP control API
  keel help [command]           this text, or a command's flags and defaults

\`keel <command> --help\` lists every flag with its default; docs/load.md has the details.
`;

const COMMANDS: Record<string, CommandSpec> = { load: LOAD, soak: SOAK, chaos: CHAOS };

/** True when the arguments ask for the command's help; lenient, so `--help` wins over a bad flag. */
function wantsHelp(spec: CommandSpec, args: string[]): boolean {
  try {
    return parseArgs({ args, options: spec.flags, allowPositionals: true, strict: false }).values.help === true;
  } catch {
    return false;
  }
}

function int(name: string, text: string, min: number, max = Number.POSITIVE_INFINITY): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < min || n > max) {
    const range = max === Number.POSITIVE_INFINITY ? `>= ${min}` : `from ${min} to ${max}`;
    throw new UsageError(`--${name} must be an integer ${range} (got "${text}")`);
  }
  return n;
}

function port(name: string, text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new UsageError(`--${name} must be a port (0-65535) (got "${text}")`);
  return n;
}

/**
 * The library's option errors (a TypeError starting "keel: ") are usage errors: exit 2 with
 * the message, not exit 1 (which means a failed threshold or verdict) with a stack trace.
 */
function usage(err: unknown): unknown {
  return err instanceof TypeError && err.message.startsWith('keel: ') ? new UsageError(err.message.slice(6)) : err;
}

function positive(name: string, text: string): number {
  const n = Number(text);
  if (!(Number.isFinite(n) && n > 0)) throw new UsageError(`--${name} must be a number > 0 (got "${text}")`);
  return n;
}

function duration(name: string, text: string): number {
  try {
    return parseDuration(text);
  } catch {
    throw new UsageError(`--${name} must be a duration like 500ms, 30s, 1m (got "${text}")`);
  }
}

function hostPort(name: string, text: string): { host: string; port: number } {
  const i = text.lastIndexOf(':');
  const port = Number(text.slice(i + 1));
  if (i < 0 || !Number.isInteger(port) || port < 1 || port > 65535) throw new UsageError(`--${name} must be host:port (got "${text}")`);
  return { host: text.slice(0, i) || '127.0.0.1', port };
}

async function load(args: string[], io: CliIo): Promise<number> {
  const { values: v, positionals } = parseArgs({ args, options: LOAD.flags, allowPositionals: true });
  let scenario: Awaited<ReturnType<typeof loadScenario>> | undefined;
  try {
    scenario = v.scenario ? await loadScenario(v.scenario) : undefined;
  } catch (err) {
    // A missing file or bad JSON is a bad --scenario value.
    throw new UsageError(`--scenario ${v.scenario}: ${(err as Error).message.replace(/^keel: /, '')}`);
  }
  const url = positionals[0] ?? scenario?.target;
  if (!url) throw new UsageError('keel load needs a URL (or a scenario with a target)');
  if (positionals.length > 1) throw new UsageError(`unexpected argument "${positionals[1]}"`);
  const headers: Record<string, string> = {};
  for (const h of v.header ?? []) {
    const i = h.indexOf(':');
    if (i < 1) throw new UsageError(`--header must be "name: value" (got "${h}")`);
    headers[h.slice(0, i).trim()] = h.slice(i + 1).trim();
  }
  let stages: ReturnType<typeof parseStages> | undefined;
  try {
    stages = v.stages ? parseStages(v.stages) : undefined;
  } catch (err) {
    throw new UsageError((err as Error).message.replace(/^keel: /, ''));
  }
  const progress = !v.quiet && !v.json ? createProgress(io.stderr) : undefined;
  // Ctrl-C ends the run early and still prints the report (as k6 does).
  const stop = new AbortController();
  const onSigint = (): void => stop.abort();
  process.once('SIGINT', onSigint);
  let result: Awaited<ReturnType<typeof runLoad>>;
  try {
    result = await runLoad({
      url,
      scenario,
      method: v.method,
      headers,
      body: v.body,
      connections: int('connections', v.connections, 1, 10_000),
      pipelining: int('pipelining', v.pipelining, 1, 1000),
      durationMs: duration('duration', v.duration),
      rate: v.rate === undefined ? undefined : positive('rate', v.rate),
      stages,
      warmupMs: duration('warmup', v.warmup),
      timeoutMs: duration('timeout', v.timeout),
      thresholds: v.threshold,
      abortOnFail: v['abort-on-fail'],
      windowMs: duration('window', v.window),
      seed: int('seed', v.seed, 0),
      onWindow: progress?.onWindow,
      signal: stop.signal,
    });
  } catch (err) {
    throw usage(err);
  } finally {
    process.off('SIGINT', onSigint);
  }
  progress?.done();
  io.stdout.write(v.json ? formatJson(result) : formatReport(result));
  if (v.html) await writeFile(v.html, renderHtmlReport(result));
  return result.ok ? 0 : 1;
}

async function soak(args: string[], io: CliIo): Promise<number> {
  const { values: v, positionals } = parseArgs({ args, options: SOAK.flags, allowPositionals: true });
  const url = positionals[0];
  if (!url || !/^(https?|wss?):\/\//.test(url)) throw new UsageError('keel soak needs an http:// or ws:// URL to drive');
  let maxSlope: number;
  try {
    maxSlope = parseBytes(v['max-slope']);
  } catch {
    throw new UsageError(`--max-slope must be a size like 64B or 1KB (got "${v['max-slope']}")`);
  }
  const cycles = int('cycles', v.cycles, 2);
  const sampleEvery = int('sample-every', v['sample-every'], 1);
  if (cycles < 2 * sampleEvery) {
    throw new UsageError(`--cycles must be >= 2 × --sample-every (${2 * sampleEvery}) for a slope (got "${v.cycles}")`);
  }
  const fit = v.fit;
  if (fit !== 'heapUsed+arrayBuffers' && fit !== 'heapUsed')
    throw new UsageError(`--fit must be heapUsed+arrayBuffers or heapUsed (got "${fit}")`);
  const expectStatus = v['expect-status']?.split(',').map((code) => {
    const n = Number(code.trim());
    if (!Number.isInteger(n) || n < 100 || n > 599)
      throw new UsageError(`--expect-status must be HTTP statuses like 200,404 (got "${v['expect-status']}")`);
    return n;
  });
  const action = url.startsWith('ws') ? { ws: { url, message: v.message } } : { http: { url, method: v.method, expectStatus } };
  const cycleTimeoutMs = duration('cycle-timeout', v['cycle-timeout']);
  const sampler: HeapSampler = v.inspect
    ? await inspectorHeapSampler(v.inspect)
    : httpHeapSampler(v.admin ?? new URL(url.replace(/^ws/, 'http')).origin);
  try {
    const r = await runSoak({
      action,
      sampler,
      cycles,
      sampleEvery,
      warmup: v.warmup === undefined ? undefined : int('warmup', v.warmup, 0),
      concurrency: int('concurrency', v.concurrency, 1, 1000),
      maxSlope,
      fit,
      cycleTimeoutMs,
      snapshotDir: v['snapshot-dir'],
      onSample: v.json
        ? undefined
        : (s) =>
            io.stderr.write(
              `cycle ${s.cycle}: heap ${(s.heapUsed / 1e6).toFixed(2)} MB${s.arrayBuffers === undefined ? '' : `, buffers ${(s.arrayBuffers / 1e6).toFixed(2)} MB`}, ${s.handles} handles\n`,
            ),
    }).catch((err: unknown) => {
      throw usage(err);
    });
    if (v.json) io.stdout.write(`${JSON.stringify(r)}\n`);
    else {
      if (Number.isNaN(r.slope)) io.stdout.write('FAIL: no verdict\n');
      else {
        const parts =
          r.arrayBuffersSlope === undefined ? '' : ` (heapUsed ${r.heapSlope.toFixed(1)}, arrayBuffers ${r.arrayBuffersSlope.toFixed(1)})`;
        io.stdout.write(
          `${r.ok ? 'ok' : 'FAIL'}: ${r.fit} grows ${r.slope.toFixed(1)} B/cycle${parts} (R² ${r.r2.toFixed(3)}; limit ${r.maxSlope} B/cycle), handles ${r.handleSlope.toFixed(4)}/cycle, ${r.errors} failed cycles\n`,
        );
      }
      for (const reason of r.reasons) io.stdout.write(`  ${reason}\n`);
      if (r.snapshots) io.stdout.write(`snapshots: ${r.snapshots.join(' ')}\n`);
      // A type can grow in bytes while its count shrinks: print "-1 objects", not "+-1".
      const signed = (n: number): string => (n < 0 ? String(n) : `+${n}`);
      for (const g of r.grown ?? []) io.stdout.write(`  ${g.type}: ${signed(g.countDelta)} objects, ${signed(g.sizeDelta)} bytes\n`);
    }
    return r.ok ? 0 : 1;
  } finally {
    await sampler.close();
  }
}

async function chaos(args: string[], io: CliIo): Promise<number> {
  const { values: v, positionals } = parseArgs({ args, options: CHAOS.flags, allowPositionals: true });
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  if (!v.target) throw new UsageError('keel chaos needs --target host:port');
  const target = hostPort('target', v.target);
  // Only the flags given: an absent --latency passed as `latencyMs: undefined` replaced the
  // default 0, and every delay became NaN (no delay at all).
  const faults: Partial<Faults> = {};
  for (const [flag, field] of [
    ['latency', 'latencyMs'],
    ['jitter', 'jitterMs'],
    ['bandwidth', 'bandwidthBps'],
  ] as const) {
    const text = v[flag];
    if (text === undefined) continue;
    const n = Number(text);
    if (!(Number.isFinite(n) && n >= 0)) throw new UsageError(`--${flag} must be a number >= 0 (got "${text}")`);
    faults[field] = n;
  }
  for (const flag of ['blackhole', 'refuse', 'reset'] as const) if (v[flag]) faults[flag] = true;
  const proxy = await createFaultProxy({
    target,
    listen: { host: v.host, port: port('port', v.port) },
    controlPort: v.control === undefined ? undefined : port('control', v.control),
    faults,
  }).catch((err: unknown) => {
    throw usage(err);
  });
  io.stdout.write(`${JSON.stringify({ proxy: proxy.port, control: proxy.controlPort ?? null, target: v.target })}\n`);
  await new Promise<void>((resolve) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    if (io.signal) {
      if (io.signal.aborted) return stop();
      io.signal.addEventListener('abort', stop, { once: true });
    }
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await proxy.close();
  return 0;
}

/**
 * Runs the CLI and resolves with its exit code.
 *
 * @example
 * ```ts
 * const code = await main(['load', 'http://127.0.0.1:3000/', '-d', '5s', '-t', 'p(99)<50']);
 * ```
 */
export async function main(argv: string[], io: CliIo = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  const [command, ...rest] = argv;
  const spec = command === undefined ? undefined : COMMANDS[command];
  if (spec && wantsHelp(spec, rest)) {
    io.stdout.write(commandHelp(spec));
    return 0;
  }
  try {
    switch (command) {
      case 'load':
        return await load(rest, io);
      case 'soak':
        return await soak(rest, io);
      case 'chaos':
        return await chaos(rest, io);
      case 'help':
      case '--help':
      case '-h': {
        const topic = rest[0] === undefined ? undefined : COMMANDS[rest[0]];
        io.stdout.write(topic ? commandHelp(topic) : USAGE);
        return 0;
      }
      default:
        io.stderr.write(`${command ? `unknown command "${command}"\n` : ''}${USAGE}`);
        return 2;
    }
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (err instanceof UsageError || (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS'))) {
      io.stderr.write(`keel ${command}: ${(err as Error).message}\n`);
      return 2;
    }
    throw err;
  }
}
