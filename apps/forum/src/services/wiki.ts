import type { Repositories } from '../db/index.ts';
import type { PublicUser } from '../db/repositories/users.ts';
import type { Page } from '../db/repositories/wiki.ts';
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
export function createWikiService(repos: Repositories, events: ForumEventBus, now: () => number = Date.now) {
  return {
    get(namespace: string, title: string): Page {
      const page = repos.wiki.get(namespace, title);
      if (!page) throw notFound('page');
      return page;
    },
    /**
     * Creates the page or adds a revision. A stale `baseRevision` is a 409 carrying the current
     * revision, so the client can merge and retry: no edit is ever lost silently.
     */
    put(namespace: string, title: string, user: PublicUser, edit: PageEdit): { page: Page; created: boolean } {
      const at = now();
      const created = repos.transaction(() => {
        const current = repos.wiki.get(namespace, title);
        if (!current) {
          if (edit.baseRevision !== null) throw notFound('page');
          const [pageId] = repos.wiki.create(namespace, title, edit.content, edit.comment, user.id, at);
          if (edit.categories) repos.wiki.setCategories(pageId, edit.categories);
          return true;
        }
        if (current.author.id !== user.id) throw forbidden('only the page owner can edit this page');
        if (edit.baseRevision === null) throw badRequest('baseRevision', 'baseRevision is required to edit an existing page');
        const stale = () =>
          conflict('the page changed since that revision', {
            current: { revisionId: current.revisionId, content: current.content, updatedAt: current.updatedAt },
          });
        if (edit.baseRevision !== current.revisionId) throw stale();
        if (repos.wiki.edit(current.id, edit.baseRevision, edit.content, edit.comment, user.id, at) === null) throw stale();
        if (edit.categories) repos.wiki.setCategories(current.id, edit.categories);
        return false;
      });
      const page = repos.wiki.get(namespace, title) as Page;
      events.emit('page.updated', { namespace, title, pageId: page.id, revisionId: page.revisionId });
      return { page, created };
    },
    revisions(namespace: string, title: string, after: { createdAt: number; id: number } | null, limit: number) {
      const page = repos.wiki.get(namespace, title);
      if (!page) throw notFound('page');
      return repos.wiki.revisions(page.id, after, limit);
    },
  };
}
export type WikiService = ReturnType<typeof createWikiService>;
