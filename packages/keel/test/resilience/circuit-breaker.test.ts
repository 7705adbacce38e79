import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { describe, expect, it } from 'vitest';
import type { BreakerCreatedMessage, BreakerStateMessage } from '../../src/channels.ts';
import { CHANNELS } from '../../src/channels.ts';
import { ConsecutiveBreaker } from '../../src/resilience/breakers/consecutive.ts';
import { TimeWindowBreaker } from '../../src/resilience/breakers/time-window.ts';
import { CircuitBreaker } from '../../src/resilience/circuit-breaker.ts';
import { type BrokenCircuitError, isBrokenCircuitError } from '../../src/resilience/errors.ts';
import { MemoryStateStore } from '../../src/resilience/state-store.ts';
import { FakeClock } from '../../src/testing/index.ts';

const fail = async () => {
  throw Object.assign(new Error('down'), { status: 503 });
};
const ok = async () => 'ok';

async function trip(b: CircuitBreaker, n: number) {
  for (let i = 0; i < n; i++) await b.execute(fail).catch(() => {});
}

describe('CircuitBreaker', () => {
  it('opens after 5 consecutive failures by default', async () => {
    const b = new CircuitBreaker({ clock: new FakeClock() });
    await trip(b, 4);
    expect(b.state).toBe('closed');
    await trip(b, 1);
    expect(b.state).toBe('open');
  });

  it('rejects calls with BrokenCircuitError while open without running them', async () => {
    const clock = new FakeClock();
    const b = new CircuitBreaker({ clock, strategy: new ConsecutiveBreaker(1), halfOpenAfterMs: 1_000 });
    await trip(b, 1);
    let ran = false;
    const err = (await b
      .execute(async () => {
        ran = true;
      })
      .catch((e: unknown) => e)) as BrokenCircuitError;
    expect(ran).toBe(false);
    expect(isBrokenCircuitError(err)).toBe(true);
    expect(err.state).toBe('open');
    expect(err.retryAfterMs).toBe(1_000);
  });

  it('admits a probe after halfOpenAfterMs and closes when it succeeds', async () => {
    const clock = new FakeClock();
    const b = new CircuitBreaker({ clock, strategy: new ConsecutiveBreaker(1), halfOpenAfterMs: 1_000 });
    await trip(b, 1);
    clock.advance(1_000);
    expect(b.state).toBe('half-open');
    await expect(b.execute(ok)).resolves.toBe('ok');
    expect(b.state).toBe('closed');
  });

  it('reopens when the half-open probe fails', async () => {
    const clock = new FakeClock();
    const b = new CircuitBreaker({ clock, strategy: new ConsecutiveBreaker(1), halfOpenAfterMs: 1_000 });
    await trip(b, 1);
    clock.advance(1_000);
    await trip(b, 1);
    expect(b.state).toBe('open');
  });

  it('admits exactly halfOpenProbes probes and rejects the rest', async () => {
    const clock = new FakeClock();
    const b = new CircuitBreaker({ clock, strategy: new ConsecutiveBreaker(1), halfOpenAfterMs: 10, halfOpenProbes: 2 });
    await trip(b, 1);
    clock.advance(10);
    const gates: (() => void)[] = [];
    const slow = () => new Promise<void>((r) => gates.push(r));
    const p1 = b.execute(slow);
    const p2 = b.execute(slow);
    await expect(b.execute(ok)).rejects.toMatchObject({ state: 'half-open' });
    for (const g of gates) g();
    await Promise.all([p1, p2]);
    expect(b.state).toBe('closed');
  });

  it('gives the probe slot of a probe that never settles to a new probe after another open period', async () => {
    const clock = new FakeClock();
    const b = new CircuitBreaker({ clock, strategy: new ConsecutiveBreaker(1), halfOpenAfterMs: 1_000 });
    await trip(b, 1);
    clock.advance(1_000);
    void b.execute(() => new Promise(() => {}));
    await expect(b.execute(ok)).rejects.toMatchObject({ state: 'half-open' });
    clock.advance(1_000);
    await expect(b.execute(ok)).resolves.toBe('ok');
    expect(b.state).toBe('closed');
  });

  it('admits only halfOpenProbes probes at once when halfOpenAfterMs is 0', async () => {
    const clock = new FakeClock();
    const b = new CircuitBreaker({ clock, strategy: new ConsecutiveBreaker(1), halfOpenAfterMs: 0, halfOpenProbes: 1 });
    await trip(b, 1);
    let probes = 0;
    const hang = () => {
      probes++;
      return new Promise<never>(() => {});
    };
    for (let i = 0; i < 5; i++) b.execute(hang).catch(() => {});
    await Promise.resolve();
    expect(probes).toBe(1);
  });

  it('does not free a probe slot for a probe whose slot was already given away', async () => {
    const clock = new FakeClock();
    const b = new CircuitBreaker({ clock, strategy: new ConsecutiveBreaker(1), halfOpenAfterMs: 1_000 });
    await trip(b, 1);
    clock.advance(1_000);
    let rejectStuck!: (e: unknown) => void;
    const stuck = b.execute(() => new Promise((_, reject) => (rejectStuck = reject))).catch(() => {});
    clock.advance(1_000); // the stuck probe's slot goes to the next probe
    void b.execute(() => new Promise(() => {}));
    rejectStuck(Object.assign(new Error('not found'), { status: 404 })); // not a failure
    await stuck;
    await expect(b.execute(ok)).rejects.toMatchObject({ state: 'half-open' });
  });

  it('does not count a probe success from an earlier half-open period toward closing', async () => {
    const clock = new FakeClock();
    const b = new CircuitBreaker({ clock, strategy: new ConsecutiveBreaker(1), halfOpenAfterMs: 1_000, halfOpenProbes: 2 });
    await trip(b, 1);
    clock.advance(1_000);
    let finishOld!: () => void;
    const old = b.execute(() => new Promise<void>((r) => (finishOld = r)));
    await b.execute(fail).catch(() => {}); // the other probe fails: open again
    clock.advance(1_000);
    let finishNew!: () => void;
    const fresh = b.execute(() => new Promise<void>((r) => (finishNew = r)));
    finishOld();
    await old;
    finishNew();
    await fresh;
    expect(b.state).toBe('half-open'); // one of the two probes this period has succeeded
  });

  it('grows the open duration on repeated trips up to maxHalfOpenAfterMs', async () => {
    const clock = new FakeClock();
    const b = new CircuitBreaker({ clock, strategy: new ConsecutiveBreaker(1), halfOpenAfterMs: 100, maxHalfOpenAfterMs: 300 });
    await trip(b, 1);
    clock.advance(100);
    await trip(b, 1); // probe fails: second trip, 200 ms
    clock.advance(199);
    expect(b.state).toBe('open');
    clock.advance(1);
    await trip(b, 1); // third trip: 400 capped to 300
    clock.advance(299);
    expect(b.state).toBe('open');
    clock.advance(1);
    expect(b.state).toBe('half-open');
  });

  it('counts a slow success as a failure', async () => {
    const clock = new FakeClock();
    const b = new CircuitBreaker({ clock, strategy: new ConsecutiveBreaker(1), slowCallMs: 50 });
    const p = b.execute(() => new Promise((r) => clock.setTimeout(() => r('late'), 60)));
    await clock.advanceAsync(60);
    await expect(p).resolves.toBe('late');
    expect(b.state).toBe('open');
  });

  it('ignores low-severity errors such as 404 by default', async () => {
    const b = new CircuitBreaker({ clock: new FakeClock(), strategy: new ConsecutiveBreaker(1) });
    await b
      .execute(async () => {
        throw Object.assign(new Error('missing'), { status: 404 });
      })
      .catch(() => {});
    expect(b.state).toBe('closed');
  });

  it('stays isolated until reset', async () => {
    const b = new CircuitBreaker({ clock: new FakeClock() });
    b.isolate();
    await expect(b.execute(ok)).rejects.toMatchObject({ code: 'KEEL_BROKEN_CIRCUIT', state: 'isolated' });
    b.reset();
    await expect(b.execute(ok)).resolves.toBe('ok');
  });

  it('publishes every transition on the breaker-state channel and calls onStateChange', async () => {
    const clock = new FakeClock();
    const seen: string[] = [];
    const messages: BreakerStateMessage[] = [];
    const listener = (m: unknown) => messages.push(m as BreakerStateMessage);
    subscribe(CHANNELS.resilience.breakerState, listener);
    try {
      const b = new CircuitBreaker({
        name: 'chan',
        clock,
        strategy: new ConsecutiveBreaker(1),
        halfOpenAfterMs: 5,
        onStateChange: (from, to) => seen.push(`${from}>${to}`),
      });
      await trip(b, 1);
      clock.advance(5);
      await b.execute(ok);
    } finally {
      unsubscribe(CHANNELS.resilience.breakerState, listener);
    }
    expect(seen).toEqual(['closed>open', 'open>half-open', 'half-open>closed']);
    expect(messages.filter((m) => m.name === 'chan').map((m) => m.to)).toEqual(['open', 'half-open', 'closed']);
  });

  it('publishes its initial state once on the breaker-created channel, not as a transition', () => {
    const created: BreakerCreatedMessage[] = [];
    const transitions: unknown[] = [];
    const onCreated = (m: unknown) => created.push(m as BreakerCreatedMessage);
    const onState = (m: unknown) => transitions.push(m);
    subscribe(CHANNELS.resilience.breakerCreated, onCreated);
    subscribe(CHANNELS.resilience.breakerState, onState);
    try {
      new CircuitBreaker({ name: 'born', clock: new FakeClock() });
    } finally {
      unsubscribe(CHANNELS.resilience.breakerCreated, onCreated);
      unsubscribe(CHANNELS.resilience.breakerState, onState);
    }
    expect(created.filter((m) => m.name === 'born')).toEqual([{ name: 'born', state: 'closed' }]);
    expect(transitions).toEqual([]);
  });

  it('keeps the call outcome and the transition when onStateChange throws', async () => {
    const store = new MemoryStateStore();
    const b = new CircuitBreaker({
      clock: new FakeClock(),
      store,
      strategy: new ConsecutiveBreaker(1),
      onStateChange: () => {
        throw new Error('listener bug');
      },
    });
    await expect(b.execute(fail)).rejects.toThrow('down');
    expect(b.state).toBe('open');
    expect((await store.load('breaker'))?.state).toBe('open');
  });

  it('restores a snapshot taken with toJSON, open deadline included', async () => {
    const clock = new FakeClock();
    const a = new CircuitBreaker({ clock, strategy: new ConsecutiveBreaker(1), halfOpenAfterMs: 1_000 });
    await trip(a, 1);
    const saved = JSON.parse(JSON.stringify(a));
    const b = new CircuitBreaker({ clock, strategy: new ConsecutiveBreaker(1), halfOpenAfterMs: 1_000 });
    b.restore(saved);
    expect(b.state).toBe('open');
    clock.advance(1_000);
    expect(b.state).toBe('half-open');
  });

  it('restores strategy counters so a restarted breaker keeps its failure count', async () => {
    const clock = new FakeClock();
    const a = new CircuitBreaker({ clock, strategy: new ConsecutiveBreaker(3) });
    await trip(a, 2);
    const b = new CircuitBreaker({ clock, strategy: new ConsecutiveBreaker(3) });
    b.restore(a.toJSON());
    await trip(b, 1);
    expect(b.state).toBe('open');
  });

  it('saves transitions to its store and loads them into a new instance', async () => {
    const clock = new FakeClock();
    const store = new MemoryStateStore();
    const a = new CircuitBreaker({ name: 'api', clock, store, strategy: new ConsecutiveBreaker(1) });
    await trip(a, 1);
    const b = new CircuitBreaker({ name: 'api', clock, store, strategy: new ConsecutiveBreaker(1) });
    expect(await b.load()).toBe(true);
    expect(b.state).toBe('open');
  });

  it('survives a store whose save throws', async () => {
    const store = {
      load: () => undefined,
      save: () => {
        throw new Error('disk full');
      },
    };
    const b = new CircuitBreaker({ clock: new FakeClock(), store, strategy: new ConsecutiveBreaker(1) });
    await expect(b.execute(fail)).rejects.toThrow('down');
    expect(b.state).toBe('open');
  });

  it('forgets failures that fall out of a time window', async () => {
    const clock = new FakeClock();
    const b = new CircuitBreaker({ clock, strategy: new TimeWindowBreaker({ windowMs: 1_000, minimumCalls: 2, failureRateThreshold: 1 }) });
    await trip(b, 1);
    clock.advance(1_500);
    await trip(b, 1);
    expect(b.state).toBe('closed');
  });

  it('starts no timers', async () => {
    const clock = new FakeClock();
    const b = new CircuitBreaker({ clock, strategy: new ConsecutiveBreaker(1) });
    await trip(b, 3);
    expect(clock.pending).toBe(0);
  });

  it('rejects bad options at construction, naming them', () => {
    expect(() => new CircuitBreaker({ strategy: {} as never })).toThrow(/"strategy"/);
    expect(() => new CircuitBreaker({ halfOpenAfterMs: -1 })).toThrow(/"halfOpenAfterMs"/);
    expect(() => new CircuitBreaker({ halfOpenAfterMs: 100, maxHalfOpenAfterMs: 50 })).toThrow(/"maxHalfOpenAfterMs"/);
    expect(() => new CircuitBreaker({ halfOpenProbes: 0 })).toThrow(/"halfOpenProbes"/);
    expect(() => new CircuitBreaker({ store: {} as never })).toThrow(/"store"/);
  });

  it('rejects a malformed snapshot', () => {
    const b = new CircuitBreaker();
    expect(() => b.restore({ state: 'weird' } as never)).toThrow(TypeError);
  });
});
