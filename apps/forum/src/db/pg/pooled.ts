/**
 * One pooled PostgreSQL connection, checked out for a piece of work and always given back.
 */
import type pg from 'pg';

/**
 * Runs `fn` on a connection checked out of `pool`, then releases it; a connection that broke is
 * destroyed instead of going back to the pool.
 *
 * It broke if it emitted 'error' (the socket closed, the server ended the session), if `fn`
 * called `broke`, or, with `destroyOnError`, if `fn` threw. The listener also keeps that 'error'
 * from going unhandled, which would end the process: the pool listens only to its idle clients.
 * Not pool.query either: that destroys the connection after any error, a unique violation
 * included, which throws away its prepared statements and costs a reconnect.
 *
 * @example
 * ```ts
 * const pid = await withPooledClient(pool, async (c) => (await c.query('SELECT pg_backend_pid() AS pid')).rows[0].pid);
 * ```
 */
export async function withPooledClient<T>(
  pool: pg.Pool,
  fn: (client: pg.PoolClient, broke: (err: Error) => void) => Promise<T>,
  destroyOnError = false,
): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  const broke = (err: Error) => {
    broken ??= err;
  };
  client.on('error', broke);
  try {
    return await fn(client, broke);
  } catch (err) {
    if (destroyOnError) broke(err as Error);
    throw err;
  } finally {
    client.off('error', broke);
    client.release(broken);
  }
}
