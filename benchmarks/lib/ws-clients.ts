/**
 * A child process for the forum bench: opens `--count` WebSocket clients to the forum's live
 * endpoint, subscribes each to a topic, and holds them open until SIGTERM. Once every client
 * has its `subscribed` ack or has failed (refused, closed, an error reply, no ack within
 * `--timeout-ms`), it prints `{"connected":N,"subscribed":S,"requested":R,"failed":F,"errors":E}`;
 * the bench checks `subscribed` against `requested`. When told to stop it prints
 * `{"closed":N,"subscribed":S,"messages":M,"errors":E}`: the sockets still open, and of those
 * the subscribed ones.
 *
 * A client counts only after its ack: counting at `open` (before the subscribe was even read)
 * reported 1,000 clients while some were refused or never subscribed (audit 7).
 */
import { parseArgs } from 'node:util';
import WebSocket from 'ws';

const { values } = parseArgs({
  options: {
    url: { type: 'string' },
    count: { type: 'string', default: '1000' },
    topics: { type: 'string', default: '1000' },
    'timeout-ms': { type: 'string', default: '30000' },
  },
});
const url = values.url;
if (!url) throw new TypeError('--url is required');
const positive = (name: string, raw: string | undefined): number => {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new TypeError(`--${name} must be an integer >= 1 (got ${raw})`);
  return n;
};
const count = positive('count', values.count);
const topics = positive('topics', values.topics);
const timeoutMs = positive('timeout-ms', values['timeout-ms']);

interface Client {
  ws: WebSocket;
  topicId: number;
  subscribed: boolean;
  /** Set once: the client has its ack or has failed. */
  settled: boolean;
}

const clients: Client[] = [];
let messages = 0;
let errors = 0;
let opened = 0;
let failed = 0;

await new Promise<void>((resolve) => {
  let settled = 0;
  // Idempotent per client: a socket that opens and then closes (or errors, then closes) used to
  // count twice, so the line came out before every client had answered.
  const settle = (c: Client, ok: boolean): void => {
    if (c.settled) return;
    c.settled = true;
    c.subscribed = ok;
    if (!ok) failed++;
    if (++settled === count) finish();
  };
  // Bounded: a client that never gets its ack fails at the deadline instead of holding the bench.
  const deadline = setTimeout(() => {
    for (const c of clients) settle(c, false);
  }, timeoutMs);
  const finish = (): void => {
    clearTimeout(deadline);
    resolve();
  };
  for (let i = 0; i < count; i++) {
    const topicId = 1 + (i % topics);
    const c: Client = { ws: new WebSocket(url), topicId, subscribed: false, settled: false };
    clients.push(c);
    c.ws.once('open', () => {
      opened++;
      c.ws.send(JSON.stringify({ type: 'subscribe', topicId }));
    });
    c.ws.on('message', (data) => {
      messages++;
      if (c.settled) return;
      let m: { type?: unknown; topicId?: unknown } | undefined;
      try {
        m = JSON.parse(String(data));
      } catch {
        // not JSON: fails below
      }
      // Presence for the room may come before the ack (LIVE_PRESENCE_MS=0); anything else is the answer.
      if (m?.type === 'presence') return;
      settle(c, m?.type === 'subscribed' && m.topicId === topicId);
    });
    c.ws.on('error', () => {
      errors++;
      settle(c, false);
    });
    c.ws.once('close', () => settle(c, false));
  }
});
const subscribed = clients.filter((c) => c.subscribed).length;
process.stdout.write(`${JSON.stringify({ connected: opened, subscribed, requested: count, failed, errors })}\n`);

process.once('SIGTERM', () => {
  let closed = 0;
  let still = 0;
  for (const c of clients) {
    if (c.ws.readyState !== WebSocket.OPEN) continue;
    closed++;
    if (c.subscribed) still++;
  }
  for (const c of clients) c.ws.terminate();
  process.stdout.write(`${JSON.stringify({ closed, subscribed: still, messages, errors })}\n`);
  process.exit(0);
});
