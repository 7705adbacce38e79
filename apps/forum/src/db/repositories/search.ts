import type { Statements } from '../connection.ts';

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

const ALLOW = [
  'temp-btree: ranking matches by bm25 needs a sort of the matching rows; FTS5 drives the lookup',
  'scan: FTS5 virtual-table match (an index lookup, reported as SCAN by the planner)',
];

export function createSearchRepository(st: Statements) {
  const sql = (kinds: string) => `
    SELECT kind, id, rank, title, snippet, topic_id, namespace, author_id, created_at FROM (
      SELECT 'post' AS kind, p.id AS id, bm25(posts_fts) AS rank, t.title AS title,
             snippet(posts_fts, 0, '${MARK_OPEN}', '${MARK_CLOSE}', '…', 16) AS snippet,
             p.topic_id AS topic_id, NULL AS namespace, p.author_id AS author_id, p.created_at AS created_at
      FROM posts_fts JOIN posts p ON p.id = posts_fts.rowid JOIN topics t ON t.id = p.topic_id
      WHERE posts_fts MATCH @q AND ${kinds.includes('post') ? '1' : '0'} AND p.deleted = 0 AND @namespace IS NULL
        AND (@forumId IS NULL OR t.forum_id = @forumId) AND (@authorId IS NULL OR p.author_id = @authorId)
        AND (@from IS NULL OR p.created_at >= @from) AND (@to IS NULL OR p.created_at < @to)
      UNION ALL
      SELECT 'page', pg.id, bm25(pages_fts, 4.0, 1.0), pg.title,
             snippet(pages_fts, 1, '${MARK_OPEN}', '${MARK_CLOSE}', '…', 16),
             NULL, pg.namespace, pg.author_id, pg.updated_at
      FROM pages_fts JOIN pages pg ON pg.id = pages_fts.rowid
      WHERE pages_fts MATCH @q AND ${kinds.includes('page') ? '1' : '0'} AND @forumId IS NULL
        AND (@namespace IS NULL OR pg.namespace = @namespace) AND (@authorId IS NULL OR pg.author_id = @authorId)
        AND (@from IS NULL OR pg.updated_at >= @from) AND (@to IS NULL OR pg.updated_at < @to)
    )
    WHERE (rank, kind, id) > (@cRank, @cKind, @cId)
    ORDER BY rank, kind, id LIMIT @limit`;
  const statements = {
    all: st.prepare('search.all', sql('post,page'), ALLOW),
    post: st.prepare('search.posts', sql('post'), ALLOW),
    page: st.prepare('search.pages', sql('page'), ALLOW),
  };
  return {
    /** `q` must already be a safe FTS5 expression (see services/search.ts). */
    search(q: string, kind: 'all' | 'post' | 'page', filters: SearchFilters, after: SearchCursor | null, limit: number): SearchHit[] {
      const rows = statements[kind].all({
        q,
        ...filters,
        cRank: after?.rank ?? Number.NEGATIVE_INFINITY,
        cKind: after?.kind ?? '',
        cId: after?.id ?? 0,
        limit,
      }) as Array<
        Omit<SearchHit, 'topicId' | 'authorId' | 'createdAt'> & { topic_id: number | null; author_id: number; created_at: number }
      >;
      return rows.map((r) => ({
        kind: r.kind,
        id: r.id,
        rank: r.rank,
        title: r.title,
        snippet: r.snippet,
        topicId: r.topic_id,
        namespace: r.namespace,
        authorId: r.author_id,
        createdAt: r.created_at,
      }));
    },
  };
}
export type SearchRepository = ReturnType<typeof createSearchRepository>;
