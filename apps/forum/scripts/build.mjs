/**
 * `npm run build -w @keel/forum`: bundles the forum and the keel sources it uses into plain
 * JavaScript under `apps/forum/dist/` (`server.js`, and `search-worker.js` for the search
 * threads), so production runs `node apps/forum/dist/server.js` without a TypeScript loader.
 *
 * Why: tsx compiles on a loader thread of its own, a second V8 heap in every process that
 * uses it (~33 MB of RSS here), and a worker started with it pays again. npm packages stay
 * external (resolved from node_modules at run time, as before); only our own code is bundled.
 * Migrations, the dashboard's files and the checkpoint worker (plain .mjs) are read from
 * `src/` (see `src/paths.ts`), so the build copies nothing.
 */
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const APP_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Every bare import except the keel workspace package is left for Node to resolve. */
const packagesExternal = {
  name: 'packages-external',
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, (args) =>
      args.path === 'keel' || args.path.startsWith('keel/') ? undefined : { path: args.path, external: true },
    );
  },
};

const result = await build({
  absWorkingDir: APP_DIR,
  entryPoints: { server: 'src/server.ts', 'search-worker': 'src/services/search-worker.ts' },
  outdir: join(APP_DIR, 'dist'),
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  sourcemap: 'linked',
  plugins: [packagesExternal],
  logLevel: 'warning',
  metafile: true,
});
const bytes = Object.values(result.metafile.outputs).reduce((n, o) => n + o.bytes, 0);
process.stdout.write(
  `built ${Object.keys(result.metafile.outputs)
    .filter((f) => f.endsWith('.js'))
    .join(', ')} (${Math.round(bytes / 1024)} KiB)\n`,
);
