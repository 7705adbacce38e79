/** `keel/cache`: a tiered (memory + Redis) cache with single flight, grace, tags, a bus, and HTTP helpers. */
export type { BusMessage } from './bus.ts';
export { CacheClosedError, CacheTimeoutError, isCacheClosedError, isCacheTimeoutError } from './errors.ts';
export type { CacheControlOptions, CachedBody, ConditionalOptions, ConditionalResponse, RequestHeaders } from './http.ts';
export { CACHE_CONTROL, cacheControl, conditionalResponse, ifNoneMatch, strongETag, toCachedBody, vary, weakETag } from './http.ts';
export type { GetOrSetOptions, L1Options, L2Options, LockOptions, SetOptions, TieredCacheOptions } from './options.ts';
export type { Serializer } from './serializer.ts';
export { jsonSerializer } from './serializer.ts';
export type { LoaderContext } from './single-flight.ts';
export type { BodyOptions, CacheStats, Loader } from './tiered-cache.ts';
export { TieredCache } from './tiered-cache.ts';
