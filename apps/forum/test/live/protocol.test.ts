import { describe, expect, it } from 'vitest';
import { ClientProtocol, serverMessage } from '../../src/live/protocol.ts';

const p = new ClientProtocol();

describe('ClientProtocol.parse', () => {
  it('accepts every client message type', () => {
    for (const m of [
      { type: 'subscribe', topicId: 1 },
      { type: 'subscribe', channel: 'me', id: 'a1' },
      { type: 'unsubscribe', topicId: 2_147_483_647, id: 7 },
      { type: 'unsubscribe', channel: 'me' },
      { type: 'auth', token: 'A'.repeat(43) },
      { type: 'ping' },
    ]) {
      expect(p.parse(JSON.stringify(m))).toEqual({ ok: true, message: m });
    }
  });

  it('refuses a frame that is not JSON as bad_json', () => {
    expect(p.parse('{"type":')).toMatchObject({ ok: false, code: 'bad_json' });
  });

  it('refuses unknown types, missing or doubled targets, extra fields and out-of-range ids as bad_message', () => {
    for (const m of [
      null,
      [],
      'ping',
      { type: 'teleport' },
      { type: 'subscribe' },
      { type: 'subscribe', topicId: 1, channel: 'me' },
      { type: 'subscribe', topicId: 0 },
      { type: 'subscribe', topicId: 1.5 },
      { type: 'subscribe', topicId: '1' },
      { type: 'subscribe', channel: 'admin' },
      { type: 'ping', extra: true },
      { type: 'auth', token: 'short' },
      { type: 'ping', id: 'x'.repeat(65) },
    ]) {
      expect(p.parse(JSON.stringify(m)), JSON.stringify(m)).toMatchObject({ ok: false, code: 'bad_message' });
    }
  });

  it('echoes a well-formed id in a refusal so the client can match it', () => {
    expect(p.parse('{"type":"subscribe","topicId":-1,"id":"q9"}')).toMatchObject({ ok: false, id: 'q9' });
    expect(p.parse('{"type":"subscribe","topicId":-1,"id":{}}')).not.toHaveProperty('id');
  });
});

describe('serverMessage', () => {
  it('serializes acks, presence and errors with the client’s id when given', () => {
    expect(JSON.parse(serverMessage.subscribed({ topicId: 3 }, 2, 'x'))).toEqual({ type: 'subscribed', topicId: 3, count: 2, id: 'x' });
    expect(JSON.parse(serverMessage.subscribed({ channel: 'me' }, undefined))).toEqual({ type: 'subscribed', channel: 'me' });
    expect(JSON.parse(serverMessage.presence(3, 5))).toEqual({ type: 'presence', topicId: 3, count: 5 });
    expect(JSON.parse(serverMessage.error('not_found', 'topic 9 not found', 4))).toEqual({
      type: 'error',
      code: 'not_found',
      message: 'topic 9 not found',
      id: 4,
    });
  });
});
