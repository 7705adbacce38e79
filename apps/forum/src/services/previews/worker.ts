import { AsyncResource } from 'node:async_hooks';
import { setMaxListeners } from 'node:events';
import type { Clock } from 'keel/clock';
import { Scope } from 'keel/lifecycle';
import { OtelBridge, parseTraceparent, TraceContext, Tracing, traced, traceInterceptor } from 'keel/observe';
import {
  Bulkhead,
  CircuitBreaker,
  ConsecutiveBreaker,
  isBrokenCircuitError,
  type Policy,
  pipeline,
  RateLimit,
  Retry,
  Timeout,
} from 'keel/resilience';
import { Agent, type Dispatcher } from 'undici';
import type { DuePreview } from '../../db/repositories/previews.ts';
import type { ForumStore } from '../../db/store.ts';
import { publicOnlyLookup } from './address-policy.ts';
import { type FetchTitleOptions, fetchTitle, PermanentPreviewError } from './fetch-title.ts';

export interface PreviewWorkerOptions {
  /** How often due previews are looked for, ms. Default 500. */
  pollMs?: number;
  /** Previews taken per pass. Default 20. */
  batch?: number;
  /** Deadline of one fetch attempt, ms. Default 3,000. */
  timeoutMs?: number;
  /** How long the breaker stays open before a probe, ms. Default 5,000. */
  breakerOpenMs?: number;
  /** Longest wait before a pending preview is tried again, ms. Default 5,000. */
  maxRetryDelayMs?: number;
  /**
   * Tries that sent a request while the breaker was closed (a try's own quick retry counts with
   * it) before a preview is marked failed. A failed half-open probe is not counted. Default 10.
   */
  maxAttempts?: number;
  /** Page bytes read at most. Default 64 KiB. */
  maxBytes?: number;
  /** Redirects followed at most. Default 3. */
  maxRedirects?: number;
  /** Allow loopback/private hosts. Default false. */
  allowPrivateHosts?: boolean;
  /**
   * Trace context for the upstream calls, which send `traceparent`. A preview queued inside a
   * request continues that request's trace (the queue stores its context); one queued outside
   * a request, or before the queue stored contexts, runs in a new trace. Default: none.
   */
  tracing?: Tracing;
  /**
   * Makes each preview's run through the policies an OpenTelemetry span (`previews`) when an
   * SDK is registered. Give it the same `tracing`, so the span joins the preview's trace.
   * Default: none.
   */
  otel?: OtelBridge;
  clock?: Clock;
}

/**
 * Fills link previews in the background. Posting never waits on it: posts only queue rows
 * (in their own transaction); this worker drains due rows through
 * `pipeline(bulkhead, rateLimit per host, retry, breaker, timeout)` (inside an OpenTelemetry span when
 * given `otel`), each in the trace of the request that queued it. While the upstream is
 * down the breaker fails attempts at once and rows stay `pending`, retried with a capped
 * backoff, so they fill soon after the upstream recovers; only permanent failures (4xx, not
 * HTML, no title, forbidden host, unknown host name, too many attempts) end as `failed`.
 * A try counts as an attempt when it sent a request while the breaker was closed. A try that
 * was only the breaker's half-open probe and failed is not counted (the upstream is down, not
 * the link, and a long outage must not fail previews for good): it goes to the back of the
 * queue, so the next probe is another row's. A dead link therefore cannot hold the breaker open
 * for everyone by being the probe for ever, and once a healthy link's probe closes the breaker
 * the dead link's own tries count again, until it runs out of attempts.
 */
export class PreviewWorker implements AsyncDisposable {
  readonly breaker: CircuitBreaker;
  readonly #store: Pick<ForumStore, 'previews'>;
  readonly #scope: Scope;
  readonly #policies: Array<{ close(): Promise<void> }>;
  readonly #pipeline: Policy;
  readonly #abort = new AbortController();
  readonly #o: Required<Omit<PreviewWorkerOptions, 'clock' | 'tracing' | 'otel'>>;
  readonly #clock: Clock | undefined;
  readonly #tracing: Tracing | undefined;
  readonly #fetchOptions: FetchTitleOptions;
  /**
   * A pass, run in the async context the worker was made in. A nudge comes from inside a
   * request (a new post): without this the pass, and every row's fetch in it, would run in that
   * request's context, and an OpenTelemetry span active there would parent the `previews` spans
   * of other posts' rows. Each row then runs in its own trace context (see {@link #contextOf}).
   */
  readonly #detachedDrain = AsyncResource.bind(() => this.#drain());
  #pass: Promise<void> | undefined;
  #again = false;
  #closing = false;

