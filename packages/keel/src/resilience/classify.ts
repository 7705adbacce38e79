/**
 * Decides whether a failure is worth retrying and how bad it is. Retry asks
 * `transient`; the circuit breaker (by default) ignores `severity: 'low'` failures, which
 * are the caller's own fault or choice (a 404, an abort) and say nothing about the service.
 */

export type Severity = 'low' | 'medium' | 'high' | 'critical';

export interface Classification {
  /** Worth trying again: the same call may succeed later. */
  transient: boolean;
  severity: Severity;
  /** A short stable reason, e.g. `'network:ECONNRESET'`, `'http:503'`, `'abort'`. */
  reason: string;
}

/** A user rule: return a classification to decide, or `undefined` to defer to the next rule. */
export type ClassifyRule = (error: unknown) => Classification | undefined;

/** A classifier function, as made by {@link createClassifier}. */
export type Classifier = (error: unknown) => Classification;

// Node's and undici's codes for failures where the peer or the path, not the request, is at fault.
const NETWORK_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'ENETUNREACH',
  'ENETDOWN',
  'EHOSTUNREACH',
  'EHOSTDOWN',
]);

const TRANSIENT_KEEL: Record<string, Classification> = {
  KEEL_TIMEOUT: { transient: true, severity: 'medium', reason: 'timeout' },
  KEEL_RATE_LIMITED: { transient: true, severity: 'low', reason: 'rate-limited' },
  KEEL_BULKHEAD_REJECTED: { transient: true, severity: 'low', reason: 'bulkhead-rejected' },
  // Retrying into an open breaker only burns attempts; it reports when it will admit calls.
  KEEL_BROKEN_CIRCUIT: { transient: false, severity: 'medium', reason: 'broken-circuit' },
  KEEL_RETRY_EXHAUSTED: { transient: false, severity: 'high', reason: 'retry-exhausted' },
};

function field(err: unknown, name: string): unknown {
  return typeof err === 'object' && err !== null ? (err as Record<string, unknown>)[name] : undefined;
}

/**
 * The HTTP status carried by an error (`status`, `statusCode` or `response.status`).
 *
 * @example
 * ```ts
 * statusOf({ response: { status: 503 } }); // 503
 * ```
 */
export function statusOf(err: unknown): number | undefined {
  const s = field(err, 'status') ?? field(err, 'statusCode') ?? field(field(err, 'response'), 'status');
  return typeof s === 'number' && s >= 100 && s <= 599 ? s : undefined;
}

function codeOf(err: unknown): string | undefined {
  const c = field(err, 'code');
  if (typeof c === 'string') return c;
  // fetch() wraps socket errors: TypeError('fetch failed', { cause: { code: 'ECONNRESET' } }).
  const inner = field(field(err, 'cause'), 'code');
  return typeof inner === 'string' ? inner : undefined;
}

// A PostgreSQL SQLSTATE: five digits or capitals. pg's DatabaseError and postgres.js's
// PostgresError carry it as `code` beside a `severity` ('ERROR', 'FATAL'…); requiring both
// keeps five-letter errno codes (EPIPE, EBUSY) out.
const SQLSTATE = /^[0-9A-Z]{5}$/;

const PG_TRANSIENT: Record<string, Severity> = {
  // Conflicts: the whole transaction may be run again (PostgreSQL's docs say to).
  '40001': 'medium', // serialization_failure
  '40P01': 'medium', // deadlock_detected
  '55P03': 'medium', // lock_not_available (NOWAIT, lock_timeout)
  '57014': 'medium', // query_canceled (statement_timeout, pg_cancel_backend)
  // The server went away or is not ready: a new connection may work.
  '57P01': 'medium', // admin_shutdown (pg_terminate_backend, fast shutdown)
  '57P02': 'medium', // crash_shutdown
  '57P03': 'medium', // cannot_connect_now (starting up, recovering)
  '57P05': 'medium', // idle_session_timeout
  '53300': 'medium', // too_many_connections
  '53400': 'medium', // configuration_limit_exceeded
  '53200': 'high', // out_of_memory
};

// node-postgres (`pg`, `pg-pool`) reports lost connections and its own timeouts with no code,
// only these exact messages (stable since pg 8.0). Whether a statement ran before its
// connection died is unknown, as with ECONNRESET: transient says the call may succeed later,
// and the caller decides whether repeating it is safe.
const PG_MESSAGES: Record<string, Classification> = {
  'Connection terminated unexpectedly': { transient: true, severity: 'medium', reason: 'postgres:connection-lost' },
  'Connection terminated due to connection timeout': { transient: true, severity: 'medium', reason: 'postgres:connect-timeout' },
  'timeout expired': { transient: true, severity: 'medium', reason: 'postgres:connect-timeout' }, // a Client's connectionTimeoutMillis
  'timeout exceeded when trying to connect': { transient: true, severity: 'medium', reason: 'postgres:pool-timeout' },
  'Query read timeout': { transient: true, severity: 'medium', reason: 'timeout' },
};

