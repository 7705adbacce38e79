/**
 * What the three adapters share: option validation, the shed answer, the health and
 * `/metrics` routes, and the constant-time bearer check. The adapters only translate
 * between their framework and these plain values (DESIGN.md: "Adapters are thin").
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { booleanOption, objectOptions, optionError, stringOption } from '../internal/options.ts';
import type { Health, HealthResponse } from '../observe/health.ts';
import type { OtelBridge } from '../observe/otel.ts';
import type { LoadShedder } from '../observe/pressure.ts';
import { Tracing } from '../observe/trace.ts';

/** The part of `Metrics` (keel/observe) the adapters use. */
export interface AdapterMetrics {
  readonly http: {
    start(): number;
    end(mark: number, method: string, route: string, statusCode: number): void;
  };
  scrape(): Promise<{ contentType: string; body: string }>;
}

/** Options every adapter takes. */
export interface KeelAdapterOptions {
  /** Trace context source; share it with `createLogger` and `propagateTraceContext`. Default: a new `Tracing`. */
  tracing?: Tracing;
  /** RED metrics per route; and `/metrics` when `metricsRoute` is set. Default: none. */
  metrics?: AdapterMetrics;
  /** Health registry served under `healthRoutes`. Default: none. */
  health?: Health;
  /** Load shedder consulted for every request. Default: none (no shedding). */
  shedder?: LoadShedder;
  /** Spans for requests when an OpenTelemetry SDK is registered. Default: none. */
  otel?: OtelBridge;
  /** Serve the Prometheus exposition (needs `metrics`). `token` requires `Authorization: Bearer <token>`. Default: off. */
  metricsRoute?: false | { path?: string; token?: string };
  /** Serve `<prefix>/live`, `<prefix>/ready` and `<prefix>` (needs `health`). Default: on when `health` is given, prefix `'/health'`. */
  healthRoutes?: boolean | { prefix?: string };
  /** Extra paths the shedder spares: exact, or prefixes ending in `/*`. Health and metrics routes are always spared. Default `[]`. */
  exempt?: readonly string[];
  /** Echo the request id in the response header. Default true. */
  echoRequestId?: boolean;
  /**
   * Run each request inside the trace context's AsyncLocalStorage, which `tracing.current()`,
   * the log mixin and outgoing propagation read. Default true. On Node 20, enabling any
   * AsyncLocalStorage turns on async hooks for the whole process: every promise and
   * `process.nextTick` pays for them (≈ 4 µs per Fastify request measured here, the largest
   * cost of the plugin). With `false` the context is still parsed, echoed and available as
   * `request.keelTrace` / `traceOf(req)`, but not ambient.
   */
  asyncContext?: boolean;
}

/** Validated adapter options. */
export interface AdapterConfig {
  tracing: Tracing;
  metrics: AdapterMetrics | undefined;
  health: Health | undefined;
  shedder: LoadShedder | undefined;
  otel: OtelBridge | undefined;
  metricsPath: string | undefined;
  tokenDigest: Buffer | undefined;
  healthPrefix: string | undefined;
  echoRequestId: boolean;
  asyncContext: boolean;
  requestIdHeader: string;
  retryAfter: string;
}

export const UNMATCHED = '<unmatched>';
export const SHED_BODY = '{"error":"Service Unavailable","code":"KEEL_OVERLOADED","message":"overloaded, retry later"}';
export const UNAUTHORIZED_BODY = '{"error":"Unauthorized","code":"KEEL_UNAUTHORIZED"}';

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

