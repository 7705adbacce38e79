import { describe, expect, it } from 'vitest';
import { deferred } from '../../src/testing/index.ts';

describe('deferred', () => {
  it('settles its promise with the value resolve is given, when the test calls it', async () => {
    const d = deferred<string>();
    let seen: string | undefined;
    const pending = d.promise.then((v) => {
      seen = v;
    });
    await Promise.resolve();
    expect(seen).toBeUndefined();
    d.resolve('four');
    await pending;
    expect(seen).toBe('four');
  });

  it('rejects its promise with the reason reject is given', async () => {
    const d = deferred<number>();
    d.reject(new Error('down'));
    await expect(d.promise).rejects.toThrow('down');
  });
});
