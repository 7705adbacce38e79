/**
 * Health checks an orchestrator can trust. Each named check has its own timeout (one slow
 * dependency cannot make the whole probe time out), is `critical` or `optional`, and caches
 * its result for a TTL, so a probe storm reaches a database at most once per TTL. Concurrent
 * probes share one run of each check, and a check never has two calls in flight: one that
 * outlived its timeout is reported down ("still running") until it settles.
 *
 * Semantics (what Kubernetes and load balancers expect):
 * - `live`: the process answers; it never runs a check.
 * - `ready`: every critical check is up and the service is not shutting down; else 503.
 * - `report`: every check; `unhealthy` (503) when a critical check is down or the service is
 *   shutting down, `degraded` (200) when only optional checks are down, else `healthy` (200).
 */
import type { Clock } from '../clock.ts';
import { KeelError } from '../errors.ts';
import { clockOption, durationOption, intOption, objectOptions, oneOfOption, optionError } from '../internal/options.ts';

/** A check: resolves (optionally with a detail) when up, throws when down. */
export type HealthCheckFn = (signal: AbortSignal) => unknown;

export interface HealthCheckOptions {
  /** `'critical'` checks decide readiness; `'optional'` ones only degrade. Default `'critical'`. */
  kind?: 'critical' | 'optional';
  /** How long one run may take before it counts as down. Default: the registry's `timeoutMs`. */
  timeoutMs?: number;
  /** How long a result is reused. Default: the registry's `ttlMs`. */
  ttlMs?: number;
}

export interface HealthOptions {
  /** Default per-check timeout. Default 2,000 ms. */
  timeoutMs?: number;
  /** Default result TTL. Default 5,000 ms. */
  ttlMs?: number;
  /** Most checks a registry holds. Default 64. */
  maxChecks?: number;
  /** Default: the real clock. */
  clock?: Clock;
}

export type CheckStatus = 'up' | 'down';
export type HealthStatus = 'healthy' | 'degraded' | 'unhealthy';

export interface CheckResult {
  status: CheckStatus;
  kind: 'critical' | 'optional';
  latency_ms: number;
  detail?: unknown;
}

export interface HealthReport {
  status: HealthStatus;
  /** True once shutdown has begun. */
  shutting_down?: boolean;
  checks: Record<string, CheckResult>;
}

/** An HTTP answer an adapter sends as JSON. */
export interface HealthResponse {
  statusCode: 200 | 503;
  body: HealthReport | { status: 'ok' | 'unavailable' | 'shutting_down' };
}

/**
 * The abort reason of a check that passed its own timeout; its message becomes the detail.
 *
 * @example
 * ```ts
 * import { Health, HealthCheckTimeoutError } from 'keel/observe';
 * new Health().register('db', (signal) => new Promise((_, reject) => {
 *   signal.addEventListener('abort', () => reject(signal.reason as HealthCheckTimeoutError));
 * }), { timeoutMs: 100 });
 * ```
 */
export class HealthCheckTimeoutError extends KeelError {
  constructor(name: string, ms: number) {
    super('KEEL_HEALTH_TIMEOUT', `keel: health check "${name}" timed out after ${ms} ms`);
  }
}

interface Entry {
  name: string;
  fn: HealthCheckFn;
  kind: 'critical' | 'optional';
  timeoutMs: number;
  ttlMs: number;
  result: CheckResult | undefined;
  expires: number;
  running: Promise<CheckResult> | undefined;
  /** When the call of `fn` that has not settled yet started; undefined when none is pending. */
  callStartedAt: number | undefined;
}

function detailOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * A registry of named health checks.
 *
 * @example
 * ```ts
 * import { Health } from 'keel/observe';
 * const health = new Health({ timeoutMs: 500 });
 * health.register('db', () => { /* SELECT 1 *\/ });
 * health.register('search', async () => 'reachable', { kind: 'optional' });
 * const ready = await health.ready(); // { statusCode: 200, body: { status: 'ok' } }
 * await health.close();
 * ```
 */
