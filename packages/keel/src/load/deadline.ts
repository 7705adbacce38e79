/**
 * A bound on one wait of the soak tester (a cycle, a heap sample, a snapshot): each has a
 * timeout with a default, since a target that stops answering otherwise hangs the run (a
 * WebSocket cycle whose subscribe got no reply waited forever).
 */
import type { Clock } from '../clock.ts';
import { TimeoutError } from '../resilience/errors.ts';

/**
 * Runs `work` with a signal that aborts after `ms`; resolves or rejects as `work` does, or
 * rejects with a {@link TimeoutError} named `name` when the time runs out first. The timer is
 * cleared as soon as either happens.
 *
 * @example
 * ```ts
 * await withDeadline((signal) => client.request({ method: 'GET', path: '/', signal }), 10_000, realClock, 'soak cycle');
 * ```
 */
export function withDeadline<T>(work: (signal: AbortSignal) => Promise<T>, ms: number, clock: Clock, name: string): Promise<T> {
  const ac = new AbortController();
  return new Promise<T>((resolve, reject) => {
    const timer = clock.setTimeout(() => {
      const err = new TimeoutError(name, ms);
      reject(err);
      ac.abort(err);
    }, ms);
    let running: Promise<T>;
    try {
      running = work(ac.signal);
    } catch (err) {
      running = Promise.reject(err);
    }
    running.then(
      (v) => {
        clock.clearTimeout(timer);
        resolve(v);
      },
      (err: unknown) => {
        clock.clearTimeout(timer);
        reject(err);
      },
    );
  });
}
