/**
 * Event-loop delay and utilisation over a resetting window.
 *
 * prom-client's lag gauge measures one `setImmediate` at scrape time and its percentiles are
 * cumulative since start; under-pressure averages utilisation since start. Both hide a loop
 * that became slow a minute ago. Here both figures cover the current window (default 10 s),
 * reset by the injected clock, and the previous complete window is kept so a read right
 * after a reset is not computed from a handful of samples.
 *
 * Delay is the lateness of our own `resolutionMs` timer, not `monitorEventLoopDelay`, for two
 * reasons measured on Node 20 (10 ms resolution):
 * - `monitorEventLoopDelay` records the whole interval between its timer's runs, so the
 *   resolution is in every sample: an idle process read p50 10.2 ms, p99 10.5 ms.
 * - Any sampler blocked by a long turn takes one sample for the whole turn, so samples are
 *   per turn, not per unit of time, and a loop blocked most of the time keeps the p50 of an
 *   idle one (nodejs/node#34661): 0.3 s idle then 3 s of 120 ms turns read p50 10.7 ms (0.9 ms
 *   as plain lateness). Correcting that needs each sample as it is taken, which
 *   `monitorEventLoopDelay` does not hand out. A late tick here is recorded as HdrHistogram's
 *   `recordCorrectedValue` does against coordinated omission: `late`, `late - resolution`, …
 *   down to one resolution, the samples the blocked timer would have taken. A percentile then
 *   reads as a share of time: that run reads p50 50 ms, p99 110 ms; an idle loop ≈ 0.3 ms.
 */
import type { RecordableHistogram } from 'node:perf_hooks';
import { createHistogram, performance } from 'node:perf_hooks';
import { getHeapStatistics } from 'node:v8';
import type { Clock } from '../clock.ts';
import { clockOption, durationOption, intOption, objectOptions } from '../internal/options.ts';
import { Scope } from '../lifecycle/scope.ts';

export interface EventLoopMonitorOptions {
  /** How often the delay is sampled, in ms (Node timers add ≈ 1 ms of their own). Default: `10`. */
  resolutionMs?: number;
  /** Length of the resetting window the figures cover, in ms. Default: `10_000`. */
  windowMs?: number;
  /** Drives the window resets. Default: the real clock. */
  clock?: Clock;
}

/** One cheap reading of the process, as load shedding and the dashboard use it. */
export interface EventLoopSample {
  delayP50Ms: number;
  delayP99Ms: number;
  /** 0..1 over the window. */
  utilization: number;
  heapUsedBytes: number;
  heapTotalBytes: number;
  heapLimitBytes: number;
  rssBytes: number;
}

type Elu = ReturnType<typeof performance.eventLoopUtilization>;

// Below this many samples the current window is too young to trust alone (10 samples is
// 100 ms at the default resolution); reads fall back to the previous complete window.
const MIN_SAMPLES = 10;

/**
 * Watches the event loop with a sampling timer (delay: how late it runs) and
 * `performance.eventLoopUtilization`, reporting both over a window that resets every
 * `windowMs` of clock time. The timer runs on real time whatever the clock: it measures the
 * real loop.
 *
 * @example
 * ```ts
 * import { EventLoopMonitor } from 'keel/observe';
 * await using loop = new EventLoopMonitor({ windowMs: 5_000 });
 * const { delayP99Ms, utilization } = loop.sample();
 * console.log(`p99 ${delayP99Ms} ms, ELU ${utilization}`);
 * ```
 */
export class EventLoopMonitor implements AsyncDisposable {
  readonly resolutionMs: number;
  readonly windowMs: number;
  readonly #scope: Scope;
  // Two histograms take turns: one records the current window while the other holds the
  // previous window, so any percentile of it can still be read. Values in ns.
  #current: RecordableHistogram;
  #previous: RecordableHistogram;
  /** When the sampling timer is next due (performance.now() ms). */
  #due: number;
  /** Most values one late tick records: a stall cannot count for more than a window of samples. */
  readonly #maxFill: number;
  #hasPrevious = false;
  #windowStartElu: Elu;
  #previousUtilization = 0;
  #sample: EventLoopSample | undefined;
  #sampledAt = Number.NEGATIVE_INFINITY;
  #closed = false;

