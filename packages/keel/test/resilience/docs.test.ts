/**
 * Runs every ```ts block of docs/resilience.md, so the guide cannot drift from the code.
 * Each block is written to a temp module with `keel/*` imports pointed at the sources and
 * imported; blocks assert with node:assert, so a wrong example fails here.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const here = dirname(fileURLToPath(import.meta.url));
const pkg = resolve(here, '../..');
const doc = readFileSync(join(pkg, 'docs/resilience.md'), 'utf8');
const blocks = [...doc.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1] as string);
const dir = mkdtempSync(join(tmpdir(), 'keel-docs-'));

const targets: Record<string, string> = {
  'keel/resilience': join(pkg, 'src/resilience/index.ts'),
  'keel/testing': join(pkg, 'src/testing/index.ts'),
  'keel/channels': join(pkg, 'src/channels.ts'),
};

function headingOf(block: string): string {
  const at = doc.indexOf(block);
  const before = doc.slice(0, at);
  const heading = [...before.matchAll(/^#{2,4} (.+)$/gm)].pop();
  return heading ? (heading[1] as string) : 'top';
}

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('docs/resilience.md', () => {
  it('has examples to run', () => {
    expect(blocks.length).toBeGreaterThanOrEqual(8);
  });

  blocks.forEach((block, i) => {
    it(`runs example ${i + 1} (${headingOf(block)})`, async () => {
      const source = block.replace(/from '(keel\/[a-z]+)'/g, (_whole, spec: string) => {
        const target = targets[spec];
        if (!target) throw new Error(`docs import ${spec} has no mapping in docs.test.ts`);
        return `from ${JSON.stringify(target)}`;
      });
      const file = join(dir, `example-${i + 1}.ts`);
      writeFileSync(file, `${source}\nexport {};\n`);
      await import(file);
    });
  });
});
