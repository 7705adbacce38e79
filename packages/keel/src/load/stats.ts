/** Small statistics for the soak verdict: a least-squares line and byte-size parsing. */

/** A fitted line `y = slope * x + intercept` and its coefficient of determination. */
export interface LinearFit {
  slope: number;
  intercept: number;
  /** R²: 1 = every point on the line, 0 = the line explains nothing. */
  r2: number;
}

/**
 * Ordinary least squares over paired samples (at least two, with distinct xs).
 *
 * @example
 * ```ts
 * linearFit([0, 1, 2], [10, 12, 14]); // { slope: 2, intercept: 10, r2: 1 }
 * ```
 */
export function linearFit(xs: readonly number[], ys: readonly number[]): LinearFit {
  const n = xs.length;
  if (n < 2 || ys.length !== n) throw new TypeError('keel: linearFit needs at least two (x, y) pairs');
  let mx = 0;
  let my = 0;
  for (let i = 0; i < n; i++) {
    mx += xs[i]!;
    my += ys[i]!;
  }
  mx /= n;
  my /= n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    const dx = xs[i]! - mx;
    const dy = ys[i]! - my;
    sxy += dx * dy;
    sxx += dx * dx;
    syy += dy * dy;
  }
  if (sxx === 0) throw new TypeError('keel: linearFit needs distinct x values');
  const slope = sxy / sxx;
  return { slope, intercept: my - slope * mx, r2: syy === 0 ? 1 : (sxy * sxy) / (sxx * syy) };
}

const BYTE_UNITS: Record<string, number> = { b: 1, kb: 1024, k: 1024, mb: 1024 ** 2, m: 1024 ** 2, gb: 1024 ** 3, g: 1024 ** 3 };

/**
 * Parses `64B`, `1KB`, `1.5MB` or a bare number of bytes (binary units).
 *
 * @example
 * ```ts
 * parseBytes('1KB'); // 1024
 * ```
 */
export function parseBytes(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmg]?b?)?$/i.exec(text.trim());
  if (!m) throw new TypeError(`keel: invalid size "${text}" (use e.g. 64B, 1KB, 2MB)`);
  return Number(m[1]) * (BYTE_UNITS[(m[2] || 'b').toLowerCase()] ?? 1);
}
