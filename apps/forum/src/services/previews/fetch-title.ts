import { type Dispatcher, fetch, type Response } from 'undici';
import { ForbiddenAddressError, isForbiddenAddress } from './address-policy.ts';

export interface FetchTitleOptions {
  /** Bytes of the page read at most; the title must appear within them. */
  maxBytes: number;
  /** Redirects followed at most. */
  maxRedirects: number;
  /** Allow loopback and private-network hosts (tests, intranets). */
  allowPrivateHosts: boolean;
  /**
   * The connection pool to use (owned by the caller, closed with it). Unless
   * `allowPrivateHosts`, it must resolve names with `publicOnlyLookup`: only literal addresses
   * are checked here.
   */
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

/**
 * Rejects literal addresses that are not public (including IPv4-mapped and NAT64 forms) and
 * `localhost` names. Other names are checked where they resolve, at connect time, by the
 * dispatcher's `publicOnlyLookup`; net.connect skips the lookup for a literal address, hence
 * this check.
 */
function assertPublicHost(url: URL): void {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const isName = !/^[\d.]+$|:/.test(host);
  const forbidden = isName ? host === 'localhost' || host.endsWith('.localhost') : isForbiddenAddress(host);
  if (forbidden) throw new PermanentPreviewError(`host ${host} is not allowed`);
}

/** A connect failure that retrying will not fix, as a permanent error; anything else as it was. */
function classifyFetchError(err: unknown, url: URL): unknown {
  const cause = (err as { cause?: unknown }).cause;
  if (cause instanceof ForbiddenAddressError) return new PermanentPreviewError(cause.message);
  // NXDOMAIN: the name does not exist. A dead link, not an outage: it must not count toward
  // the breaker (which would stall every other preview) or be retried. EAI_AGAIN stays transient.
  if ((cause as { code?: unknown } | undefined)?.code === 'ENOTFOUND')
    return new PermanentPreviewError(`host ${url.hostname} does not resolve`);
  return err;
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
    let res: Response;
    try {
      res = await fetch(url, {
        signal,
        redirect: 'manual',
        headers: { accept: 'text/html', 'user-agent': 'keel-forum-preview/1' },
        ...(options.dispatcher ? { dispatcher: options.dispatcher } : {}),
      });
    } catch (err) {
      throw classifyFetchError(err, url);
    }
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
