/**
 * Whether an error from the PostgreSQL driver means the database could not answer right now
 * (the server is down, restarting, out of connections, or a statement ran past its timeout), as
 * opposed to a bug or bad data. The routes answer these with a 503 and Retry-After, like a
 * SQLite lock held past busy_timeout: the client may retry, and nothing was half-written (each
 * write is one transaction). A connection lost during COMMIT leaves the outcome unknown; a retry
 * of such a write may then repeat it, as with any network database.
 *
 * @example
 * ```ts
 * isDatabaseUnavailable(Object.assign(new Error('x'), { code: 'ECONNREFUSED' })); // true
 * isDatabaseUnavailable(Object.assign(new Error('x'), { code: '23505' }));        // false (a unique violation)
 * ```
 */
export function isDatabaseUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string') {
    // SQLSTATE class 08: connection exceptions; 57P01-57P03: shutdown, crash, starting up;
    // 53300: too many connections; 57014: statement_timeout; 40001/40P01: serialization
    // failure and deadlock (the transaction was rolled back, a retry is safe).
    if (code.startsWith('08') || code === '57P01' || code === '57P02' || code === '57P03' || code === '53300') return true;
    if (code === '57014' || code === '40001' || code === '40P01') return true;
    if (code === 'ECONNREFUSED' || code === 'ECONNRESET' || code === 'EPIPE' || code === 'ETIMEDOUT' || code === 'EHOSTUNREACH')
      return true;
  }
  // node-postgres raises these without a code.
  return /^(Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error)/.test(err.message);
}
