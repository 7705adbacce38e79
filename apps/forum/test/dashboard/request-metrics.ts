/**
 * A small real metrics source for dashboard tests: it records every response the app sends
 * (from an `onResponse` hook) and the process's own figures, and answers in the
 * `MetricsSnapshot` shape. Stands in for `keel/observe`'s `Metrics` in tests that need real
 * request counts; memory is bounded by a ring of the last `capacity` responses.
 */
import type { FastifyInstance } from 'fastify';
import { EventLoopMonitor } from 'keel/observe';
import type { MetricsSnapshot, WindowStats } from '../../src/dashboard/sources.ts';

const WINDOWS = { '10s': 10_000, '1m': 60_000, '5m': 300_000 } as const;

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? 0;
}

export class RequestMetrics implements AsyncDisposable {
  readonly #at: Float64Array;
  readonly #ms: Float64Array;
  readonly #error: Uint8Array;
  readonly #route: string[];
  #next = 0;
  #size = 0;
  #inFlight = 0;
  readonly #startedAt = Date.now();
  readonly #loop = new EventLoopMonitor({ windowMs: 1_000 });

  constructor(app: FastifyInstance, capacity = 50_000) {
    this.#at = new Float64Array(capacity);
    this.#ms = new Float64Array(capacity);
    this.#error = new Uint8Array(capacity);
    this.#route = new Array(capacity);
    app.addHook('onRequest', async () => {
      this.#inFlight++;
    });
    app.addHook('onResponse', async (request, reply) => {
      this.#inFlight--;
      const i = this.#next;
      this.#at[i] = Date.now();
      this.#ms[i] = reply.elapsedTime;
      this.#error[i] = reply.statusCode >= 500 ? 1 : 0;
      this.#route[i] = `${request.method} ${request.routeOptions.url ?? '(unmatched)'}`;
      this.#next = (i + 1) % this.#at.length;
      this.#size = Math.min(this.#size + 1, this.#at.length);
    });
  }

  #window(now: number, ms: number): WindowStats {
    const times: number[] = [];
    let errors = 0;
    for (let i = 0; i < this.#size; i++) {
      if (this.#at[i]! > now - ms) {
        times.push(this.#ms[i]!);
        errors += this.#error[i]!;
      }
    }
    times.sort((a, b) => a - b);
    const seconds = Math.max(1, Math.min(ms, now - this.#startedAt)) / 1000;
    return {
      count: times.length,
      rps: times.length / seconds,
      errorRate: times.length ? errors / times.length : 0,
      p50Ms: quantile(times, 0.5),
      p95Ms: quantile(times, 0.95),
      p99Ms: quantile(times, 0.99),
    };
  }

  snapshot(): MetricsSnapshot {
    const now = Date.now();
    const byRoute = new Map<string, number[]>();
    for (let i = 0; i < this.#size; i++) {
      const key = this.#route[i]!;
      const list = byRoute.get(key) ?? [];
      if (list.length === 0) byRoute.set(key, list);
      list.push(this.#ms[i]!);
    }
    const mem = process.memoryUsage();
    const loop = this.#loop.sample();
    return {
      at: now,
      windows: {
        '10s': this.#window(now, WINDOWS['10s']),
        '1m': this.#window(now, WINDOWS['1m']),
        '5m': this.#window(now, WINDOWS['5m']),
      },
      process: {
        eventLoopDelayP50Ms: loop.delayP50Ms,
        eventLoopDelayP99Ms: loop.delayP99Ms,
        eventLoopUtilization: loop.utilization,
        heapUsedBytes: mem.heapUsed,
        heapTotalBytes: mem.heapTotal,
        rssBytes: mem.rss,
        activeHandles: process.getActiveResourcesInfo().length,
        inFlight: this.#inFlight,
      },
      shed: { total: 0, last10s: 0 },
      cache: [],
      breakers: [],
      routes: [...byRoute].map(([key, list]) => {
        const [method = '', route = ''] = key.split(' ');
        list.sort((a, b) => a - b);
        return { method, route, count: list.length, p50Ms: quantile(list, 0.5), p99Ms: quantile(list, 0.99) };
      }),
    };
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.#loop[Symbol.asyncDispose]();
  }
}
