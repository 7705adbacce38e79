/**
 * Thresholds in k6's expression syntax: `p(95)<127`, `p(99.9)<=500`, `med<20`, `avg<50`,
 * `max<1000`, `rate<0.01` (the error rate), `rps>2000`. Latencies are in milliseconds and
 * corrected (measured from the intended send time). Each threshold is evaluated over the
 * whole run and over every window.
 */

/** The values a threshold can test. */
export interface ThresholdInput {
  /** Latency percentile in ms, for any percentile a threshold names. */
  percentile(p: number): number;
  med: number;
  avg: number;
  min: number;
  max: number;
  /** Failed requests / all requests. */
  rate: number;
  /** Completed requests per second. */
  rps: number;
}

/** A parsed threshold. */
export interface Threshold {
  source: string;
  metric: 'p' | 'med' | 'avg' | 'min' | 'max' | 'rate' | 'rps';
  /** The percentile, for `p(N)`. */
  percentile?: number;
  op: '<' | '<=' | '>' | '>=' | '==';
  value: number;
}

/** One threshold's verdict. */
export interface ThresholdResult {
  source: string;
  ok: boolean;
  /** The run-wide value. */
  actual: number;
  /** Windows that failed it, and windows evaluated. */
  failedWindows: number;
  windows: number;
}

const RE = /^\s*(p\(\s*(\d+(?:\.\d+)?)\s*\)|med|avg|min|max|rate|rps)\s*(<=|>=|==|<|>)\s*(-?\d+(?:\.\d+)?)\s*$/;

/**
 * Parses one threshold expression, throwing a TypeError that quotes it when invalid.
 *
 * @example
 * ```ts
 * parseThreshold('p(95)<127'); // { metric: 'p', percentile: 95, op: '<', value: 127, source: 'p(95)<127' }
 * ```
 */
export function parseThreshold(source: string): Threshold {
  const m = RE.exec(source);
  if (!m) {
    throw new TypeError(`keel: invalid threshold "${source}" (use e.g. p(95)<127, med<20, avg<50, max<1000, rate<0.01, rps>2000)`);
  }
  const metric = (m[1]!.startsWith('p(') ? 'p' : m[1]) as Threshold['metric'];
  const t: Threshold = { source: source.trim(), metric, op: m[3] as Threshold['op'], value: Number(m[4]) };
  if (metric === 'p') {
    const p = Number(m[2]);
    if (!(p > 0 && p <= 100)) throw new TypeError(`keel: threshold "${source}": percentile must be in (0, 100]`);
    t.percentile = p;
  }
  return t;
}

/** The value a threshold tests, read from `input`. */
export function thresholdValue(t: Threshold, input: ThresholdInput): number {
  return t.metric === 'p' ? input.percentile(t.percentile!) : input[t.metric];
}

/**
 * True when `input` satisfies the threshold.
 *
 * @example
 * ```ts
 * checkThreshold(parseThreshold('rate<0.01'), { rate: 0.002, ...rest }); // true
 * ```
 */
export function checkThreshold(t: Threshold, input: ThresholdInput): boolean {
  const v = thresholdValue(t, input);
  switch (t.op) {
    case '<':
      return v < t.value;
    case '<=':
      return v <= t.value;
    case '>':
      return v > t.value;
    case '>=':
      return v >= t.value;
    default:
      return v === t.value;
  }
}

/**
 * Tracks thresholds across windows and decides the run's verdict.
 *
 * @example
 * ```ts
 * const set = new ThresholdSet(['p(99)<500', 'rate<0.01']);
 * set.window(windowInput);            // each window
 * const results = set.finish(runInput); // run-wide verdicts
 * ```
 */
export class ThresholdSet {
  readonly thresholds: Threshold[];
  #failed: number[];
  #windows = 0;

  constructor(sources: readonly string[]) {
    this.thresholds = sources.map(parseThreshold);
    this.#failed = this.thresholds.map(() => 0);
  }

  /** Percentiles the thresholds need (so windows keep them). */
  get percentiles(): number[] {
    return this.thresholds.flatMap((t) => (t.percentile === undefined ? [] : [t.percentile]));
  }

  /** Evaluates one window; returns the sources that failed in it. */
  window(input: ThresholdInput): string[] {
    this.#windows++;
    const failed: string[] = [];
    this.thresholds.forEach((t, i) => {
      if (!checkThreshold(t, input)) {
        this.#failed[i]!++;
        failed.push(t.source);
      }
    });
    return failed;
  }

  /**
   * The thresholds failing on `input` (cumulative data so far), for abort-on-fail. `rps` is
   * skipped: mid-run, a cumulative rate says more about the ramp than about the service.
   */
  failing(input: ThresholdInput): string[] {
    return this.thresholds.filter((t) => t.metric !== 'rps' && !checkThreshold(t, input)).map((t) => t.source);
  }

  /** Run-wide verdicts. */
  finish(input: ThresholdInput): ThresholdResult[] {
    return this.thresholds.map((t, i) => ({
      source: t.source,
      ok: checkThreshold(t, input),
      actual: thresholdValue(t, input),
      failedWindows: this.#failed[i]!,
      windows: this.#windows,
    }));
  }
}
