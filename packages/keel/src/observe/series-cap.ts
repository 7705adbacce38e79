/**
 * Metric families with a series cap, registered in a prom-client `Registry`.
 *
 * Why not prom-client's own Counter and Histogram on the hot path: a labelled child's
 * `observe` + `inc` re-validates and re-hashes its labels on every call, ≈ 830 ns per
 * request measured here (Node 20), which alone would eat a tenth of a small route's budget.
 * These families resolve a series once, return a plain object, and make recording a field
 * increment; prom-client still renders the exposition, since each family implements the
 * `get()` shape its `Registry` reads.
 *
 * The cap: a family holds at most `cap` series. A sample for a new series beyond it is
 * dropped and counted in `<prefix>metrics_series_dropped_total{metric}`, so a label that
 * turns out to be unbounded costs a counter, not the process's memory or Prometheus.
 */
import { optionError } from '../internal/options.ts';

/** One exported sample as prom-client's `Registry` renders it. */
interface SampleValue {
  value: number;
  labels: Record<string, string | number>;
  metricName?: string;
}

/** The object prom-client's `Registry` reads from every registered metric. */
export interface FamilyObject {
  name: string;
  help: string;
  type: 'counter' | 'gauge' | 'histogram';
  values: SampleValue[];
  aggregator: 'sum' | 'max' | 'omit';
}

/** Where a family reports a refused series. */
export interface SeriesLimit {
  readonly cap: number;
  dropped(metric: string): void;
}

export interface FamilySpec {
  name: string;
  help: string;
  labelNames?: readonly string[];
  /** Called before each render, to refresh values read at scrape time. */
  collect?: () => void;
  aggregator?: 'sum' | 'max' | 'omit';
}

const SEP = '\u0001';
const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

abstract class Family<S extends { labels: Record<string, string> }> {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly string[];
  readonly aggregator: 'sum' | 'max' | 'omit';
  abstract readonly type: FamilyObject['type'];
  readonly #limit: SeriesLimit;
  readonly #collect: (() => void) | undefined;
  protected readonly map = new Map<string, S>();

  constructor(spec: FamilySpec, limit: SeriesLimit) {
    // prom-client renders whatever it is given: a bad name would only surface as a scrape
    // Prometheus rejects, for every metric of the service.
    if (typeof spec?.name !== 'string' || !METRIC_NAME.test(spec.name)) {
      throw optionError(new.target.name, 'name', 'a Prometheus metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)', spec?.name);
    }
    this.name = spec.name;
    this.help = spec.help;
    this.labelNames = spec.labelNames ?? [];
    this.aggregator = spec.aggregator ?? 'sum';
    this.#limit = limit;
    this.#collect = spec.collect;
  }

  protected abstract create(labels: Record<string, string>): S;
  protected abstract samples(series: S, out: SampleValue[]): void;
  protected abstract zero(series: S): void;

  /**
   * The series for these label values (in `labelNames` order), created on first use.
   * `undefined` when the family is full: the sample is dropped and counted.
   */
  series(...values: string[]): S | undefined {
    const key = values.length === 1 ? (values[0] as string) : values.join(SEP);
    const found = this.map.get(key);
    if (found) return found;
    if (this.map.size >= this.#limit.cap) {
      this.#limit.dropped(this.name);
      return undefined;
    }
    const labels: Record<string, string> = {};
    for (let i = 0; i < this.labelNames.length; i++) labels[this.labelNames[i] as string] = values[i] ?? '';
    const s = this.create(labels);
    this.map.set(key, s);
    return s;
  }

  /** How many series the family holds. */
  get size(): number {
    return this.map.size;
  }

  /** Every series, in creation order. */
  all(): IterableIterator<S> {
    return this.map.values();
  }

  /** prom-client's `Registry` calls this to render the family. */
  async get(): Promise<FamilyObject> {
    this.#collect?.();
    const values: SampleValue[] = [];
    for (const s of this.map.values()) this.samples(s, values);
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }

  /**
   * Zeroes every series in place (prom-client's `Registry.resetMetrics`). Not forgotten: the
   * point of these families is that callers keep the series objects they resolved (HttpMetrics
   * per route, the channel subscriptions per name), so clearing the map left those objects
   * counting where no render reads them, and a route seen before a reset was never exported again.
   */
  reset(): void {
    for (const s of this.map.values()) this.zero(s);
  }
}

/** One labelled value: a counter's or a gauge's series. */
export interface ValueSeries {
  readonly labels: Record<string, string>;
  value: number;
}

/** A monotonically increasing count. */
export type CounterSeries = ValueSeries;

/** What counters and gauges share: one number per series, exported as is. */
abstract class ValueFamily extends Family<ValueSeries> {
  protected create(labels: Record<string, string>): ValueSeries {
    return { labels, value: 0 };
  }
  protected samples(s: ValueSeries, out: SampleValue[]): void {
    out.push({ value: s.value, labels: s.labels });
  }
  protected zero(s: ValueSeries): void {
    s.value = 0;
  }
}

