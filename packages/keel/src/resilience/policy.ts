/** The one shape every resilience policy shares (DESIGN.md: "One execute shape"). */
import type { ExecuteContext, ExecuteOptions } from './context.ts';

/** The work a policy runs: gets the call's context, returns a value or a promise. */
export type Work<T> = (context: ExecuteContext) => PromiseLike<T> | T;

/**
 * A resilience policy. Policies compose with `pipeline(...)`, outermost first.
 *
 * @example
 * ```ts
 * const value = await policy.execute(({ signal }) => fetch(url, { signal }), { signal: req.signal });
 * ```
 */
export interface Policy {
  execute<T>(fn: Work<T>, options?: ExecuteOptions | ExecuteContext): Promise<T>;
}
