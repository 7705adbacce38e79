/**
 * Search on PostgreSQL, in the same two steps as repositories/search.ts: rank ids only (over the
 * `window` most recent matches of each kind, so a very common word costs a bounded amount), then
 * titles and snippets for the winners. Rank is `-ts_rank`, so as with SQLite's bm25 lower is
 * better and a cursor `(rank, kind, id)` continues in ascending order; it is float8 so the value
 * a client sends back in its cursor compares equal to the one PostgreSQL computes again.
 *
 * The window takes ids only, and each id's rank is read by primary key: sorting the matches
 * with their tsvectors spilled ~100 MB to disk for a common word on `large` (190k matching
 * posts), and a join back let the planner seq-scan all 500k posts for 20k of them.
 *
 * The ranking statement runs unprepared, so PostgreSQL plans it with the words' own frequency.
 * Prepared (and with the tsquery in a CTE, as before), its estimate was the default 0.5% of the
 * rows for any word: for a word in 38% of posts that planned a bitmap scan of all 190k matches
 * and a sort, where a backward scan of the primary key stops after 20k matches (EXPLAIN
 * ANALYZE on `large`: 500 ms a common word before, 230 ms now; planning costs ~1 ms a search).
 *
 * Unlike SQLite, filters apply before the window: a filtered search ranks the most recent
 * matches that pass the filter, not those among the most recent matches overall.
 */
import {
  type HitDetail,
  MARK_CLOSE,
  MARK_OPEN,
  type SearchCursor,
  type SearchFilters,
  type SearchHit,
  toHit,
} from '../repositories/search.ts';
import type { SearchTerms } from '../store.ts';
import type { Db } from './client.ts';

/** The tsquery text for checked words (letters, digits and `_` only, so no tsquery syntax can pass): all required, the last a prefix when asked. */
export function tsQuery(terms: SearchTerms): string {
  const last = terms.words.length - 1;
  return terms.words.map((w, i) => `'${w}'${terms.prefix && i === last ? ':*' : ''}`).join(' & ');
}

// $1 query, $2 kind, $3 forum, $4 namespace, $5 author, $6 from, $7 to, $8 window,
// $9/$10/$11 cursor (rank, kind, id), $12 limit. Run unprepared (see the module comment).
const RANKED = `
WITH post_ids AS (
  SELECT p.id FROM posts p
  WHERE $2 <> 'page' AND $4::text IS NULL AND p.body_tsv @@ to_tsquery('simple', $1)
    AND ($3::int IS NULL OR p.topic_id IN (SELECT id FROM topics WHERE forum_id = $3))
    AND ($5::int IS NULL OR p.author_id = $5) AND ($6::bigint IS NULL OR p.created_at >= $6) AND ($7::bigint IS NULL OR p.created_at < $7)
  ORDER BY p.id DESC LIMIT $8),
page_ids AS (
  SELECT pg.id FROM pages pg
  WHERE $2 <> 'post' AND $3::int IS NULL AND pg.tsv @@ to_tsquery('simple', $1)
    AND ($4::text IS NULL OR pg.namespace = $4)
    AND ($5::int IS NULL OR pg.author_id = $5) AND ($6::bigint IS NULL OR pg.updated_at >= $6) AND ($7::bigint IS NULL OR pg.updated_at < $7)
  ORDER BY pg.id DESC LIMIT $8),
ranked AS MATERIALIZED (
  SELECT 'post'::text AS kind, i.id,
    (SELECT -ts_rank(p.body_tsv, to_tsquery('simple', $1)) FROM posts p WHERE p.id = i.id)::float8 AS rank FROM post_ids i
  UNION ALL
  SELECT 'page'::text, i.id, (SELECT -ts_rank(pg.tsv, to_tsquery('simple', $1)) FROM pages pg WHERE pg.id = i.id)::float8 FROM page_ids i)
SELECT kind, id, rank FROM ranked WHERE (rank, kind, id) > ($9::float8, $10::text, $11::int) ORDER BY rank, kind, id LIMIT $12`;

const HEADLINE = `StartSel=${MARK_OPEN}, StopSel=${MARK_CLOSE}, MaxWords=16, MinWords=6, ShortWord=0, MaxFragments=1, FragmentDelimiter=" … "`;

const POST_DETAIL = `SELECT p.id, t.title, ts_headline('simple', p.body, to_tsquery('simple', $1), $3) AS snippet, p.topic_id, p.author_id, p.created_at
  FROM posts p JOIN topics t ON t.id = p.topic_id WHERE p.id = ANY ($2::int[])`;
const PAGE_DETAIL = `SELECT pg.id, pg.title, ts_headline('simple', pg.content, to_tsquery('simple', $1), $3) AS snippet, pg.namespace, pg.author_id,
    pg.updated_at AS created_at
  FROM pages pg WHERE pg.id = ANY ($2::int[])`;

interface Detail extends HitDetail {
  id: number;
}

export function searchQueries(db: Db, window = 20_000) {
  return {
    async search(
      terms: SearchTerms,
      kind: 'all' | 'post' | 'page',
      f: SearchFilters,
      after: SearchCursor | null,
      limit: number,
    ): Promise<SearchHit[]> {
      const q = tsQuery(terms);
      const values = [
        q,
        kind,
        f.forumId,
        f.namespace,
        f.authorId,
        f.from,
        f.to,
        window,
        after?.rank ?? Number.NEGATIVE_INFINITY,
        after?.kind ?? '',
        after?.id ?? 0,
        limit,
      ];
      const rows = await db.transaction(async (c) => {
        // Parallel workers start in 7-25 ms on this VM: most of a rare word's search, and no help
        // to a common word's ranking (230 ms either way). SET LOCAL ends with the transaction.
        await c.query('SET LOCAL max_parallel_workers_per_gather = 0');
        return db.query<{ kind: 'post' | 'page'; id: number; rank: number }>('search.ranked', RANKED, values, c, { prepare: false });
      });
      const ids = (k: 'post' | 'page') => rows.filter((r) => r.kind === k).map((r) => r.id);
      const [posts, pages] = await Promise.all([
        ids('post').length ? db.query<Detail>('search.postDetail', POST_DETAIL, [q, ids('post'), HEADLINE]) : [],
        ids('page').length ? db.query<Detail>('search.pageDetail', PAGE_DETAIL, [q, ids('page'), HEADLINE]) : [],
      ]);
      const detail = new Map<string, Detail>();
      for (const d of posts) detail.set(`post:${d.id}`, d);
      for (const d of pages) detail.set(`page:${d.id}`, d);
      const hits: SearchHit[] = [];
      for (const r of rows) {
        // A row deleted between the two steps drops out of the page rather than failing it.
        const d = detail.get(`${r.kind}:${r.id}`);
        if (!d) continue;
        hits.push(toHit(r, d));
      }
      return hits;
    },
  };
}
