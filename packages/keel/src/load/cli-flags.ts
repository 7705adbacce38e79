/**
 * The `keel` commands' flags: the parseArgs configuration and the help text come from one
 * table, so `keel <command> --help` lists every flag with its default and cannot drift from
 * what is parsed (`keel load --help` used to exit 2 with "Unknown option"). docs/load.md's
 * reference tables carry the same defaults; a test compares them.
 */

/** One flag: parseArgs' fields plus its help. */
export interface FlagSpec {
  type: 'string' | 'boolean';
  short?: string;
  multiple?: boolean;
  default?: string | boolean;
  /** The value's placeholder in the help, e.g. `<n>`. */
  arg?: string;
  help: string;
  /** The default as shown when it is not `default` itself (computed, or none). */
  shown?: string;
}

/** A command: its usage line, one-line summary and flags. */
export interface CommandSpec {
  usage: string;
  summary: string;
  flags: Record<string, FlagSpec>;
  notes?: readonly string[];
}

const HELP = { type: 'boolean', short: 'h', default: false, help: 'show this help', shown: 'off' } as const;

export const LOAD = {
  usage: 'keel load <url> [options]',
  summary: 'drive HTTP load: closed model, or open model with --rate or --stages',
  flags: {
    connections: { type: 'string', short: 'c', default: '10', arg: '<n>', help: 'connections, 1 to 10000' },
    pipelining: { type: 'string', short: 'p', default: '1', arg: '<n>', help: 'requests in flight per connection, 1 to 1000' },
    duration: { type: 'string', short: 'd', default: '10s', arg: '<dur>', help: 'run length (closed model and --rate)' },
    rate: { type: 'string', short: 'r', arg: '<n>', help: 'open model: requests per second', shown: '— (closed model)' },
    stages: { type: 'string', arg: '<dur:rate,…>', help: 'open model: ramp stages from 0 req/s; overrides -r/-d', shown: '—' },
    warmup: { type: 'string', default: '0s', arg: '<dur>', help: 'run this long first at the same load, not counted' },
    timeout: { type: 'string', default: '10s', arg: '<dur>', help: 'per-request timeout (the connection is dropped and re-opened)' },
    scenario: { type: 'string', short: 's', arg: '<file>', help: '.json, .js, .mjs or .ts scenario', shown: '—' },
    method: { type: 'string', short: 'm', default: 'GET', arg: '<method>', help: 'method (URL mode)' },
    header: {
      type: 'string',
      short: 'H',
      multiple: true,
      arg: '<name: value>',
      help: "repeatable; with -s, the scenario's own header wins",
      shown: '—',
    },
    body: { type: 'string', short: 'b', arg: '<text>', help: 'request body (URL mode)', shown: '—' },
    threshold: {
      type: 'string',
      short: 't',
      multiple: true,
      arg: '<expr>',
      help: "repeatable, e.g. 'p(99)<500'; must hold over the run and in every window",
      shown: '—',
    },
    'abort-on-fail': { type: 'boolean', default: false, help: 'stop as soon as a window fails a threshold', shown: 'off' },
    window: { type: 'string', default: '1s', arg: '<dur>', help: 'window for charts, progress and window thresholds, at least 10ms' },
    seed: { type: 'string', default: '1', arg: '<n>', help: 'template PRNG seed' },
    json: { type: 'boolean', default: false, help: 'print the result as JSON', shown: 'off' },
    html: { type: 'string', arg: '<file>', help: 'write the HTML report', shown: '—' },
    quiet: { type: 'boolean', short: 'q', default: false, help: 'no progress line', shown: 'off' },
    help: HELP,
  },
  notes: ['Durations: 500ms, 30s, 1m, 1h, or a bare number of seconds. Exit 1 when a threshold fails.'],
} as const satisfies CommandSpec;

