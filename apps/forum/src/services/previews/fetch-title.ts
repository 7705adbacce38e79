import { isIP } from 'node:net';
import { type Dispatcher, fetch, type Response } from 'undici';

export interface FetchTitleOptions {
  /** Bytes of the page read at most; the title must appear within them. */
  maxBytes: number;
  /** Redirects followed at most. */
  maxRedirects: number;
  /** Allow loopback and private-network hosts (tests, intranets). */
  allowPrivateHosts: boolean;
  /** The connection pool to use (owned by the caller, closed with it). */
  dispatcher?: Dispatcher;
}

/** A failure that retrying will not fix (4xx, not HTML, no title, a forbidden host). */
export class PermanentPreviewError extends Error {
  readonly permanent = true;
}

/** An upstream status, shaped so keel's classifier reads it (5xx/429 transient, 4xx permanent). */
export class UpstreamStatusError extends Error {
  readonly status: number;
  constructor(status: number) {
    super(`upstream answered ${status}`);
    this.status = status;
  }
}

const PRIVATE_V4 = [/^10\./, /^127\./, /^169\.254\./, /^192\.168\./, /^172\.(1[6-9]|2\d|3[01])\./, /^0\./];

/**
 * Rejects hosts that name this machine or a private network when they are literal addresses
 * or `localhost`. Names that *resolve* to private addresses are not caught here (that needs a
 * connect-time check); deployments exposed to hostile posters should also egress through a
 * proxy that enforces it.
 */
function assertPublicHost(url: URL): void {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const isPrivate =
    host === 'localhost' ||
    host.endsWith('.localhost') ||
    (isIP(host) === 4 && PRIVATE_V4.some((r) => r.test(host))) ||
    (isIP(host) === 6 && (host === '::1' || /^f[cd]/i.test(host) || /^fe80/i.test(host)));
  if (isPrivate) throw new PermanentPreviewError(`host ${host} is not allowed`);
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: ' ' };

function decodeEntities(s: string): string {
  return s.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (m, e: string) => {
    if (e[0] === '#') {
      const code = e[1] === 'x' || e[1] === 'X' ? Number.parseInt(e.slice(2), 16) : Number(e.slice(1));
      return Number.isInteger(code) && code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : m;
    }
    return ENTITIES[e.toLowerCase()] ?? m;
  });
}

/** The page's `<title>`, whitespace-collapsed and at most 300 characters. */
export function parseTitle(html: string): string | null {
  const m = /<title[^>]*>([\s\S]*?)<\/title>/i.exec(html);
  if (!m) return null;
  const title = decodeEntities(m[1] as string)
    .replace(/\s+/g, ' ')
    .trim();
  return title ? title.slice(0, 300) : null;
}

/** Reads at most `maxBytes` of the body, then stops the download. */
async function readCapped(res: Response, maxBytes: number): Promise<string> {
  if (!res.body) return '';
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < maxBytes) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.byteLength;
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
  return Buffer.concat(chunks).subarray(0, maxBytes).toString('utf8');
}

/**
 * Fetches a page's title: http(s) only, redirects followed by hand (each hop re-checked) up to
 * a bound, HTML only, and at most `maxBytes` read. Transient failures throw errors keel's
 * classifier treats as transient; everything else throws {@link PermanentPreviewError}.
 */
export async function fetchTitle(href: string, signal: AbortSignal, options: FetchTitleOptions): Promise<string> {
  let url = new URL(href);
  for (let hop = 0; ; hop++) {
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new PermanentPreviewError(`scheme ${url.protocol} is not fetched`);
    if (!options.allowPrivateHosts) assertPublicHost(url);
    const res = await fetch(url, {
      signal,
      redirect: 'manual',
      headers: { accept: 'text/html', 'user-agent': 'keel-forum-preview/1' },
      ...(options.dispatcher ? { dispatcher: options.dispatcher } : {}),
    });
    if (res.status >= 300 && res.status < 400 && res.headers.get('location')) {
      await res.body?.cancel();
      if (hop >= options.maxRedirects) throw new PermanentPreviewError('too many redirects');
      url = new URL(res.headers.get('location') as string, url);
      continue;
    }
    if (!res.ok) {
      await res.body?.cancel();
      if (res.status >= 500 || res.status === 429 || res.status === 408) throw new UpstreamStatusError(res.status);
      throw new PermanentPreviewError(`upstream answered ${res.status}`);
    }
    if (!/^text\/html|^application\/xhtml\+xml/i.test(res.headers.get('content-type') ?? '')) {
      await res.body?.cancel();
      throw new PermanentPreviewError('not an HTML page');
    }
    const title = parseTitle(await readCapped(res, options.maxBytes));
    if (!title) throw new PermanentPreviewError(`no <title> in the first ${options.maxBytes} bytes`);
    return title;
  }
}
