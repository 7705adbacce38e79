/**
 * A child process for the forum bench: opens `--count` WebSocket clients to the forum's live
 * endpoint, subscribes each to a topic, and holds them open until SIGTERM. Prints
 * `{"connected":N}` once all are up and `{"closed":N,"messages":M,"errors":E}` when told to stop.
 */
import { parseArgs } from 'node:util';
import WebSocket from 'ws';

const { values } = parseArgs({
  options: { url: { type: 'string' }, count: { type: 'string', default: '1000' }, topics: { type: 'string', default: '1000' } },
});
const url = values.url;
if (!url) throw new TypeError('--url is required');
const count = Number(values.count);
const topics = Number(values.topics);
const sockets: WebSocket[] = [];
let messages = 0;
let errors = 0;
let open = 0;

await new Promise<void>((resolve) => {
  let settled = 0;
  const done = () => {
    if (++settled === count) resolve();
  };
  for (let i = 0; i < count; i++) {
    const ws = new WebSocket(url);
    sockets.push(ws);
    ws.once('open', () => {
      open++;
      ws.send(JSON.stringify({ type: 'subscribe', topicId: 1 + (i % topics) }));
      done();
    });
    ws.on('message', () => {
      messages++;
    });
    ws.on('error', () => {
      errors++;
    });
    ws.once('close', () => {
      if (ws.readyState !== WebSocket.OPEN) done();
    });
  }
});
process.stdout.write(`${JSON.stringify({ connected: open, errors })}\n`);

process.once('SIGTERM', () => {
  let closed = 0;
  for (const ws of sockets) if (ws.readyState === WebSocket.OPEN) closed++;
  for (const ws of sockets) ws.terminate();
  process.stdout.write(`${JSON.stringify({ closed, messages, errors })}\n`);
  process.exit(0);
});
