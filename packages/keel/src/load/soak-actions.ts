/**
 * The soak tester's built-in cycles: one HTTP request, or one WebSocket connect, optional
 * message and reply, and disconnect. Each takes the cycle's signal, which aborts when the
 * cycle's timeout runs out.
 */
import { Client } from 'undici';
import { optionError } from '../internal/options.ts';
import { WebSocket } from './ws.ts';

/** The HTTP cycle: a request whose status must be accepted by `expectStatus`. */
export interface HttpSoakAction {
  url: string;
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  /**
   * The statuses that count as a successful cycle: a list, or a predicate. Default 200–399:
   * counting any status as success let a soak of a mistyped path (404) or a failing one
   * (500) pass.
   */
  expectStatus?: readonly number[] | ((status: number) => boolean);
}

/** The WebSocket cycle: connect, send `message` (if given), wait for the reply, disconnect. */
export interface WsSoakAction {
  url: string;
  message?: string;
  /**
   * What each reply means: `true` completes the cycle, `false` fails it, `undefined` waits
   * for the next one (e.g. a presence message before the ack). Default: the first reply
   * completes it, whatever it says.
   */
  reply?: (text: string) => boolean | undefined;
}

/** A cycle: runs once per cycle with the cycle's abort signal; `close` ends the action. */
export interface SoakCycle {
  run(cycle: number, signal: AbortSignal): Promise<void>;
  close(): Promise<void>;
}

const OK_STATUS = (s: number): boolean => s >= 200 && s < 400;

function statusCheck(expect: HttpSoakAction['expectStatus']): { ok: (s: number) => boolean; text: string } {
  if (expect === undefined) return { ok: OK_STATUS, text: '2xx or 3xx' };
  if (typeof expect === 'function') return { ok: expect, text: 'a status expectStatus accepts' };
  if (Array.isArray(expect) && expect.length > 0 && expect.every((s) => Number.isInteger(s) && s >= 100 && s <= 599)) {
    const set = new Set(expect);
    return { ok: (s) => set.has(s), text: expect.join(' or ') };
  }
  throw optionError('runSoak', 'action.http.expectStatus', 'a non-empty array of HTTP statuses or a function', expect);
}

export function httpCycle(a: HttpSoakAction): SoakCycle {
  let url: URL;
  try {
    url = new URL(a.url);
  } catch {
    throw optionError('runSoak', 'action.http.url', 'an http:// URL', a.url);
  }
  const check = statusCheck(a.expectStatus);
  const client = new Client(url.origin, { pipelining: 1 });
  const method = (a.method ?? 'GET') as 'GET';
  const path = url.pathname + url.search;
  return {
    async run(_cycle, signal) {
      const res = await client.request({ method, path, headers: a.headers, body: a.body, signal });
      await res.body.dump();
      if (!check.ok(res.statusCode)) throw new Error(`${method} ${path} answered ${res.statusCode} (expected ${check.text})`);
    },
    close: () => client.close(),
  };
}

export function wsCycle(a: WsSoakAction): SoakCycle {
  if (typeof a.url !== 'string' || !/^wss?:\/\//.test(a.url)) throw optionError('runSoak', 'action.ws.url', 'a ws:// URL', a.url);
  if (a.reply !== undefined && typeof a.reply !== 'function') throw optionError('runSoak', 'action.ws.reply', 'a function', a.reply);
  const { url, message, reply } = a;
  return {
    run: (_cycle, signal) =>
      new Promise<void>((resolve, reject) => {
        const ws = new WebSocket(url);
        let failure: unknown;
        // With a message sent, a close before the reply that completes the cycle is a failure.
        let answered = message === undefined;
        const onAbort = (): void => {
          failure ??= signal.reason;
          ws.terminate();
        };
        signal.addEventListener('abort', onAbort, { once: true });
        const onMessage = (data: unknown): void => {
          const text = String(data);
          let verdict: boolean | undefined;
          try {
            verdict = reply ? reply(text) : true;
          } catch (err) {
            failure ??= err;
            verdict = false;
          }
          if (verdict === undefined) return;
          ws.off('message', onMessage);
          answered = true;
          if (!verdict) failure ??= new Error(`unexpected reply: ${text.slice(0, 200)}`);
          ws.close();
        };
        ws.once('error', (err) => {
          failure ??= err;
        });
        ws.once('open', () => {
          if (message === undefined) return ws.close();
          ws.on('message', onMessage);
          ws.send(message);
        });
        ws.once('close', () => {
          signal.removeEventListener('abort', onAbort);
          if (!answered) failure ??= new Error('the socket closed before a reply completed the cycle');
          if (failure === undefined) resolve();
          else reject(failure);
        });
      }),
    close: async () => {},
  };
}