/** Validates adapter options once, at start-up. */
export function adapterConfig(owner: string, options: KeelAdapterOptions | undefined): AdapterConfig {
  const o = objectOptions(owner, options);
  if (o.tracing !== undefined && !(o.tracing instanceof Tracing)) throw optionError(owner, 'tracing', 'a Tracing', o.tracing);
  if (o.metrics !== undefined && typeof o.metrics?.http?.start !== 'function') throw optionError(owner, 'metrics', 'a Metrics', o.metrics);
  if (o.health !== undefined && typeof o.health?.ready !== 'function') throw optionError(owner, 'health', 'a Health', o.health);
  if (o.shedder !== undefined && typeof o.shedder?.shouldShed !== 'function')
    throw optionError(owner, 'shedder', 'a LoadShedder', o.shedder);
  if (o.otel !== undefined && typeof o.otel?.startRequestSpan !== 'function') throw optionError(owner, 'otel', 'an OtelBridge', o.otel);
  const tracing = o.tracing ?? new Tracing();
  let metricsPath: string | undefined;
  let tokenDigest: Buffer | undefined;
  if (o.metricsRoute !== undefined && o.metricsRoute !== false) {
    const mr = objectOptions(`${owner} metricsRoute`, o.metricsRoute);
    if (!o.metrics) throw optionError(owner, 'metrics', 'a Metrics when "metricsRoute" is set', undefined);
    metricsPath = stringOption(owner, 'metricsRoute.path', mr.path, '/metrics');
    if (mr.token !== undefined) tokenDigest = digest(stringOption(owner, 'metricsRoute.token', mr.token, ''));
  }
  let healthPrefix: string | undefined;
  const hr = o.healthRoutes ?? o.health !== undefined;
  if (typeof hr !== 'boolean' && (typeof hr !== 'object' || hr === null || Array.isArray(hr))) {
    throw optionError(owner, 'healthRoutes', 'a boolean or { prefix? }', hr);
  }
  if (hr !== false) {
    if (!o.health) throw optionError(owner, 'health', 'a Health when "healthRoutes" is set', undefined);
    const prefix = typeof hr === 'object' ? stringOption(owner, 'healthRoutes.prefix', hr.prefix, '/health') : '/health';
    healthPrefix = prefix.endsWith('/') ? prefix.slice(0, -1) : prefix;
  }
  if (o.exempt !== undefined && !Array.isArray(o.exempt)) throw optionError(owner, 'exempt', 'an array of paths', o.exempt);
  if (o.shedder) {
    for (const p of o.exempt ?? []) o.shedder.exempt(p);
    // At the root ('/' trims to ''), `/*` would spare every path: spare the three routes only.
    if (healthPrefix === '') o.shedder.exempt('/live').exempt('/ready').exempt('/');
    else if (healthPrefix !== undefined) o.shedder.exempt(`${healthPrefix}/*`);
    if (metricsPath !== undefined) o.shedder.exempt(metricsPath);
  }
  return {
    tracing,
    metrics: o.metrics,
    health: o.health,
    shedder: o.shedder,
    otel: o.otel,
    metricsPath,
    tokenDigest,
    healthPrefix,
    echoRequestId: booleanOption(owner, 'echoRequestId', o.echoRequestId, true),
    asyncContext: booleanOption(owner, 'asyncContext', o.asyncContext, true),
    requestIdHeader: tracing.requestIdHeader,
    retryAfter: String(o.shedder?.retryAfterSeconds ?? 1),
  };
}

/**
 * Constant-time check of an `Authorization: Bearer …` header against the configured token.
 * The scheme is matched in any case (`bearer`, `BEARER`): RFC 9110 §11.1 makes auth schemes
 * case-insensitive, and clients that send it lowercased got a 401 for the right token.
 */
export function bearerOk(header: string | null | undefined, tokenDigest: Buffer | undefined): boolean {
  if (tokenDigest === undefined) return true;
  if (typeof header !== 'string' || header.length < 7 || header[6] !== ' ' || header.slice(0, 6).toLowerCase() !== 'bearer') {
    return false;
  }
  // Hashing both sides first makes the compare constant-time in the token's length too.
  return timingSafeEqual(digest(header.slice(7).trim()), tokenDigest);
}

/** Which health route a path is, if any. */
export function healthRouteOf(path: string, prefix: string | undefined): 'live' | 'ready' | 'report' | undefined {
  if (prefix === undefined || !path.startsWith(prefix)) return undefined;
  const rest = path.slice(prefix.length);
  if (rest === '' || rest === '/') return 'report';
  if (rest === '/live') return 'live';
  if (rest === '/ready') return 'ready';
  return undefined;
}

/** Runs the health route `which`. */
export function healthAnswer(health: Health, which: 'live' | 'ready' | 'report'): Promise<HealthResponse> {
  if (which === 'live') return Promise.resolve(health.live());
  return which === 'ready' ? health.ready() : health.reportResponse();
}

/** The path part of a request URL. */
export function pathOf(url: string): string {
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}
