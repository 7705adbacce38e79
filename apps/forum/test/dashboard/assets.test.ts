import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ASSET_FILES, negotiate } from '../../src/dashboard/assets.ts';
import { dashboardRoutes } from '../../src/dashboard/routes.ts';
import { metricsSnapshot, TOKEN } from './fixtures.ts';

let app: FastifyInstance;
beforeAll(async () => {
  app = Fastify();
  await app.register(dashboardRoutes({ token: TOKEN, sources: { metrics: () => metricsSnapshot() } }));
  await app.ready();
});
afterAll(() => app.close());

/** The asset URLs the page links, in order. */
async function linkedAssets(): Promise<string[]> {
  const page = await app.inject({ url: '/dashboard', headers: { authorization: `Bearer ${TOKEN}` } });
  return [...page.body.matchAll(/(?:src|href)="(\/dashboard\/assets\/[^"]+)"/g)].map((m) => m[1]!);
}

describe('negotiate', () => {
  it('prefers br, then gzip, and honours q=0', () => {
    expect(negotiate('gzip, deflate, br')).toBe('br');
    expect(negotiate('gzip')).toBe('gzip');
    expect(negotiate('br;q=0, gzip;q=0.5')).toBe('gzip');
    expect(negotiate('*')).toBe('gzip');
    expect(negotiate('identity')).toBe('identity');
    expect(negotiate(undefined)).toBe('identity');
  });
});

describe('dashboard assets', () => {
  it('links every asset under a content-versioned URL', async () => {
    const urls = await linkedAssets();
    expect(urls.map((u) => u.split('?')[0]!.split('/').pop()).sort()).toEqual(Object.keys(ASSET_FILES).sort());
    for (const url of urls) expect(url).toMatch(/\?v=[0-9a-f]{12}$/);
  });

  it('loads in under 100 KB of compressed assets, page included', async () => {
    const sizes: Record<string, number> = { br: 0, gzip: 0, identity: 0 };
    for (const encoding of ['br', 'gzip', 'identity'] as const) {
      const headers = { authorization: `Bearer ${TOKEN}`, 'accept-encoding': encoding };
      const page = await app.inject({ url: '/dashboard', headers });
      sizes[encoding] = page.rawPayload.length;
      for (const url of await linkedAssets()) sizes[encoding] += (await app.inject({ url, headers })).rawPayload.length;
    }
    console.log(
      `dashboard assets: br ${(sizes.br! / 1024).toFixed(1)} KB, gzip ${(sizes.gzip! / 1024).toFixed(1)} KB, raw ${(sizes.identity! / 1024).toFixed(1)} KB`,
    );
    expect(sizes.gzip).toBeLessThan(100 * 1024);
    expect(sizes.br).toBeLessThan(sizes.gzip!);
    expect(sizes.gzip).toBeLessThan(sizes.identity! / 2);
  });

  it('serves br and gzip bodies that decode to the file, with an ETag per encoding and Vary', async () => {
    const [url] = (await linkedAssets()).filter((u) => u.includes('uPlot.iife.min.js'));
    const raw = await app.inject({ url: url! });
    const br = await app.inject({ url: url!, headers: { 'accept-encoding': 'br' } });
    const gz = await app.inject({ url: url!, headers: { 'accept-encoding': 'gzip' } });
    expect(br.headers['content-encoding']).toBe('br');
    expect(gz.headers['content-encoding']).toBe('gzip');
    expect(raw.headers['content-encoding']).toBeUndefined();
    expect(brotliDecompressSync(br.rawPayload).equals(raw.rawPayload)).toBe(true);
    expect(gunzipSync(gz.rawPayload).equals(raw.rawPayload)).toBe(true);
    expect(new Set([raw.headers.etag, br.headers.etag, gz.headers.etag]).size).toBe(3);
    expect(br.headers.vary).toBe('accept-encoding');
    expect(br.headers['content-type']).toBe('text/javascript; charset=utf-8');
  });

  it('caches versioned URLs for a year and revalidates others', async () => {
    const [url] = await linkedAssets();
    expect((await app.inject({ url: url! })).headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect((await app.inject({ url: url!.split('?')[0]! })).headers['cache-control']).toBe('public, no-cache');
  });

  it('answers 304 to a current If-None-Match', async () => {
    const [url] = await linkedAssets();
    const first = await app.inject({ url: url!, headers: { 'accept-encoding': 'br' } });
    const again = await app.inject({ url: url!, headers: { 'accept-encoding': 'br', 'if-none-match': String(first.headers.etag) } });
    expect(again.statusCode).toBe(304);
    expect(again.rawPayload.length).toBe(0);
    const stale = await app.inject({ url: url!, headers: { 'accept-encoding': 'br', 'if-none-match': '"old"' } });
    expect(stale.statusCode).toBe(200);
  });

  it('answers 404 for a name outside the fixed list', async () => {
    for (const name of ['nope.js', '..%2Fassets.ts', 'index.html']) {
      expect((await app.inject({ url: `/dashboard/assets/${name}` })).statusCode).toBe(404);
    }
  });

  it('vendors the uPlot the forum depends on, byte for byte', () => {
    const require = createRequire(import.meta.url);
    const dist = dirname(require.resolve('uplot'));
    const here = join(dirname(new URL(import.meta.url).pathname), '../../src/dashboard/vendor');
    for (const file of ['uPlot.iife.min.js', 'uPlot.min.css']) {
      expect(readFileSync(join(here, file)).equals(readFileSync(join(dist, file))), file).toBe(true);
    }
  });
});
