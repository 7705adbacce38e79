/**
 * Cross-instance single flight: a lease in Redis (SET NX PX). The holder loads and writes
 * L2; the others poll L2 for the value, a bounded number of times, and load themselves if
 * it does not come (a crashed holder costs at most the wait, never a hang: `waitMs`, capped
 * by the caller at half of what is left of its hard timeout). If Redis cannot be asked,
 * everyone loads: the lock is an optimisation, never a dependency.
 */
import { randomUUID } from 'node:crypto';
import type { Clock, TimerHandle } from '../clock.ts';
import type { RedisTier } from './tiers/redis.ts';

export interface LeaseOptions {
  leaseMs: number;
  waitMs: number;
  pollMs: number;
}

/** The outcome: a value some other instance stored, or permission to load (holding the lease or not). */
export type LeaseResult<T> = { found: T } | { token: string | undefined };

/** Sleeps on the cache's clock; `wakeAll` (on close) ends every sleep so nothing waits forever. */
export class Sleeper {
  readonly #clock: Clock;
  readonly #sleeping = new Map<() => void, TimerHandle>();

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const wake = (): void => {
        this.#sleeping.delete(wake);
        resolve();
      };
      this.#sleeping.set(wake, this.#clock.setTimeout(wake, ms));
    });
  }

  wakeAll(): void {
    for (const [wake, handle] of [...this.#sleeping]) {
      this.#clock.clearTimeout(handle);
      wake();
    }
  }
}

export async function leaseOrWait<T>(
  tier: RedisTier,
  key: string,
  o: LeaseOptions,
  waitMs: number,
  clock: Clock,
  sleeper: Sleeper,
  read: () => Promise<T | undefined>,
  isClosed: () => boolean,
): Promise<LeaseResult<T>> {
  const token = randomUUID();
  const first = await tier.lock(key, token, o.leaseMs);
  if (first === 'acquired') return { token };
  if (first === 'unavailable') return { token: undefined };
  const deadline = clock.now() + waitMs;
  while (clock.now() < deadline && !isClosed()) {
    await sleep(sleeper, o.pollMs);
    const found = await read();
    if (found !== undefined) return { found };
    const again = await tier.lock(key, token, o.leaseMs);
    if (again === 'unavailable') return { token: undefined };
    if (again === 'acquired') {
      // The holder may have written and released between our read and our SET.
      const late = await read();
      if (late !== undefined) {
        await tier.unlock(key, token);
        return { found: late };
      }
      return { token };
    }
  }
  return { token: undefined };
}

function sleep(sleeper: Sleeper, ms: number): Promise<void> {
  return sleeper.sleep(ms);
}
