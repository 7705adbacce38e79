import type { Statement, Statements } from '../connection.ts';

export interface SearchFilters {
  forumId: number | null;
  namespace: string | null;
  authorId: number | null;
  from: number | null;
  to: number | null;
}

export interface SearchCursor {
  rank: number;
  kind: 'page' | 'post';
  id: number;
}

export interface SearchHit {
  kind: 'post' | 'page';
  id: number;
  rank: number;
  title: string;
  snippet: string;
  topicId: number | null;
  namespace: string | null;
  authorId: number;
  createdAt: number;
}

// Snippet markers that cannot occur in stored text; the service HTML-escapes the snippet and
// then turns them into <mark> tags, so user text can never inject markup.
export const MARK_OPEN = '\u0002';
export const MARK_CLOSE = '\u0003';

// better-sqlite3 binds JS numbers as REAL, and FTS5 answers `rowid = <real>` with EVERY row
// (measured: 189,711 rows for one id), so rowid parameters are cast to INTEGER in SQL.
const ALLOW = ['temp-btree: ranking matches by bm25 sorts the matching rows; FTS5 drives the lookup'];

type Kind = 'all' | 'post' | 'page';

/** What step two reads for one ranked hit: a post's topic title, or a page's title and namespace. */
export interface HitDetail {
  title: string;
  snippet: string;
  topic_id?: number;
  namespace?: string;
  author_id: number;
  created_at: number;
}

/** A ranked id (step one) and its detail (step two) as a hit. */
export function toHit(r: { kind: 'post' | 'page'; id: number; rank: number }, d: HitDetail): SearchHit {
  return {
    kind: r.kind,
    id: r.id,
    rank: r.rank,
    title: d.title,
    snippet: d.snippet,
    topicId: d.topic_id ?? null,
    namespace: d.namespace ?? null,
    authorId: d.author_id,
    createdAt: d.created_at,
  };
}

/**
 * Search runs in two steps. Step one ranks ids only: bm25 over the matches, no joins unless a
 * filter needs one, no snippets. Step two builds titles and snippets for the ≤ `limit` winners.
 * Measured at `large` (500k posts, a word in ~30% of them): snippets and joins for every match
 * made one query take ~1 s; ranking ids alone takes ~100 ms.
 *
 * Ranking is further bounded to the `window` most recent matches of each kind (rowids grow with
 * time), so the cost of a very common word stops growing with the corpus. The trade-off: an old
 * post outside the window is found only by a more specific query or a date filter.
 */
