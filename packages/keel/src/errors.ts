/**
 * The error base every Keel failure extends. Each subclass carries a stable `code`
 * (`KEEL_*`), which is what the `isXError()` guards check: `instanceof` fails when two
 * copies of Keel are installed side by side, a code does not.
 */

const BRAND = Symbol.for('keel.error');

/**
 * Base class for every error Keel throws on purpose.
 *
 * @example
 * ```ts
 * import { KeelError, isKeelError } from 'keel/errors';
 * try { await work(); } catch (err) { if (isKeelError(err)) console.log(err.code); }
 * ```
 */
export class KeelError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
    Object.defineProperty(this, BRAND, { value: true });
  }
}

/**
 * True for any error created by Keel, from this install or another.
 *
 * @example
 * ```ts
 * if (isKeelError(err)) reply.code(503).send({ code: err.code });
 * ```
 */
export function isKeelError(err: unknown): err is KeelError {
  if (typeof err !== 'object' || err === null) return false;
  if ((err as Record<symbol, unknown>)[BRAND] === true) return true;
  const code = (err as { code?: unknown }).code;
  return err instanceof Error && typeof code === 'string' && code.startsWith('KEEL_');
}

/**
 * Builds an `isXError` guard for one code. Areas use it to export their guards.
 *
 * @example
 * ```ts
 * export const isBrokenCircuitError = guardFor<BrokenCircuitError>('KEEL_BROKEN_CIRCUIT');
 * ```
 */
export function guardFor<T extends KeelError>(code: string): (err: unknown) => err is T {
  return (err: unknown): err is T => isKeelError(err) && err.code === code;
}
