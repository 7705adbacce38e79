import { describe, expect, it } from 'vitest';
import { isPolicyClosedError, isRateLimitedError, RateLimitedError } from '../../src/resilience/errors.ts';
import { RateLimit } from '../../src/resilience/rate-limit.ts';
import { FakeClock } from '../../src/testing/index.ts';

const one = async () => 1;

describe('RateLimit', () => {
  it('allows a burst of tokens then rejects with the wait until the next token', async () => {
    const clock = new FakeClock();
    const rl = new RateLimit({ clock, tokensPerInterval: 2, intervalMs: 1_000 });
    await rl.execute(one);
    await rl.execute(one);
    const err = (await rl.execute(one).catch((e: unknown) => e)) as RateLimitedError;
    expect(isRateLimitedError(err)).toBe(true);
    expect(err.retryAfterMs).toBe(500);
  });

  it('refills tokens as time passes', async () => {
    const clock = new FakeClock();
    const rl = new RateLimit({ clock, tokensPerInterval: 1, intervalMs: 1_000 });
    await rl.execute(one);
    clock.advance(1_000);
    await expect(rl.execute(one)).resolves.toBe(1);
  });

  it('admits one call per 2 s with tokensPerInterval 0.5 (a bucket of at least one token)', async () => {
    const clock = new FakeClock();
    const rl = new RateLimit({ clock, tokensPerInterval: 0.5, intervalMs: 1_000 });
    await expect(rl.execute(one)).resolves.toBe(1);
    await expect(rl.execute(one)).rejects.toMatchObject({ code: 'KEEL_RATE_LIMITED', retryAfterMs: 2_000 });
    clock.advance(2_000);
    await expect(rl.execute(one)).resolves.toBe(1);
  });

  it('waits for a token within maxWaitMs', async () => {
    const clock = new FakeClock();
    const rl = new RateLimit({ clock, tokensPerInterval: 1, intervalMs: 100, maxWaitMs: 100 });
    await rl.execute(one);
    let done = false;
    const p = rl.execute(one).then(() => (done = true));
    await clock.advanceAsync(99);
    expect(done).toBe(false);
    await clock.advanceAsync(1);
    await p;
    expect(done).toBe(true);
  });

  it('keeps separate buckets per key', async () => {
    const clock = new FakeClock();
    const rl = new RateLimit({ clock, tokensPerInterval: 1, perKey: true });
    await rl.execute(one, { key: 'a' });
    await expect(rl.execute(one, { key: 'b' })).resolves.toBe(1);
    await expect(rl.execute(one, { key: 'a' })).rejects.toBeInstanceOf(RateLimitedError);
  });

  it('keeps at most maxKeys buckets, dropping the least recently used', async () => {
    const clock = new FakeClock();
    const rl = new RateLimit({ clock, tokensPerInterval: 1, perKey: true, maxKeys: 2 });
    await rl.execute(one, { key: 'a' });
    await rl.execute(one, { key: 'b' });
    await rl.execute(one, { key: 'c' });
    expect(rl.keys).toBe(2);
    // 'a' was dropped, so it starts with a full bucket again.
    await expect(rl.execute(one, { key: 'a' })).resolves.toBe(1);
  });

  it('returns a reserved token when the caller aborts while waiting', async () => {
    const clock = new FakeClock();
    const rl = new RateLimit({ clock, tokensPerInterval: 1, intervalMs: 100, maxWaitMs: 100 });
    await rl.execute(one);
    const ac = new AbortController();
    const waiting = rl.execute(one, { signal: ac.signal });
    ac.abort(new Error('gone'));
    await expect(waiting).rejects.toThrow('gone');
    expect(clock.pending).toBe(0);
    clock.advance(100);
    await expect(rl.execute(one)).resolves.toBe(1);
  });

  it('ends token waits on close', async () => {
    const clock = new FakeClock();
    const rl = new RateLimit({ clock, tokensPerInterval: 1, intervalMs: 100, maxWaitMs: 100 });
    await rl.execute(one);
    const waiting = rl.execute(one).catch((e: unknown) => e);
    await rl.close();
    expect(isPolicyClosedError(await waiting)).toBe(true);
    expect(clock.pending).toBe(0);
  });

  it('rejects bad options at construction', () => {
    expect(() => new RateLimit({ tokensPerInterval: 0 })).toThrow(/"tokensPerInterval"/);
    expect(() => new RateLimit({ perKey: 'yes' as never })).toThrow(/"perKey"/);
    expect(() => new RateLimit({ maxKeys: 0 })).toThrow(/"maxKeys"/);
  });
});