export class Health {
  readonly #clock: Clock;
  readonly #timeoutMs: number;
  readonly #ttlMs: number;
  readonly #maxChecks: number;
  readonly #checks = new Map<string, Entry>();
  #shuttingDown = false;

  constructor(options?: HealthOptions) {
    const o = objectOptions('Health', options);
    this.#clock = clockOption('Health', o.clock);
    this.#timeoutMs = durationOption('Health', 'timeoutMs', o.timeoutMs, 2_000, 1);
    this.#ttlMs = durationOption('Health', 'ttlMs', o.ttlMs, 5_000);
    this.#maxChecks = intOption('Health', 'maxChecks', o.maxChecks, 64, { min: 1 });
  }

  /** Adds a check. Names are unique; re-registering a name replaces it. */
  register(name: string, fn: HealthCheckFn, options?: HealthCheckOptions): this {
    // Both are required: the option helpers return their fallback for undefined, which let
    // register('db') in (failing every probe with "fn is not a function") and named a check "undefined".
    if (typeof name !== 'string' || name.length === 0) throw optionError('Health.register', 'name', 'a non-empty string', name);
    if (typeof fn !== 'function') throw optionError('Health.register', 'fn', 'a function', fn);
    const o = objectOptions('Health.register', options);
    if (!this.#checks.has(name) && this.#checks.size >= this.#maxChecks) {
      throw new TypeError(`keel: Health holds at most ${this.#maxChecks} checks (option "maxChecks")`);
    }
    this.#checks.set(name, {
      name,
      fn,
      kind: oneOfOption('Health.register', 'kind', o.kind, ['critical', 'optional'], 'critical'),
      timeoutMs: durationOption('Health.register', 'timeoutMs', o.timeoutMs, this.#timeoutMs, 1),
      ttlMs: durationOption('Health.register', 'ttlMs', o.ttlMs, this.#ttlMs),
      result: undefined,
      expires: 0,
      running: undefined,
      callStartedAt: undefined,
    });
    return this;
  }

  /** Removes a check. */
  unregister(name: string): boolean {
    return this.#checks.delete(name);
  }

  /** True once {@link markShuttingDown} was called: readiness is then always 503. */
  get shuttingDown(): boolean {
    return this.#shuttingDown;
  }

  /** Marks the service as shutting down (called by the shutdown coordinator). */
  markShuttingDown(): void {
    this.#shuttingDown = true;
  }

  /** Runs one check, or returns its cached result while fresh. */
  check(name: string): Promise<CheckResult> {
    const entry = this.#checks.get(name);
    if (!entry) return Promise.reject(new TypeError(`keel: no health check named "${name}"`));
    return this.#resultOf(entry);
  }

