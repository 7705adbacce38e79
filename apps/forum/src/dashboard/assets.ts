/**
 * The dashboard's static files, read and compressed once at start-up (brotli 11 and gzip 9 of
 * ~90 KB take ≈ 0.15 s once; per request they would cost more than the page is worth), then
 * served from memory with an ETag per encoding.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { brotliCompress, constants, gzip } from 'node:zlib';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { SRC_DIR } from '../paths.ts';

const brotli = promisify(brotliCompress);
const gz = promisify(gzip);
const HERE = join(SRC_DIR, 'dashboard');

/** The files the page loads, by URL name. A fixed list: the route never touches the file system. */
export const ASSET_FILES: Readonly<Record<string, { path: string; type: string }>> = Object.freeze({
  'uPlot.min.css': { path: 'vendor/uPlot.min.css', type: 'text/css; charset=utf-8' },
  'uPlot.iife.min.js': { path: 'vendor/uPlot.iife.min.js', type: 'text/javascript; charset=utf-8' },
  'dashboard.css': { path: 'public/dashboard.css', type: 'text/css; charset=utf-8' },
  'charts.js': { path: 'public/charts.js', type: 'text/javascript; charset=utf-8' },
  'panels.js': { path: 'public/panels.js', type: 'text/javascript; charset=utf-8' },
  'dashboard.js': { path: 'public/dashboard.js', type: 'text/javascript; charset=utf-8' },
});

export interface Asset {
  type: string;
  /** Content hash (12 hex digits): the `?v=` the page links with, and the ETag stem. */
  version: string;
  identity: Buffer;
  gzip: Buffer;
  br: Buffer;
}

// Compressed forms by content hash, shared by every app in the process: a test suite builds
// dozens of apps, and brotli 11 of uPlot alone takes ≈ 140 ms here. Keyed by content and
// bounded, so it can neither serve stale bytes nor grow.
const COMPRESSED = new Map<string, Promise<{ br: Buffer; gzip: Buffer }>>();
const MAX_COMPRESSED = 64;

function compressed(hash: string, body: Buffer): Promise<{ br: Buffer; gzip: Buffer }> {
  let done = COMPRESSED.get(hash);
  if (!done) {
    done = Promise.all([
      brotli(body, { params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: body.length } }),
      gz(body, { level: 9 }),
    ]).then(([br, gzip]) => ({ br, gzip }));
    if (COMPRESSED.size >= MAX_COMPRESSED) COMPRESSED.delete(COMPRESSED.keys().next().value as string);
    COMPRESSED.set(hash, done);
    done.catch(() => COMPRESSED.delete(hash));
  }
  return done;
}

async function asset(body: Buffer, type: string): Promise<Asset> {
  const hash = createHash('sha256').update(body).digest('hex');
  const { br, gzip } = await compressed(hash, body);
  return { type, version: hash.slice(0, 12), identity: body, gzip, br };
}

/** The page and its assets: the page's `{{name}}` placeholders become versioned asset URLs. */
export interface AssetSet {
  page: Asset;
  assets: ReadonlyMap<string, Asset>;
}

/**
 * Loads and compresses every asset, then the page with links carrying each asset's version.
 *
 * @example
 * ```ts
 * const { page, assets } = await loadAssets('/dashboard/assets');
 * ```
 */
export async function loadAssets(prefix: string): Promise<AssetSet> {
  const assets = new Map<string, Asset>();
  await Promise.all(
    Object.entries(ASSET_FILES).map(async ([name, { path, type }]) => {
      assets.set(name, await asset(await readFile(join(HERE, path)), type));
    }),
  );
  const template = await readFile(join(HERE, 'public/index.html'), 'utf8');
  const html = template.replace(/\{\{([\w.-]+)\}\}/g, (whole, name: string) => {
    const a = assets.get(name);
    return a ? `${prefix}/${name}?v=${a.version}` : whole;
  });
  return { page: await asset(Buffer.from(html), 'text/html; charset=utf-8'), assets };
}

/** The best encoding the client accepts: br, then gzip, else none (a `q=0` refuses one). */
export function negotiate(acceptEncoding: string | undefined): 'br' | 'gzip' | 'identity' {
  if (!acceptEncoding) return 'identity';
  let br = false;
  let gzip = false;
  for (const part of acceptEncoding.toLowerCase().split(',')) {
    const [coding, ...params] = part.trim().split(';');
    const refused = params.some((p) => /^\s*q=0(\.0*)?\s*$/.test(p));
    if (refused) continue;
    if (coding === 'br') br = true;
    else if (coding === 'gzip' || coding === '*') gzip = true;
  }
  return br ? 'br' : gzip ? 'gzip' : 'identity';
}

function matches(ifNoneMatch: string | undefined, etag: string): boolean {
  if (!ifNoneMatch) return false;
  if (ifNoneMatch.trim() === '*') return true;
  return ifNoneMatch.split(',').some((t) => t.trim().replace(/^W\//, '') === etag);
}

/** Sends an asset in the best accepted encoding, or 304 when the client's copy is current. */
export function sendAsset(request: FastifyRequest, reply: FastifyReply, a: Asset, cacheControl: string): FastifyReply {
  const encoding = negotiate(request.headers['accept-encoding']);
  const etag = `"${a.version}${encoding === 'identity' ? '' : `-${encoding}`}"`;
  reply.header('cache-control', cacheControl).header('etag', etag).header('vary', 'accept-encoding');
  if (matches(request.headers['if-none-match'], etag)) return reply.code(304).send();
  reply.header('content-type', a.type);
  if (encoding !== 'identity') reply.header('content-encoding', encoding);
  return reply.send(encoding === 'br' ? a.br : encoding === 'gzip' ? a.gzip : a.identity);
}

/** Total bytes of the page and its assets in one encoding: what a first visit downloads. */
export function totalBytes(set: AssetSet, encoding: 'br' | 'gzip' | 'identity'): number {
  let total = set.page[encoding].length;
  for (const a of set.assets.values()) total += a[encoding].length;
  return total;
}
