/**
 * Option validation shared by every public constructor. Each helper returns the value or
 * its default and throws a `TypeError` that names the option, e.g.
 * `keel: retry option "maxAttempts" must be an integer >= 1 (got -1)`.
 * Validation happens once, at construction, never on the hot path.
 */
import type { Clock } from '../clock.ts';
import { realClock } from '../clock.ts';

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || value == null) return String(value);
  if (typeof value === 'function') return 'a function';
  return Array.isArray(value) ? 'an array' : `an ${typeof value}`;
}

/** Throws the standard option `TypeError`. */
export function optionError(owner: string, name: string, expected: string, got: unknown): TypeError {
  return new TypeError(`keel: ${owner} option "${name}" must be ${expected} (got ${describe(got)})`);
}

/** Asserts that `options` is undefined or a plain object, returning an object either way. */
export function objectOptions<T extends object>(owner: string, options: T | undefined): Partial<T> {
  if (options === undefined) return {};
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new TypeError(`keel: ${owner} options must be an object (got ${describe(options)})`);
  }
  return options;
}

export interface NumberBounds {
  min?: number;
  max?: number;
  integer?: boolean;
}

/** A finite number within bounds, or `fallback` when undefined. */
export function numberOption(owner: string, name: string, value: unknown, fallback: number, bounds: NumberBounds = {}): number {
  if (value === undefined) return fallback;
  const { min = Number.NEGATIVE_INFINITY, max = Number.POSITIVE_INFINITY, integer = false } = bounds;
  const ok =
    typeof value === 'number' &&
    (Number.isFinite(value) || value === max) &&
    value >= min &&
    value <= max &&
    (!integer || Number.isInteger(value) || value === Number.POSITIVE_INFINITY);
  if (!ok) {
    const parts = [integer ? 'an integer' : 'a finite number'];
    if (min !== Number.NEGATIVE_INFINITY) parts.push(`>= ${min}`);
    if (max !== Number.POSITIVE_INFINITY) parts.push(`<= ${max}`);
    throw optionError(owner, name, parts.join(' '), value);
  }
  return value as number;
}

/** An integer within bounds (default min 0). */
export function intOption(owner: string, name: string, value: unknown, fallback: number, bounds: NumberBounds = {}): number {
  return numberOption(owner, name, value, fallback, { min: 0, ...bounds, integer: true });
}

/** The longest delay a Node timer takes: a larger one (or Infinity) fires after 1 ms instead. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * A duration in milliseconds: a finite number from `min` (default 0) to {@link MAX_TIMER_MS}.
 * Infinity and anything longer are rejected rather than accepted: Node turns such a timer
 * into a 1 ms one (a `deadlineMs: Infinity` shutdown forced exit after 3 ms). An option that
 * needs "no limit" takes `numberOption` with `max: Infinity` and must not arm a timer with it.
 */
export function durationOption(owner: string, name: string, value: unknown, fallback: number, min = 0): number {
  return numberOption(owner, name, value, fallback, { min, max: MAX_TIMER_MS });
}

export function booleanOption(owner: string, name: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw optionError(owner, name, 'a boolean', value);
  return value;
}

export function stringOption(owner: string, name: string, value: unknown, fallback: string): string {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || value.length === 0) throw optionError(owner, name, 'a non-empty string', value);
  return value;
}

export function oneOfOption<T extends string>(owner: string, name: string, value: unknown, allowed: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw optionError(owner, name, `one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}`, value);
  }
  return value as T;
}

export function functionOption<F extends (...args: never[]) => unknown>(owner: string, name: string, value: unknown, fallback: F): F;
export function functionOption<F extends (...args: never[]) => unknown>(
  owner: string,
  name: string,
  value: unknown,
  fallback?: undefined,
): F | undefined;
export function functionOption<F extends (...args: never[]) => unknown>(
  owner: string,
  name: string,
  value: unknown,
  fallback?: F,
): F | undefined {
  if (value === undefined) return fallback;
  if (typeof value !== 'function') throw optionError(owner, name, 'a function', value);
  return value as F;
}

/** A {@link Clock}: an object with now, setTimeout and clearTimeout. */
export function clockOption(owner: string, value: unknown): Clock {
  if (value === undefined) return realClock;
  const c = value as Partial<Clock>;
  if (
    typeof c !== 'object' ||
    c === null ||
    typeof c.now !== 'function' ||
    typeof c.setTimeout !== 'function' ||
    typeof c.clearTimeout !== 'function'
  ) {
    throw optionError(owner, 'clock', 'a Clock (now, setTimeout, clearTimeout)', value);
  }
  return c as Clock;
}
