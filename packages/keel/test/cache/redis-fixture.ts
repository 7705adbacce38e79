/** The suite's real Redis server (test-support/redis.ts), for the cache tests. */
export { type RedisServer, startRedis } from '../../../../test-support/redis.ts';
