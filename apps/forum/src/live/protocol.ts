/**
 * The `/api/v1/live` wire protocol: JSON text frames, one message each. Client messages are
 * checked against the schemas below (ajv, compiled once); server messages are built here so
 * every shape lives in one file.
 */
import { Ajv, type ValidateFunction } from 'ajv';

/** WebSocket close codes the server uses (RFC 6455 §7.4, plus one private-range code). */
export const CloseCode = {
  /** Server shutting down. */
  goingAway: 1001,
  /** A binary frame: the protocol is JSON text only. */
  unsupportedData: 1003,
  /** Repeated frames that are not JSON (ws itself uses it for invalid UTF-8). */
  invalidPayload: 1007,
  /** Repeated messages that fail the schema. */
  policyViolation: 1008,
  /** A frame above `maxPayload` (sent by ws itself). */
  messageTooBig: 1009,
  /** The connection limit is reached. */
  tryAgainLater: 1013,
  /** The client reads too slowly: its send buffer passed `maxBufferedBytes`. */
  slowConsumer: 4000,
} as const;

/** A correlation id the client may attach; echoed in the ack or error. */
export type MessageId = string | number;

export type ClientMessage =
  | { type: 'subscribe'; topicId: number; id?: MessageId }
  | { type: 'subscribe'; channel: 'me'; id?: MessageId }
  | { type: 'unsubscribe'; topicId: number; id?: MessageId }
  | { type: 'unsubscribe'; channel: 'me'; id?: MessageId }
  | { type: 'auth'; token: string; id?: MessageId }
  | { type: 'ping'; id?: MessageId };

/** Stable error codes of `{"type":"error"}` messages. */
export type ErrorCode =
  | 'bad_json'
  | 'bad_message'
  | 'not_found'
  | 'unauthorized'
  | 'already_authenticated'
  | 'too_many_subscriptions'
  | 'session_expired';

const id = { anyOf: [{ type: 'string', maxLength: 64 }, { type: 'integer' }] };
const topicId = { type: 'integer', minimum: 1, maximum: 2_147_483_647 };
const channel = { enum: ['me'] };
const target = (type: string) => ({
  type: 'object',
  properties: { type: { const: type }, topicId, channel, id },
  required: ['type'],
  additionalProperties: false,
  // Exactly one target: a message naming both matches both branches and fails oneOf.
  oneOf: [
    { properties: { topicId }, required: ['topicId'] },
    { properties: { channel }, required: ['channel'] },
  ],
});

const SCHEMAS: Record<ClientMessage['type'], object> = {
  subscribe: target('subscribe'),
  unsubscribe: target('unsubscribe'),
  auth: {
    type: 'object',
    properties: { type: { const: 'auth' }, token: { type: 'string', pattern: '^[A-Za-z0-9_-]{16,128}$' }, id },
    required: ['type', 'token'],
    additionalProperties: false,
  },
  ping: { type: 'object', properties: { type: { const: 'ping' }, id }, required: ['type'], additionalProperties: false },
};

/** The outcome of {@link ClientProtocol.parse}: a message, or why the frame was refused. */
export type Parsed = { ok: true; message: ClientMessage } | { ok: false; code: 'bad_json' | 'bad_message'; reason: string; id?: MessageId };

/**
 * Parses and validates client frames. One instance per hub: the validators are compiled once.
 *
 * @example
 * ```ts
 * const protocol = new ClientProtocol();
 * protocol.parse('{"type":"subscribe","topicId":1}'); // { ok: true, message: { type: 'subscribe', topicId: 1 } }
 * protocol.parse('{"type":"subscribe"}'); // { ok: false, code: 'bad_message', reason: '…' }
 * ```
 */
export class ClientProtocol {
  readonly #validators = new Map<string, ValidateFunction>();

  constructor() {
    const ajv = new Ajv({ allErrors: false, strict: true, coerceTypes: false, useDefaults: false });
    for (const [type, schema] of Object.entries(SCHEMAS)) this.#validators.set(type, ajv.compile(schema));
  }

  parse(text: string): Parsed {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      return { ok: false, code: 'bad_json', reason: 'frames must be JSON text' };
    }
    const { type, id } = (typeof value === 'object' && value !== null ? value : {}) as { type?: unknown; id?: unknown };
    // The error echoes a well-formed id even when the rest of the message is wrong.
    const echo = Number.isInteger(id) || (typeof id === 'string' && id.length <= 64) ? { id: id as MessageId } : {};
    const validate = typeof type === 'string' ? this.#validators.get(type) : undefined;
    if (!validate)
      return { ok: false, code: 'bad_message', reason: `type must be one of ${[...this.#validators.keys()].join(', ')}`, ...echo };
    if (!validate(value)) {
      const e = validate.errors?.[0];
      return { ok: false, code: 'bad_message', reason: `${type}: ${e?.instancePath || 'message'} ${e?.message ?? 'is invalid'}`, ...echo };
    }
    return { ok: true, message: value as ClientMessage };
  }
}

/** What a subscription names: a topic's room or the caller's private channel. */
export type Target = { topicId: number } | { channel: 'me' };

const withId = <T extends object>(body: T, msgId: MessageId | undefined): T & { id?: MessageId } =>
  msgId === undefined ? body : { ...body, id: msgId };

/** Server → client messages, serialized once per send site. */
export const serverMessage = {
  subscribed: (t: Target, count: number | undefined, msgId?: MessageId) =>
    JSON.stringify(withId({ type: 'subscribed', ...t, ...(count === undefined ? {} : { count }) }, msgId)),
  unsubscribed: (t: Target, msgId?: MessageId) => JSON.stringify(withId({ type: 'unsubscribed', ...t }, msgId)),
  authenticated: (user: { id: number; username: string }, msgId?: MessageId) =>
    JSON.stringify(withId({ type: 'authenticated', user: { id: user.id, username: user.username } }, msgId)),
  pong: (msgId?: MessageId) => JSON.stringify(withId({ type: 'pong' }, msgId)),
  presence: (topicId: number, count: number) => JSON.stringify({ type: 'presence', topicId, count }),
  error: (code: ErrorCode, message: string, msgId?: MessageId) => JSON.stringify(withId({ type: 'error', code, message }, msgId)),
};
