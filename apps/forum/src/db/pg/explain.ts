/**
 * Generic query plans on PostgreSQL 15, for the dashboard's slowest-SQL table.
 *
 * `EXPLAIN (GENERIC_PLAN)` arrived in PostgreSQL 16. On 15 the same plan comes from preparing the
 * statement and explaining an execution with every parameter NULL while `plan_cache_mode` forces
 * the generic plan: the planner never sees the NULLs (a custom plan would fold `x = NULL` to a
 * one-time `false`), and the plan shows `$1`, `$2` where the values go. So no parameter value,
 * which may be a session token or an email, is ever sent, kept or shown.
 *
 * Only plain EXPLAIN, never ANALYZE: nothing is executed. The transaction is also READ ONLY and
 * rolled back, and each explain has its own short statement_timeout (a lock wait included).
 */
import pg from 'pg';
import { withPooledClient } from './pooled.ts';

export interface PgExplainerOptions {
  /** The server cancels an explain (its PREPARE, a lock wait included) running longer than this, ms. */
  timeoutMs: number;
}

// Reached only by our own names: PREPARE's name and the text after AS are not parameters.
const NAME_PREFIX = 'keel_explain_';

/**
 * Sent with the extended protocol, which parses exactly one command: a text holding a second one
 * (`…; DELETE …`) is refused, where the simple protocol would run both. @types/pg omits
 * `queryMode` from QueryConfig; pg reads it.
 */
const one = (text: string) => ({ text, queryMode: 'extended' }) as pg.QueryConfig;

/**
 * Explains statements one at a time, on one pooled connection each: ten dashboard rows must not
 * take ten of the pool's connections from the requests.
 *
 * @example
 * ```ts
 * const explainer = new PgExplainer(pool, { timeoutMs: 1_000 });
 * await explainer.explain('SELECT id FROM users WHERE id = $1');
 * // ['Index Scan using users_pkey on users  (cost=0.15..8.17 rows=1 width=8)', '  Index Cond: (id = $1)']
 * ```
 */
export class PgExplainer {
  readonly #pool: pg.Pool;
  readonly #timeoutMs: number;
  #seq = 0;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(pool: pg.Pool, options: PgExplainerOptions) {
    if (!Number.isInteger(options.timeoutMs) || options.timeoutMs < 1) throw new TypeError('PgExplainer: timeoutMs must be an integer ≥ 1');
    this.#pool = pool;
    this.#timeoutMs = options.timeoutMs;
  }

  /**
   * The generic plan of `sql` (a statement this process registered, never text from a request),
   * one line per row of EXPLAIN's text output. Rejects with the server's error when it cannot be
   * planned (a table dropped, the server away).
   */
  explain(sql: string): Promise<string[]> {
    const run = this.#queue.then(() => this.#explain(sql));
    this.#queue = run.catch(() => {});
    return run;
  }

  #explain(sql: string): Promise<string[]> {
    const name = `${NAME_PREFIX}${++this.#seq}`;
    return withPooledClient(this.#pool, async (client, broke) => {
      let prepared = false;
      try {
        await client.query('BEGIN READ ONLY');
        await client.query(`SET LOCAL statement_timeout = ${this.#timeoutMs}`);
        await client.query('SET LOCAL plan_cache_mode = force_generic_plan');
        await client.query(one(`PREPARE ${name} AS ${sql}`));
        prepared = true;
        // The server's own count of the parameters it inferred; counting `$n` in the text would
        // also count one inside a string literal or comment.
        const { rows } = await client.query<{ n: number }>(
          'SELECT coalesce(array_length(parameter_types, 1), 0) AS n FROM pg_prepared_statements WHERE name = $1',
          [name],
        );
        const n = rows[0]?.n ?? 0;
        const args = n > 0 ? `(${Array.from({ length: n }, () => 'NULL').join(', ')})` : '';
        const plan = await client.query<{ 'QUERY PLAN': string }>(one(`EXPLAIN EXECUTE ${name}${args}`));
        return plan.rows.map((r) => r['QUERY PLAN']);
      } catch (err) {
        // A server error leaves the connection usable; anything else (a socket error) may not.
        if (!(err instanceof pg.DatabaseError)) broke(err as Error);
        throw err;
      } finally {
        try {
          await client.query('ROLLBACK');
          // PREPARE is not transactional: the rollback keeps it, and the connection goes back to the pool.
          if (prepared) await client.query(`DEALLOCATE ${name}`);
        } catch (err) {
          // A connection that cannot clean up is destroyed, so no half-done explain reaches a request.
          broke(err as Error);
        }
      }
    });
  }
}
