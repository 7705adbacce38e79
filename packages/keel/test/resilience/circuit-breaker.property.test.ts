/**
 * The breaker against a reference model: random sequences of successes, failures, slow
 * calls and time steps must give the same admissions, results and states in both.
 */
import fc from 'fast-check';
import { describe, it } from 'vitest';
import { ConsecutiveBreaker } from '../../src/resilience/breakers/consecutive.ts';
import { CountWindowBreaker } from '../../src/resilience/breakers/count-window.ts';
import { CircuitBreaker } from '../../src/resilience/circuit-breaker.ts';
import { FakeClock } from '../../src/testing/index.ts';

type Op = { kind: 'ok' } | { kind: 'fail' } | { kind: 'slow' } | { kind: 'wait'; ms: number };

const BASE = 100;
const MAX = 400;
const SLOW = 50;

/** A deliberately plain model: arrays and ifs, no shared code with the implementation. */
class Model {
  state: 'closed' | 'open' = 'closed';
  openUntil = 0;
  trips = 0;
  outcomes: number[] = [];
  constructor(
    readonly kind: 'consecutive' | 'window',
    readonly threshold: number,
    readonly size: number,
    readonly minimumCalls: number,
    readonly rate: number,
  ) {}

  shouldOpen(): boolean {
    if (this.kind === 'consecutive') {
      let run = 0;
      for (let i = this.outcomes.length - 1; i >= 0 && this.outcomes[i] === 1; i--) run++;
      return run >= this.threshold;
    }
    const w = this.outcomes.slice(-this.size);
    const f = w.filter((o) => o === 1).length;
    return w.length >= this.minimumCalls && f / w.length >= this.rate;
  }

  open(now: number): void {
    this.trips++;
    this.openUntil = now + Math.min(MAX, BASE * 2 ** (this.trips - 1));
    this.state = 'open';
  }

  /** Returns what the call yields, given when it starts and when it ends. */
  call(start: number, end: number, failed: boolean): 'ok' | 'error' | 'rejected' {
    if (this.state === 'open') {
      if (start < this.openUntil) return 'rejected';
      // Half-open probe.
      if (failed) this.open(end);
      else {
        this.state = 'closed';
        this.trips = 0;
        this.outcomes = [];
      }
      return failed && end - start < SLOW ? 'error' : 'ok';
    }
    this.outcomes.push(failed ? 1 : 0);
    if (failed && this.shouldOpen()) this.open(end);
    return failed && end - start < SLOW ? 'error' : 'ok';
  }

  stateAt(now: number): string {
    return this.state === 'open' && now >= this.openUntil ? 'half-open' : this.state;
  }
}

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.constant<Op>({ kind: 'ok' }),
  fc.constant<Op>({ kind: 'fail' }),
  fc.constant<Op>({ kind: 'slow' }),
  fc.integer({ min: 1, max: 300 }).map<Op>((ms) => ({ kind: 'wait', ms })),
);

async function check(
  kind: 'consecutive' | 'window',
  threshold: number,
  size: number,
  minimumCalls: number,
  rate: number,
  ops: Op[],
): Promise<boolean> {
  const clock = new FakeClock(0);
  const strategy =
    kind === 'consecutive' ? new ConsecutiveBreaker(threshold) : new CountWindowBreaker({ size, minimumCalls, failureRateThreshold: rate });
  const breaker = new CircuitBreaker({ clock, strategy, halfOpenAfterMs: BASE, maxHalfOpenAfterMs: MAX, slowCallMs: SLOW });
  const model = new Model(kind, threshold, size, minimumCalls, rate);
  for (const o of ops) {
    if (o.kind === 'wait') {
      clock.advance(o.ms);
    } else {
      const start = clock.now();
      const got = await breaker
        .execute(async () => {
          if (o.kind === 'slow') clock.set(clock.now() + SLOW);
          if (o.kind === 'fail') throw Object.assign(new Error('down'), { status: 503 });
          return 1;
        })
        .then(
          () => 'ok',
          (e: { code?: string }) => (e.code === 'KEEL_BROKEN_CIRCUIT' ? 'rejected' : 'error'),
        );
      const expected = model.call(start, clock.now(), o.kind !== 'ok');
      if (got !== expected) throw new Error(`call ${o.kind} at ${start}: breaker ${got}, model ${expected}`);
    }
    const s = breaker.state;
    const m = model.stateAt(clock.now());
    if (s !== m) throw new Error(`after ${o.kind} at ${clock.now()}: breaker ${s}, model ${m}`);
  }
  return true;
}

describe('CircuitBreaker (property)', () => {
  it('matches the reference model for consecutive-failure breakers', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 5 }), fc.array(op, { maxLength: 120 }), (threshold, ops) =>
        check('consecutive', threshold, 0, 0, 0, ops),
      ),
      { numRuns: 300 },
    );
  });

  it('matches the reference model for count-window breakers', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 10 }).chain((size) => fc.tuple(fc.constant(size), fc.integer({ min: 1, max: size }))),
        fc.constantFrom(0.25, 0.5, 1),
        fc.array(op, { maxLength: 120 }),
        ([size, minimumCalls], rate, ops) => check('window', 0, size, minimumCalls, rate, ops),
      ),
      { numRuns: 300 },
    );
  });
});
