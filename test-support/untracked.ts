/**
 * Pauses the suite's leak check (no-leaks.ts) around the creation of a fixture that outlives
 * one test on purpose. Free of vitest, so benchmarks can share the fixtures that use it.
 */

const PAUSED = Symbol.for('keel.test.leaks.paused');
type Flagged = { [PAUSED]?: number };

/** Whether handle tracking is paused now (read by no-leaks.ts). */
export function trackingPaused(): boolean {
  return ((globalThis as Flagged)[PAUSED] ?? 0) > 0;
}

/**
 * Runs `fn` with handle tracking paused. For test fixtures that outlive one test on purpose,
 * such as a Redis server a test restarts and the suite's afterAll stops; only the handles
 * created synchronously inside `fn` are exempt.
 */
export function untracked<T>(fn: () => T): T {
  const g = globalThis as Flagged;
  g[PAUSED] = (g[PAUSED] ?? 0) + 1;
  try {
    return fn();
  } finally {
    g[PAUSED] = (g[PAUSED] ?? 1) - 1;
  }
}
