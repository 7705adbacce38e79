/**
 * Runs a docs page's ```ts blocks, so the guides cannot drift from the code. Each block is
 * written to a temp module with `keel/*` imports (every subpath in package.json's exports)
 * and the named third-party modules pointed at absolute paths, then imported; blocks assert
 * with node:assert, so a wrong example fails its test.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const pkg = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(pkg, 'package.json'));
const exportsMap = (JSON.parse(readFileSync(join(pkg, 'package.json'), 'utf8')) as { exports: Record<string, string> }).exports;

export interface DocExamples {
  /** The page's text. */
  doc: string;
  /** Its ```ts blocks, in order. */
  blocks: string[];
  /** The heading a block stands under (for test names). */
  headingOf(block: string): string;
  /** Writes block `i` to a module and imports it. */
  run(i: number): Promise<unknown>;
  /** Removes the temp modules. */
  cleanup(): void;
}

/** The examples of `docs/<page>`; `modules` are the third-party imports the page may use. */
export function docExamples(page: string, modules: readonly string[] = []): DocExamples {
  const doc = readFileSync(join(pkg, 'docs', page), 'utf8');
  const blocks = [...doc.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1] as string);
  const targets = new Map<string, string>();
  for (const [sub, file] of Object.entries(exportsMap)) targets.set(`keel/${sub.slice(2)}`, join(pkg, file));
  for (const m of modules) targets.set(m, require.resolve(m));
  let dir: string | undefined;
  return {
    doc,
    blocks,
    headingOf(block) {
      const before = doc.slice(0, doc.indexOf(block));
      const heading = [...before.matchAll(/^#{2,4} (.+)$/gm)].pop();
      return heading ? (heading[1] as string) : 'top';
    },
    async run(i) {
      dir ??= mkdtempSync(join(tmpdir(), `keel-docs-${page.replace(/\W/g, '-')}-`));
      const source = (blocks[i] as string).replace(/from '([^'.][^']*)'/g, (whole, spec: string) => {
        if (spec.startsWith('node:')) return whole;
        const target = targets.get(spec);
        if (!target) throw new Error(`docs/${page} imports ${spec}: add it to the modules of its docs test`);
        return `from ${JSON.stringify(pathToFileURL(target).href)}`;
      });
      const file = join(dir, `example-${i + 1}.ts`);
      writeFileSync(file, `${source}\nexport {};\n`);
      return import(pathToFileURL(file).href);
    },
    cleanup() {
      if (dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}
