/**
 * Runs every ```ts block of docs/lifecycle.md, so the guide cannot drift from the code.
 * Each block is written to a temp module with `keel/*` (and the frameworks it shows) pointed
 * at absolute paths, then imported; blocks assert with node:assert.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const here = dirname(fileURLToPath(import.meta.url));
const pkg = resolve(here, '../..');
const doc = readFileSync(join(pkg, 'docs/lifecycle.md'), 'utf8');
const blocks = [...doc.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1] as string);
const dir = mkdtempSync(join(tmpdir(), 'keel-lifecycle-docs-'));
const require = createRequire(join(pkg, 'package.json'));

const targets: Record<string, string> = {
  'keel/observe': join(pkg, 'src/observe/index.ts'),
  'keel/lifecycle': join(pkg, 'src/lifecycle/index.ts'),
  'keel/resilience': join(pkg, 'src/resilience/index.ts'),
  'keel/testing': join(pkg, 'src/testing/index.ts'),
  'keel/adapters/fastify': join(pkg, 'src/adapters/fastify.ts'),
  'keel/adapters/node-http': join(pkg, 'src/adapters/node-http.ts'),
  'keel/adapters/fetch': join(pkg, 'src/adapters/fetch.ts'),
  fastify: require.resolve('fastify'),
  express: require.resolve('express'),
  undici: require.resolve('undici'),
};

function headingOf(block: string): string {
  const before = doc.slice(0, doc.indexOf(block));
  const heading = [...before.matchAll(/^#{2,4} (.+)$/gm)].pop();
  return heading ? (heading[1] as string) : 'top';
}

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('docs/lifecycle.md', () => {
  it('has examples to run', () => {
    expect(blocks.length).toBeGreaterThanOrEqual(3);
  });

  it('links the observe page', () => {
    expect(doc).toContain('(./observe.md)');
  });

  blocks.forEach((block, i) => {
    it(`runs example ${i + 1} (${headingOf(block)})`, async () => {
      const source = block.replace(/from '((?:keel\/[a-z/-]+)|fastify|express|undici)'/g, (_whole, spec: string) => {
        const target = targets[spec];
        if (!target) throw new Error(`docs import ${spec} has no mapping in lifecycle/docs.test.ts`);
        return `from ${JSON.stringify(pathToFileURL(target).href)}`;
      });
      const file = join(dir, `example-${i + 1}.ts`);
      writeFileSync(file, `${source}\nexport {};\n`);
      await import(pathToFileURL(file).href);
    });
  });
});
