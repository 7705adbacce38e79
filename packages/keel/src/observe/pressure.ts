/**
 * Load shedding: when the process is overloaded, new requests get a fast 503 with
 * `Retry-After` instead of queueing behind work the service cannot finish in time.
 *
 * Pressure is evaluated on a timer (default every 100 ms), not per request, so the hot path
 * is a boolean read. The built-in sampler measures event-loop delay and utilisation over each
 * interval only (under-pressure averages utilisation since start, which hides a loop that
 * became slow a minute ago). Pressure starts when a figure is over its threshold in
 * `sustainIntervals` intervals in a row (default 2): one stall, a GC pause or a neighbour's CPU
 * burst, is not overload, and shedding after it would only turn away the next second's
 * requests. Hysteresis: pressure ends once the figure that started it is below `recoverRatio` ×
 * its threshold, the others are below their thresholds, and `coolDownMs` has passed since the
 * last interval over a threshold, so shedding does not flap. Only the starting figure must fall
 * into the band: requiring it of every figure let one that never triggered (a heap steady at
 * 0.85 of its limit, under 0.95 but over 0.95 × 0.8) hold pressure forever after one stall.
 * The in-flight cap is no part of this state: it is checked per request, so it sheds exactly
 * while in flight is at the cap, never latches, and needs no timer to end. Each start and end is
 * published on `keel:http:pressure`, and the shedder's creation on `keel:http:shedder-created`.
 */
import { performance } from 'node:perf_hooks';
import { getHeapStatistics } from 'node:v8';
import { CHANNELS, channel, type NamedMessage } from '../channels.ts';
import type { Clock } from '../clock.ts';
import { clockOption, durationOption, functionOption, numberOption, objectOptions, stringOption } from '../internal/options.ts';
import { Scope } from '../lifecycle/scope.ts';

/** One reading of the process. */
export interface PressureSample {
  /** Event-loop delay (the longest over the last interval), ms. */
  delayMs: number;
  /** Event-loop utilisation 0..1 over the last interval. */
  utilization: number;
  /** Heap used / heap limit, 0..1. */
  heapUsedRatio: number;
}

export type PressureReason = 'event-loop-delay' | 'event-loop-utilization' | 'heap' | 'in-flight';

/** Published on `keel:http:shed` for every shed request. */
export interface ShedMessage extends NamedMessage {
  reason: PressureReason;
}

/** Published on `keel:http:pressure` when shedding starts and when it ends. */
export interface PressureMessage extends NamedMessage {
  underPressure: boolean;
  /** The figure that started it (also on the end message). */
  reason: PressureReason;
  /** The reading that decided it. */
  sample: PressureSample;
  /** Requests shed since it started (0 on the start message). */
  shed: number;
}

export interface LoadShedderOptions {
  /** Name in telemetry. Default `'http'`. */
  name?: string;
  /** Event-loop delay threshold, ms. Default 200. `Infinity` disables. */
  maxEventLoopDelayMs?: number;
  /**
   * Event-loop utilisation threshold, 0..1. Default `Infinity` (off): a saturated but healthy
   * server runs at ELU ≈ 1 while still answering in microseconds, so utilisation alone would
   * turn full throughput into 503s. Delay and in-flight show real queueing; set this (e.g.
   * 0.98) only together with them, for CPU-heavy handlers.
   */
  maxEventLoopUtilization?: number;
  /** Heap used / heap limit threshold, 0..1. Default 0.95. `Infinity` disables. */
  maxHeapUsedRatio?: number;
  /** Requests in flight at or above which new ones are shed (checked per request). Default `Infinity`. */
  maxInFlight?: number;
  /** Current requests in flight, e.g. `() => metrics.http.inFlight`. Needed for `maxInFlight`. */
  inFlight?: () => number;
  /** Reads the process; default: a built-in sampler over each interval. Inject for tests. */
  sample?: () => PressureSample;
  /** How often pressure is evaluated, ms. Default 100. */
  intervalMs?: number;
  /**
   * Intervals in a row a figure must be over its threshold before shedding starts. Default 2:
   * a single stall is not overload. 1 sheds from the first interval over.
   */
  sustainIntervals?: number;
  /**
   * Pressure ends only once the figure that started it is below its threshold × this (and the
   * others below their thresholds). Default 0.8.
   */
  recoverRatio?: number;
  /** Minimum time after the last interval over a threshold before pressure ends, ms. Default 1,000. */
  coolDownMs?: number;
  /**
   * Told when shedding starts and ends (the same message `keel:http:pressure` gets), e.g. to log
   * it. What it throws is ignored: the shedder's state is already updated.
   */
  onChange?: (message: PressureMessage) => void;
  /** `Retry-After` seconds sent with a shed response. Default 1. */
  retryAfterSeconds?: number;
  /** Paths never shed: exact (`'/metrics'`) or prefix (`'/health/*'` matches `/health` and below). */
  exempt?: readonly string[];
  /** Default: the real clock. */
  clock?: Clock;
}