export function createSearchRepository(st: Statements, window = 20_000) {
  const postFilterSql = `AND (@forumId IS NULL OR t.forum_id = @forumId) AND (@authorId IS NULL OR p.author_id = @authorId)
        AND (@from IS NULL OR p.created_at >= @from) AND (@to IS NULL OR p.created_at < @to) AND @namespace IS NULL`;
  const pageFilterSql = `AND (@namespace IS NULL OR pg.namespace = @namespace) AND (@authorId IS NULL OR pg.author_id = @authorId)
        AND (@from IS NULL OR pg.updated_at >= @from) AND (@to IS NULL OR pg.updated_at < @to) AND @forumId IS NULL`;
  const postsPart = (filtered: boolean) =>
    filtered
      ? `SELECT 'post' AS kind, posts_fts.rowid AS id, bm25(posts_fts) AS rank FROM posts_fts
         CROSS JOIN posts p ON p.id = posts_fts.rowid CROSS JOIN topics t ON t.id = p.topic_id
         WHERE posts_fts MATCH @q AND posts_fts.rowid > CAST(@minPost AS INTEGER) ${postFilterSql}`
      : `SELECT 'post' AS kind, rowid AS id, bm25(posts_fts) AS rank FROM posts_fts WHERE posts_fts MATCH @q AND rowid > CAST(@minPost AS INTEGER)`;
  const pagesPart = (filtered: boolean) =>
    filtered
      ? `SELECT 'page' AS kind, pages_fts.rowid AS id, bm25(pages_fts, 4.0, 1.0) AS rank FROM pages_fts
         CROSS JOIN pages pg ON pg.id = pages_fts.rowid
         WHERE pages_fts MATCH @q AND pages_fts.rowid > CAST(@minPage AS INTEGER) ${pageFilterSql}`
      : `SELECT 'page' AS kind, rowid AS id, bm25(pages_fts, 4.0, 1.0) AS rank FROM pages_fts WHERE pages_fts MATCH @q AND rowid > CAST(@minPage AS INTEGER)`;
  const rankedSql = (kind: Kind, filtered: boolean) => {
    const parts = [kind !== 'page' && postsPart(filtered), kind !== 'post' && pagesPart(filtered)].filter(Boolean).join(' UNION ALL ');
    return `SELECT kind, id, rank FROM (${parts}) WHERE (rank, kind, id) > (@cRank, @cKind, @cId) ORDER BY rank, kind, id LIMIT @limit`;
  };
  const ranked = {} as Record<`${Kind}:${boolean}`, Statement>;
  for (const kind of ['all', 'post', 'page'] as const) {
    for (const filtered of [false, true])
      ranked[`${kind}:${filtered}`] = st.prepare(`search.${kind}${filtered ? '.filtered' : ''}`, rankedSql(kind, filtered), ALLOW);
  }
  const postFloor = st.prepare(
    'search.postWindow',
    'SELECT rowid FROM posts_fts WHERE posts_fts MATCH ? ORDER BY rowid DESC LIMIT 1 OFFSET ?',
  );
  const pageFloor = st.prepare(
    'search.pageWindow',
    'SELECT rowid FROM pages_fts WHERE pages_fts MATCH ? ORDER BY rowid DESC LIMIT 1 OFFSET ?',
  );
  const postDetail = st.prepare(
    'search.postDetail',
    `SELECT t.title, snippet(posts_fts, 0, '${MARK_OPEN}', '${MARK_CLOSE}', '…', 16) AS snippet, p.topic_id, p.author_id, p.created_at
     FROM posts_fts CROSS JOIN posts p ON p.id = posts_fts.rowid CROSS JOIN topics t ON t.id = p.topic_id
     WHERE posts_fts MATCH @q AND posts_fts.rowid = CAST(@id AS INTEGER)`,
  );
  const pageDetail = st.prepare(
    'search.pageDetail',
    `SELECT pg.title, snippet(pages_fts, 1, '${MARK_OPEN}', '${MARK_CLOSE}', '…', 16) AS snippet, pg.namespace, pg.author_id, pg.updated_at AS created_at
     FROM pages_fts CROSS JOIN pages pg ON pg.id = pages_fts.rowid
     WHERE pages_fts MATCH @q AND pages_fts.rowid = CAST(@id AS INTEGER)`,
  );

  return {
    /** `q` must already be a safe FTS5 expression (see services/search.ts). */
    search(q: string, kind: Kind, filters: SearchFilters, after: SearchCursor | null, limit: number): SearchHit[] {
      const filtered =
        filters.forumId !== null || filters.namespace !== null || filters.authorId !== null || filters.from !== null || filters.to !== null;
      const minPost = kind === 'page' ? 0 : ((postFloor.pluck().get(q, window) as number | undefined) ?? 0);
      const minPage = kind === 'post' ? 0 : ((pageFloor.pluck().get(q, window) as number | undefined) ?? 0);
      const rows = ranked[`${kind}:${filtered}`].all({
        q,
        ...filters,
        minPost,
        minPage,
        cRank: after?.rank ?? Number.NEGATIVE_INFINITY,
        cKind: after?.kind ?? '',
        cId: after?.id ?? 0,
        limit,
      }) as Array<{ kind: 'post' | 'page'; id: number; rank: number }>;
      return rows.map((r) => toHit(r, (r.kind === 'post' ? postDetail : pageDetail).get({ q, id: r.id }) as HitDetail));
    },
  };
}
export type SearchRepository = ReturnType<typeof createSearchRepository>;
