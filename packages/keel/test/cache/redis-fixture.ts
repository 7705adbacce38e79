/**
 * test-support/redis.ts, imported through a computed specifier: packages/keel's tsconfig has
 * `rootDir: "."`, so a static import of a file above it fails the typecheck.
 */
export interface RedisServer {
  readonly port: number;
  readonly url: string;
  readonly running: boolean;
  stop(): Promise<void>;
  start(): Promise<void>;
  close(): Promise<void>;
}

const spec = new URL('../../../../test-support/redis.ts', import.meta.url).href;
const mod = (await import(spec)) as { startRedis: () => Promise<RedisServer> };

export const startRedis: () => Promise<RedisServer> = mod.startRedis;