/**
 * A counter family (names end in `_total`).
 *
 * @example
 * ```ts
 * import { Registry } from 'prom-client';
 * import { CounterFamily } from 'keel/observe';
 * const jobs = new CounterFamily({ name: 'app_jobs_total', help: 'Jobs run.', labelNames: ['queue'] }, { cap: 100, dropped() {} });
 * new Registry().registerMetric(jobs as never);
 * const s = jobs.series('emails');
 * if (s) s.value += 1;
 * ```
 */
export class CounterFamily extends ValueFamily {
  readonly type = 'counter' as const;
  /** Adds `by` (default 1) to the series for these label values; dropped when full. */
  inc(values: readonly string[], by = 1): void {
    const s = this.series(...values);
    if (s) s.value += by;
  }
}

/** A value that goes up and down. */
export type GaugeSeries = ValueSeries;

/**
 * A gauge family. Pass `collect` to refresh values at scrape time.
 *
 * @example
 * ```ts
 * import { GaugeFamily } from 'keel/observe';
 * const depth = new GaugeFamily({ name: 'app_queue_depth', help: 'Jobs waiting.' }, { cap: 1, dropped() {} });
 * depth.set([], 3);
 * ```
 */
export class GaugeFamily extends ValueFamily {
  readonly type = 'gauge' as const;
  /** Sets the series for these label values; dropped when full. */
  set(values: readonly string[], value: number): void {
    const s = this.series(...values);
    if (s) s.value = value;
  }
}

/** Non-cumulative bucket counts; the exposition accumulates them. */
export interface HistogramSeries {
  readonly labels: Record<string, string>;
  readonly counts: Float64Array;
  sum: number;
  count: number;
}

/**
 * A histogram family with fixed upper bounds (seconds, by convention).
 *
 * @example
 * ```ts
 * import { HistogramFamily, observe } from 'keel/observe';
 * const h = new HistogramFamily({ name: 'app_job_seconds', help: 'Job time.' }, { cap: 1, dropped() {} }, [0.1, 1, 10]);
 * const s = h.series();
 * if (s) observe(h.bounds, s, 0.25);
 * ```
 */
export class HistogramFamily extends Family<HistogramSeries> {
  readonly type = 'histogram' as const;
  readonly bounds: Float64Array;
  readonly #bucketName: string;
  readonly #sumName: string;
  readonly #countName: string;

  constructor(spec: FamilySpec, limit: SeriesLimit, bounds: readonly number[]) {
    super(spec, limit);
    // observe() stops at the first bound the value fits under and the exposition accumulates
    // in order, so unsorted bounds would give wrong, non-monotonic `le` buckets.
    const ok =
      Array.isArray(bounds) &&
      bounds.every((b, i) => typeof b === 'number' && Number.isFinite(b) && (i === 0 || b > (bounds[i - 1] as number)));
    if (!ok) throw optionError('HistogramFamily', 'bounds', 'an array of increasing finite numbers', bounds);
    this.bounds = Float64Array.from(bounds);
    this.#bucketName = `${spec.name}_bucket`;
    this.#sumName = `${spec.name}_sum`;
    this.#countName = `${spec.name}_count`;
  }
  protected create(labels: Record<string, string>): HistogramSeries {
    return { labels, counts: new Float64Array(this.bounds.length + 1), sum: 0, count: 0 };
  }
  protected zero(s: HistogramSeries): void {
    s.counts.fill(0);
    s.sum = 0;
    s.count = 0;
  }
  protected samples(s: HistogramSeries, out: SampleValue[]): void {
    let acc = 0;
    for (let i = 0; i < this.bounds.length; i++) {
      acc += s.counts[i] as number;
      out.push({ value: acc, labels: { ...s.labels, le: this.bounds[i] as number }, metricName: this.#bucketName });
    }
    out.push({ value: s.count, labels: { ...s.labels, le: '+Inf' }, metricName: this.#bucketName });
    out.push({ value: s.sum, labels: s.labels, metricName: this.#sumName });
    out.push({ value: s.count, labels: s.labels, metricName: this.#countName });
  }
  /** Records `value` in the series for these label values; dropped when full. */
  observe(values: readonly string[], value: number): void {
    const s = this.series(...values);
    if (s) observe(this.bounds, s, value);
  }
}

/**
 * Records one value in a histogram series: a short scan of the bounds and three adds.
 *
 * @example
 * ```ts
 * import { HistogramFamily, observe } from 'keel/observe';
 * const h = new HistogramFamily({ name: 'app_seconds', help: 'h' }, { cap: 1, dropped() {} }, [0.127, 1]);
 * const s = h.series();
 * if (s) observe(h.bounds, s, 0.1); // s.counts = [1, 0, 0]
 * ```
 */
export function observe(bounds: Float64Array, s: HistogramSeries, value: number): void {
  // A negative or NaN value (clock skew between hosts, a caller's bug) must not poison the sum.
  if (!(value > 0)) value = 0;
  let i = 0;
  while (i < bounds.length && value > (bounds[i] as number)) i++;
  (s.counts as Float64Array)[i] = (s.counts[i] as number) + 1;
  s.sum += value;
  s.count++;
}
