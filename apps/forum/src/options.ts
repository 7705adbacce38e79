/**
 * Option checks for the forum's components, made once at construction: the value (or its
 * default when undefined), else a TypeError that names the component and the option.
 */

/** An integer >= `min` (default 0). */
export function intOption(owner: string, name: string, value: unknown, fallback: number, min = 0): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw new TypeError(`${owner}: ${name} must be an integer >= ${min}, got ${String(value)}`);
  }
  return value;
}
