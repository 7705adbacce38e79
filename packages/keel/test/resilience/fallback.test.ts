import { describe, expect, it } from 'vitest';
import { Fallback } from '../../src/resilience/fallback.ts';

describe('Fallback', () => {
  it('passes a success through, marked not degraded', async () => {
    const fb = new Fallback({ value: 'stand-in' });
    await expect(fb.execute(async () => 'real')).resolves.toEqual({ value: 'real', degraded: false });
  });

  it('serves the fallback value on failure, marked degraded with the error', async () => {
    const fb = new Fallback({ value: null });
    const boom = new Error('boom');
    await expect(
      fb.execute(async () => {
        throw boom;
      }),
    ).resolves.toEqual({ value: null, degraded: true, error: boom });
  });

  it('computes the substitute from the error with fn', async () => {
    const fb = new Fallback({ fn: async (err) => `sorry: ${(err as Error).message}` });
    const r = await fb.execute(async () => {
      throw new Error('down');
    });
    expect(r.value).toBe('sorry: down');
  });

  it('rethrows errors that when() does not select', async () => {
    const fb = new Fallback({ value: 0, when: (e) => (e as { status?: number }).status === 503 });
    const other = Object.assign(new Error('bad'), { status: 400 });
    await expect(
      fb.execute(async () => {
        throw other;
      }),
    ).rejects.toBe(other);
  });

  it("rethrows the caller's own abort rather than masking it", async () => {
    const fb = new Fallback({ value: 0 });
    const ac = new AbortController();
    ac.abort(new Error('cancelled'));
    await expect(fb.execute(({ signal }) => Promise.reject(signal.reason), { signal: ac.signal })).rejects.toThrow('cancelled');
  });

  it('needs a value or fn', () => {
    expect(() => new Fallback({} as never)).toThrow(/"value" or "fn"/);
    expect(() => new Fallback({ fn: 3 as never })).toThrow(/"fn"/);
  });
});
