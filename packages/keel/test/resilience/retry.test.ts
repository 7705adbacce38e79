import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { describe, expect, it } from 'vitest';
import { CHANNELS } from '../../src/channels.ts';
import { backoff } from '../../src/resilience/backoff.ts';
import { isPolicyClosedError, isRetryExhaustedError, RateLimitedError, RetryExhaustedError } from '../../src/resilience/errors.ts';
import { Retry } from '../../src/resilience/retry.ts';
import { RetryBudget } from '../../src/resilience/retry-budget.ts';
import { FakeClock } from '../../src/testing/index.ts';

const reset = () => Object.assign(new Error('reset'), { code: 'ECONNRESET' });

function flaky(failures: number, error: () => unknown = reset) {
  let calls = 0;
  const fn = async () => {
    calls++;
    if (calls <= failures) throw error();
    return 'ok';
  };
  return { fn, calls: () => calls };
}

describe('Retry', () => {
  it('returns the first success without waiting', async () => {
    const clock = new FakeClock();
    const r = new Retry({ clock });
    await expect(r.execute(async () => 42)).resolves.toBe(42);
    expect(clock.pending).toBe(0);
  });

  it('retries a transient error after the backoff delay', async () => {
    const clock = new FakeClock();
    const r = new Retry({ clock, backoff: backoff({ kind: 'constant', baseMs: 100 }) });
    const f = flaky(1);
    const p = r.execute(f.fn);
    await clock.advanceAsync(99);
    expect(f.calls()).toBe(1);
    await clock.advanceAsync(1);
    await expect(p).resolves.toBe('ok');
    expect(f.calls()).toBe(2);
  });

  it('does not retry an error the classifier calls permanent', async () => {
    const r = new Retry({ clock: new FakeClock() });
    const notFound = Object.assign(new Error('nope'), { status: 404 });
    const f = flaky(5, () => notFound);
    await expect(r.execute(f.fn)).rejects.toBe(notFound);
    expect(f.calls()).toBe(1);
  });

  it('throws RetryExhaustedError with every attempt cause after maxAttempts', async () => {
    const clock = new FakeClock();
    const r = new Retry({ clock, maxAttempts: 3, backoff: { kind: 'constant', baseMs: 10 } });
    const errors = [reset(), reset(), reset()];
    let i = 0;
    const p = r.execute(async () => {
      throw errors[i++];
    });
    const caught = p.catch((e: unknown) => e);
    await clock.advanceAsync(100);
    const err = (await caught) as RetryExhaustedError;
    expect(isRetryExhaustedError(err)).toBe(true);
    expect(err.causes).toEqual(errors);
    expect(err.reason).toBe('attempts');
    expect(err.cause).toBe(errors[2]);
  });

  it('uses the custom shouldRetry predicate', async () => {
    const r = new Retry({ clock: new FakeClock(), shouldRetry: () => false });
    const f = flaky(1);
    await expect(r.execute(f.fn)).rejects.toMatchObject({ code: 'ECONNRESET' });
    expect(f.calls()).toBe(1);
  });

  it('waits as long as a Retry-After hint in seconds asks', async () => {
    const clock = new FakeClock();
    const r = new Retry({ clock, backoff: { kind: 'constant', baseMs: 10 } });
    const f = flaky(1, () => Object.assign(new Error('busy'), { status: 503, headers: new Headers({ 'retry-after': '2' }) }));
    const p = r.execute(f.fn);
    await clock.advanceAsync(1_999);
    expect(f.calls()).toBe(1);
    await clock.advanceAsync(1);
    await expect(p).resolves.toBe('ok');
  });

  it('honours the retryAfterMs of a RateLimitedError', async () => {
    const clock = new FakeClock();
    const r = new Retry({ clock, backoff: { kind: 'constant', baseMs: 1 } });
    const f = flaky(1, () => new RateLimitedError('rl', 500));
    const p = r.execute(f.fn);
    await clock.advanceAsync(499);
    expect(f.calls()).toBe(1);
    await clock.advanceAsync(1);
    await expect(p).resolves.toBe('ok');
  });

  it('gives up at once when Retry-After exceeds maxRetryAfterMs', async () => {
    const clock = new FakeClock();
    const r = new Retry({ clock, maxRetryAfterMs: 1_000 });
    const f = flaky(1, () => Object.assign(new Error('busy'), { status: 429, retryAfter: 120 }));
    await expect(r.execute(f.fn)).rejects.toBeInstanceOf(RetryExhaustedError);
    expect(f.calls()).toBe(1);
  });

  it('retries a result that retryOnResult rejects and returns the last one when exhausted', async () => {
    const clock = new FakeClock();
    const r = new Retry({
      clock,
      maxAttempts: 2,
      backoff: { kind: 'constant', baseMs: 5 },
      retryOnResult: (res) => (res as Response).status === 503,
    });
    let calls = 0;
    const p = r.execute(async () => {
      calls++;
      return new Response(null, { status: 503 });
    });
    await clock.advanceAsync(10);
    expect((await p).status).toBe(503);
    expect(calls).toBe(2);
  });

  it('stops waiting and rejects with the reason when the caller aborts during backoff', async () => {
    const clock = new FakeClock();
    const r = new Retry({ clock, backoff: { kind: 'constant', baseMs: 1_000 } });
    const ac = new AbortController();
    const f = flaky(1);
    const p = r.execute(f.fn, { signal: ac.signal });
    const caught = p.catch((e: unknown) => e);
    await clock.advanceAsync(10);
    ac.abort(new Error('caller gone'));
    expect(((await caught) as Error).message).toBe('caller gone');
    expect(clock.pending).toBe(0);
    expect(f.calls()).toBe(1);
  });

  it('refuses retries the budget cannot cover', async () => {
    const clock = new FakeClock();
    const budget = new RetryBudget({ clock, ratio: 0, minRetries: 1 });
    const r = new Retry({ clock, budget, backoff: { kind: 'constant', baseMs: 0 } });
    const first = flaky(1);
    await expect(r.execute(first.fn)).resolves.toBe('ok');
    const second = flaky(1);
    const err = (await r.execute(second.fn).catch((e: unknown) => e)) as RetryExhaustedError;
    expect(err.reason).toBe('budget');
    expect(second.calls()).toBe(1);
  });

  it('passes the caller signal to fn unchanged', async () => {
    const r = new Retry({ clock: new FakeClock() });
    const ac = new AbortController();
    let seen: AbortSignal | undefined;
    await r.execute(
      ({ signal }) => {
        seen = signal;
      },
      { signal: ac.signal },
    );
    expect(seen).toBe(ac.signal);
  });

  it('ends backoff waits with PolicyClosedError on close and refuses new calls', async () => {
    const clock = new FakeClock();
    const r = new Retry({ clock, backoff: { kind: 'constant', baseMs: 1_000 } });
    const p = r.execute(flaky(1).fn).catch((e: unknown) => e);
    await clock.advanceAsync(1);
    await r.close();
    expect(isPolicyClosedError(await p)).toBe(true);
    expect(clock.pending).toBe(0);
    await expect(r.execute(async () => 1)).rejects.toMatchObject({ code: 'KEEL_POLICY_CLOSED' });
  });

  it('rejects with PolicyClosedError without a backoff when an attempt running at close fails', async () => {
    const clock = new FakeClock();
    const r = new Retry({ clock, backoff: { kind: 'constant', baseMs: 30_000 } });
    let failAttempt!: () => void;
    const p = r.execute(() => new Promise((_, reject) => (failAttempt = () => reject(reset())))).catch((e: unknown) => e);
    await r.close();
    failAttempt();
    expect(isPolicyClosedError(await p)).toBe(true);
    expect(clock.pending).toBe(0);
  });

  it('counts attempts whose result was retried in RetryExhaustedError.attempts', async () => {
    const r = new Retry({
      clock: new FakeClock(),
      maxAttempts: 3,
      backoff: { kind: 'constant', baseMs: 0 },
      budget: false,
      retryOnResult: (res) => (res as { status: number }).status === 503,
    });
    let calls = 0;
    const err = (await r
      .execute(async () => {
        if (++calls === 1) return { status: 503 };
        throw reset();
      })
      .catch((e: unknown) => e)) as RetryExhaustedError;
    expect(calls).toBe(3);
    expect(isRetryExhaustedError(err)).toBe(true);
    expect(err.attempts).toBe(3);
    expect(err.causes).toHaveLength(2);
  });

  it('publishes each scheduled retry and the exhaustion', async () => {
    const clock = new FakeClock();
    const r = new Retry({ clock, name: 'upstream', maxAttempts: 2, backoff: { kind: 'constant', baseMs: 5 } });
    const retries: unknown[] = [];
    const exhausted: unknown[] = [];
    const onRetry = (m: unknown) => retries.push(m);
    const onExhausted = (m: unknown) => exhausted.push(m);
    subscribe(CHANNELS.resilience.retry, onRetry);
    subscribe(CHANNELS.resilience.retryExhausted, onExhausted);
    try {
      const p = r
        .execute(async () => {
          throw reset();
        })
        .catch(() => {});
      await clock.advanceAsync(5);
      await p;
    } finally {
      unsubscribe(CHANNELS.resilience.retry, onRetry);
      unsubscribe(CHANNELS.resilience.retryExhausted, onExhausted);
    }
    expect(retries).toMatchObject([{ name: 'upstream', attempt: 1, delayMs: 5 }]);
    expect(exhausted).toMatchObject([{ name: 'upstream', attempts: 2 }]);
  });

  it('rejects maxAttempts outside 1..100 at construction', () => {
    expect(() => new Retry({ maxAttempts: 0 })).toThrow(/"maxAttempts"/);
    expect(() => new Retry({ maxAttempts: 101 })).toThrow(/"maxAttempts"/);
  });

  it('rejects a non-function shouldRetry and a bad budget at construction', () => {
    expect(() => new Retry({ shouldRetry: 1 as never })).toThrow(/"shouldRetry"/);
    expect(() => new Retry({ budget: 3 as never })).toThrow(/"budget"/);
  });
});
