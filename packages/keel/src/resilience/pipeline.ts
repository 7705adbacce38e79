/**
 * Composes policies, outermost first:
 *
 * ```
 * pipeline(bulkhead, rateLimit, retry, breaker, timeout).execute(fn)
 *
 *   bulkhead ─┐ waits for a slot
 *    rateLimit ─┐ takes a token
 *      retry ─────┐ loops over attempts
 *        breaker ───┐ per attempt: rejects fast when open
 *          timeout ───┐ per attempt: deadline
 *            fn(ctx)    gets the innermost context's signal
 * ```
 *
 * Each policy hands its context to the next one as the options object, so the chain never
 * reads `signal`: no AbortController exists unless `fn` asks for one.
 */
import type { ExecuteContext, ExecuteOptions } from './context.ts';
import { toContext } from './context.ts';
import type { Policy, Work } from './policy.ts';

class Pipeline implements Policy {
  readonly policies: readonly Policy[];
  readonly #outer: Policy;
  readonly #inner: Policy;

  constructor(outer: Policy, inner: Policy, all: Policy[]) {
    this.#outer = outer;
    this.#inner = inner;
    this.policies = all;
  }

  execute<T>(fn: Work<T>, options?: ExecuteOptions | ExecuteContext): Promise<T> {
    const inner = this.#inner;
    return this.#outer.execute((ctx) => inner.execute(fn, ctx), toContext(options));
  }
}

/**
 * Wraps policies into one; the first is outermost.
 *
 * @example
 * ```ts
 * import { pipeline, retry, circuitBreaker, timeout } from 'keel/resilience';
 * const policy = pipeline(retry({ maxAttempts: 3 }), circuitBreaker(), timeout(2_000));
 * const res = await policy.execute(({ signal }) => fetch(url, { signal }));
 * ```
 */
export function pipeline(...policies: Policy[]): Policy {
  if (policies.length === 0) throw new TypeError('keel: pipeline needs at least one policy');
  policies.forEach((p, i) => {
    if (typeof p !== 'object' || p === null || typeof p.execute !== 'function') {
      throw new TypeError(`keel: pipeline argument ${i} must be a policy with execute() (got ${p === null ? 'null' : typeof p})`);
    }
  });
  if (policies.length === 1) return policies[0] as Policy;
  // Right fold: (a, b, c) → a ∘ (b ∘ c); one closure per layer per call, no arrays.
  let inner = policies[policies.length - 1] as Policy;
  for (let i = policies.length - 2; i >= 0; i--) inner = new Pipeline(policies[i] as Policy, inner, policies.slice(i));
  return inner;
}
