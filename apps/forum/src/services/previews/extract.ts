/** At most this many previews per post. */
export const MAX_URLS_PER_POST = 3;

const URL_IN_TEXT = /\bhttps?:\/\/[^\s<>"'`]+/gi;

/**
 * The http(s) URLs in a post body, in order, deduplicated, normalised by the WHATWG parser,
 * at most {@link MAX_URLS_PER_POST}, each at most 2,048 characters. Other schemes are never
 * fetched, so they are never extracted.
 */
export function extractUrls(body: string): string[] {
  const out: string[] = [];
  for (const match of body.matchAll(URL_IN_TEXT)) {
    const raw = match[0].replace(/[.,;:!?)\]]+$/, '');
    if (raw.length > 2048) continue;
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      continue;
    }
    if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.username || url.password) continue;
    url.hash = '';
    const href = url.href;
    if (!out.includes(href)) out.push(href);
    if (out.length === MAX_URLS_PER_POST) break;
  }
  return out;
}