function classifyPostgres(code: string): Classification {
  const reason = `postgres:${code}`;
  const transient = PG_TRANSIENT[code] ?? (code.startsWith('08') ? 'medium' : undefined); // 08: connection exception
  if (transient) return { transient: true, severity: transient, reason };
  // 22 data exception, 23 integrity constraint violation: the request's own fault, which
  // says nothing about the database's health (a unique violation must not open a breaker).
  if (code.startsWith('22') || code.startsWith('23')) return { transient: false, severity: 'low', reason };
  // 53100 disk_full, 58 system errors, XX internal: only an operator can fix them.
  if (code === '53100' || code.startsWith('58') || code.startsWith('XX')) return { transient: false, severity: 'critical', reason };
  // 42 syntax or access, 28 authorization, 3D no such database…: a bug or a misconfiguration.
  return { transient: false, severity: 'high', reason };
}

function classifyStatus(status: number): Classification {
  if (status === 408 || status === 425 || status === 429) return { transient: true, severity: 'low', reason: `http:${status}` };
  if (status >= 500) {
    const severity: Severity = status === 501 || status === 505 ? 'high' : 'medium';
    return { transient: status !== 501 && status !== 505, severity, reason: `http:${status}` };
  }
  return { transient: false, severity: 'low', reason: `http:${status}` };
}

/**
 * The default classifier. Network codes (ECONNRESET, ECONNREFUSED, ETIMEDOUT, EPIPE,
 * EAI_AGAIN, …, undici's `UND_ERR_*` except aborts and bad requests), HTTP 408/425/429/5xx,
 * TimeoutError, Keel's rate-limit/bulkhead rejections and PostgreSQL's conflict and
 * connection SQLSTATEs (40001, 40P01, 57P01, 08xxx, …) are transient; other 4xx, other
 * SQLSTATEs, aborts and everything unknown are permanent. An HTTP status outranks an
 * `UND_ERR_*` code (undici's ResponseError carries both).
 *
 * @example
 * ```ts
 * import { classify } from 'keel/resilience';
 * classify(Object.assign(new Error('reset'), { code: 'ECONNRESET' }));
 * // { transient: true, severity: 'medium', reason: 'network:ECONNRESET' }
 * ```
 */
export function classify(error: unknown): Classification {
  const code = codeOf(error);
  if (code !== undefined) {
    const keel = TRANSIENT_KEEL[code];
    if (keel) return keel;
    if (NETWORK_CODES.has(code)) return { transient: true, severity: 'medium', reason: `network:${code}` };
    if (code === 'UND_ERR_ABORTED' || code === 'ABORT_ERR') return { transient: false, severity: 'low', reason: 'abort' };
    if (code === 'UND_ERR_INVALID_ARG' || code === 'UND_ERR_NOT_SUPPORTED' || code === 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH') {
      return { transient: false, severity: 'high', reason: `undici:${code}` };
    }
    if (SQLSTATE.test(code) && typeof field(error, 'severity') === 'string') return classifyPostgres(code);
  }
  if (code === undefined && error instanceof Error && Object.hasOwn(PG_MESSAGES, error.message)) return PG_MESSAGES[error.message]!;
  const name = field(error, 'name');
  if (name === 'AbortError') return { transient: false, severity: 'low', reason: 'abort' };
  if (name === 'TimeoutError') return { transient: true, severity: 'medium', reason: 'timeout' };
  const status = statusOf(error);
  if (status !== undefined) return classifyStatus(status);
  // After the status: undici's ResponseError (UND_ERR_RESPONSE) and RequestRetryError
  // (UND_ERR_REQ_RETRY) carry the response's statusCode, and a 404 must not be retried.
  if (code?.startsWith('UND_ERR_')) return { transient: true, severity: 'medium', reason: `undici:${code}` };
  return { transient: false, severity: 'high', reason: code === undefined ? 'unknown' : `code:${code}` };
}

/**
 * A classifier that tries `rules` in order and falls back to {@link classify}.
 *
 * @example
 * ```ts
 * import { createClassifier } from 'keel/resilience';
 * const classifyRedis = createClassifier([
 *   (err) => (err instanceof Error && err.message.startsWith('LOADING') ? { transient: true, severity: 'medium', reason: 'redis:loading' } : undefined),
 * ]);
 * ```
 */
export function createClassifier(rules: readonly ClassifyRule[]): Classifier {
  if (!Array.isArray(rules) || rules.some((r) => typeof r !== 'function')) {
    throw new TypeError('keel: createClassifier option "rules" must be an array of functions');
  }
  const list = [...rules];
  return (error) => {
    for (const rule of list) {
      const c = rule(error);
      if (c !== undefined) return c;
    }
    return classify(error);
  };
}
