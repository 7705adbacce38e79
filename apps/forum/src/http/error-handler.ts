import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { type Clock, realClock } from 'keel/clock';
import { isBusy, isStorageFailure } from '../db/index.ts';
import { isDatabaseUnavailable } from '../db/unavailable.ts';
import { intOption } from '../options.ts';
import { HttpError, serviceUnavailable, storageUnavailable } from './errors.ts';

/**
 * When the database last refused a write for lack of storage (full disk, I/O error, read-only
 * file), so the health check can report it: a `SELECT` still succeeds on a full disk.
 */
export class StorageFailures {
  readonly windowMs: number;
  readonly #clock: Clock;
  #lastAt: number | undefined;
  constructor(windowMs = 30_000, clock: Clock = realClock) {
    this.windowMs = intOption('StorageFailures', 'windowMs', windowMs, 30_000, 1);
    this.#clock = clock;
  }
  record(): void {
    this.#lastAt = this.#clock.now();
  }
  /** Ms since the last failure when it was within `windowMs`, else undefined. */
  recentMs(): number | undefined {
    if (this.#lastAt === undefined) return undefined;
    const ago = this.#clock.now() - this.#lastAt;
    return ago < this.windowMs ? ago : undefined;
  }
}

interface ValidationIssue {
  keyword: string;
  instancePath: string;
  params: Record<string, unknown>;
  message?: string;
}

/** The input field a schema error is about: `body.title`-style paths without the context. */
function fieldOf(issue: ValidationIssue, context: string): string {
  const base = issue.instancePath.replace(/^\//, '').replaceAll('/', '.');
  const child = (issue.params.missingProperty ?? issue.params.additionalProperty) as string | undefined;
  const field = [base, child].filter(Boolean).join('.');
  return field || context;
}

/**
 * One error shape for every failure: `{ error, message, field? }`. Schema and parse errors are
 * 400s naming the field; known errors keep their status; a SQLite lock that outlasted
 * busy_timeout, or a PostgreSQL server that cannot answer, is a 503 with Retry-After; a database that cannot store
 * (full disk, I/O error, read-only) is a 503 `storage_unavailable`, recorded in `storage` for the
 * health check; anything unexpected is a 500 that is logged with its stack and answered with no
 * detail.
 */
export function installErrorHandling(app: FastifyInstance, storage?: StorageFailures): void {
  app.setErrorHandler((err: FastifyError | HttpError, request, reply) => {
    const send = (known: HttpError) => {
      if (known.headers) reply.headers(known.headers);
      return reply.code(known.statusCode).send(known.toJSON());
    };
    if (err instanceof HttpError) return send(err);
    const e = err as FastifyError & { validation?: ValidationIssue[]; validationContext?: string };
    if (e.validation && e.validation.length > 0) {
      const issue = e.validation[0] as ValidationIssue;
      const context = e.validationContext ?? 'request';
      const field = fieldOf(issue, context);
      const message =
        issue.keyword === 'additionalProperties'
          ? `${context}: unknown field "${field}"`
          : `${context}: ${field} ${issue.message ?? 'is invalid'}`;
      return reply.code(400).send({ error: 'bad_request', message, field });
    }
    const status = e.statusCode ?? 500;
    if (status === 413) return reply.code(413).send({ error: 'payload_too_large', message: 'request body is too large', field: 'body' });
    if (status === 415)
      return reply
        .code(415)
        .send({ error: 'unsupported_media_type', message: 'send JSON (content-type: application/json)', field: 'body' });
    if (status === 400) return reply.code(400).send({ error: 'bad_request', message: 'request body is not valid JSON', field: 'body' });
    if (status < 500) return reply.code(status).send({ error: 'bad_request', message: e.message });
    if (isBusy(err)) {
      // Another connection held the write lock past busy_timeout: the write did not happen
      // (its transaction rolled back), so the client may safely retry it.
      request.log.warn({ err }, 'database busy');
      return send(serviceUnavailable('the database is busy; retry shortly'));
    }
    if (isDatabaseUnavailable(err)) {
      // PostgreSQL is down, restarting or saturated: the transaction did not commit (or, if the
      // connection broke during COMMIT, its outcome is unknown), and /health/ready says so too.
      request.log.warn({ err }, 'database unavailable');
      return send(serviceUnavailable('the database is unavailable; retry shortly'));
    }
    if (isStorageFailure(err)) {
      // The statement's transaction rolled back; writes fail until an operator frees space.
      storage?.record();
      request.log.error({ err }, 'database storage failure');
      return send(storageUnavailable());
    }
    request.log.error({ err }, 'unhandled error');
    return reply.code(500).send({ error: 'internal', message: 'internal error' });
  });
  app.setNotFoundHandler((_request, reply) => reply.code(404).send({ error: 'not_found', message: 'route not found' }));
}

/**
 * Fastify's `frameworkErrors`: the errors it raises before any route or error handler runs,
 * which it would otherwise answer with its own body (`FST_ERR_BAD_URL`…). Same shape as above.
 */
export function frameworkErrors(err: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  if (err.code === 'FST_ERR_BAD_URL') {
    reply.code(400).send({ error: 'bad_request', message: 'the URL path is not valid percent-encoding', field: 'path' });
  } else if (err.code === 'FST_ERR_MAX_PARAM_LENGTH') {
    reply.code(414).send({ error: 'uri_too_long', message: 'a path segment is too long', field: 'path' });
  } else {
    request.log.error({ err }, 'unhandled framework error');
    reply.code(500).send({ error: 'internal', message: 'internal error' });
  }
}
