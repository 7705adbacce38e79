import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import { CHANNELS } from '../../src/channels.ts';
import { isPolicyClosedError, isTimeoutError, type TimeoutError } from '../../src/resilience/errors.ts';
import { Timeout } from '../../src/resilience/timeout.ts';
import { FakeClock } from '../../src/testing/index.ts';

describe('Timeout', () => {
  it('returns the result of a call that beats the deadline and leaves no timer', async () => {
    const clock = new FakeClock();
    const t = new Timeout(100, { clock });
    await expect(t.execute(async () => 'fast')).resolves.toBe('fast');
    expect(clock.pending).toBe(0);
  });

  it('aborts the signal at the deadline and rejects with TimeoutError (cooperative)', async () => {
    const clock = new FakeClock();
    const t = new Timeout(100, { clock });
    let signal: AbortSignal | undefined;
    const p = t.execute(
      ({ signal: s }) =>
        new Promise((_, reject) => {
          signal = s;
          s.addEventListener('abort', () => reject(new Error('stopped')));
        }),
    );
    const caught = p.catch((e: unknown) => e);
    await clock.advanceAsync(100);
    const err = (await caught) as TimeoutError;
    expect(signal?.aborted).toBe(true);
    expect(isTimeoutError(err)).toBe(true);
    expect((err.cause as Error).message).toBe('stopped');
    expect(clock.pending).toBe(0);
  });

  it('waits for fn in cooperative mode and returns its late value', async () => {
    const clock = new FakeClock();
    const t = new Timeout(100, { clock });
    let finish!: (v: string) => void;
    const p = t.execute(() => new Promise<string>((r) => (finish = r)));
    await clock.advanceAsync(150);
    finish('late');
    await expect(p).resolves.toBe('late');
  });

  it('rejects at the deadline in aggressive mode even if fn ignores the signal', async () => {
    const clock = new FakeClock();
    const t = new Timeout(100, { clock, strategy: 'aggressive' });
    let finish!: (v: string) => void;
    const p = t.execute(() => new Promise<string>((r) => (finish = r)));
    const caught = p.catch((e: unknown) => e);
    await clock.advanceAsync(100);
    expect(isTimeoutError(await caught)).toBe(true);
    finish('ignored');
    expect(clock.pending).toBe(0);
  });

  it('drops its listener on the caller signal at the deadline in aggressive mode even if fn never settles', async () => {
    const clock = new FakeClock();
    const t = new Timeout(100, { clock, strategy: 'aggressive' });
    const ac = new AbortController();
    const p = t
      .execute(
        ({ signal }) => {
          void signal; // reading it links the call to the caller's signal
          return new Promise(() => {});
        },
        { signal: ac.signal },
      )
      .catch((e: unknown) => e);
    expect(getEventListeners(ac.signal, 'abort')).toHaveLength(1);
    await clock.advanceAsync(100);
    expect(isTimeoutError(await p)).toBe(true);
    expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0);
  });

  it('rejects at once with the caller reason when the caller aborts in aggressive mode', async () => {
    const clock = new FakeClock();
    const t = new Timeout(10_000, { clock, strategy: 'aggressive' });
    const ac = new AbortController();
    const p = t.execute(() => new Promise(() => {}), { signal: ac.signal }).catch((e: unknown) => e);
    const reason = new Error('caller gave up');
    ac.abort(reason);
    expect(await p).toBe(reason);
    expect(clock.pending).toBe(0);
    expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0);
  });

  it('times out each of several overlapping calls at its own deadline with one timer', async () => {
    const clock = new FakeClock();
    const t = new Timeout(100, { clock });
    const never = ({ signal }: { signal: AbortSignal }) =>
      new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason)));
    const a = t.execute(never).catch((e: unknown) => e);
    await clock.advanceAsync(30);
    const b = t.execute(never).catch((e: unknown) => e);
    expect(clock.pending).toBe(1);
    await clock.advanceAsync(70);
    expect(isTimeoutError(await a)).toBe(true);
    let bDone = false;
    void b.then(() => (bDone = true));
    await clock.advanceAsync(29);
    expect(bDone).toBe(false);
    await clock.advanceAsync(1);
    expect(isTimeoutError(await b)).toBe(true);
    expect(clock.pending).toBe(0);
  });

  it('creates no signal when fn does not read it', async () => {
    const clock = new FakeClock();
    const t = new Timeout(100, { clock });
    const ac = new AbortController();
    await t.execute(async () => 1, { signal: ac.signal });
    expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0);
  });

  it('removes its listener from the caller signal when the call ends', async () => {
    const clock = new FakeClock();
    const t = new Timeout(100, { clock });
    const ac = new AbortController();
    await t.execute(async ({ signal }) => signal.aborted, { signal: ac.signal });
    expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0);
  });

  it('aborts the inner signal when the caller aborts', async () => {
    const clock = new FakeClock();
    const t = new Timeout(1_000, { clock });
    const ac = new AbortController();
    const p = t.execute(({ signal }) => new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason))), {
      signal: ac.signal,
    });
    ac.abort(new Error('bye'));
    await expect(p).rejects.toThrow('bye');
    expect(clock.pending).toBe(0);
  });

  it('passes through errors thrown before the deadline unchanged', async () => {
    const t = new Timeout(100, { clock: new FakeClock() });
    const boom = new Error('boom');
    await expect(
      t.execute(async () => {
        throw boom;
      }),
    ).rejects.toBe(boom);
  });

  it('aborts calls in flight on close, clears its timer and refuses new calls', async () => {
    const clock = new FakeClock();
    const t = new Timeout(1_000, { clock });
    const p = t
      .execute(({ signal }) => new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason))))
      .catch((e: unknown) => e);
    await t.close();
    expect(isPolicyClosedError(await p)).toBe(true);
    expect(clock.pending).toBe(0);
    await expect(t.execute(async () => 1)).rejects.toMatchObject({ code: 'KEEL_POLICY_CLOSED' });
  });

  it('publishes a timeout event naming the policy', async () => {
    const clock = new FakeClock();
    const t = new Timeout(10, { clock, name: 'slow-api' });
    const seen: unknown[] = [];
    const listener = (m: unknown) => seen.push(m);
    subscribe(CHANNELS.resilience.timeout, listener);
    try {
      const p = t
        .execute(({ signal }) => new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason))))
        .catch(() => {});
      await clock.advanceAsync(10);
      await p;
    } finally {
      unsubscribe(CHANNELS.resilience.timeout, listener);
    }
    expect(seen).toEqual([{ name: 'slow-api', timeoutMs: 10 }]);
  });

  it('measures deadlines on monotonic time, so a wall clock stepped back does not delay them', async () => {
    const fake = new FakeClock();
    let offset = 0;
    const clock = {
      now: () => fake.now() + offset,
      monotonic: () => fake.monotonic(),
      setTimeout: (fn: () => void, ms: number) => fake.setTimeout(fn, ms),
      clearTimeout: (h: object) => fake.clearTimeout(h),
    };
    const t = new Timeout(200, { clock });
    let settled = false;
    const p = t
      .execute(({ signal }) => new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason))))
      .catch((e: unknown) => e)
      .finally(() => (settled = true));
    await fake.advanceAsync(50);
    offset -= 3_000; // NTP or a VM resume steps the wall clock back 3 s
    await fake.advanceAsync(150);
    expect(settled).toBe(true);
    expect(isTimeoutError(await p)).toBe(true);
  });

  it('rejects a missing or non-positive duration and an unknown strategy at construction', () => {
    expect(() => new Timeout(undefined as never)).toThrow(/"ms"/);
    expect(() => new Timeout(0)).toThrow(/"ms"/);
    expect(() => new Timeout(Number.POSITIVE_INFINITY)).toThrow(/"ms"/);
    expect(() => new Timeout(10, { strategy: 'rude' as never })).toThrow(/"strategy"/);
  });
});