  constructor(options?: EventLoopMonitorOptions) {
    const o = objectOptions('EventLoopMonitor', options);
    this.resolutionMs = intOption('EventLoopMonitor', 'resolutionMs', o.resolutionMs, 10, { min: 1, max: 1_000 });
    // A duration, not a bare number: the window is a timer, and Infinity would make it a 1 ms one.
    this.windowMs = durationOption('EventLoopMonitor', 'windowMs', o.windowMs, 10_000, 100);
    if (this.windowMs < this.resolutionMs * MIN_SAMPLES) {
      throw new TypeError(`keel: EventLoopMonitor option "windowMs" must be at least ${MIN_SAMPLES} × resolutionMs (got ${this.windowMs})`);
    }
    const clock = clockOption('EventLoopMonitor', o.clock);
    this.#scope = new Scope({ name: 'event-loop-monitor', clock });
    this.#current = createHistogram();
    this.#previous = createHistogram();
    this.#maxFill = Math.ceil(this.windowMs / this.resolutionMs);
    this.#windowStartElu = performance.eventLoopUtilization();
    this.#scope.setInterval(() => this.#rotate(), this.windowMs);
    this.#due = performance.now() + this.resolutionMs;
    const sampler = setInterval(() => this.#tick(), this.resolutionMs);
    sampler.unref();
    this.#scope.add(() => clearInterval(sampler));
  }

  /** The sampling timer: records how late it ran, corrected for the samples a stall swallowed. */
  #tick(): void {
    const now = performance.now();
    const late = now - this.#due;
    this.#due = now + this.resolutionMs;
    const h = this.#current;
    // Histograms take integers ≥ 1: 1 ns stands for "on time".
    if (!(late > 0)) {
      h.record(1);
      return;
    }
    h.record(Math.max(1, Math.round(late * 1e6)));
    let missed = late - this.resolutionMs;
    for (let n = 1; missed > 0 && n < this.#maxFill; n++, missed -= this.resolutionMs) {
      h.record(Math.max(1, Math.round(missed * 1e6)));
    }
  }

  /** Ends the current window and starts a new one (called by the clock every `windowMs`). */
  #rotate(): void {
    const ended = this.#current;
    const next = this.#previous;
    next.reset();
    this.#current = next;
    this.#previous = ended;
    this.#hasPrevious = ended.count > 0;
    const now = performance.eventLoopUtilization();
    this.#previousUtilization = performance.eventLoopUtilization(now, this.#windowStartElu).utilization;
    this.#windowStartElu = now;
    this.#sampledAt = Number.NEGATIVE_INFINITY;
  }

  #source(): RecordableHistogram | undefined {
    if (this.#current.count >= MIN_SAMPLES || !this.#hasPrevious) return this.#current.count > 0 ? this.#current : undefined;
    return this.#previous;
  }

  /** Event-loop delay percentile (0..100) over the window, in ms; 0 before any sample. */
  delayMs(p: 50 | 99 | number): number {
    const h = this.#source();
    if (!h || !(p >= 0 && p <= 100)) return 0;
    return h.percentile(p === 0 ? 0.001 : p) / 1e6;
  }

  /** The largest event-loop delay seen in the window, in ms. */
  maxDelayMs(): number {
    const h = this.#source();
    return h ? h.max / 1e6 : 0;
  }

  /** Event-loop utilisation 0..1 over the window (not since start). */
  utilization(): number {
    const d = performance.eventLoopUtilization(this.#windowStartElu);
    const elapsedMs = d.idle + d.active;
    if (elapsedMs < this.resolutionMs * MIN_SAMPLES && this.#hasPrevious) return this.#previousUtilization;
    return d.utilization;
  }

  /**
   * Delay, utilisation and heap in one reading. Cached for `resolutionMs` of real time, so
   * a load shedder may call it on every request: a cached read is a clock read and a compare.
   */
  sample(): EventLoopSample {
    const now = performance.now();
    if (this.#sample && now - this.#sampledAt < this.resolutionMs) return this.#sample;
    const heap = getHeapStatistics();
    this.#sample = {
      delayP50Ms: this.delayMs(50),
      delayP99Ms: this.delayMs(99),
      utilization: this.utilization(),
      heapUsedBytes: heap.used_heap_size,
      heapTotalBytes: heap.total_heap_size,
      heapLimitBytes: heap.heap_size_limit,
      rssBytes: process.memoryUsage.rss(),
    };
    this.#sampledAt = now;
    return this.#sample;
  }

  /** Stops the sampling timer and the window timer. Idempotent. */
  close(): Promise<void> {
    this.#closed = true;
    return this.#scope.close();
  }

  /** True once {@link close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