/**
 * Measures delay and utilisation over each interval; owned by a shedder.
 *
 * Delay is the lateness of its own 10 ms timer, the longest since the last reading. A JS
 * timer that is due is run in the next turn, so every blocked turn is counted, once, in the
 * reading after it. Not `monitorEventLoopDelay`: on Node 20 its samples include its own
 * interval (an idle loop reads 10.2 ms at 10 ms). `EventLoopMonitor` (the exported metrics)
 * measures the same lateness, as percentiles over its window.
 */
class IntervalSampler {
  static readonly RESOLUTION_MS = 10;
  #elu = performance.eventLoopUtilization();
  #maxLateMs = 0;
  #due = performance.now() + IntervalSampler.RESOLUTION_MS;
  readonly #timer: NodeJS.Timeout;

  constructor() {
    const every = IntervalSampler.RESOLUTION_MS;
    this.#timer = setInterval(() => {
      const now = performance.now();
      const late = now - this.#due;
      if (late > this.#maxLateMs) this.#maxLateMs = late;
      this.#due = now + every;
    }, every);
    this.#timer.unref();
  }

  sample = (): PressureSample => {
    const delayMs = this.#maxLateMs;
    this.#maxLateMs = 0;
    const now = performance.eventLoopUtilization();
    const utilization = performance.eventLoopUtilization(now, this.#elu).utilization;
    this.#elu = now;
    const heap = getHeapStatistics();
    return { delayMs, utilization, heapUsedRatio: heap.used_heap_size / heap.heap_size_limit };
  };

  close(): void {
    clearInterval(this.#timer);
  }
}

/**
 * Decides, cheaply per request, whether to shed it.
 *
 * @example
 * ```ts
 * import { LoadShedder } from 'keel/observe';
 * const shedder = new LoadShedder({ maxEventLoopDelayMs: 100, exempt: ['/health/*'] });
 * if (shedder.shouldShed('/api/topics')) {
 *   // answer 503 with Retry-After: shedder.retryAfterSeconds
 * }
 * await shedder.close();
 * ```
 */
export class LoadShedder implements AsyncDisposable {
  readonly name: string;
  readonly retryAfterSeconds: number;
  readonly #maxDelay: number;
  readonly #maxElu: number;
  readonly #maxHeap: number;
  readonly #maxInFlight: number;
  readonly #inFlight: (() => number) | undefined;
  readonly #sample: () => PressureSample;
  readonly #recover: number;
  readonly #coolDownMs: number;
  readonly #clock: Clock;
  readonly #scope: Scope;
  readonly #exact = new Set<string>();
  readonly #prefixes: string[] = [];
  readonly #channel = channel(CHANNELS.http.shed);
  readonly #pressureChannel = channel(CHANNELS.http.pressure);
  readonly #sustain: number;
  readonly #onChange: ((message: PressureMessage) => void) | undefined;
  /** Intervals over a threshold in a row, while not yet under pressure. */
  #overRun = 0;
  /** shedCount when the current pressure started. */
  #shedAtStart = 0;
  readonly #intervalMs: number;
  /** Why the process is under pressure; undefined while it is not (the one record of the state). */
  #reason: PressureReason | undefined;
  #lastOver = Number.NEGATIVE_INFINITY;
  #shed = 0;
  #last: PressureSample | undefined;

  constructor(options?: LoadShedderOptions) {
    const o = objectOptions('LoadShedder', options);
    const own = 'LoadShedder';
    this.name = stringOption(own, 'name', o.name, 'http');
    this.#maxDelay = numberOption(own, 'maxEventLoopDelayMs', o.maxEventLoopDelayMs, 200, { min: 1, max: Number.POSITIVE_INFINITY });
    this.#maxElu = numberOption(own, 'maxEventLoopUtilization', o.maxEventLoopUtilization, Number.POSITIVE_INFINITY, {
      min: 0.01,
      max: Number.POSITIVE_INFINITY,
    });
    this.#maxHeap = numberOption(own, 'maxHeapUsedRatio', o.maxHeapUsedRatio, 0.95, { min: 0.01, max: Number.POSITIVE_INFINITY });
    this.#maxInFlight = numberOption(own, 'maxInFlight', o.maxInFlight, Number.POSITIVE_INFINITY, {
      min: 1,
      max: Number.POSITIVE_INFINITY,
    });
    this.#inFlight = functionOption<() => number>(own, 'inFlight', o.inFlight);
    if (this.#maxInFlight !== Number.POSITIVE_INFINITY && !this.#inFlight) {
      throw new TypeError('keel: LoadShedder option "inFlight" must be a function when "maxInFlight" is set (got undefined)');
    }
    const intervalMs = durationOption(own, 'intervalMs', o.intervalMs, 100, 1);
    this.#intervalMs = intervalMs;
    this.#sustain = numberOption(own, 'sustainIntervals', o.sustainIntervals, 2, { min: 1, max: 1_000, integer: true });
    this.#recover = numberOption(own, 'recoverRatio', o.recoverRatio, 0.8, { min: 0.01, max: 1 });
    this.#coolDownMs = durationOption(own, 'coolDownMs', o.coolDownMs, 1_000);
    // RFC 9110 §10.2.3: delta-seconds above 2^31 - 1 are to be read as that; Infinity is no header value.
    this.retryAfterSeconds = numberOption(own, 'retryAfterSeconds', o.retryAfterSeconds, 1, { min: 0, max: 2 ** 31 - 1, integer: true });
    this.#clock = clockOption(own, o.clock);
    this.#onChange = functionOption<(message: PressureMessage) => void>(own, 'onChange', o.onChange);
    if (o.exempt !== undefined && !Array.isArray(o.exempt))
      throw new TypeError('keel: LoadShedder option "exempt" must be an array of paths');
    for (const p of o.exempt ?? []) this.exempt(p);
    this.#scope = new Scope({ name: 'load-shedder', clock: this.#clock });
    const injected = functionOption<() => PressureSample>(own, 'sample', o.sample);
    if (injected) {
      this.#sample = injected;
    } else {
      const sampler = this.#scope.add(new IntervalSampler());
      this.#sample = sampler.sample;
    }
    this.#scope.setInterval(() => this.evaluate(), intervalMs);
    // So the under-pressure gauge reads 0 from the start rather than appearing at the first
    // pressure (a series that is absent until trouble cannot be told from a missing shedder).
    const created = channel(CHANNELS.http.shedderCreated);
    if (created.hasSubscribers) created.publish({ name: this.name } satisfies NamedMessage);
  }

  /** Adds an exempt path: exact, or a prefix ending in `/*`. */
  exempt(pattern: string): this {
    if (typeof pattern !== 'string' || !pattern.startsWith('/'))
      throw new TypeError(`keel: LoadShedder exempt path must start with "/" (got ${JSON.stringify(pattern)})`);
    if (pattern.endsWith('/*')) {
      const base = pattern.slice(0, -2);
      this.#exact.add(base === '' ? '/' : base);
      this.#prefixes.push(`${base}/`);
    } else {
      this.#exact.add(pattern);
    }
    return this;
  }

  /** True when `url` (a path, with or without a query) is exempt from shedding. */
  isExempt(url: string): boolean {
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    if (this.#exact.has(path)) return true;
    for (const p of this.#prefixes) if (path.startsWith(p)) return true;
    return false;
  }

  /** Whether the process is under pressure; handlers may use it to pick a cheaper path. */
  isUnderPressure(): boolean {
    return this.#reason !== undefined || (this.#inFlight !== undefined && this.#inFlight() >= this.#maxInFlight);
  }

  /** Why the process is under pressure, or undefined. */
  get reason(): PressureReason | undefined {
    if (this.#reason !== undefined) return this.#reason;
    return this.#inFlight !== undefined && this.#inFlight() >= this.#maxInFlight ? 'in-flight' : undefined;
  }

  /** Requests shed so far. */
  get shedCount(): number {
    return this.#shed;
  }

  /** The last reading taken. */
  get lastSample(): PressureSample | undefined {
    return this.#last;
  }

  /**
   * The per-request decision: true means answer 503 now. Counts and publishes each shed
   * request. Exempt paths are only matched while shedding, so they cost nothing otherwise.
   */
  shouldShed(url: string): boolean {
    let reason: PressureReason | undefined;
    if (this.#reason !== undefined) reason = this.#reason;
    else if (this.#inFlight !== undefined && this.#maxInFlight !== Number.POSITIVE_INFINITY && this.#inFlight() >= this.#maxInFlight) {
      reason = 'in-flight';
    } else return false;
    if (this.isExempt(url)) return false;
    this.#shed++;
    if (this.#channel.hasSubscribers) this.#channel.publish({ name: this.name, reason } satisfies ShedMessage);
    return true;
  }

  /** The first figure of the reading over its threshold, if any. In-flight is per request, not here. */
  #over(s: PressureSample): PressureReason | undefined {
    if (s.delayMs > this.#maxDelay) return 'event-loop-delay';
    if (s.utilization > this.#maxElu) return 'event-loop-utilization';
    if (s.heapUsedRatio > this.#maxHeap) return 'heap';
    return undefined;
  }

  /** Whether the figure behind `reason` is back below `recoverRatio` × its threshold. */
  #recovered(reason: PressureReason, s: PressureSample): boolean {
    const r = this.#recover;
    switch (reason) {
      case 'event-loop-delay':
        return s.delayMs <= this.#maxDelay * r;
      case 'event-loop-utilization':
        return s.utilization <= this.#maxElu * r;
      case 'heap':
        return s.heapUsedRatio <= this.#maxHeap * r;
      default:
        return true;
    }
  }

  /**
   * Forgets the pressure state and ignores readings for the next two intervals. Call it once
   * start-up work that blocks the loop (schema compilation, migrations, a cache warm-up) is
   * done, so that stall does not shed the first requests.
   *
   * @example
   * ```ts
   * app.addHook('onReady', async () => shedder.reset());
   * ```
   */
  reset(): void {
    // Ending pressure here is an end like any other: the gauge and the log must hear it.
    if (this.#last) this.#end(this.#last);
    this.#overRun = 0;
    this.#lastOver = Number.NEGATIVE_INFINITY;
    this.#ignoreUntil = this.#clock.now() + 2 * this.#intervalMs;
  }

  #ignoreUntil = Number.NEGATIVE_INFINITY;

  /** Takes a reading and updates the pressure state (the timer calls this). Returns the state. */
  evaluate(): boolean {
    const s = this.#sample();
    this.#last = s;
    const now = this.#clock.now();
    if (now <= this.#ignoreUntil) return this.#reason !== undefined;
    const over = this.#over(s);
    if (over) {
      this.#lastOver = now;
      if (this.#reason === undefined && ++this.#overRun >= this.#sustain) {
        this.#reason = over;
        this.#shedAtStart = this.#shed;
        this.#publish(true, over, s);
      }
      return this.#reason !== undefined;
    }
    this.#overRun = 0;
    // Every figure is under its threshold here; the one that started pressure must be in the band.
    if (this.#reason !== undefined && this.#recovered(this.#reason, s) && now - this.#lastOver >= this.#coolDownMs) {
      this.#end(s);
    }
    // Otherwise still inside the hysteresis band or the cool-down: keep shedding.
    return this.#reason !== undefined;
  }

  /** Ends pressure, if any, and says so. */
  #end(sample: PressureSample): void {
    const reason = this.#reason;
    if (reason === undefined) return;
    this.#reason = undefined;
    this.#publish(false, reason, sample);
  }

  #publish(underPressure: boolean, reason: PressureReason, sample: PressureSample): void {
    if (!this.#pressureChannel.hasSubscribers && this.#onChange === undefined) return;
    const shed = underPressure ? 0 : this.#shed - this.#shedAtStart;
    const message: PressureMessage = { name: this.name, underPressure, reason, sample, shed };
    this.#pressureChannel.publish(message);
    try {
      this.#onChange?.(message);
    } catch {
      // A failing log call must not end the process from the shedder's timer; the state it
      // reports is already set.
    }
  }

  /** Stops the timer and the sampler. */
  close(): Promise<void> {
    return this.#scope.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
