import type { PublicUser } from '../db/repositories/users.ts';
import type { Page } from '../db/repositories/wiki.ts';
import type { ForumStore, PageWrite, TimeKey } from '../db/store.ts';
import { badRequest, conflict, forbidden, notFound } from '../http/errors.ts';
import type { ForumEventBus } from './events.ts';

export interface PageEdit {
  content: string;
  comment: string;
  /** The revision the editor started from; required for an existing page, absent/null to create. */
  baseRevision: number | null;
  categories?: readonly string[] | undefined;
}

/** Wiki pages with full revision history and optimistic concurrency. */
export function createWikiService(store: ForumStore, events: ForumEventBus, now: () => number = Date.now) {
  /** What to write over the page as it stands (read inside the write transaction). */
  const decide =
    (user: PublicUser, edit: PageEdit) =>
    (current: Page | undefined): PageWrite => {
      const { content, comment, categories } = edit;
      if (!current) {
        if (edit.baseRevision !== null) throw notFound('page');
        return { op: 'create', content, comment, categories };
      }
      if (current.author.id !== user.id) throw forbidden('only the page owner can edit this page');
      if (edit.baseRevision === null) throw badRequest('baseRevision', 'baseRevision is required to edit an existing page');
      if (edit.baseRevision !== current.revisionId)
        throw conflict('the page changed since that revision', {
          current: { revisionId: current.revisionId, content: current.content, updatedAt: current.updatedAt },
        });
      return { op: 'edit', pageId: current.id, baseRevision: current.revisionId, content, comment, categories };
    };

  return {
    async get(namespace: string, title: string): Promise<Page> {
      const page = await store.wiki.get(namespace, title);
      if (!page) throw notFound('page');
      return page;
    },
    /**
     * Creates the page or adds a revision. A stale `baseRevision` is a 409 carrying the current
     * revision, so the client can merge and retry: no edit is ever lost silently.
     */
    async put(namespace: string, title: string, user: PublicUser, edit: PageEdit): Promise<{ page: Page; created: boolean }> {
      const at = now();
      // null: a concurrent first save of the title won the race (PostgreSQL's unique index
      // decided). Asked again, decide sees that page: a 403 or a 409 for this editor.
      let created = await store.savePage(namespace, title, user.id, at, decide(user, edit));
      if (created === null) created = await store.savePage(namespace, title, user.id, at, decide(user, edit));
      if (created === null) throw conflict('the page changed while saving; reload it and retry', {});
      const page = (await store.wiki.get(namespace, title)) as Page;
      events.emit('page.updated', { namespace, title, pageId: page.id, revisionId: page.revisionId });
      return { page, created };
    },
    async revisions(namespace: string, title: string, after: TimeKey | null, limit: number) {
      const page = await store.wiki.get(namespace, title);
      if (!page) throw notFound('page');
      return store.wiki.revisions(page.id, after, limit);
    },
  };
}
export type WikiService = ReturnType<typeof createWikiService>;
