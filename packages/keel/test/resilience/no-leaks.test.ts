/**
 * 100,000 calls through retry + breaker + timeout, a quarter each succeeding, retried,
 * timed out and aborted by their caller, must leave no listener on any caller signal and
 * no pending timer.
 */
import { getEventListeners, setMaxListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import { CountWindowBreaker } from '../../src/resilience/breakers/count-window.ts';
import { CircuitBreaker } from '../../src/resilience/circuit-breaker.ts';
import { classify } from '../../src/resilience/classify.ts';
import type { ExecuteContext } from '../../src/resilience/context.ts';
import { isTimeoutError } from '../../src/resilience/errors.ts';
import { pipeline } from '../../src/resilience/pipeline.ts';
import { Retry } from '../../src/resilience/retry.ts';
import { Timeout } from '../../src/resilience/timeout.ts';
import { FakeClock } from '../../src/testing/index.ts';

const TOTAL = 100_000;
const BATCH = 1_000;

function hang({ signal }: ExecuteContext): Promise<never> {
  return new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason), { once: true }));
}

describe('resilience leak check', () => {
  it('leaves no listeners on caller signals and no timers after 100,000 mixed calls', async () => {
    const clock = new FakeClock();
    const policy = pipeline(
      new Retry({ clock, maxAttempts: 2, backoff: { kind: 'constant', baseMs: 10 }, budget: false }),
      // Timeouts and aborts do not count and resets are interleaved with successes, so the breaker
      // stays closed and every path below runs through it.
      new CircuitBreaker({
        clock,
        strategy: new CountWindowBreaker({ size: 100, failureRateThreshold: 1 }),
        isFailure: (e) => !isTimeoutError(e) && classify(e).severity !== 'low',
      }),
      new Timeout(100, { clock }),
    );
    const shared = new AbortController();
    // A batch holds a listener per in-flight call on the shared signal; that is expected.
    setMaxListeners(BATCH + 10, shared.signal);
    const outcomes = { ok: 0, retried: 0, timedOut: 0, aborted: 0 };
    for (let start = 0; start < TOTAL; start += BATCH) {
      const calls: Promise<void>[] = [];
      const own: AbortController[] = [];
      for (let i = start; i < start + BATCH; i++) {
        const kind = i % 4;
        if (kind === 0) {
          calls.push(policy.execute(async ({ signal }) => signal.aborted, { signal: shared.signal }).then(() => void outcomes.ok++));
        } else if (kind === 1) {
          let attempt = 0;
          const flaky = async ({ signal }: ExecuteContext) => {
            if (++attempt === 1 && !signal.aborted) throw Object.assign(new Error('reset'), { code: 'ECONNRESET' });
            return 1;
          };
          calls.push(policy.execute(flaky, { signal: shared.signal }).then(() => void outcomes.retried++));
        } else if (kind === 2) {
          calls.push(policy.execute(hang, { signal: shared.signal }).catch(() => void outcomes.timedOut++));
        } else {
          const ac = new AbortController();
          own.push(ac);
          calls.push(policy.execute(hang, { signal: ac.signal }).catch(() => void outcomes.aborted++));
        }
      }
      await clock.advanceAsync(1);
      for (const ac of own) ac.abort(new DOMException('caller left', 'AbortError'));
      for (let guard = 0; guard < 10 && clock.pending > 0; guard++) await clock.advanceAsync(100);
      await Promise.all(calls);
      for (const ac of own) expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0);
    }
    expect(outcomes).toEqual({ ok: TOTAL / 4, retried: TOTAL / 4, timedOut: TOTAL / 4, aborted: TOTAL / 4 });
    expect(getEventListeners(shared.signal, 'abort')).toHaveLength(0);
    expect(clock.pending).toBe(0);
  }, 120_000);
});
