import { getEventListeners } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { isPolicyClosedError } from '../../src/resilience/errors.ts';
import { Hedge } from '../../src/resilience/hedge.ts';
import { FakeClock } from '../../src/testing/index.ts';

describe('Hedge', () => {
  it('does not hedge a call that answers before the delay', async () => {
    const clock = new FakeClock();
    const h = new Hedge({ clock, delayMs: 50 });
    let attempts = 0;
    await expect(
      h.execute(async () => {
        attempts++;
        return 'quick';
      }),
    ).resolves.toBe('quick');
    expect(attempts).toBe(1);
    expect(clock.pending).toBe(0);
  });

  it('starts a second attempt after the delay; the first success wins and the loser is aborted', async () => {
    const clock = new FakeClock();
    const h = new Hedge({ clock, delayMs: 50 });
    const signals: AbortSignal[] = [];
    const p = h.execute(({ signal }) => {
      signals.push(signal);
      const n = signals.length;
      return new Promise((resolve) => {
        if (n === 2) clock.setTimeout(() => resolve('second'), 10);
      });
    });
    await clock.advanceAsync(60);
    await expect(p).resolves.toBe('second');
    expect(signals).toHaveLength(2);
    expect(signals[0]?.aborted).toBe(true);
    expect(clock.pending).toBe(0);
  });

  it('leaves the winning fetch body readable after the race ends', async () => {
    // Headers first, then the rest of the body only once the hedge has resolved: the body
    // is still streaming under the winner's signal when the race ends.
    let finishBody!: () => void;
    const server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('hello ');
      finishBody = () => res.end('world');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
      const h = new Hedge({ clock: new FakeClock(), delayMs: 1_000 });
      const res = await h.execute(({ signal }) => fetch(url, { signal }));
      finishBody();
      await expect(res.text()).resolves.toBe('hello world');
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });

  it('starts at most maxHedges extra attempts', async () => {
    const clock = new FakeClock();
    const h = new Hedge({ clock, delayMs: 10, maxHedges: 2 });
    let attempts = 0;
    const ac = new AbortController();
    const p = h
      .execute(
        () => {
          attempts++;
          return new Promise(() => {});
        },
        { signal: ac.signal },
      )
      .catch((e: unknown) => e);
    await clock.advanceAsync(100);
    expect(attempts).toBe(3);
    ac.abort(new Error('enough'));
    expect(((await p) as Error).message).toBe('enough');
    expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0);
  });

  it('hedges at once after a failure and rejects when every attempt failed', async () => {
    const clock = new FakeClock();
    const h = new Hedge({ clock, delayMs: 1_000, maxHedges: 1 });
    let attempts = 0;
    const err = await h
      .execute(async () => {
        attempts++;
        throw new Error(`fail ${attempts}`);
      })
      .catch((e: unknown) => e);
    expect(attempts).toBe(2);
    expect((err as Error).message).toBe('fail 2');
    expect(clock.pending).toBe(0);
  });

  it('ends hedged calls on close, aborting their attempts', async () => {
    const clock = new FakeClock();
    const h = new Hedge({ clock, delayMs: 10 });
    let signal: AbortSignal | undefined;
    const p = h
      .execute(({ signal: s }) => {
        signal = s;
        return new Promise(() => {});
      })
      .catch((e: unknown) => e);
    await h.close();
    expect(isPolicyClosedError(await p)).toBe(true);
    expect(signal?.aborted).toBe(true);
    expect(clock.pending).toBe(0);
  });

  it('rejects bad options at construction', () => {
    expect(() => new Hedge({ maxHedges: 0 })).toThrow(/"maxHedges"/);
    expect(() => new Hedge({ maxHedges: 11 })).toThrow(/"maxHedges"/);
    expect(() => new Hedge({ delayMs: -1 })).toThrow(/"delayMs"/);
    expect(() => new Hedge({ delayMs: Number.POSITIVE_INFINITY })).toThrow(/"delayMs"/);
  });
});
