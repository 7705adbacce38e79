/**
 * Process metrics: event-loop delay and utilisation over the monitor's resetting window,
 * heap, RSS, CPU, GC pause time by kind, and active resources.
 *
 * Gauges are read at scrape time (a scrape is at most once per `scrapeCacheMs`), GC pauses
 * are pushed by a `PerformanceObserver` as they happen. Nothing here runs per request.
 */
import { constants, type PerformanceEntry, PerformanceObserver } from 'node:perf_hooks';
import type { Clock } from '../clock.ts';
import type { EventLoopMonitor } from './event-loop.ts';
import { RollingCounter } from './rolling.ts';
import { CounterFamily, GaugeFamily, HistogramFamily, observe, type SeriesLimit } from './series-cap.ts';

const GC_KINDS = new Map<number, string>([
  [constants.NODE_PERFORMANCE_GC_MINOR, 'minor'],
  [constants.NODE_PERFORMANCE_GC_MAJOR, 'major'],
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL, 'incremental'],
  [constants.NODE_PERFORMANCE_GC_WEAKCB, 'weakcb'],
]);
/** GC pauses are mostly sub-millisecond (scavenges); major mark-compacts reach 100s of ms. */
const GC_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];

type Family = CounterFamily | GaugeFamily | HistogramFamily;

/** @internal What {@link Metrics} hands its `ProcessMetrics`. */
export interface ProcessMetricsParts {
  prefix: string;
  limit: SeriesLimit;
  eventLoop: EventLoopMonitor;
  clock: Clock;
}

/**
 * The process half of {@link Metrics}; created by it when `processMetrics` is on.
 *
 * @example
 * ```ts
 * import { Metrics } from 'keel/observe';
 * await using metrics = new Metrics();
 * const { body } = await metrics.scrape();
 * body.includes('keel_event_loop_delay_p99_seconds'); // true
 * ```
 */
export class ProcessMetrics {
  readonly families: readonly Family[];
  readonly #gc: HistogramFamily;
  readonly #gcRecent: RollingCounter;
  readonly #observer: PerformanceObserver;

  /** @internal Created by {@link Metrics}. */
  constructor(parts: ProcessMetricsParts) {
    const { prefix: p, limit, eventLoop } = parts;
    const gauge = (name: string, help: string, read: () => number): GaugeFamily => {
      const g: GaugeFamily = new GaugeFamily({ name: `${p}${name}`, help, collect: () => g.set([], read()) }, limit);
      g.set([], 0);
      return g;
    };
    const resources = new GaugeFamily(
      {
        name: `${p}process_active_resources`,
        help: 'Resources keeping the event loop alive, by type (process.getActiveResourcesInfo).',
        labelNames: ['type'],
        collect: () => {
          for (const s of resources.all()) s.value = 0;
          for (const type of process.getActiveResourcesInfo()) {
            const s = resources.series(type);
            if (s) s.value++;
          }
        },
      },
      limit,
    );
    // A counter read from the process at scrape time rather than incremented.
    const cpu: CounterFamily = new CounterFamily(
      {
        name: `${p}process_cpu_seconds_total`,
        help: 'CPU time spent by the process, by mode.',
        labelNames: ['mode'],
        collect: () => {
          const u = process.cpuUsage();
          const user = cpu.series('user');
          if (user) user.value = u.user / 1e6;
          const system = cpu.series('system');
          if (system) system.value = u.system / 1e6;
        },
      },
      limit,
    );
    this.#gc = new HistogramFamily(
      {
        name: `${p}gc_pause_seconds`,
        help: 'Garbage-collection pauses, by kind (minor, major, incremental, weakcb).',
        labelNames: ['kind'],
      },
      limit,
      GC_BUCKETS,
    );
    this.#gcRecent = new RollingCounter({ clock: parts.clock, bucketMs: 1_000, buckets: 10 });
    this.families = [
      gauge('event_loop_delay_p50_seconds', 'Event-loop delay, median over the current window.', () => eventLoop.delayMs(50) / 1000),
      gauge(
        'event_loop_delay_p99_seconds',
        'Event-loop delay, 99th percentile over the current window.',
        () => eventLoop.delayMs(99) / 1000,
      ),
      gauge('event_loop_delay_max_seconds', 'Event-loop delay, maximum over the current window.', () => eventLoop.maxDelayMs() / 1000),
      gauge('event_loop_utilization_ratio', 'Event-loop utilisation (0..1) over the current window.', () => eventLoop.utilization()),
      gauge('process_heap_used_bytes', 'V8 heap in use.', () => eventLoop.sample().heapUsedBytes),
      gauge('process_heap_total_bytes', 'V8 heap reserved.', () => eventLoop.sample().heapTotalBytes),
      gauge('process_heap_limit_bytes', 'V8 heap size limit.', () => eventLoop.sample().heapLimitBytes),
      gauge('process_resident_memory_bytes', 'Resident set size.', () => process.memoryUsage.rss()),
      gauge('process_active_handles', 'Active libuv handles and requests (all types).', () => process.getActiveResourcesInfo().length),
      resources,
      cpu,
      this.#gc,
    ];
    this.#observer = new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) this.#record(entry);
    });
  }

  /** Starts observing GC (separate from construction, so a failed registration observes nothing). */
  start(): void {
    this.#observer.observe({ entryTypes: ['gc'] });
  }

  #record(entry: PerformanceEntry): void {
    const detail = (entry as { detail?: unknown }).detail as { kind?: number } | undefined;
    const kind = GC_KINDS.get(detail?.kind ?? -1) ?? 'other';
    const s = this.#gc.series(kind);
    if (s) observe(this.#gc.bounds, s, entry.duration / 1000);
    this.#gcRecent.add(entry.duration);
  }

  /** GC pause time in ms over the last `windowMs` (≤ 10 s). */
  gcPauseMs(windowMs = 10_000): number {
    return this.#gcRecent.sum(windowMs);
  }

  /** Stops observing GC. */
  close(): void {
    this.#observer.disconnect();
  }
}
