/**
 * The production build (`npm run build`, then `node dist/server.js`): the bundle runs without
 * a TypeScript loader, and everything it reads or starts from outside the bundle is found:
 * migrations, the search worker, the checkpoint worker and the dashboard's files. Any path
 * resolved from a module's own URL would point into `dist/` and fail here.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { startForum } from './process.ts';

const appDir = join(dirname(fileURLToPath(import.meta.url)), '../..');
const TOKEN = 'build-test-dashboard-token-0123';

describe('the production build', () => {
  it('bundles the forum into dist/ and serves reads, search, writes and the dashboard from it', async () => {
    const build = spawnSync(process.execPath, [join(appDir, 'scripts/build.mjs')], { encoding: 'utf8' });
    expect(build.stderr).toBe('');
    expect(build.status).toBe(0);
    expect(existsSync(join(appDir, 'dist/server.js'))).toBe(true);
    expect(existsSync(join(appDir, 'dist/search-worker.js'))).toBe(true);

    const forum = await startForum({ DASHBOARD_TOKEN: TOKEN }, { built: true });
    try {
      const ready = await fetch(`${forum.base}/health/ready`);
      expect(ready.status).toBe(200);

      // Ranked in a worker thread started from dist/search-worker.js.
      const search = await fetch(`${forum.base}/api/v1/search?q=latency&limit=5`);
      expect(search.status).toBe(200);
      const hits = (await search.json()) as { items: unknown[] };
      expect(hits.items.length).toBeGreaterThan(0);

      const reg = await fetch(`${forum.base}/api/v1/auth/register`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username: 'builder', password: 'build-password-123' }),
      });
      const registered = { status: reg.status, body: await reg.text() };
      expect(registered, forum.output()).toMatchObject({ status: 201 });
      const { token } = JSON.parse(registered.body) as { token: string };
      const reply = await fetch(`${forum.base}/api/v1/topics/1/posts`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({ body: 'written by the bundle' }),
      });
      // The body and the forum's log say why, if not (a shed request, a busy database).
      expect({ status: reply.status, body: await reply.text() }, forum.output()).toMatchObject({ status: 201 });

      // The page and its assets are read from src/dashboard.
      const page = await fetch(`${forum.base}/dashboard`, { headers: { authorization: `Bearer ${TOKEN}` } });
      expect(page.status).toBe(200);
      const html = await page.text();
      const script = /src="([^"]*dashboard\.js[^"]*)"/.exec(html)?.[1];
      expect(script).toBeDefined();
      const asset = await fetch(new URL(script!, forum.base), { headers: { authorization: `Bearer ${TOKEN}` } });
      expect(asset.status).toBe(200);
      expect(forum.output()).not.toMatch(/ERR_|Error:/);

      forum.child.kill('SIGTERM');
      expect(await forum.exited).toBe(0);
    } finally {
      await forum.cleanup();
    }
  });
});
