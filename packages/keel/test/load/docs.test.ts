/** Runs every ```ts block of docs/load.md, so the examples cannot rot. */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';

const docs = join(import.meta.dirname, '..', '..', 'docs', 'load.md');
const index = join(import.meta.dirname, '..', '..', 'src', 'load', 'index.ts');
const blocks = [...(await readFile(docs, 'utf8')).matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!);

describe('docs/load.md', () => {
  it('has examples to run', () => {
    expect(blocks.length).toBeGreaterThanOrEqual(4);
  });

  it.each(blocks.map((code, i) => [i, code] as const))('example %i runs', async (_i, code) => {
    const dir = await mkdtemp(join(tmpdir(), 'keel-docs-'));
    const file = join(dir, 'example.ts');
    const logs: unknown[][] = [];
    const log = console.log;
    console.log = (...args: unknown[]) => logs.push(args);
    try {
      await writeFile(file, code.replaceAll("'keel/load'", JSON.stringify(index)));
      const mod = await import(pathToFileURL(file).href);
      expect(mod).toBeDefined();
    } finally {
      console.log = log;
      await rm(dir, { recursive: true, force: true });
    }
    if (code.includes('createFaultProxy')) {
      const [p50, ok] = logs[0]!;
      expect(p50).toBeGreaterThanOrEqual(20);
      expect(ok).toBe(true);
    }
    if (code.includes('expectedCount')) expect(logs).toEqual([[150], [2]]);
  });
});