  #resultOf(entry: Entry): Promise<CheckResult> {
    if (entry.result !== undefined && this.#clock.now() < entry.expires) return Promise.resolve(entry.result);
    if (entry.running) return entry.running;
    // At most one call of a check at a time. A call that ignored its signal past the timeout
    // is still running: starting another on every probe piled up calls on a hung database
    // (5 probes at ttlMs 0 left 5 pending), so until it settles the answer is that it hangs.
    if (entry.callStartedAt !== undefined) return Promise.resolve(this.#stillRunning(entry, entry.callStartedAt));
    entry.running = this.#run(entry).then((result) => {
      entry.result = result;
      entry.expires = this.#clock.now() + entry.ttlMs;
      entry.running = undefined;
      return result;
    });
    return entry.running;
  }

  /** Monotonic ms where the clock has it: an NTP step must not time a check out. */
  #now(): number {
    return this.#clock.monotonic?.() ?? this.#clock.now();
  }

  #stillRunning(entry: Entry, startedAt: number): CheckResult {
    return {
      status: 'down',
      kind: entry.kind,
      latency_ms: Math.max(0, Math.round(this.#now() - startedAt)),
      detail: `${new HealthCheckTimeoutError(entry.name, entry.timeoutMs).message} and is still running; no new call was started`,
    };
  }

  #run(entry: Entry): Promise<CheckResult> {
    const started = this.#now();
    const controller = new AbortController();
    entry.callStartedAt = started;
    return new Promise<CheckResult>((resolve) => {
      let settled = false;
      const finish = (status: CheckStatus, detail: unknown, byCall: boolean): void => {
        if (settled) return;
        settled = true;
        this.#clock.clearTimeout(timer);
        const latency = this.#now() - started;
        const result: CheckResult = { status, kind: entry.kind, latency_ms: Math.max(0, Math.round(latency)) };
        if (byCall && latency > entry.timeoutMs) {
          // The timer could not fire first: a synchronous check (better-sqlite3) holds the loop
          // until it returns, and its result arrives in a microtask, before any timer. An answer
          // that came after the timeout is a timeout all the same (a 300 ms check at timeoutMs
          // 50 used to report up, and /ready 200).
          result.status = 'down';
          result.detail = `${new HealthCheckTimeoutError(entry.name, entry.timeoutMs).message} (it answered after ${result.latency_ms} ms)`;
        } else if (detail !== undefined && detail !== null) result.detail = detail;
        resolve(result);
      };
      const timer = this.#clock.setTimeout(() => {
        const error = new HealthCheckTimeoutError(entry.name, entry.timeoutMs);
        controller.abort(error);
        finish('down', error.message, false);
      }, entry.timeoutMs);
      // Cleared only by the call settling, never by its timeout: see #resultOf.
      const settledCall = (): void => {
        entry.callStartedAt = undefined;
      };
      try {
        Promise.resolve(entry.fn(controller.signal)).then(
          (value) => {
            settledCall();
            finish('up', typeof value === 'string' || (typeof value === 'object' && value !== null) ? value : undefined, true);
          },
          (err: unknown) => {
            settledCall();
            finish('down', detailOf(err), true);
          },
        );
      } catch (err) {
        settledCall();
        finish('down', detailOf(err), true);
      }
    });
  }

  /** Liveness: the event loop answered. Never runs a check. */
  live(): HealthResponse {
    return { statusCode: 200, body: { status: 'ok' } };
  }

  /** Readiness: 200 when every critical check is up and the service is not shutting down. */
  async ready(): Promise<HealthResponse> {
    if (this.#shuttingDown) return { statusCode: 503, body: { status: 'shutting_down' } };
    const critical = [...this.#checks.values()].filter((e) => e.kind === 'critical');
    const results = await Promise.all(critical.map((e) => this.#resultOf(e)));
    if (this.#shuttingDown) return { statusCode: 503, body: { status: 'shutting_down' } };
    const up = results.every((r) => r.status === 'up');
    return up ? { statusCode: 200, body: { status: 'ok' } } : { statusCode: 503, body: { status: 'unavailable' } };
  }

  /** The full report: every check with its status, latency and detail. */
  async report(): Promise<HealthReport> {
    const entries = [...this.#checks.values()];
    const results = await Promise.all(entries.map((e) => this.#resultOf(e)));
    const checks: Record<string, CheckResult> = {};
    let status: HealthStatus = 'healthy';
    entries.forEach((e, i) => {
      const r = results[i] as CheckResult;
      checks[e.name] = r;
      if (r.status === 'down') status = e.kind === 'critical' ? 'unhealthy' : status === 'healthy' ? 'degraded' : status;
    });
    if (this.#shuttingDown) return { status: 'unhealthy', shutting_down: true, checks };
    return { status, checks };
  }

  /** {@link report} as an HTTP answer: 503 when unhealthy, else 200. */
  async reportResponse(): Promise<HealthResponse> {
    const body = await this.report();
    return { statusCode: body.status === 'unhealthy' ? 503 : 200, body };
  }

  /** Forgets cached results (a running check still finishes). Holds no timer between runs. */
  async close(): Promise<void> {
    const running = [...this.#checks.values()].map((e) => e.running).filter((p) => p !== undefined);
    await Promise.all(running);
    for (const e of this.#checks.values()) e.result = undefined;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
