/**
 * Serves a substitute when a call fails, and says so: the result carries `degraded: true`
 * and the error, so the caller can tell its own user ("preview unavailable") instead of
 * passing a stand-in off as the real thing.
 */
import { CHANNELS, channel } from '../channels.ts';
import { functionOption, objectOptions, stringOption } from '../internal/options.ts';
import type { ExecuteContext, ExecuteOptions } from './context.ts';
import { toContext } from './context.ts';
import type { Work } from './policy.ts';

/** What {@link Fallback.execute} resolves to. */
export type FallbackResult<T, F> = { value: T; degraded: false } | { value: F; degraded: true; error: unknown };

export interface FallbackOptions<F> {
  /** Name in telemetry. Default `'fallback'`. */
  name?: string;
  /** The substitute: a value, or a function of the error (may be async). Required. */
  value?: F;
  fn?: (error: unknown, context: ExecuteContext) => F | PromiseLike<F>;
  /** Which errors to replace. Default: every error except the caller's own abort. */
  when?: (error: unknown) => boolean;
}

/**
 * Replaces chosen failures with a substitute value, marking the result degraded.
 *
 * It wraps the outside of a pipeline, so it is not itself a pipeline stage: its result
 * is `{ value, degraded }`, not the bare value.
 *
 * @example
 * ```ts
 * import { Fallback } from 'keel/resilience';
 * const noPreview = new Fallback({ value: null });
 * const r = await noPreview.execute(() => policy.execute(fetchPreview));
 * if (r.degraded) log.warn({ err: r.error }, 'preview unavailable');
 * ```
 */
export class Fallback<F> {
  readonly name: string;
  readonly #substitute: (error: unknown, context: ExecuteContext) => F | PromiseLike<F>;
  readonly #when: ((error: unknown) => boolean) | undefined;
  readonly #ch = channel(CHANNELS.resilience.fallback);

  constructor(options: FallbackOptions<F>) {
    const o = objectOptions('fallback', options);
    this.name = stringOption('fallback', 'name', o.name, 'fallback');
    const fn = functionOption<(error: unknown, context: ExecuteContext) => F | PromiseLike<F>>('fallback', 'fn', o.fn);
    if (fn === undefined && !('value' in (options ?? {}))) throw new TypeError('keel: fallback needs option "value" or "fn"');
    const value = o.value as F;
    this.#substitute = fn ?? (() => value);
    this.#when = functionOption('fallback', 'when', o.when);
  }

  async execute<T>(fn: Work<T>, options?: ExecuteOptions | ExecuteContext): Promise<FallbackResult<T, F>> {
    const ctx = toContext(options);
    try {
      return { value: await fn(ctx), degraded: false };
    } catch (error) {
      const wanted = this.#when ? this.#when(error) : !(ctx.aborted && error === ctx.reason);
      if (!wanted) throw error;
      if (this.#ch.hasSubscribers) this.#ch.publish({ name: this.name, error });
      return { value: await this.#substitute(error, ctx), degraded: true, error };
    }
  }
}

/**
 * Shorthand for `new Fallback(options)`.
 *
 * @example
 * ```ts
 * const fb = fallback({ fn: (err) => ({ title: 'unavailable' }) });
 * ```
 */
export function fallback<F>(options: FallbackOptions<F>): Fallback<F> {
  return new Fallback(options);
}
