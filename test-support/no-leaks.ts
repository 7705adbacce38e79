/**
 * Fails any test that leaves a timer, socket, server or child process behind.
 *
 * An async hook tracks live handles by type (refed or unref'd: an unref'd interval that
 * outlives its owner is still a leak). A handle created after a test's first hook started
 * and still alive once its last hook ended fails the test, naming the handle types. Closing
 * is asynchronous for sockets, so the check waits briefly for handles to settle first.
 *
 * A timer that re-arms itself (its callback sets a new timer with the same callback, as keel's
 * Scope ticks do) keeps the owner of its first timer, both ways. A `beforeAll` app's tick is not
 * the test's when the test outlasts its period (seen in CI: a 12 s promtool run against a 10 s
 * tick). And a tick the test started and left running is still the test's while the check
 * waits for handles to settle, where each re-arm would otherwise slip past it. Only the same
 * callback counts, so test code that merely runs inside some older timer's callback (the
 * runner's own) is still checked.
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
const live = new Map<number, { type: string; seq: number; stack?: string; callback?: unknown }>();
/** Timers created outside any test (or untracked), and their re-arms: asyncId → callback. */
const inherited = new Map<number, unknown>();
let seq = 0;
let recording = false;
const withStacks = process.env.KEEL_LEAK_STACKS === '1';

createHook({
  init(asyncId, type, triggerAsyncId, resource) {
    let callback: unknown;
    if (type === 'Timeout') {
      callback = (resource as { _onTimeout?: unknown })._onTimeout;
      const ownRearm = callback !== undefined && live.get(triggerAsyncId)?.callback === callback;
      if (!ownRearm && (!recording || trackingPaused() || (callback !== undefined && inherited.get(triggerAsyncId) === callback))) {
        inherited.set(asyncId, callback);
        return;
      }
    } else if (!recording || !TRACKED.has(type) || trackingPaused()) return;
    // Node's HTTP server caches its Date header for up to 1 s behind an unref'd timer it owns
    // (node:internal/http resetCache); it is process-wide, not the test's. Waiting for it cost
    // every HTTP test ~1 s.
    if (type === 'Timeout' && (resource as { _onTimeout?: { name?: string } })._onTimeout?.name === 'resetCache') return;
    const entry: { type: string; seq: number; stack?: string; callback?: unknown } = { type, seq: ++seq, callback };
    if (withStacks) entry.stack = new Error().stack?.split('\n').slice(3, 12).join('\n');
    live.set(asyncId, entry);
  },
  destroy(asyncId) {
    live.delete(asyncId);
    inherited.delete(asyncId);
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
