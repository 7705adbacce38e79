/** The cache's typed errors. Redis failures are never surfaced (they cost hit rate only). */
import { guardFor, KeelError } from '../errors.ts';

/**
 * A load passed its hard timeout and there was no stale value to serve instead.
 *
 * @example
 * ```ts
 * import { isCacheTimeoutError } from 'keel/cache';
 * try { await cache.getOrSet('k', slowLoader); } catch (err) { if (isCacheTimeoutError(err)) console.log(err.timeoutMs); }
 * ```
 */
export class CacheTimeoutError extends KeelError {
  readonly cacheName: string;
  readonly key: string;
  readonly timeoutMs: number;
  constructor(cacheName: string, key: string, timeoutMs: number) {
    super('KEEL_CACHE_TIMEOUT', `keel: cache "${cacheName}" loader for a key passed its hard timeout of ${timeoutMs} ms`);
    this.cacheName = cacheName;
    this.key = key;
    this.timeoutMs = timeoutMs;
  }
}

/**
 * The cache was closed; `getOrSet` rejects with this, `get` resolves `undefined`.
 *
 * @example
 * ```ts
 * import { isCacheClosedError } from 'keel/cache';
 * const err = await cache.getOrSet('k', load).catch((e) => e);
 * if (isCacheClosedError(err)) console.log('shutting down');
 * ```
 */
export class CacheClosedError extends KeelError {
  constructor(cacheName: string) {
    super('KEEL_CACHE_CLOSED', `keel: cache "${cacheName}" is closed`);
  }
}

/**
 * @example
 * ```ts
 * if (isCacheTimeoutError(err)) reply.code(504);
 * ```
 */
export const isCacheTimeoutError = guardFor<CacheTimeoutError>('KEEL_CACHE_TIMEOUT');

/**
 * @example
 * ```ts
 * if (isCacheClosedError(err)) return;
 * ```
 */
export const isCacheClosedError = guardFor<CacheClosedError>('KEEL_CACHE_CLOSED');
