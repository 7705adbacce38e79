/**
 * Thresholds in k6's expression syntax: `p(95)<127`, `p(99.9)<=500`, `med<20`, `avg<50`,
 * `max<1000`, `rate<0.01` (the error rate), `rps>2000`. Latencies are in milliseconds and
 * corrected (measured from the intended send time). Each threshold is evaluated over the
 * whole run and over every window, and fails if either fails: the issue asks for both, and a
 * run-wide figure hides an outage (a 1 s outage in a 4 s run still averaged 15k req/s
 * against `rps>1000`). A threshold with nothing to measure fails rather than passing on a
 * zero: a dead target had p(99) 0 over no responses and passed `p(99)<500`.
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
  /** Responses: the latency samples behind the latency metrics. */
  count: number;
  /** Responses plus requests that failed without one: the denominator of `rate`. */
  attempts: number;
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
  /** False when the run-wide value fails it or any window does. */
  ok: boolean;
  /** The run-wide value; null when there was nothing to measure (see `note`). */
  actual: number | null;
  /** Windows that failed it, and windows that judged it. */
  failedWindows: number;
  windows: number;
  /** Why the threshold could not be measured over the run, e.g. no responses for a latency. */
  note?: string;
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

/** Why `input` has nothing for the threshold to test, or undefined when it has. */
export function unmeasured(t: Threshold, input: ThresholdInput): string | undefined {
  if (t.metric === 'rate') return input.attempts === 0 ? 'no requests were attempted' : undefined;
  if (t.metric === 'rps') return undefined;
  return input.count === 0 ? 'no responses, so no latency to measure' : undefined;
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
  if (unmeasured(t, input) !== undefined) return false;
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
 * Tracks thresholds across windows and decides the run's verdict: a threshold fails when
 * the run-wide value or any window fails it.
 *
 * @example
 * ```ts
 * const set = new ThresholdSet(['p(99)<500', 'rate<0.01']);
 * set.window(windowInput);            // each window; returns the thresholds it failed
 * const results = set.finish(runInput); // verdicts
 * ```
 */
export class ThresholdSet {
  readonly thresholds: Threshold[];
  #failed: number[];
  /** Windows that judged each threshold. */
  #judged: number[];
  /** Indices the last window judged and failed, so a window folded into it can replace its verdict. */
  #lastJudged: number[] = [];
  #lastFailed: number[] = [];

  constructor(sources: readonly string[]) {
    this.thresholds = sources.map(parseThreshold);
    this.#failed = this.thresholds.map(() => 0);
    this.#judged = this.thresholds.map(() => 0);
  }

  /** Percentiles the thresholds need (so windows keep them). */
  get percentiles(): number[] {
    return this.thresholds.flatMap((t) => (t.percentile === undefined ? [] : [t.percentile]));
  }

  /**
   * Evaluates one window; returns the sources that failed in it. In a window where nothing
   * finished but requests were in flight (a stall), only `rps` is judged: its 0 is a
   * measurement, while latencies and the error rate belong to the window the requests end
   * in. `replaceLast` re-judges the previous window instead of adding one (the run's short
   * last window folded into it).
   */
  window(input: ThresholdInput, replaceLast = false): string[] {
    if (replaceLast) {
      for (const i of this.#lastFailed) this.#failed[i]!--;
      for (const i of this.#lastJudged) this.#judged[i]!--;
    }
    const failed: string[] = [];
    this.#lastFailed = [];
    this.#lastJudged = [];
    this.thresholds.forEach((t, i) => {
      if (input.attempts === 0 && unmeasured(t, input) !== undefined) return;
      this.#judged[i]!++;
      this.#lastJudged.push(i);
      if (!checkThreshold(t, input)) {
        this.#failed[i]!++;
        this.#lastFailed.push(i);
        failed.push(t.source);
      }
    });
    return failed;
  }

  /** Verdicts: each fails when `input` (the whole run) fails it or any window did. */
  finish(input: ThresholdInput): ThresholdResult[] {
    return this.thresholds.map((t, i) => {
      const note = unmeasured(t, input);
      const r: ThresholdResult = {
        source: t.source,
        ok: checkThreshold(t, input) && this.#failed[i] === 0,
        actual: note === undefined ? thresholdValue(t, input) : null,
        failedWindows: this.#failed[i]!,
        windows: this.#judged[i]!,
      };
      if (note !== undefined) r.note = note;
      return r;
    });
  }
}
