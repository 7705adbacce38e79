/**
 * The open model's arrival schedule: a constant rate, or stages that ramp the rate linearly
 * (`30s:100,1m:2000,30s:0`, like k6's ramping-arrival-rate). `next(t)` gives the intended
 * send time of the request after one intended at `t`, so intended times never depend on
 * when the generator managed to send: that is what lets latency be corrected for
 * coordinated omission.
 */

/** One stage: ramp from the previous stage's target to `target` req/s over `durationMs`. */
export interface Stage {
  durationMs: number;
  target: number;
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * Parses a duration like `500ms`, `30s`, `1m`, `1h` or a bare number of seconds.
 *
 * @example
 * ```ts
 * parseDuration('1m'); // 60000
 * ```
 */
export function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!m) throw new TypeError(`keel: invalid duration "${text}" (use e.g. 500ms, 30s, 1m, 1h)`);
  return Number(m[1]) * UNITS[m[2] ?? 's']!;
}

/**
 * Parses `--stages`: comma-separated `duration:target` pairs.
 *
 * @example
 * ```ts
 * parseStages('30s:100,1m:2000,30s:0');
 * // [{ durationMs: 30000, target: 100 }, { durationMs: 60000, target: 2000 }, { durationMs: 30000, target: 0 }]
 * ```
 */
export function parseStages(text: string): Stage[] {
  const stages = text.split(',').map((part) => {
    const [d, r, ...rest] = part.split(':');
    const target = Number(r);
    if (!d || r === undefined || rest.length > 0 || !Number.isFinite(target) || target < 0) {
      throw new TypeError(`keel: invalid stage "${part}" (use duration:rate, e.g. 30s:100)`);
    }
    return { durationMs: parseDuration(d), target };
  });
  if (stages.length === 0) throw new TypeError('keel: --stages needs at least one stage');
  return stages;
}

/** Intended send times for an open-model run. Times are ms from the run's start. */
export class Schedule {
  readonly durationMs: number;
  #stages: { start: number; end: number; from: number; to: number }[] = [];
  /** The rate's whole integral, unrounded. */
  #total: number;

  /** A constant `rate` for `durationMs`, or a list of stages starting from 0 req/s. */
  constructor(spec: { rate: number; durationMs: number } | { stages: Stage[]; startRate?: number }) {
    if ('rate' in spec) {
      if (!(spec.rate > 0)) throw new TypeError(`keel: Schedule option "rate" must be > 0 (got ${spec.rate})`);
      this.#stages.push({ start: 0, end: spec.durationMs, from: spec.rate, to: spec.rate });
    } else {
      let t = 0;
      let from = spec.startRate ?? 0;
      for (const s of spec.stages) {
        this.#stages.push({ start: t, end: t + s.durationMs, from, to: s.target });
        t += s.durationMs;
        from = s.target;
      }
    }
    this.durationMs = this.#stages.at(-1)?.end ?? 0;
    this.#total = this.countAt(this.durationMs);
  }

  /** Target rate (req/s) at time `t`. */
  rateAt(t: number): number {
    for (const s of this.#stages) {
      if (t < s.end) return s.from + ((s.to - s.from) * (t - s.start)) / Math.max(1, s.end - s.start);
    }
    return 0;
  }

  /** Requests the schedule intends to send in total (the integral of the rate). */
  expectedCount(): number {
    let n = 0;
    for (const s of this.#stages) n += ((s.from + s.to) / 2) * ((s.end - s.start) / 1000);
    return Math.round(n);
  }

  /** Requests due by time `t`: the integral of the rate from 0 to `t`. */
  countAt(t: number): number {
    let n = 0;
    for (const s of this.#stages) {
      const d = s.end - s.start;
      if (t >= s.end) n += ((s.from + s.to) / 2) * (d / 1000);
      else if (t > s.start) {
        const tau = t - s.start;
        n += (s.from * tau + ((s.to - s.from) * tau * tau) / (2 * Math.max(1, d))) / 1000;
        break;
      } else break;
    }
    return n;
  }

  /**
   * The intended time of the first request: the start of the first stage with a positive rate.
   * Each request is due at the start of its share of the integral, as a constant rate's first
   * is due at 0. Starting a ramp one share in put its last request at the very end, where the
   * run's stop timer cut it (`1s:10` sent 4 of 5 against an idle server).
   */
  first(): number {
    for (const s of this.#stages) if (s.from > 0 || s.to > 0) return s.start;
    return Number.POSITIVE_INFINITY;
  }

  /**
   * The intended time of the request after one intended at `t`, or `Infinity` when the
   * schedule ends first. It inverts the rate's integral exactly (a quadratic on a ramp), so
   * intended times follow the ramp and never drift with the sender.
   */
  next(t: number): number {
    let want = this.countAt(t) + 1;
    // The next share starting at the total (to rounding) starts at the end: there is none. On a
    // ramp down to 0 a rounding error in the count moves the time a lot (0.07 ms at 2 min).
    if (want > this.#total - 1e-6) return Number.POSITIVE_INFINITY;
    for (const s of this.#stages) {
      const d = Math.max(1, s.end - s.start);
      const inStage = ((s.from + s.to) / 2) * (d / 1000);
      if (want > inStage + 1e-9) {
        want -= inStage;
        continue;
      }
      const a = (s.to - s.from) / (2 * d);
      const b = s.from;
      const c = want * 1000;
      const tau = Math.abs(a) < 1e-12 ? c / b : (-b + Math.sqrt(Math.max(0, b * b + 4 * a * c))) / (2 * a);
      const at = s.start + tau;
      return at < this.durationMs ? Math.max(at, t) : Number.POSITIVE_INFINITY;
    }
    return Number.POSITIVE_INFINITY;
  }
}
