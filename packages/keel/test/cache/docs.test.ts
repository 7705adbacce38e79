/**
 * Runs every ```ts block of docs/cache.md, so the guide cannot drift from the code. Each
 * block is written to a temp module with `keel/*` (and `fastify`) imports pointed at real
 * files and the Redis URL pointed at a test server, then imported; blocks assert with
 * node:assert, so a wrong example fails here.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RedisServer, startRedis } from './redis-fixture.ts';

const here = dirname(fileURLToPath(import.meta.url));
const pkg = resolve(here, '../..');
const doc = readFileSync(join(pkg, 'docs/cache.md'), 'utf8');
const blocks = [...doc.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1] as string);
const dir = mkdtempSync(join(tmpdir(), 'keel-cache-docs-'));
const require = createRequire(join(pkg, 'package.json'));

const targets: Record<string, string> = {
  'keel/cache': join(pkg, 'src/cache/index.ts'),
  'keel/testing': join(pkg, 'src/testing/index.ts'),
  'keel/channels': join(pkg, 'src/channels.ts'),
  fastify: require.resolve('fastify'),
};

function headingOf(block: string): string {
  const before = doc.slice(0, doc.indexOf(block));
  const heading = [...before.matchAll(/^#{2,4} (.+)$/gm)].pop();
  return heading ? (heading[1] as string) : 'top';
}

let redis: RedisServer;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('docs/cache.md', () => {
  it('has examples to run', () => {
    expect(blocks.length).toBeGreaterThanOrEqual(5);
  });

  blocks.forEach((block, i) => {
    it(`runs example ${i + 1} (${headingOf(block)})`, async () => {
      const source = block
        .replace(/from '((?:keel\/[a-z]+)|fastify)'/g, (_whole, spec: string) => {
          const target = targets[spec];
          if (!target) throw new Error(`docs import ${spec} has no mapping in docs.test.ts`);
          return `from ${JSON.stringify(target)}`;
        })
        .replaceAll('redis://127.0.0.1:6379', redis.url);
      const file = join(dir, `example-${i + 1}.ts`);
      writeFileSync(file, `${source}\nexport {};\n`);
      await import(file);
    });
  });
});
