import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import { ChildContext, sleep, toContext } from '../../src/resilience/context.ts';
import { FakeClock } from '../../src/testing/index.ts';

describe('call context', () => {
  it('hands out the caller signal itself at the root', () => {
    const ac = new AbortController();
    expect(toContext({ signal: ac.signal }).signal).toBe(ac.signal);
  });

  it('gives each call without a caller signal its own signal, so stray listeners die with the call', () => {
    const a = toContext(undefined).signal;
    const b = toContext(undefined).signal;
    a.addEventListener('abort', () => {});
    expect(a).not.toBe(b);
    expect(getEventListeners(b, 'abort')).toHaveLength(0);
  });

  it('returns a context passed as options unchanged', () => {
    const ctx = toContext({ key: 'k' });
    expect(toContext(ctx)).toBe(ctx);
    expect(ctx.key).toBe('k');
  });

  it('links a child to the caller only once its signal is read, and unlinks on dispose', () => {
    const ac = new AbortController();
    const child = new ChildContext(toContext({ signal: ac.signal }));
    expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0);
    void child.signal;
    expect(getEventListeners(ac.signal, 'abort')).toHaveLength(1);
    child.dispose();
    expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0);
  });

  it('unlinks a child from the caller as soon as the child is aborted', () => {
    const ac = new AbortController();
    const child = new ChildContext(toContext({ signal: ac.signal }));
    void child.signal;
    child.abort('deadline');
    expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0);
  });

  it('aborts a child signal when the caller aborts', () => {
    const ac = new AbortController();
    const child = new ChildContext(toContext({ signal: ac.signal }));
    const s = child.signal;
    ac.abort('why');
    expect(s.aborted).toBe(true);
    expect(s.reason).toBe('why');
  });

  it('creates an already aborted signal when read after an abort', () => {
    const child = new ChildContext(toContext(undefined));
    child.abort('late');
    expect(child.signal.aborted).toBe(true);
    expect(child.signal.reason).toBe('late');
  });

  it('propagates an abort through grandchildren without creating parent signals', () => {
    const parent = new ChildContext(toContext(undefined));
    const grandchild = new ChildContext(parent);
    const s = grandchild.signal;
    parent.abort('down');
    expect(s.aborted).toBe(true);
  });

  it('sleeps on the clock and leaves no listener once woken', async () => {
    const clock = new FakeClock();
    const ac = new AbortController();
    const p = sleep(clock, 50, toContext({ signal: ac.signal }));
    clock.advance(50);
    await p;
    expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0);
  });

  it('stops sleeping on abort, clearing its timer and listener', async () => {
    const clock = new FakeClock();
    const ac = new AbortController();
    const p = sleep(clock, 50, toContext({ signal: ac.signal }));
    ac.abort(new Error('stop'));
    await expect(p).rejects.toThrow('stop');
    expect(clock.pending).toBe(0);
    expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0);
  });

  it('clamps a sleep longer than a Node timer can hold instead of firing at once', async () => {
    const clock = new FakeClock();
    let resolved = false;
    const p = sleep(clock, Number.POSITIVE_INFINITY, toContext(undefined)).then(() => (resolved = true));
    clock.advance(1_000);
    await Promise.resolve();
    expect(resolved).toBe(false);
    clock.advance(2 ** 31);
    await p;
    expect(resolved).toBe(true);
  });
});
