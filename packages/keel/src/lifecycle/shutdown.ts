/**
 * Graceful shutdown that drops nothing. On SIGTERM/SIGINT:
 *
 * 1. mark not-ready (readiness probes answer 503); from now on every answer goes out with
 *    `Connection: close`, so keep-alive clients move to new connections by themselves,
 * 2. wait `readinessDelayMs`, still serving, so load balancers notice and stop sending,
 * 3. run the beforeDrain hooks, stop accepting, close each keep-alive connection once it has
 *    stayed quiet for `drainPollMs`, and let requests in progress finish (see drain.ts),
 * 4. when every connection has ended, close resources newest first,
 * 5. exit 0.
 *
 * One deadline covers all of it (terminus's timeout covers only draining, so a hung
 * `close()` of a resource hangs the pod until SIGKILL). The deadline or a second signal
 * forces exit 1, logging why and what was still pending.
 */
import type { EventEmitter } from 'node:events';
import type { Server } from 'node:http';
import { constants } from 'node:os';
import type { Clock, TimerHandle } from '../clock.ts';
import { clockOption, durationOption, functionOption, objectOptions, optionError } from '../internal/options.ts';
import { ServerDrain } from './drain.ts';
import type { Resource } from './scope.ts';
import { Scope } from './scope.ts';

