/**
 * The `keel` CLI bundled into plain JavaScript for the benches' generator.
 *
 * `packages/keel/bin/keel.mjs` runs the TypeScript sources through tsx, whose loader runs on a
 * thread of its own with a second V8 heap. That thread shares the generator's pinned core, and
 * its idle-time GCs took the core for ~10 ms at a time (`--trace-gc`: Mark-Compact (reduce)
 * 10.1 and 9.5 ms at 8.8 s and 9.4 s of a run), which showed as 4-5 ms p99 windows against a
 * bare node:http server whose other windows were 0.4 ms. The bundle has no loader thread. The
 * forum runs as a bundle for the same reason (apps/forum/scripts/build.mjs).
 */
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '../..');

/** Bundles the CLI (npm packages stay external, resolved from node_modules at run time) and returns the path of the entry to run with `node`. */
export async function buildKeelCli(): Promise<string> {
  const outfile = join(root, 'benchmarks/.out/keel-cli/keel.mjs');
  mkdirSync(dirname(outfile), { recursive: true });
  await build({
    stdin: {
      contents: "import { main } from './src/cli.ts';\nprocess.exitCode = await main(process.argv.slice(2));\n",
      resolveDir: join(root, 'packages/keel'),
      sourcefile: 'keel-cli-entry.ts',
      loader: 'ts',
    },
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    logLevel: 'warning',
    packages: 'external',
  });
  return outfile;
}
