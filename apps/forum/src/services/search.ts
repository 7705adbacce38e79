import type { Repositories } from '../db/index.ts';
import { MARK_CLOSE, MARK_OPEN, type SearchCursor, type SearchFilters, type SearchHit } from '../db/repositories/search.ts';
import { badRequest } from '../http/errors.ts';

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
const MARKS = new RegExp(`[${MARK_OPEN}${MARK_CLOSE}]`, 'g');

/** HTML-escapes the snippet, then turns the match markers into <mark> tags. */
export function renderSnippet(raw: string): string {
  return raw.replace(/[&<>"']/g, (c) => ESCAPES[c] as string).replace(MARKS, (m) => (m === MARK_OPEN ? '<mark>' : '</mark>'));
}

/**
 * Turns user input into a safe FTS5 query: words only (letters, digits, underscore), each
 * quoted, all required; a trailing `*` on the last word makes it a prefix match. FTS5 syntax
 * in the input (quotes, NEAR, column filters, parentheses) is never passed through, so a
 * query can't fail with a syntax error or select columns it should not.
 */
export function toFtsQuery(q: string): string {
  const words = q.match(/[\p{L}\p{N}_]+/gu)?.slice(0, 16) ?? [];
  if (words.length === 0) throw badRequest('q', 'q must contain at least one word');
  const prefix = /[\p{L}\p{N}_]\*\s*$/u.test(q);
  return words.map((w, i) => `"${w}"${prefix && i === words.length - 1 ? ' *' : ''}`).join(' ');
}

export function createSearchService(repos: Repositories) {
  return {
    search(q: string, kind: 'all' | 'post' | 'page', filters: SearchFilters, after: SearchCursor | null, limit: number): SearchHit[] {
      return repos.search
        .search(toFtsQuery(q), kind, filters, after, limit)
        .map((hit) => ({ ...hit, snippet: renderSnippet(hit.snippet) }));
    },
  };
}
export type SearchService = ReturnType<typeof createSearchService>;
