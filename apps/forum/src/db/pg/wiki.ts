/** Wiki pages and revisions on PostgreSQL, as repositories/wiki.ts; `save` is the store's savePage. */
import type pg from 'pg';
import { type Page, type PageRow, type Revision, type RevisionRow, toPage, toRevision } from '../repositories/wiki.ts';
import type { PageWrite, TimeKey } from '../store.ts';
import type { Db } from './client.ts';

// One round trip: the page and its category names.
const PAGE = `SELECT p.id, p.namespace, p.title, p.content, p.current_revision_id, p.author_id, u.username, p.created_at, p.updated_at,
    coalesce((SELECT array_agg(c.name ORDER BY c.name COLLATE "C") FROM page_categories pc JOIN categories c ON c.id = pc.category_id
              WHERE pc.page_id = p.id), '{}') AS categories
  FROM pages p JOIN users u ON u.id = p.author_id WHERE p.namespace = $1 AND p.title = $2`;
const REVISION_COLUMNS = 'r.id, r.page_id, r.parent_id, r.author_id, u.username, r.comment, length(r.content) AS size, r.created_at';

const SQL = {
  byTitle: PAGE,
  // Inside savePage's transaction: the row stays locked until commit, so no other edit of the
  // page lands between decide's read and the write.
  byTitleForUpdate: `${PAGE} FOR UPDATE OF p`,
  insertPage:
    'INSERT INTO pages (namespace, title, content, author_id, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5) RETURNING id',
  insertRevision:
    'INSERT INTO revisions (page_id, parent_id, author_id, content, comment, created_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id',
  advance:
    'UPDATE pages SET content = $1, current_revision_id = $2, updated_at = $3 WHERE id = $4 AND current_revision_id IS NOT DISTINCT FROM $5',
  revisionsFirst: `SELECT ${REVISION_COLUMNS} FROM revisions r JOIN users u ON u.id = r.author_id
    WHERE r.page_id = $1 ORDER BY r.created_at DESC, r.id DESC LIMIT $2`,
  revisionsAfter: `SELECT ${REVISION_COLUMNS} FROM revisions r JOIN users u ON u.id = r.author_id
    WHERE r.page_id = $1 AND (r.created_at, r.id) < ($2, $3) ORDER BY r.created_at DESC, r.id DESC LIMIT $4`,
  clearCategories: 'DELETE FROM page_categories WHERE page_id = $1',
  upsertCategories: 'INSERT INTO categories (name) SELECT DISTINCT unnest($1::text[]) ON CONFLICT (name) DO NOTHING',
  linkCategories:
    'INSERT INTO page_categories (page_id, category_id) SELECT $1, id FROM categories WHERE name = ANY ($2::text[]) ON CONFLICT DO NOTHING',
} as const;

/** A unique violation (SQLSTATE 23505). */
const isUniqueViolation = (err: unknown) => (err as { code?: unknown } | null)?.code === '23505';

export function wikiQueries(db: Db) {
  async function setCategories(c: pg.PoolClient, pageId: number, names: readonly string[]): Promise<void> {
    await db.changes('pageCategories.clear', SQL.clearCategories, [pageId], c);
    if (names.length === 0) return;
    await db.changes('categories.upsert', SQL.upsertCategories, [names], c);
    await db.changes('pageCategories.insert', SQL.linkCategories, [pageId, names], c);
  }

  return {
    async get(namespace: string, title: string): Promise<Page | undefined> {
      const [r] = await db.query<PageRow & { categories: string[] }>('pages.byTitle', SQL.byTitle, [namespace, title]);
      return r && toPage(r, r.categories);
    },
    async revisions(pageId: number, after: TimeKey | null, limit: number): Promise<Revision[]> {
      const rows = after
        ? await db.query<RevisionRow>('revisions.listAfter', SQL.revisionsAfter, [pageId, after.createdAt, after.id, limit])
        : await db.query<RevisionRow>('revisions.list', SQL.revisionsFirst, [pageId, limit]);
      return rows.map(toRevision);
    },
    async save(
      namespace: string,
      title: string,
      authorId: number,
      at: number,
      decide: (current: Page | undefined) => PageWrite,
    ): Promise<boolean | null> {
      // Whether decide chose to create: only then is a unique violation a lost race.
      let creating = false;
      try {
        return await db.transaction(async (c) => {
          const [row] = await db.query<PageRow & { categories: string[] }>(
            'pages.byTitleForUpdate',
            SQL.byTitleForUpdate,
            [namespace, title],
            c,
          );
          const w = decide(row && toPage(row, row.categories));
          if (w.op === 'create') {
            creating = true;
            // No row to lock yet: of two first saves at once, the second waits on the unique
            // index (namespace, title) until the first commits, then fails with 23505.
            const [page] = await db.query<{ id: number }>('pages.insert', SQL.insertPage, [namespace, title, w.content, authorId, at], c);
            const pageId = (page as { id: number }).id;
            const [rev] = await db.query<{ id: number }>(
              'revisions.insert',
              SQL.insertRevision,
              [pageId, null, authorId, w.content, w.comment, at],
              c,
            );
            await db.changes('pages.advance', SQL.advance, [w.content, (rev as { id: number }).id, at, pageId, null], c);
            if (w.categories) await setCategories(c, pageId, w.categories);
            return true;
          }
          const [rev] = await db.query<{ id: number }>(
            'revisions.insert',
            SQL.insertRevision,
            [w.pageId, w.baseRevision, authorId, w.content, w.comment, at],
            c,
          );
          // Thrown to roll back the revision just inserted; the row lock makes it unreachable
          // unless decide named a revision it did not read.
          if (
            (await db.changes('pages.advance', SQL.advance, [w.content, (rev as { id: number }).id, at, w.pageId, w.baseRevision], c)) === 0
          )
            throw LOST;
          if (w.categories) await setCategories(c, w.pageId, w.categories);
          return false;
        });
      } catch (err) {
        if (err === LOST || (creating && isUniqueViolation(err))) return null;
        throw err;
      }
    },
  };
}

const LOST = Symbol('lost');
