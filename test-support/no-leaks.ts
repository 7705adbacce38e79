/**
 * Fails any test that leaves a timer, socket, server or child process behind.
 *
 * An async hook tracks live handles by type (refed or unref'd: an unref'd interval that
 * outlives its owner is still a leak). A handle created after a test's first hook started
 * and still alive once its last hook ended fails the test, naming the handle types. Closing
 * is asynchronous for sockets, so the check waits briefly for handles to settle first.
 */
import { createHook } from 'node:async_hooks';
import { afterEach, beforeEach } from 'vitest';
import { trackingPaused } from './untracked.ts';

const TRACKED = new Set([
  'Timeout',
  'Immediate',
  'TCPWRAP',
  'TCPSERVERWRAP',
  'PIPEWRAP',
  'PIPESERVERWRAP',
  'UDPWRAP',
  'PROCESSWRAP',
  'FSEVENTWRAP',
  'STATWATCHER',
  'SIGNALWRAP',
  'HTTPINCOMINGMESSAGE',
  'HTTPCLIENTREQUEST',
]);
const live = new Map<number, { type: string; seq: number; stack?: string }>();
let seq = 0;
let recording = false;
const withStacks = process.env.KEEL_LEAK_STACKS === '1';

createHook({
  init(asyncId, type, _triggerAsyncId, resource) {
    if (!recording || !TRACKED.has(type) || trackingPaused()) return;
    // Node's HTTP server caches its Date header for up to 1 s behind an unref'd timer it owns
    // (node:internal/http resetCache); it is process-wide, not the test's. Waiting for it cost
    // every HTTP test ~1 s.
    if (type === 'Timeout' && (resource as { _onTimeout?: { name?: string } })._onTimeout?.name === 'resetCache') return;
    const entry: { type: string; seq: number; stack?: string } = { type, seq: ++seq };
    if (withStacks) entry.stack = new Error().stack?.split('\n').slice(3, 12).join('\n');
    live.set(asyncId, entry);
  },
  destroy(asyncId) {
    live.delete(asyncId);
  },
}).enable();

export { untracked } from './untracked.ts';

beforeEach(() => {
  live.clear();
  recording = true;
}, 0);

// Registered first in a setup file, so it runs after every other afterEach (hooks unwind as a
// stack); timeout 0 means vitest creates no timer of its own for it.
afterEach(async () => {
  recording = false;
  const deadline = Date.now() + 2_000;
  while (live.size > 0 && Date.now() < deadline) {
    await new Promise<void>((resolve) => setImmediate(resolve));
    if (live.size > 0) await new Promise<void>((resolve) => setTimeout(resolve, 10).unref());
  }
  if (live.size === 0) return;
  const counts = new Map<string, number>();
  for (const { type } of live.values()) counts.set(type, (counts.get(type) ?? 0) + 1);
  const summary = [...counts].map(([t, n]) => `${t} x${n}`).join(', ');
  const stacks = withStacks
    ? `\n${[...live.values()].map((e) => `${e.type}:\n${e.stack}`).join('\n---\n')}`
    : ' (set KEEL_LEAK_STACKS=1 for creation stacks)';
  live.clear();
  throw new Error(`test left handles behind: ${summary}${stacks}`);
}, 0);
