import { describe, expect, it } from 'vitest';
import type { DeadlineEntry } from '../../src/resilience/deadline-queue.ts';
import { DeadlineQueue } from '../../src/resilience/deadline-queue.ts';
import { FakeClock } from '../../src/testing/index.ts';

function entry(log: string[], name: string): DeadlineEntry {
  return { deadline: 0, prev: undefined, next: undefined, queued: false, expire: () => log.push(name) };
}

describe('DeadlineQueue', () => {
  it('expires entries in order with a single timer', () => {
    const clock = new FakeClock();
    const q = new DeadlineQueue(clock);
    const log: string[] = [];
    q.push(entry(log, 'a'), clock.now(), 100);
    clock.advance(10);
    q.push(entry(log, 'b'), clock.now(), 100);
    expect(clock.pending).toBe(1);
    clock.advance(90);
    expect(log).toEqual(['a']);
    clock.advance(10);
    expect(log).toEqual(['a', 'b']);
    expect(clock.pending).toBe(0);
  });

  it('does not expire removed entries and clears the timer when empty', () => {
    const clock = new FakeClock();
    const q = new DeadlineQueue(clock);
    const log: string[] = [];
    const a = entry(log, 'a');
    const b = entry(log, 'b');
    q.push(a, clock.now(), 100);
    q.push(b, clock.now(), 100);
    q.remove(a);
    expect(q.size).toBe(1);
    q.remove(b);
    expect(clock.pending).toBe(0);
    clock.advance(200);
    expect(log).toEqual([]);
  });

  it('re-arms for the new head when an early head was removed', () => {
    const clock = new FakeClock();
    const q = new DeadlineQueue(clock);
    const log: string[] = [];
    const a = entry(log, 'a');
    q.push(a, clock.now(), 100);
    clock.advance(50);
    q.push(entry(log, 'b'), clock.now(), 100);
    q.remove(a);
    clock.advance(50);
    expect(log).toEqual([]);
    clock.advance(50);
    expect(log).toEqual(['b']);
  });

  it('expires on monotonic time, not wall time', () => {
    const fake = new FakeClock();
    let offset = 0;
    const clock = {
      now: () => fake.now() + offset,
      monotonic: () => fake.monotonic(),
      setTimeout: (fn: () => void, ms: number) => fake.setTimeout(fn, ms),
      clearTimeout: (h: object) => fake.clearTimeout(h),
    };
    const q = new DeadlineQueue(clock);
    const log: string[] = [];
    q.push(entry(log, 'a'), q.now(), 100);
    offset -= 3_000; // the wall clock steps back
    fake.advance(100);
    expect(log).toEqual(['a']);
  });

  it('shifts entries in FIFO order', () => {
    const clock = new FakeClock();
    const q = new DeadlineQueue(clock);
    const log: string[] = [];
    const a = entry(log, 'a');
    const b = entry(log, 'b');
    q.push(a, clock.now(), 10);
    q.push(b, clock.now(), 10);
    expect(q.shift()).toBe(a);
    expect(q.shift()).toBe(b);
    expect(q.shift()).toBeUndefined();
    expect(clock.pending).toBe(0);
  });
});
