/**
 * `npm run bench -- <area> [args…]` runs `<area>.bench.ts` in a fresh Node process (so one
 * scenario's JIT state and heap do not colour the next) and passes its output through; the
 * final stdout line is the JSON result. `npm run bench -- --list` lists the areas.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const areas = readdirSync(here)
  .filter((f) => f.endsWith('.bench.ts'))
  .map((f) => f.slice(0, -'.bench.ts'.length))
  .sort();
const [area, ...rest] = process.argv.slice(2);

if (!area || area === '--list' || !areas.includes(area)) {
  if (area && area !== '--list') console.error(`unknown benchmark "${area}"`);
  console.error(`usage: npm run bench -- <area> [args]\nareas: ${areas.join(', ')}`);
  process.exit(area && area !== '--list' ? 2 : 0);
}

const result = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', join(here, `${area}.bench.ts`), ...rest], {
  stdio: 'inherit',
  cwd: here,
});
process.exit(result.status ?? 1);
