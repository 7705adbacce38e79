/**
 * Event-loop delay and utilisation over a resetting window.
 *
 * prom-client's lag gauge measures one `setImmediate` at scrape time and its percentiles are
 * cumulative since start; under-pressure averages utilisation since start. Both hide a loop
 * that became slow a minute ago. Here both figures cover the current window (default 10 s),
 * reset by the injected clock, and the previous complete window is kept so a read right
 * after a reset is not computed from a handful of samples.
 */
import type { IntervalHistogram } from 'node:perf_hooks';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { getHeapStatistics } from 'node:v8';
import type { Clock } from '../clock.ts';
import { clockOption, durationOption, intOption, objectOptions } from '../internal/options.ts';
import { Scope } from '../lifecycle/scope.ts';

export interface EventLoopMonitorOptions {
  /** Sampling resolution of the delay histogram, in ms. Default: `10`. */
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
 * Watches the event loop with `perf_hooks.monitorEventLoopDelay` and
 * `performance.eventLoopUtilization`, reporting both over a window that resets every
 * `windowMs` of clock time.
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
  // previous window frozen (disabled), so any percentile of it can still be read.
  #current: IntervalHistogram;
  #previous: IntervalHistogram;
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
    this.#current = monitorEventLoopDelay({ resolution: this.resolutionMs });
    this.#previous = monitorEventLoopDelay({ resolution: this.resolutionMs });
    this.#current.enable();
    this.#windowStartElu = performance.eventLoopUtilization();
    this.#scope.setInterval(() => this.#rotate(), this.windowMs);
    this.#scope.add(() => {
      this.#current.disable();
      this.#previous.disable();
    });
  }

  /** Ends the current window and starts a new one (called by the clock every `windowMs`). */
  #rotate(): void {
    const ended = this.#current;
    const next = this.#previous;
    next.reset();
    next.enable();
    ended.disable();
    this.#current = next;
    this.#previous = ended;
    this.#hasPrevious = ended.count > 0;
    const now = performance.eventLoopUtilization();
    this.#previousUtilization = performance.eventLoopUtilization(now, this.#windowStartElu).utilization;
    this.#windowStartElu = now;
    this.#sampledAt = Number.NEGATIVE_INFINITY;
  }

  #source(): IntervalHistogram | undefined {
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

  /** Stops both histograms and the window timer. Idempotent. */
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
