import { describe, expect, it } from 'vitest';
import { Rooms } from '../../src/live/rooms.ts';

describe('Rooms', () => {
  it('counts a membership once however often it is joined', () => {
    const r = new Rooms<string>();
    r.joinTopic(1, 'a');
    r.joinTopic(1, 'a');
    r.joinTopic(1, 'b');
    expect([r.topicCount, r.subscriptions, r.topic(1)?.size]).toEqual([1, 2, 2]);
  });

  it('deletes a room when its last member leaves, and ignores leaving a room never joined', () => {
    const r = new Rooms<string>();
    r.joinTopic(1, 'a');
    r.joinUser(9, 'a');
    r.leaveTopic(2, 'a');
    r.leaveTopic(1, 'b');
    r.leaveTopic(1, 'a');
    r.leaveUser(9, 'a');
    expect([r.topicCount, r.userCount, r.subscriptions, r.topic(1)]).toEqual([0, 0, 0, undefined]);
  });

  it('finds members by fan-out target name', () => {
    const r = new Rooms<string>();
    r.joinTopic(5, 'a');
    r.joinUser(5, 'b');
    expect([...(r.target('t5') ?? [])]).toEqual(['a']);
    expect([...(r.target('u5') ?? [])]).toEqual(['b']);
    expect(r.target('x5')).toBeUndefined();
  });
});
