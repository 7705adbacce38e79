/**
 * A small seeded PRNG (mulberry32): the same seed always yields the same sequence, so demo
 * data, load scenarios and property tests are reproducible. Not for anything secret.
 *
 * @example
 * ```ts
 * import { seededRandom } from 'keel/testing';
 * const rnd = seededRandom(42);
 * const die = 1 + Math.floor(rnd() * 6);
 * ```
 */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