export const SOAK = {
  usage: 'keel soak <url> [options]',
  summary: 'run N cycles (HTTP request, or WebSocket connect/message/disconnect) and fail on memory growth per cycle',
  flags: {
    cycles: { type: 'string', short: 'n', default: '1000', arg: '<n>', help: 'measured cycles, at least 2 × sample-every' },
    'sample-every': { type: 'string', short: 'k', default: '100', arg: '<n>', help: 'cycles between samples' },
    warmup: { type: 'string', arg: '<n>', help: 'cycles before the first sample', shown: 'max(sample-every, 1000)' },
    concurrency: { type: 'string', short: 'c', default: '1', arg: '<n>', help: 'concurrent cycles, 1 to 1000' },
    'max-slope': { type: 'string', default: '64B', arg: '<size>', help: 'fail above this many bytes per cycle (B, KB, MB)' },
    fit: {
      type: 'string',
      default: 'heapUsed+arrayBuffers',
      arg: '<what>',
      help: 'what the slope is fitted to: heapUsed+arrayBuffers, or heapUsed',
    },
    'cycle-timeout': { type: 'string', default: '10s', arg: '<dur>', help: 'a cycle still running after this fails' },
    'expect-status': {
      type: 'string',
      arg: '<codes>',
      help: 'HTTP action: statuses that count as success, e.g. 200,404',
      shown: '200–399',
    },
    admin: { type: 'string', arg: '<url>', help: 'where heapAdminHandler is mounted', shown: "the target's origin" },
    inspect: { type: 'string', arg: '<host:port>', help: 'sample over the inspector protocol instead', shown: '—' },
    'snapshot-dir': { type: 'string', arg: '<dir>', help: 'where failure snapshots go', shown: 'a new temp dir' },
    method: { type: 'string', short: 'm', default: 'GET', arg: '<method>', help: 'HTTP action method' },
    message: {
      type: 'string',
      arg: '<text>',
      help: 'WebSocket action: message sent after connecting (the first reply ends the cycle)',
      shown: '—',
    },
    json: { type: 'boolean', default: false, help: 'print the result as JSON', shown: 'off' },
    help: HELP,
  },
  notes: ['The target runs with --expose-gc (or is sampled over --inspect). Exit 1 when the verdict fails.'],
} as const satisfies CommandSpec;

export const CHAOS = {
  usage: 'keel chaos --target host:port [options]',
  summary: 'a TCP fault proxy with an HTTP control API; runs until SIGINT/SIGTERM',
  flags: {
    target: { type: 'string', arg: '<host:port>', help: 'the dependency', shown: 'required' },
    host: { type: 'string', default: '127.0.0.1', arg: '<host>', help: 'listen host' },
    port: { type: 'string', default: '0', arg: '<port>', help: 'listen port', shown: '0 (free port)' },
    control: { type: 'string', arg: '<port>', help: 'control API port (0 = free port)', shown: '— (no control API)' },
    latency: { type: 'string', arg: '<ms>', help: 'initial latency', shown: '0' },
    jitter: { type: 'string', arg: '<ms>', help: 'initial jitter (±)', shown: '0' },
    bandwidth: { type: 'string', arg: '<bytes/s>', help: 'initial bandwidth limit', shown: '0 (unlimited)' },
    blackhole: { type: 'boolean', default: false, help: 'start blackholed (bytes held until lifted)', shown: 'off' },
    refuse: { type: 'boolean', default: false, help: 'start refusing new connections', shown: 'off' },
    reset: { type: 'boolean', default: false, help: 'start resetting connections', shown: 'off' },
    help: HELP,
  },
} as const satisfies CommandSpec;

/** The default a flag's help shows. */
export function shownDefault(f: FlagSpec): string {
  return f.shown ?? String(f.default);
}

/** A command's help: usage, summary, then every flag with its default. */
export function commandHelp(c: CommandSpec): string {
  const rows = Object.entries(c.flags).map(([name, f]) => {
    const flag = `${f.short ? `-${f.short}, ` : '    '}--${name}${f.arg ? ` ${f.arg}` : ''}`;
    const shown = shownDefault(f);
    return `  ${flag.padEnd(34)}${f.help} [${shown === 'required' ? 'required' : `default: ${shown}`}]`;
  });
  return `usage: ${c.usage}\n\n${c.summary}\n\n${rows.join('\n')}\n${(c.notes ?? []).map((n) => `\n${n}\n`).join('')}`;
}
