import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import { ConsecutiveBreaker } from '../../src/resilience/breakers/consecutive.ts';
import { Bulkhead } from '../../src/resilience/bulkhead.ts';
import { CircuitBreaker } from '../../src/resilience/circuit-breaker.ts';
import { isBrokenCircuitError, isRetryExhaustedError, isTimeoutError } from '../../src/resilience/errors.ts';
import { pipeline } from '../../src/resilience/pipeline.ts';
import type { Policy } from '../../src/resilience/policy.ts';
import { RateLimit } from '../../src/resilience/rate-limit.ts';
import { Retry } from '../../src/resilience/retry.ts';
import { Timeout } from '../../src/resilience/timeout.ts';
import { FakeClock } from '../../src/testing/index.ts';

function tracer(name: string, log: string[]): Policy {
  return {
    async execute(fn, options) {
      log.push(`>${name}`);
      try {
        return await fn(options as never);
      } finally {
        log.push(`<${name}`);
      }
    },
  };
}

describe('pipeline', () => {
  it('runs the first policy outermost', async () => {
    const log: string[] = [];
    await pipeline(tracer('a', log), tracer('b', log), tracer('c', log)).execute(async () => log.push('fn'));
    expect(log).toEqual(['>a', '>b', '>c', 'fn', '<c', '<b', '<a']);
  });

  it('retries through an inner timeout: each attempt gets its own deadline', async () => {
    const clock = new FakeClock();
    const p = pipeline(new Retry({ clock, maxAttempts: 2, backoff: { kind: 'constant', baseMs: 10 } }), new Timeout(100, { clock }));
    let attempts = 0;
    const run = p.execute(({ signal }) => {
      attempts++;
      return new Promise((resolve, reject) => {
        if (attempts === 2) resolve('second');
        signal.addEventListener('abort', () => reject(signal.reason));
      });
    });
    await clock.advanceAsync(100);
    await clock.advanceAsync(10);
    await expect(run).resolves.toBe('second');
    expect(attempts).toBe(2);
    expect(clock.pending).toBe(0);
  });

  it('reports timeouts as exhausted retries carrying TimeoutErrors', async () => {
    const clock = new FakeClock();
    const p = pipeline(new Retry({ clock, maxAttempts: 2, backoff: { kind: 'constant', baseMs: 10 } }), new Timeout(50, { clock }));
    const run = p
      .execute(({ signal }) => new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason))))
      .catch((e: unknown) => e);
    await clock.advanceAsync(200);
    const err = await run;
    expect(isRetryExhaustedError(err)).toBe(true);
    expect((err as { causes: unknown[] }).causes.every(isTimeoutError)).toBe(true);
  });

  it('lets an open breaker stop retries early', async () => {
    const clock = new FakeClock();
    const breaker = new CircuitBreaker({ clock, strategy: new ConsecutiveBreaker(1) });
    const p = pipeline(new Retry({ clock, maxAttempts: 5, backoff: { kind: 'constant', baseMs: 0 } }), breaker);
    let calls = 0;
    const err = await p
      .execute(async () => {
        calls++;
        throw Object.assign(new Error('down'), { code: 'ECONNREFUSED' });
      })
      .catch((e: unknown) => e);
    expect(calls).toBe(1);
    expect(isBrokenCircuitError(err)).toBe(true);
  });

  it('creates no AbortController and no listener when fn ignores the signal', async () => {
    const clock = new FakeClock();
    const ac = new AbortController();
    const p = pipeline(new Timeout(1_000, { clock }), new Retry({ clock }), new CircuitBreaker({ clock }));
    const Original = globalThis.AbortController;
    let created = 0;
    globalThis.AbortController = class extends Original {
      constructor() {
        super();
        created++;
      }
    };
    try {
      await p.execute(async () => 1, { signal: ac.signal });
    } finally {
      globalThis.AbortController = Original;
    }
    expect(created).toBe(0);
    expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0);
  });

  it('hands fn a signal that the caller can abort through every layer', async () => {
    const clock = new FakeClock();
    const ac = new AbortController();
    const p = pipeline(
      new Bulkhead({ clock }),
      new RateLimit({ clock }),
      new Retry({ clock }),
      new CircuitBreaker({ clock }),
      new Timeout(1_000, { clock }),
    );
    const run = p.execute(({ signal }) => new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason))), {
      signal: ac.signal,
    });
    ac.abort(new Error('shutdown'));
    await expect(run).rejects.toThrow('shutdown');
    expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0);
    expect(clock.pending).toBe(0);
  });

  it('forwards the key to a per-key rate limit inside the pipeline', async () => {
    const clock = new FakeClock();
    const p = pipeline(new Timeout(1_000, { clock }), new RateLimit({ clock, tokensPerInterval: 1, perKey: true }));
    await p.execute(async () => 1, { key: 'a' });
    await expect(p.execute(async () => 1, { key: 'b' })).resolves.toBe(1);
    await expect(p.execute(async () => 1, { key: 'a' })).rejects.toMatchObject({ code: 'KEEL_RATE_LIMITED', key: 'a' });
  });

  it('runs the link-preview shape: bulkhead, rate limit, retry, breaker, timeout around fetch', async () => {
    const p = pipeline(new Bulkhead(), new RateLimit({ perKey: true }), new Retry(), new CircuitBreaker(), new Timeout(5_000));
    // Typed end to end: the pipeline returns what fn returns.
    const res: Response = await p.execute(({ signal }) => fetch('data:text/plain,preview', { signal }), { key: 'example.com' });
    expect(await res.text()).toBe('preview');
  });

  it('rejects an empty pipeline and non-policies', () => {
    expect(() => pipeline()).toThrow(TypeError);
    expect(() => pipeline({} as never)).toThrow(/argument 0/);
  });
});
