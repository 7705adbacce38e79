import { FakeClock } from 'keel/testing';
import { describe, expect, it } from 'vitest';
import { ReplyDeadlines } from '../../src/live/reply-deadlines.ts';

describe('ReplyDeadlines', () => {
  it('times out each command that is not settled within ms, oldest first', () => {
    const clock = new FakeClock();
    const d = new ReplyDeadlines(clock, 1_000);
    const fired: number[] = [];
    d.add(() => fired.push(1));
    clock.advance(400);
    d.add(() => fired.push(2));
    clock.advance(599);
    expect(fired).toEqual([]);
    clock.advance(1);
    expect(fired).toEqual([1]);
    clock.advance(400);
    expect(fired).toEqual([1, 2]);
  });

  it('lets the first of reply and deadline win: settle is true before the deadline, false after', () => {
    const clock = new FakeClock();
    const d = new ReplyDeadlines(clock, 1_000);
    let timedOut = 0;
    const early = d.add(() => timedOut++);
    const late = d.add(() => timedOut++);
    expect(early()).toBe(true);
    expect(early()).toBe(false);
    clock.advance(1_000);
    expect(timedOut).toBe(1);
    expect(late()).toBe(false);
  });

  it('keeps one timer for many commands and none once all are settled', () => {
    const clock = new FakeClock();
    const d = new ReplyDeadlines(clock, 1_000);
    const settles = Array.from({ length: 100 }, () => d.add(() => {}));
    expect(clock.pending).toBe(1);
    for (const settle of settles) settle();
    clock.advance(1_000);
    expect(clock.pending).toBe(0);
  });

  it('does not delay older deadlines when a timeout handler sends a new command', () => {
    const clock = new FakeClock();
    const d = new ReplyDeadlines(clock, 1_000);
    const fired: string[] = [];
    d.add(() => {
      fired.push('a');
      d.add(() => fired.push('probe'));
    });
    clock.advance(500);
    d.add(() => fired.push('b'));
    clock.advance(500);
    expect(fired).toEqual(['a']);
    clock.advance(500);
    expect(fired).toEqual(['a', 'b']);
    clock.advance(500);
    expect(fired).toEqual(['a', 'b', 'probe']);
    expect(clock.pending).toBe(0);
  });

  it('stops its timer on close, and nothing times out after', () => {
    const clock = new FakeClock();
    const d = new ReplyDeadlines(clock, 1_000);
    let timedOut = 0;
    d.add(() => timedOut++);
    d.close();
    expect(clock.pending).toBe(0);
    clock.advance(2_000);
    expect(timedOut).toBe(0);
    expect(d.add(() => timedOut++)()).toBe(false);
  });
});
