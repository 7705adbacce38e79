import { FakeClock } from 'keel/testing';
import { describe, expect, it } from 'vitest';
import { BYE, countMessages, ENTRIES_PER_MESSAGE, HELLO, RemotePresence } from '../../src/live/presence.ts';

function setup(options: { ttlMs?: number; maxEntries?: number } = {}) {
  const clock = new FakeClock();
  const remote = new RemotePresence({ ttlMs: options.ttlMs ?? 15_000, maxEntries: options.maxEntries ?? 100, clock });
  return { clock, remote };
}

describe('RemotePresence', () => {
  it('sums the counts each instance announced for a topic', () => {
    const { remote } = setup();
    expect(remote.apply('a', 'c 7:2,8:1')).toEqual({ kind: 'changed', topics: [7, 8] });
    expect(remote.apply('b', 'c 7:3')).toEqual({ kind: 'changed', topics: [7] });
    expect([remote.count(7), remote.count(8), remote.count(9)]).toEqual([5, 1, 0]);
  });

  it('replaces an instance’s count, reports no change for the same count, and removes it at 0', () => {
    const { remote } = setup();
    remote.apply('a', 'c 7:2');
    expect(remote.apply('a', 'c 7:2')).toEqual({ kind: 'changed', topics: [] });
    expect(remote.apply('a', 'c 7:4')).toEqual({ kind: 'changed', topics: [7] });
    expect(remote.count(7)).toBe(4);
    expect(remote.apply('a', 'c 7:0')).toEqual({ kind: 'changed', topics: [7] });
    expect(remote.count(7)).toBe(0);
    expect(remote.stats().remotePresence).toBe(0);
  });

  it('stops counting an announcement ttlMs after it was last made, and sweep() removes it', () => {
    const { clock, remote } = setup({ ttlMs: 15_000 });
    remote.apply('a', 'c 7:2');
    clock.advance(10_000);
    remote.apply('b', 'c 7:1');
    clock.advance(5_000);
    expect(remote.count(7)).toBe(3);
    clock.advance(1);
    expect(remote.count(7)).toBe(1);
    expect(remote.sweep()).toEqual([7]);
    expect(remote.stats().remotePresence).toBe(1);
    clock.advance(10_000);
    expect(remote.sweep()).toEqual([7]);
    expect(remote.stats().remotePresence).toBe(0);
  });

  it('keeps a count that is announced again before it expires', () => {
    const { clock, remote } = setup({ ttlMs: 15_000 });
    remote.apply('a', 'c 7:2');
    clock.advance(14_000);
    remote.apply('a', 'c 7:2');
    clock.advance(14_000);
    expect(remote.sweep()).toEqual([]);
    expect(remote.count(7)).toBe(2);
  });

  it('forgets every count of an instance that says bye', () => {
    const { remote } = setup();
    remote.apply('a', 'c 7:2,8:1');
    remote.apply('b', 'c 7:1');
    expect(remote.apply('a', BYE)).toEqual({ kind: 'changed', topics: [7, 8] });
    expect([remote.count(7), remote.count(8)]).toEqual([1, 0]);
  });

  it('answers hello with a request to announce', () => {
    expect(setup().remote.apply('a', HELLO)).toEqual({ kind: 'hello' });
  });

  it('holds at most maxEntries counts and counts the ones it dropped', () => {
    const { remote } = setup({ maxEntries: 2 });
    expect(remote.apply('a', 'c 1:1,2:1,3:1')).toEqual({ kind: 'changed', topics: [1, 2] });
    // An update to a held count is not a new entry.
    expect(remote.apply('a', 'c 1:5')).toEqual({ kind: 'changed', topics: [1] });
    expect(remote.stats()).toEqual({ remotePresence: 2, presenceDropped: 1, presenceBad: 0 });
    expect(remote.count(3)).toBe(0);
  });

  it.each([
    ['no prefix', '7:2'],
    ['no colon', 'c 7'],
    ['a zero topic id', 'c 0:1'],
    ['a negative count', 'c 7:-1'],
    ['a fractional count', 'c 7:1.5'],
    ['a topic id past 2^53', 'c 9999999999999999:1'],
    ['an empty list', 'c '],
    ['a good pair and a bad one', 'c 7:2,x:1'],
    ['more pairs than one message holds', `c ${Array.from({ length: ENTRIES_PER_MESSAGE + 1 }, (_, i) => `${i + 1}:1`).join(',')}`],
  ])('ignores a whole message with %s, and counts it', (_what, payload) => {
    const { remote } = setup();
    expect(remote.apply('a', payload)).toEqual({ kind: 'bad' });
    expect(remote.stats()).toMatchObject({ remotePresence: 0, presenceBad: 1 });
  });
});

describe('countMessages', () => {
  it('puts at most ENTRIES_PER_MESSAGE topics in a message, and nothing for no topics', () => {
    const counts = Array.from({ length: ENTRIES_PER_MESSAGE * 2 + 1 }, (_, i) => [i + 1, 1] as const);
    const messages = countMessages(counts);
    expect(messages.map((m) => m.split(',').length)).toEqual([ENTRIES_PER_MESSAGE, ENTRIES_PER_MESSAGE, 1]);
    expect(messages[2]).toBe(`c ${ENTRIES_PER_MESSAGE * 2 + 1}:1`);
    expect(countMessages([])).toEqual([]);
  });

  it('writes what RemotePresence reads back', () => {
    const { remote } = setup();
    for (const m of countMessages([
      [3, 4],
      [12, 1],
    ]))
      remote.apply('a', m);
    expect([remote.count(3), remote.count(12)]).toEqual([4, 1]);
  });
});
