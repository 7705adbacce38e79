import type { Clock } from 'keel/clock';
import { type DashboardSnapshot, type DashboardSources, type HealthSummary, readSources, summariseHealth } from './sources.ts';

export interface CollectorOptions {
  intervalMs: number;
  sloMs: number;
  errorRateSlo: number;
  /** Longest a `fresh()` read waits for the health source. */
  healthTimeoutMs: number;
  clock: Clock;
  /** Open dashboard streams (shown as viewers). */
  streams: () => number;
}

/**
 * Builds snapshots from the sources. Health is the one asynchronous source: a stream tick never
 * waits for it, it uses the last report and starts one refresh (never two at once), so a slow
 * dependency check cannot stall or pile up behind the ticks. The health source caches its own
 * results, so asking once per tick costs a map read.
 */
export class Collector {
  readonly #sources: DashboardSources;
  readonly #options: CollectorOptions;
  #health: HealthSummary | null = null;
  #healthError: string | undefined;
  #pending: Promise<void> | undefined;

  constructor(sources: DashboardSources, options: CollectorOptions) {
    this.#sources = sources;
    this.#options = options;
  }

  /** A snapshot now, with the last known health; starts a health refresh in the background. */
  snapshot(): DashboardSnapshot {
    void this.#refresh();
    return this.#build();
  }

  /** A snapshot after waiting (at most `healthTimeoutMs`) for a current health report and the slowest statements' plans. */
  async fresh(): Promise<DashboardSnapshot> {
    const waits = [this.#refresh(), this.#plans()].filter((p) => p !== undefined);
    if (waits.length > 0) {
      const { clock, healthTimeoutMs } = this.#options;
      let timer: ReturnType<Clock['setTimeout']> | undefined;
      const timeout = new Promise<void>((resolve) => {
        timer = clock.setTimeout(resolve, healthTimeoutMs);
      });
      await Promise.race([Promise.all(waits), timeout]);
      clock.clearTimeout(timer!);
    }
    return this.#build();
  }

  /** The plans source's promise, never rejecting: a plan that fails shows in its row, not as a failed read. */
  #plans(): Promise<void> | undefined {
    const plans = this.#sources.slowSqlPlans;
    if (!plans) return undefined;
    try {
      return Promise.resolve(plans.call(this.#sources)).then(
        () => {},
        () => {},
      );
    } catch {
      return undefined;
    }
  }

  #build(): DashboardSnapshot {
    const { intervalMs, sloMs, errorRateSlo, clock } = this.#options;
    const frame = { at: clock.now(), intervalMs, sloMs, errorRateSlo, viewers: this.#options.streams() };
    const snap = readSources(this.#sources, this.#health, frame);
    if (this.#healthError) snap.errors.push({ source: 'health', message: this.#healthError });
    return snap;
  }

  #refresh(): Promise<void> | undefined {
    const health = this.#sources.health;
    if (!health) return undefined;
    if (this.#pending) return this.#pending;
    let started: Promise<HealthSummary>;
    try {
      started = Promise.resolve(health.call(this.#sources));
    } catch (err) {
      started = Promise.reject(err);
    }
    this.#pending = started.then(
      (report) => {
        this.#health = summariseHealth(report);
        this.#healthError = undefined;
      },
      (err: unknown) => {
        this.#healthError = err instanceof Error ? err.message : String(err);
      },
    );
    const pending = this.#pending;
    void pending.finally(() => {
      if (this.#pending === pending) this.#pending = undefined;
    });
    return pending;
  }
}
