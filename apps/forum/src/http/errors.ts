/** An error that maps to an HTTP status and a JSON body; anything else is a 500 with no detail. */
export class HttpError extends Error {
  readonly statusCode: number;
  readonly error: string;
  readonly field: string | undefined;
  readonly extra: Record<string, unknown> | undefined;
  readonly headers: Record<string, string> | undefined;
  constructor(
    statusCode: number,
    error: string,
    message: string,
    opts: { field?: string; extra?: Record<string, unknown>; headers?: Record<string, string> } = {},
  ) {
    super(message);
    this.statusCode = statusCode;
    this.error = error;
    this.field = opts.field;
    this.extra = opts.extra;
    this.headers = opts.headers;
  }
  toJSON(): Record<string, unknown> {
    return { error: this.error, message: this.message, ...(this.field ? { field: this.field } : {}), ...this.extra };
  }
}

export const badRequest = (field: string, message: string) => new HttpError(400, 'bad_request', message, { field });
export const unauthorized = () =>
  new HttpError(401, 'unauthorized', 'a valid session token is required', { headers: { 'www-authenticate': 'Bearer' } });
export const forbidden = (message: string) => new HttpError(403, 'forbidden', message);
export const notFound = (what: string) => new HttpError(404, 'not_found', `${what} not found`);
export const conflict = (message: string, extra: Record<string, unknown>) => new HttpError(409, 'conflict', message, { extra });
export const tooManyRequests = (retryAfterSeconds: number) =>
  new HttpError(429, 'too_many_requests', 'too many attempts; try again later', {
    headers: { 'retry-after': String(Math.max(1, Math.ceil(retryAfterSeconds))) },
    extra: { retryAfter: Math.max(1, Math.ceil(retryAfterSeconds)) },
  });
export const serviceUnavailable = (message: string, retryAfterSeconds = 1) =>
  new HttpError(503, 'unavailable', message, { headers: { 'retry-after': String(retryAfterSeconds) } });
export const storageUnavailable = (retryAfterSeconds = 30) =>
  new HttpError(
    503,
    'storage_unavailable',
    'the database cannot store data right now (disk full or read-only); nothing was saved, retry later',
    {
      headers: { 'retry-after': String(retryAfterSeconds) },
      extra: { retryAfter: retryAfterSeconds },
    },
  );
