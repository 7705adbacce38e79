import type { Statements } from '../connection.ts';

export interface Revision {
  id: number;
  pageId: number;
  parentId: number | null;
  author: { id: number; username: string };
  comment: string;
  size: number;
  createdAt: number;
}

export interface Page {
  id: number;
  namespace: string;
  title: string;
  content: string;
  revisionId: number;
  author: { id: number; username: string };
  categories: string[];
  createdAt: number;
  updatedAt: number;
}

export interface PageRow {
  id: number;
  namespace: string;
  title: string;
  content: string;
  current_revision_id: number;
  author_id: number;
  username: string;
  created_at: number;
  updated_at: number;
}

export interface RevisionRow {
  id: number;
  page_id: number;
  parent_id: number | null;
  author_id: number;
  username: string;
  comment: string;
  size: number;
  created_at: number;
}

export const toPage = (r: PageRow, categories: string[]): Page => ({
  id: r.id,
  namespace: r.namespace,
  title: r.title,
  content: r.content,
  revisionId: r.current_revision_id,
  author: { id: r.author_id, username: r.username },
  categories,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

export const toRevision = (r: RevisionRow): Revision => ({
  id: r.id,
  pageId: r.page_id,
  parentId: r.parent_id,
  author: { id: r.author_id, username: r.username },
  comment: r.comment,
  size: r.size,
  createdAt: r.created_at,
});

export function createWikiRepository(st: Statements) {
  const byTitle = st.prepare(
    'pages.byTitle',
    `SELECT p.id, p.namespace, p.title, p.content, p.current_revision_id, p.author_id, u.username, p.created_at, p.updated_at
     FROM pages p JOIN users u ON u.id = p.author_id WHERE p.namespace = ? AND p.title = ?`,
  );
  const categoriesOf = st.prepare(
    'pages.categories',
    'SELECT c.name FROM page_categories pc JOIN categories c ON c.id = pc.category_id WHERE pc.page_id = ? ORDER BY c.name',
    ['temp-btree: sorting one page\u2019s few category names'],
  );
  const insertPage = st.prepare(
    'pages.insert',
    'INSERT INTO pages (namespace, title, content, author_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id',
  );
  const insertRevision = st.prepare(
    'revisions.insert',
    'INSERT INTO revisions (page_id, parent_id, author_id, content, comment, created_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id',
  );
  // The compare-and-set that makes edits optimistic: it only moves the page forward from the
  // revision the editor started from.
  const advance = st.prepare(
    'pages.advance',
    'UPDATE pages SET content = ?, current_revision_id = ?, updated_at = ? WHERE id = ? AND current_revision_id IS ?',
  );
  const revisionsFirst = st.prepare(
    'revisions.list',
    `SELECT r.id, r.page_id, r.parent_id, r.author_id, u.username, r.comment, length(r.content) AS size, r.created_at
     FROM revisions r JOIN users u ON u.id = r.author_id WHERE r.page_id = ? ORDER BY r.created_at DESC, r.id DESC LIMIT ?`,
  );
  const revisionsAfter = st.prepare(
    'revisions.listAfter',
    `SELECT r.id, r.page_id, r.parent_id, r.author_id, u.username, r.comment, length(r.content) AS size, r.created_at
     FROM revisions r JOIN users u ON u.id = r.author_id
     WHERE r.page_id = ? AND (r.created_at < ? OR (r.created_at = ? AND r.id < ?))
     ORDER BY r.created_at DESC, r.id DESC LIMIT ?`,
  );
  const upsertCategory = st.prepare(
    'categories.upsert',
    'INSERT INTO categories (name) VALUES (?) ON CONFLICT(name) DO UPDATE SET name = excluded.name RETURNING id',
  );
  const clearCategories = st.prepare('pageCategories.clear', 'DELETE FROM page_categories WHERE page_id = ?');
  const linkCategory = st.prepare('pageCategories.insert', 'INSERT OR IGNORE INTO page_categories (page_id, category_id) VALUES (?, ?)');

  return {
    get(namespace: string, title: string): Page | undefined {
      const r = byTitle.get(namespace, title) as PageRow | undefined;
      return r && toPage(r, categoriesOf.pluck().all(r.id) as string[]);
    },
    /** Creates the page and its first revision; call inside a transaction. Returns [pageId, revisionId]. */
    create(namespace: string, title: string, content: string, comment: string, authorId: number, now: number): [number, number] {
      const { id: pageId } = insertPage.get(namespace, title, content, authorId, now, now) as { id: number };
      const { id: revId } = insertRevision.get(pageId, null, authorId, content, comment, now) as { id: number };
      advance.run(content, revId, now, pageId, null);
      return [pageId, revId];
    },
    /**
     * Adds a revision on top of `baseRevision`. Returns the new revision id, or null when the
     * page has moved on (a concurrent edit won). Call inside a transaction.
     */
    edit(pageId: number, baseRevision: number, content: string, comment: string, authorId: number, now: number): number | null {
      const { id: revId } = insertRevision.get(pageId, baseRevision, authorId, content, comment, now) as { id: number };
      if (advance.run(content, revId, now, pageId, baseRevision).changes === 0) return null;
      return revId;
    },
    setCategories(pageId: number, names: readonly string[]): void {
      clearCategories.run(pageId);
      for (const name of names) {
        const { id } = upsertCategory.get(name) as { id: number };
        linkCategory.run(pageId, id);
      }
    },
    revisions(pageId: number, after: { createdAt: number; id: number } | null, limit: number): Revision[] {
      const rows = after
        ? revisionsAfter.all(pageId, after.createdAt, after.createdAt, after.id, limit)
        : revisionsFirst.all(pageId, limit);
      return (rows as RevisionRow[]).map(toRevision);
    },
  };
}
export type WikiRepository = ReturnType<typeof createWikiRepository>;
