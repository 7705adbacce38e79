/** Small helpers the cache tests share: deferred values, polling, and bus/connection signals. */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { TieredCache } from '../../src/cache/index.ts';
import { CHANNELS } from '../../src/channels.ts';
import { deferred } from '../../src/testing/index.ts';

export { deferred } from '../../src/testing/index.ts';

/** A loader that signals when it starts and settles when the test says so. */
export function gatedLoader<T>() {
  const started = deferred<void>();
  const result = deferred<T>();
  return {
    load: () => {
      started.resolve();
      return result.promise;
    },
    started: started.promise,
    resolve: result.resolve,
    reject: result.reject,
  };
}

export const pause = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `check` every 10 ms (real time) until true or `ms` passed; returns the last result. */
export async function eventually(check: () => Promise<boolean> | boolean, ms = 5_000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await pause(10);
  }
  return check();
}

const PENDING = Symbol('pending');

/** The promise's outcome (a rejection's error), or `'pending'` if it has not settled within `ms` of real time. */
export async function settled<T>(p: Promise<T>, ms = 2_000): Promise<T | unknown | 'pending'> {
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<typeof PENDING>((r) => {
    timer = setTimeout(() => r(PENDING), ms);
  });
  try {
    const r = await Promise.race([p.catch((e: unknown) => e), bound]);
    return r === PENDING ? 'pending' : r;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Waits (in real time) until the cache is connected. For caches on a FakeClock, whose own
 * `ready()` sleeps on that clock.
 */
export function connected(cache: TieredCache): Promise<boolean> {
  return eventually(() => cache.ready(0), 10_000);
}

/**
 * Resolves true once the cache named `name` has received `count` bus messages from other
 * instances (counted from this call), or false after `ms`. Start it before the action.
 */
export function busMessages(name: string, count = 1, ms = 5_000): Promise<boolean> {
  return new Promise((resolve) => {
    let left = count;
    const done = (ok: boolean) => {
      clearTimeout(timer);
      unsubscribe(CHANNELS.cache.busLag, on);
      resolve(ok);
    };
    const on = (m: unknown) => {
      if ((m as { name: string }).name === name && --left === 0) done(true);
    };
    const timer = setTimeout(() => done(false), ms);
    subscribe(CHANNELS.cache.busLag, on);
  });
}

/** Collects unhandled rejections while `fn` runs and for a few turns of the event loop after. */
export async function unhandledDuring(fn: () => Promise<void>): Promise<unknown[]> {
  const seen: unknown[] = [];
  const on = (reason: unknown) => seen.push(reason);
  process.on('unhandledRejection', on);
  try {
    await fn();
    for (let i = 0; i < 5; i++) await new Promise<void>((r) => setImmediate(r));
  } finally {
    process.off('unhandledRejection', on);
  }
  return seen;
}
