/**
 * Fails any test that leaves a timer, socket, server, worker or child process behind, and any
 * test file whose `beforeAll`/`afterAll` hooks (or top-level code) leave one behind.
 *
 * An async hook tracks live handles by type (refed or unref'd: an unref'd interval that
 * outlives its owner is still a leak). A handle created after a test's first hook started
 * and still alive once its last hook ended fails the test, naming the handle types. A handle
 * created outside any test (at the file's top level, in `beforeAll`, between tests) belongs to
 * the file: it must be gone once the file's last `afterAll` has run. Worker threads and their
 * message ports always belong to the file (pools start them lazily). Closing is asynchronous
 * for sockets and workers, so each check waits briefly for handles to settle first.
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
import { afterAll, afterEach, beforeEach } from 'vitest';
import { trackingPaused, untracked } from './untracked.ts';

const TRACKED = new Set([
  'Timeout',
  'Immediate',
  'TCPWRAP',
  'TCPSERVERWRAP',
  'TLSWRAP',
  'PIPEWRAP',
  'PIPESERVERWRAP',
  'UDPWRAP',
  'PROCESSWRAP',
  'WORKER',
  'MESSAGEPORT',
  'FSEVENTWRAP',
  'STATWATCHER',
  'SIGNALWRAP',
  'HTTPINCOMINGMESSAGE',
  'HTTPCLIENTREQUEST',
]);
// Worker threads are checked per file only: a pool (piscina) grows lazily, so the first test to
// search starts a thread that belongs to the file's app and ends in its afterAll.
const FILE_SCOPED = new Set(['WORKER', 'MESSAGEPORT']);
type Entry = { type: string; seq: number; stack?: string; callback?: unknown };
/** Handles a test created (while `recording`). */
const live = new Map<number, Entry>();
/** Handles the file created outside its tests. */
const fileLive = new Map<number, Entry>();
let seq = 0;
let recording = false;
const withStacks = process.env.KEEL_LEAK_STACKS === '1';

function entry(type: string, callback: unknown): Entry {
  const e: Entry = { type, seq: ++seq, callback };
  if (withStacks) e.stack = new Error().stack?.split('\n').slice(3, 12).join('\n');
  return e;
}

/** Timers created while tracking was paused (`untracked`), and their re-arms: asyncId → callback. */
const exempt = new Map<number, unknown>();

createHook({
  init(asyncId, type, triggerAsyncId, resource) {
    if (!TRACKED.has(type)) return;
    let callback: unknown;
    if (type === 'Timeout') {
      callback = (resource as { _onTimeout?: { name?: string } })._onTimeout;
      if (trackingPaused() || (callback !== undefined && exempt.get(triggerAsyncId) === callback))
        return void exempt.set(asyncId, callback);
      // Node's HTTP server caches its Date header for up to 1 s behind an unref'd timer it owns
      // (node:internal/http resetCache); it is process-wide, not the test's. Waiting for it cost
      // every HTTP test ~1 s.
      if ((callback as { name?: string } | undefined)?.name === 'resetCache') return;
      if (callback !== undefined) {
        // A re-arm keeps its first timer's owner.
        if (live.get(triggerAsyncId)?.callback === callback) return void live.set(asyncId, entry(type, callback));
        if (fileLive.get(triggerAsyncId)?.callback === callback) return void fileLive.set(asyncId, entry(type, callback));
      }
    } else if (trackingPaused()) return;
    (recording && !FILE_SCOPED.has(type) ? live : fileLive).set(asyncId, entry(type, callback));
  },
  destroy(asyncId) {
    live.delete(asyncId);
    fileLive.delete(asyncId);
    exempt.delete(asyncId);
  },
}).enable();

export { untracked } from './untracked.ts';

/** Waits up to 2 s for `handles` to empty; the summary of what is left, or undefined. */
async function settle(handles: Map<number, Entry>): Promise<string | undefined> {
  const deadline = Date.now() + 2_000;
  while (handles.size > 0 && Date.now() < deadline) {
    // The check's own waits are nobody's leak.
    await new Promise<void>((resolve) => untracked(() => setImmediate(resolve)));
    if (handles.size > 0) await new Promise<void>((resolve) => untracked(() => setTimeout(resolve, 10).unref()));
  }
  if (handles.size === 0) return undefined;
  // Reported once: a reported timer's re-arms are not a new leak (of the file, or of a later test).
  for (const [asyncId, e] of handles) if (e.type === 'Timeout') exempt.set(asyncId, e.callback);
  const counts = new Map<string, number>();
  for (const { type } of handles.values()) counts.set(type, (counts.get(type) ?? 0) + 1);
  const summary = [...counts].map(([t, n]) => `${t} x${n}`).join(', ');
  const stacks = withStacks
    ? `\n${[...handles.values()].map((e) => `${e.type}:\n${e.stack}`).join('\n---\n')}`
    : ' (set KEEL_LEAK_STACKS=1 for creation stacks)';
  handles.clear();
  return `${summary}${stacks}`;
}

beforeEach(() => {
  live.clear();
  recording = true;
}, 0);

// Registered first in a setup file, so it runs after every other afterEach (hooks unwind as a
// stack); timeout 0 means vitest creates no timer of its own for it.
afterEach(async () => {
  recording = false;
  const left = await settle(live);
  if (left) throw new Error(`test left handles behind: ${left}`);
}, 0);

// Likewise the file's last afterAll: whatever its beforeAll hooks opened, they have closed.
afterAll(async () => {
  const left = await settle(fileLive);
  if (left) throw new Error(`test file left handles behind (opened at its top level or in beforeAll, not closed by afterAll): ${left}`);
}, 0);
