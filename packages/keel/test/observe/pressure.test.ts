import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { CHANNELS } from '../../src/channels.ts';
import { LoadShedder, type PressureSample } from '../../src/observe/index.ts';
import { FakeClock } from '../../src/testing/index.ts';

const calm: PressureSample = { delayMs: 5, utilization: 0.2, heapUsedRatio: 0.3 };

function setup(extra: ConstructorParameters<typeof LoadShedder>[0] = {}) {
  const clock = new FakeClock();
  let current: PressureSample = calm;
  const shedder = new LoadShedder({
    clock,
    sample: () => current,
    intervalMs: 100,
    maxEventLoopDelayMs: 100,
    coolDownMs: 1_000,
    recoverRatio: 0.5,
    ...extra,
  });
  return {
    clock,
    shedder,
    set: (s: Partial<PressureSample>) => {
      current = { ...calm, ...s };
    },
  };
}

describe('LoadShedder', () => {
  it('sheds nothing while calm', async () => {
    const { clock, shedder } = setup();
    clock.advance(1_000);
    expect(shedder.shouldShed('/api')).toBe(false);
    expect(shedder.isUnderPressure()).toBe(false);
    await shedder.close();
  });

  it('sheds nothing for one interval over (a single stall) and starts at the second in a row', async () => {
    const { clock, shedder, set } = setup();
    set({ delayMs: 150 });
    clock.advance(100);
    expect(shedder.isUnderPressure()).toBe(false);
    expect(shedder.shouldShed('/api')).toBe(false);
    clock.advance(100);
    expect(shedder.isUnderPressure()).toBe(true);
    expect(shedder.reason).toBe('event-loop-delay');
    expect(shedder.shouldShed('/api')).toBe(true);
    await shedder.close();
  });

  it('starts the count again after an interval back under the threshold', async () => {
    const { clock, shedder, set } = setup({ sustainIntervals: 3 });
    set({ delayMs: 150 });
    clock.advance(200);
    set({ delayMs: 10 });
    clock.advance(100);
    set({ delayMs: 150 });
    clock.advance(200);
    expect(shedder.isUnderPressure()).toBe(false);
    clock.advance(100);
    expect(shedder.isUnderPressure()).toBe(true);
    await shedder.close();
  });

  it('keeps shedding when onChange throws', async () => {
    const { clock, shedder, set } = setup({
      onChange: () => {
        throw new Error('the logger is broken');
      },
    });
    set({ delayMs: 150 });
    expect(() => clock.advance(200)).not.toThrow();
    expect(shedder.shouldShed('/api')).toBe(true);
    await shedder.close();
  });

  it('with sustainIntervals 1, starts shedding at the first interval over', async () => {
    const { clock, shedder, set } = setup({ sustainIntervals: 1 });
    set({ delayMs: 150 });
    clock.advance(100);
    expect(shedder.shouldShed('/api')).toBe(true);
    await shedder.close();
  });

  it('publishes the start and the end of pressure on keel:http:pressure and to onChange, with the reading and the count shed', async () => {
    const told: unknown[] = [];
    const { clock, shedder, set } = setup({ name: 'api', onChange: (m) => told.push(m) });
    const seen: unknown[] = [];
    const onPressure = (m: unknown) => seen.push(m);
    subscribe(CHANNELS.http.pressure, onPressure);
    try {
      set({ delayMs: 150 });
      clock.advance(200);
      shedder.shouldShed('/a');
      shedder.shouldShed('/b');
      set({ delayMs: 10 });
      clock.advance(1_000);
    } finally {
      unsubscribe(CHANNELS.http.pressure, onPressure);
    }
    expect(seen).toEqual([
      { name: 'api', underPressure: true, reason: 'event-loop-delay', sample: { ...calm, delayMs: 150 }, shed: 0 },
      { name: 'api', underPressure: false, reason: 'event-loop-delay', sample: { ...calm, delayMs: 10 }, shed: 2 },
    ]);
    expect(told).toEqual(seen);
    await shedder.close();
  });

  it('publishes its creation on keel:http:shedder-created', async () => {
    const seen: unknown[] = [];
    const onCreated = (m: unknown) => seen.push(m);
    subscribe(CHANNELS.http.shedderCreated, onCreated);
    let shedder: LoadShedder | undefined;
    try {
      shedder = setup({ name: 'api' }).shedder;
    } finally {
      unsubscribe(CHANNELS.http.shedderCreated, onCreated);
    }
    expect(seen).toEqual([{ name: 'api' }]);
    await shedder?.close();
  });

  it('reset() ends pressure at once, says so, and ignores the next two intervals of a start-up stall', async () => {
    const told: Array<{ underPressure: boolean }> = [];
    const { clock, shedder, set } = setup({ onChange: (m) => told.push(m) });
    set({ delayMs: 500 });
    clock.advance(200);
    expect(shedder.isUnderPressure()).toBe(true);
    shedder.reset();
    expect(shedder.shouldShed('/api')).toBe(false);
    expect(told.map((m) => m.underPressure)).toEqual([true, false]);
    clock.advance(200); // the stall's own late readings
    expect(shedder.isUnderPressure()).toBe(false);
    clock.advance(200); // a stall that lasts is pressure again
    expect(shedder.isUnderPressure()).toBe(true);
    await shedder.close();
  });

  it('keeps shedding inside the hysteresis band', async () => {
    const { clock, shedder, set } = setup();
    set({ delayMs: 150 });
    clock.advance(200);
    set({ delayMs: 80 }); // under 100 but over 100 × 0.5
    clock.advance(5_000);
    expect(shedder.isUnderPressure()).toBe(true);
    await shedder.close();
  });

  it('stops only after the cool-down once every figure is back in the band', async () => {
    const { clock, shedder, set } = setup();
    set({ delayMs: 150 });
    clock.advance(200);
    set({ delayMs: 10 });
    clock.advance(900);
    expect(shedder.isUnderPressure()).toBe(true);
    clock.advance(100);
    expect(shedder.isUnderPressure()).toBe(false);
    expect(shedder.shouldShed('/api')).toBe(false);
    await shedder.close();
  });

  it('ends pressure once the figure that started it recovers, though another stays inside its own band', async () => {
    // The heap sits at 0.85: under its 0.95 threshold, over 0.95 × 0.5, for good.
    const { clock, shedder, set } = setup();
    set({ heapUsedRatio: 0.85, delayMs: 150 });
    clock.advance(200);
    expect(shedder.reason).toBe('event-loop-delay');
    set({ heapUsedRatio: 0.85, delayMs: 10 });
    clock.advance(1_000);
    expect(shedder.isUnderPressure()).toBe(false);
    expect(shedder.shouldShed('/api')).toBe(false);
    await shedder.close();
  });

  it('keeps pressure while another figure is over its own threshold', async () => {
    const { clock, shedder, set } = setup({ maxHeapUsedRatio: 0.8 });
    set({ delayMs: 150 });
    clock.advance(200);
    set({ delayMs: 10, heapUsedRatio: 0.9 });
    clock.advance(5_000);
    expect(shedder.reason).toBe('event-loop-delay');
    await shedder.close();
  });

  it('restarts the cool-down when a figure goes over again', async () => {
    const { clock, shedder, set } = setup();
    set({ delayMs: 150 });
    clock.advance(200);
    set({ delayMs: 10 });
    clock.advance(800);
    set({ delayMs: 150 });
    clock.advance(100);
    set({ delayMs: 10 });
    clock.advance(900);
    expect(shedder.isUnderPressure()).toBe(true);
    clock.advance(100);
    expect(shedder.isUnderPressure()).toBe(false);
    await shedder.close();
  });

  it('sheds on event-loop utilisation', async () => {
    const { clock, shedder, set } = setup({ maxEventLoopUtilization: 0.9 });
    set({ utilization: 0.95 });
    clock.advance(200);
    expect(shedder.reason).toBe('event-loop-utilization');
    await shedder.close();
  });

  it('sheds on heap use', async () => {
    const { clock, shedder, set } = setup({ maxHeapUsedRatio: 0.8 });
    set({ heapUsedRatio: 0.85 });
    clock.advance(200);
    expect(shedder.reason).toBe('heap');
    await shedder.close();
  });

  it('sheds at once, per request, when in-flight reaches its cap', async () => {
    let inFlight = 9;
    const { shedder } = setup({ maxInFlight: 10, inFlight: () => inFlight });
    expect(shedder.shouldShed('/api')).toBe(false);
    inFlight = 10;
    expect(shedder.shouldShed('/api')).toBe(true);
    expect(shedder.reason).toBe('in-flight');
    inFlight = 3;
    expect(shedder.shouldShed('/api')).toBe(false);
    await shedder.close();
  });

  it('stops shedding for in-flight as soon as in-flight is under the cap, with no latch or cool-down', async () => {
    let inFlight = 0;
    const { clock, shedder } = setup({ maxInFlight: 100, inFlight: () => inFlight });
    inFlight = 101;
    clock.advance(200); // two evaluations while over the cap
    expect(shedder.shouldShed('/api')).toBe(true);
    inFlight = 1;
    expect(shedder.shouldShed('/api')).toBe(false);
    expect(shedder.reason).toBeUndefined();
    expect(shedder.isUnderPressure()).toBe(false);
    await shedder.close();
  });

  it('spares exempt paths, exact and by prefix, with or without a query', async () => {
    const { clock, shedder, set } = setup({ exempt: ['/health/*', '/metrics'] });
    set({ delayMs: 500 });
    clock.advance(200);
    expect(shedder.shouldShed('/health')).toBe(false);
    expect(shedder.shouldShed('/health/ready?x=1')).toBe(false);
    expect(shedder.shouldShed('/metrics')).toBe(false);
    expect(shedder.shouldShed('/metrics/extra')).toBe(true);
    expect(shedder.shouldShed('/healthz')).toBe(true);
    await shedder.close();
  });

  it('counts shed requests and publishes each on keel:http:shed', async () => {
    const { clock, shedder, set } = setup({ name: 'api' });
    const seen: unknown[] = [];
    const onShed = (m: unknown) => seen.push(m);
    subscribe(CHANNELS.http.shed, onShed);
    try {
      set({ delayMs: 500 });
      clock.advance(200);
      shedder.shouldShed('/a');
      shedder.shouldShed('/b');
    } finally {
      unsubscribe(CHANNELS.http.shed, onShed);
    }
    expect(shedder.shedCount).toBe(2);
    expect(seen).toEqual([
      { name: 'api', reason: 'event-loop-delay' },
      { name: 'api', reason: 'event-loop-delay' },
    ]);
    await shedder.close();
  });

  it('leaves no timer behind after close', async () => {
    const { clock, shedder } = setup();
    expect(clock.pending).toBe(1);
    await shedder.close();
    expect(clock.pending).toBe(0);
  });

  it('names the bad option', () => {
    expect(() => new LoadShedder({ intervalMs: 0 })).toThrow(/intervalMs/);
    expect(() => new LoadShedder({ maxInFlight: 5 })).toThrow(/inFlight/);
    expect(() => new LoadShedder({ exempt: ['health'] })).toThrow(/exempt/);
    expect(() => new LoadShedder({ sustainIntervals: 0 })).toThrow(/sustainIntervals/);
    expect(() => new LoadShedder({ sustainIntervals: 1.5 })).toThrow(/sustainIntervals/);
    expect(() => new LoadShedder({ onChange: 'log' as never })).toThrow(/onChange/);
  });

  it('rejects a retryAfterSeconds that is no Retry-After value (Infinity)', () => {
    expect(() => new LoadShedder({ retryAfterSeconds: Number.POSITIVE_INFINITY })).toThrow(/"retryAfterSeconds"/);
  });

  it('rejects an interval or cool-down no timer can hold (Infinity, over 2^31 - 1 ms)', () => {
    expect(() => new LoadShedder({ intervalMs: Number.POSITIVE_INFINITY })).toThrow(/"intervalMs"/);
    expect(() => new LoadShedder({ coolDownMs: 2 ** 31 })).toThrow(/"coolDownMs"/);
  });

  it('the built-in sampler reads a blocked loop as delay, in the one reading after the block', async () => {
    // Its own timer is left alone (a minute): only these two readings take samples.
    const shedder = new LoadShedder({ intervalMs: 60_000 });
    try {
      const until = performance.now() + 150;
      while (performance.now() < until) {
        // the loop is blocked
      }
      await new Promise<void>((resolve) => setTimeout(resolve, 30));
      shedder.evaluate();
      // The sampler's timer was due at most 10 ms into the block and ran after it.
      expect(shedder.lastSample?.delayMs).toBeGreaterThanOrEqual(140);
      await new Promise<void>((resolve) => setTimeout(resolve, 30));
      shedder.evaluate();
      expect(shedder.lastSample?.delayMs).toBeLessThan(140);
    } finally {
      await shedder.close();
    }
  });

  it('starts shedding when a real handler saturates the event loop, and stops after', async () => {
    const shedder = new LoadShedder({
      intervalMs: 20,
      maxEventLoopDelayMs: 60,
      maxEventLoopUtilization: Number.POSITIVE_INFINITY,
      coolDownMs: 1_000,
    });
    const server = createServer((req, res) => {
      if (shedder.shouldShed(req.url ?? '/')) {
        res.writeHead(503, { 'retry-after': String(shedder.retryAfterSeconds), connection: 'close' });
        res.end();
        return;
      }
      if (req.url === '/busy') {
        const until = performance.now() + 120;
        while (performance.now() < until) {
          // a handler that hogs the loop
        }
      }
      res.setHeader('connection', 'close');
      res.end('ok');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      // Saturate the loop the way overload does, with no calm between: four clients each send
      // the next busy request as soon as the last is answered, while a probe waits for a 503.
      let saturating = true;
      const clients = Array.from({ length: 4 }, async () => {
        while (saturating) await fetch(`${base}/busy`).then((r) => r.arrayBuffer());
      });
      let during: Response | undefined;
      for (let i = 0; i < 100 && during?.status !== 503; i++) {
        await new Promise<void>((resolve) => setTimeout(resolve, 50));
        during = await fetch(`${base}/ping`);
        await during.arrayBuffer();
      }
      saturating = false;
      await Promise.all(clients);
      expect(during?.status).toBe(503);
      expect(during?.headers.get('retry-after')).toBe('1');
      let status = 503;
      for (let i = 0; i < 100 && status === 503; i++) {
        await new Promise<void>((resolve) => setTimeout(resolve, 50));
        status = (await fetch(`${base}/ping`)).status;
      }
      expect(status).toBe(200);
      expect(shedder.shedCount).toBeGreaterThan(0);
    } finally {
      await shedder.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