/** What the coordinator logs through (pino-compatible). */
export interface ShutdownLogger {
  info(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface GracefulShutdownOptions {
  /** Signals that start a shutdown. Default `['SIGTERM', 'SIGINT']`. */
  signals?: readonly NodeJS.Signals[];
  /** Time between marking not-ready and refusing connections, ms. Default 5,000. */
  readinessDelayMs?: number;
  /** The whole shutdown must end within this, ms; then exit is forced. Default 30,000. */
  deadlineMs?: number;
  /**
   * While draining, a keep-alive connection is closed once it has been quiet (no request, no
   * answer pending, no byte read) for this long, ms. Default 100.
   */
  drainPollMs?: number;
  /** Marked shutting down at the first signal (e.g. a `Health` registry). */
  health?: { markShuttingDown(): void };
  /** Ends the process. Default `process.exit`. Inject in tests. */
  exit?: (code: number) => void;
  /** Default: one JSON line per event on stderr. */
  logger?: ShutdownLogger;
  /** Where signals are listened for. Default `process`. */
  signalSource?: Pick<EventEmitter, 'on' | 'off'>;
  /** Default: the real clock. */
  clock?: Clock;
}

export type ShutdownState = 'running' | 'delaying' | 'draining' | 'closing' | 'done';

const stderrLogger: ShutdownLogger = {
  info: (obj, msg) => process.stderr.write(`${JSON.stringify({ level: 'info', ...obj, msg })}\n`),
  error: (obj, msg) => process.stderr.write(`${JSON.stringify({ level: 'error', ...obj, msg })}\n`),
};

/**
 * Coordinates a graceful shutdown of servers and resources.
 *
 * @example
 * ```ts
 * import { createServer } from 'node:http';
 * import { GracefulShutdown } from 'keel/lifecycle';
 * const server = createServer((req, res) => res.end('ok'));
 * const shutdown = new GracefulShutdown({ readinessDelayMs: 0, exit: () => {} });
 * shutdown.server(server);
 * shutdown.add(() => console.log('closing the database last-opened-first'));
 * await shutdown.shutdown('example'); // what SIGTERM does
 * ```
 */
export class GracefulShutdown implements AsyncDisposable {
  readonly #readinessDelayMs: number;
  readonly #deadlineMs: number;
  readonly #drainPollMs: number;
  readonly #health: { markShuttingDown(): void } | undefined;
  readonly #exit: (code: number) => void;
  readonly #log: ShutdownLogger;
  readonly #clock: Clock;
  readonly #resources: Scope;
  /** What the coordinator itself holds (signal and server listeners, its timers); released at the end. */
  readonly #held: Scope;
  readonly #servers: ServerDrain[] = [];
  #state: ShutdownState = 'running';
  #done: Promise<void> | undefined;
  #deadline: TimerHandle | undefined;
  /** Ends the readiness delay early: a forced exit clears its timer, and shutdown() must still settle. */
  #endDelay: (() => void) | undefined;
  #exited = false;

  constructor(options?: GracefulShutdownOptions) {
    const o = objectOptions('GracefulShutdown', options);
    this.#readinessDelayMs = durationOption('GracefulShutdown', 'readinessDelayMs', o.readinessDelayMs, 5_000);
    this.#deadlineMs = durationOption('GracefulShutdown', 'deadlineMs', o.deadlineMs, 30_000, 1);
    if (this.#deadlineMs <= this.#readinessDelayMs) {
      throw new TypeError(`keel: GracefulShutdown option "deadlineMs" must be greater than "readinessDelayMs" (got ${this.#deadlineMs})`);
    }
    this.#drainPollMs = durationOption('GracefulShutdown', 'drainPollMs', o.drainPollMs, 100, 1);
    if (o.health !== undefined && typeof o.health?.markShuttingDown !== 'function') {
      throw new TypeError('keel: GracefulShutdown option "health" must have markShuttingDown()');
    }
    this.#health = o.health;
    this.#exit = functionOption<(code: number) => void>('GracefulShutdown', 'exit', o.exit, (code) => process.exit(code));
    // Checked now: a logger without info() would make shutdown() reject at SIGTERM time,
    // before exit is ever called, leaving the process up until SIGKILL.
    const logger = o.logger as Partial<ShutdownLogger> | undefined;
    if (logger !== undefined && (typeof logger?.info !== 'function' || typeof logger.error !== 'function')) {
      throw optionError('GracefulShutdown', 'logger', 'a logger with info() and error()', logger);
    }
    this.#log = o.logger ?? stderrLogger;
    this.#clock = clockOption('GracefulShutdown', o.clock);
    this.#resources = new Scope({ name: 'shutdown-resources', clock: this.#clock });
    this.#held = new Scope({ name: 'shutdown', clock: this.#clock });
    const signals = o.signals ?? ['SIGTERM', 'SIGINT'];
    if (!Array.isArray(signals) || !signals.every((s) => typeof s === 'string' && Object.hasOwn(constants.signals, s))) {
      throw optionError('GracefulShutdown', 'signals', 'an array of signal names (e.g. "SIGTERM")', signals);
    }
    const source = (o.signalSource ?? process) as EventEmitter;
    if (typeof source?.on !== 'function' || typeof source.off !== 'function') {
      throw optionError('GracefulShutdown', 'signalSource', 'an EventEmitter (on, off)', source);
    }
    for (const signal of signals) this.#held.on(source, signal, () => this.#onSignal(signal));
  }

  /** Where the shutdown is. */
  get state(): ShutdownState {
    return this.#state;
  }

  /** True from the first signal on. */
  get shuttingDown(): boolean {
    return this.#state !== 'running';
  }

  /** Registers a server to drain. Its connections are tracked from now on. */
  server(server: Server): this {
    this.#servers.push(new ServerDrain(server, this.#held));
    return this;
  }

  /**
   * Registers work to run when draining starts, before the servers wait for their
   * connections: end what never ends by itself (WebSockets with 1001, SSE streams, long
   * polls), or draining would wait for the deadline. Hooks run together; a failure is logged.
   *
   * @example
   * ```ts
   * shutdown.beforeDrain(() => liveHub.close());
   * ```
   */
  beforeDrain(fn: () => unknown): this {
    if (typeof fn !== 'function') throw new TypeError('keel: GracefulShutdown.beforeDrain needs a function');
    this.#beforeDrain.push(fn);
    return this;
  }

  readonly #beforeDrain: Array<() => unknown> = [];

  /** Registers a resource to close after draining; resources close newest first. */
  add<T extends Resource>(resource: T): T {
    return this.#resources.add(resource);
  }

  #onSignal(signal: string): void {
    if (this.#state === 'running') {
      void this.shutdown(`signal ${signal}`);
      return;
    }
    this.#force(`second signal (${signal})`);
  }

  #pending(): number {
    let n = 0;
    for (const d of this.#servers) n += d.size;
    return n;
  }

  #force(reason: string): void {
    if (this.#exited) return;
    this.#log.error({ reason, state: this.#state, open_connections: this.#pending() }, 'keel: forcing exit');
    for (const d of this.#servers) d.destroyAll();
    this.#finish(1);
  }

  #finish(code: number): void {
    if (this.#exited) return;
    this.#exited = true;
    this.#state = 'done';
    if (this.#deadline !== undefined) this.#clock.clearTimeout(this.#deadline);
    void this.#held.close();
    this.#endDelay?.();
    this.#exit(code);
  }

  /**
   * Runs the shutdown (what a signal does). Idempotent; resolves once exit was called.
   * Errors closing resources are logged and make the exit code 1.
   */
  shutdown(reason = 'requested'): Promise<void> {
    this.#done ??= this.#run(reason);
    return this.#done;
  }

  async #run(reason: string): Promise<void> {
    this.#state = 'delaying';
    this.#deadline = this.#clock.setTimeout(() => this.#force(`deadline of ${this.#deadlineMs} ms exceeded`), this.#deadlineMs);
    // The real clock's timers are unref'd. Once the servers are closed, a resource whose close()
    // waits on such a timer leaves nothing holding the loop, and Node exits 0 with resources
    // still open. The deadline spans the whole shutdown and is cleared in #finish, so holding
    // the loop with it keeps the process up until the end, and no longer.
    (this.#deadline as { ref?: () => unknown }).ref?.();
    this.#health?.markShuttingDown();
    for (const d of this.#servers) d.closeAfterResponses();
    this.#log.info({ reason, readiness_delay_ms: this.#readinessDelayMs }, 'keel: shutting down');
    if (this.#readinessDelayMs > 0) {
      await new Promise<void>((resolve) => {
        this.#endDelay = resolve;
        this.#held.setTimeout(resolve, this.#readinessDelayMs);
      });
    }
    if (this.#exited) return;
    this.#state = 'draining';
    const hooks = await Promise.allSettled(this.#beforeDrain.map(async (fn) => fn()));
    for (const h of hooks) {
      if (h.status === 'rejected')
        this.#log.error({ err: h.reason instanceof Error ? h.reason.message : String(h.reason) }, 'keel: a drain hook failed');
    }
    if (this.#exited) return;
    await Promise.all(this.#servers.map((d) => d.drain(this.#drainPollMs)));
    if (this.#exited) return;
    this.#state = 'closing';
    let code = 0;
    try {
      await this.#resources.close();
    } catch (err) {
      code = 1;
      this.#log.error({ err: err instanceof Error ? err.message : String(err) }, 'keel: a resource failed to close');
    }
    if (this.#exited) return;
    this.#log.info({ code }, 'keel: shutdown complete');
    this.#finish(code);
  }

  /** Stops listening for signals without shutting down (for tests and re-wiring). */
  close(): Promise<void> {
    return this.#held.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
