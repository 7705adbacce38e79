/**
 * Option checks for the forum's components, made once at construction: the value (or its
 * default when undefined), else a TypeError that names the component and the option.
 */

/** An integer >= `min` (default 0). With `fallback` undefined the option is required. */
export function intOption(owner: string, name: string, value: unknown, fallback: number | undefined, min = 0): number {
  if (value === undefined && fallback !== undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw new TypeError(`${owner}: ${name} must be an integer >= ${min}, got ${String(value)}`);
  }
  return value;
}