  constructor(store: Pick<ForumStore, 'previews'>, options: PreviewWorkerOptions = {}) {
    // Checked now: a wrong object would only fail inside the first pass, with every row retried.
    if (options.tracing !== undefined && !(options.tracing instanceof Tracing)) {
      throw new TypeError('PreviewWorker option "tracing" must be a keel Tracing');
    }
    if (options.otel !== undefined && !(options.otel instanceof OtelBridge)) {
      throw new TypeError('PreviewWorker option "otel" must be a keel OtelBridge');
    }
    this.#store = store;
    this.#clock = options.clock;
    this.#o = {
      pollMs: options.pollMs ?? 500,
      batch: options.batch ?? 20,
      timeoutMs: options.timeoutMs ?? 3_000,
      breakerOpenMs: options.breakerOpenMs ?? 5_000,
      maxRetryDelayMs: options.maxRetryDelayMs ?? 5_000,
      maxAttempts: options.maxAttempts ?? 10,
      maxBytes: options.maxBytes ?? 64 * 1024,
      maxRedirects: options.maxRedirects ?? 3,
      allowPrivateHosts: options.allowPrivateHosts ?? false,
    };
    // A drain runs up to `batch` previews at once, each subscribed to the close signal while it
    // runs (and unsubscribed after): more than Node's default 10 is expected, not a leak.
    setMaxListeners(this.#o.batch * 2 + 10, this.#abort.signal);
    const clock = options.clock ? { clock: options.clock } : {};
    const bulkhead = new Bulkhead({ name: 'previews', maxConcurrent: 4, maxQueue: this.#o.batch, ...clock });
    const perHost = new RateLimit({
      name: 'previews-host',
      tokensPerInterval: 5,
      intervalMs: 1_000,
      perKey: true,
      maxKeys: 1_000,
      ...clock,
    });
    const retry = new Retry({
      name: 'previews',
      maxAttempts: 2,
      backoff: { kind: 'exponential', baseMs: 100, maxDelayMs: 1_000 },
      // Only while the breaker is closed: a failed half-open probe (or the failure that trips
      // the breaker) reopens it, and a retry would only meet the open breaker.
      shouldRetry: (err) => !(err instanceof PermanentPreviewError) && this.breaker.state === 'closed',
      ...clock,
    });
    this.breaker = new CircuitBreaker({
      name: 'previews-upstream',
      strategy: new ConsecutiveBreaker(5),
      halfOpenAfterMs: this.#o.breakerOpenMs,
      isFailure: (err) => !(err instanceof PermanentPreviewError),
      ...clock,
    });
    const timeout = new Timeout(this.#o.timeoutMs, { name: 'previews', ...clock });
    this.#policies = [bulkhead, perHost, retry, timeout];
    const policies = [bulkhead, perHost, retry, this.breaker, timeout];
    // Outermost, so one span covers a preview's whole try: a bulkhead, rate-limit or breaker
    // refusal ends it as an error span, and retries happen inside it.
    this.#pipeline = options.otel ? pipeline(traced(options.otel, 'previews'), ...policies) : pipeline(...policies);
    this.#scope = new Scope({ name: 'previews', ...clock });
    // Its own bounded connection pool, closed with the worker, so no keep-alive socket outlives it.
    // Names resolve through publicOnlyLookup, so the address checked is the one connected to
    // (fetchTitle checks literal addresses, which skip the lookup).
    const agent = this.#scope.add(
      new Agent({
        connections: 8,
        keepAliveTimeout: 4_000,
        maxResponseSize: -1,
        ...(this.#o.allowPrivateHosts ? {} : { connect: { lookup: publicOnlyLookup } }),
      }),
    );
    const tracing = options.tracing;
    this.#tracing = tracing;
    const dispatcher: Dispatcher = tracing ? agent.compose(traceInterceptor(tracing)) : agent;
    if (tracing) {
      // Rows queued from now on (inside a request) record that request's trace context.
      store.previews.traceFrom(() => tracing.current()?.traceparent());
      this.#scope.add(() => store.previews.traceFrom(undefined));
    }
    this.#fetchOptions = { ...this.#o, dispatcher };
    this.#scope.setInterval(() => this.nudge(), this.#o.pollMs);
  }

  #now(): number {
    return this.#clock ? this.#clock.now() : Date.now();
  }

  /** Starts a pass now (a second nudge during a pass runs one more pass after it). */
  nudge(): void {
    if (this.#closing) return;
    if (this.#pass) {
      this.#again = true;
      return;
    }
    this.#pass = this.#detachedDrain().finally(() => {
      this.#pass = undefined;
      if (this.#again) {
        this.#again = false;
        this.nudge();
      }
    });
  }

  /** Resolves when the current pass (if any) ends. */
  async idle(): Promise<void> {
    while (this.#pass) await this.#pass;
  }

  async #drain(): Promise<void> {
    let due: DuePreview[];
    try {
      due = await this.#store.previews.due(this.#now(), this.#o.batch);
    } catch {
      // The database is down or busy: nothing was taken, and the next poll asks again.
      return;
    }
    const tracing = this.#tracing;
    const one = (row: DuePreview) =>
      // A row whose outcome could not be written stays pending (and, on PostgreSQL, leased
      // until its lease runs out): it is fetched again later, never lost.
      this.#one(row).catch(() => {});
    await Promise.all(due.map((row) => (tracing ? tracing.run(this.#contextOf(tracing, row), () => one(row)) : one(row))));
  }

  /**
   * The context a preview's fetch runs in: its upstream call carries the context's traceparent
   * and its log lines the ids. A row that stored the queuing request's context continues that
   * trace (same trace id and sampled flag; the request's span is the parent, the fetch gets a
   * span id of its own), so the fetch shows up in the trace of the post that linked it.
   * Without one (queued outside a request, or before migration 006) it is a new trace.
   */
  #contextOf(tracing: Tracing, row: DuePreview): TraceContext {
    // Parsed again: the column is only length-checked, and a bad value must not fail the row.
    const parent = row.traceparent ? parseTraceparent(row.traceparent) : undefined;
    return parent ? new TraceContext(tracing.ids, parent, undefined, undefined, parent.flags) : tracing.create();
  }

  async #one(row: DuePreview): Promise<void> {
    // Requests this pass sent for the row: the innermost function runs only when no policy
    // (bulkhead, rate limit, open breaker) turned the call away. It runs synchronously inside
    // the breaker's admission, so the breaker's state then tells a half-open probe from a call
    // through the closed breaker.
    let sent = 0;
    let probes = 0;
    try {
      const title = await this.#pipeline.execute(
        ({ signal }) => {
          sent++;
          if (this.breaker.state === 'half-open') probes++;
          return fetchTitle(row.url, signal, this.#fetchOptions);
        },
        { key: new URL(row.url).host, signal: this.#abort.signal },
      );
      if (!this.#closing) await this.#store.previews.markReady(row.id, title, 1, this.#now());
    } catch (err) {
      if (this.#closing) return;
      // Turned away by the open breaker before sending: the row keeps its attempts and its place
      // in the queue, so the breaker's next probe is the row that has waited longest, not the
      // one whose probe just failed (which moves back below). Probes go round the pending rows.
      if (sent === 0 && isBrokenCircuitError(err)) {
        await this.#store.previews.release(row.id);
        return;
      }
      const message = err instanceof Error ? err.message.slice(0, 200) : 'failed';
      // A permanent failure ends the row whichever way its request went out, probe or not.
      if (err instanceof PermanentPreviewError) {
        await this.#store.previews.markFailed(row.id, message, sent > 0 ? 1 : 0, this.#now());
        return;
      }
      // Only a failed half-open probe: it says the upstream is still down, not that this link is
      // bad. Charging it lost one preview per `maxAttempts` probes of a long outage for good. The
      // row keeps its attempts and waits the longest retry delay, later than any other row queued
      // or retried before now, so the breaker's next probe is another row: probes go round the
      // pending rows, and a dead link cannot be the probe for ever.
      if (sent > 0 && probes === sent) {
        await this.#store.previews.retryLater(row.id, message, this.#now() + this.#o.maxRetryDelayMs, this.#now(), 0);
        return;
      }
      // One attempt per try that sent a request through the closed breaker, however many its
      // retry sent: the first rows of an outage spend tries while the breaker is still counting
      // up to open (test/e2e/faults.test.ts), and a dead link spends one per try once it is closed.
      const tried = sent > 0 ? 1 : 0;
      const attempts = row.attempts + tried;
      if (attempts >= this.#o.maxAttempts) {
        await this.#store.previews.markFailed(row.id, message, tried, this.#now());
        return;
      }
      // Backs off by the row's own attempts (a bulkhead or rate-limit refusal sent nothing).
      const delay = Math.min(this.#o.maxRetryDelayMs, 250 * 2 ** Math.min(attempts, 10));
      await this.#store.previews.retryLater(row.id, message, this.#now() + delay, this.#now(), tried);
    }
  }

  async close(): Promise<void> {
    this.#closing = true;
    this.#abort.abort();
    await this.idle();
    await Promise.all(this.#policies.map((p) => p.close()));
    await this.#scope.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
