/**
 * Where the forum's files are, whether it runs from its TypeScript sources (`src/`, through
 * tsx) or from the production build (`dist/`, plain Node). Both sit one level below the app
 * directory, so this module's own URL finds it either way; in the build every module shares
 * `dist/server.js`'s URL, which is why no other module resolves files from `import.meta.url`.
 */
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = fileURLToPath(import.meta.url);

/** `apps/forum`. */
export const APP_DIR = resolve(dirname(HERE), '..');
/** The sources, which also hold the files the build does not copy (migrations, dashboard assets). */
export const SRC_DIR = join(APP_DIR, 'src');
/** True when running the bundle from `npm run build` (no TypeScript loader). */
export const BUILT = !HERE.endsWith('.ts');
/** The build's directory (`dist/`), where `search-worker.js` sits beside `server.js`. */
export const DIST_DIR = join(APP_DIR, 'dist');
