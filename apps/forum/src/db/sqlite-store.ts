import type { Repositories } from './index.ts';
import { type ForumStore, type PageWrite, type SearchTerms, UsernameTakenError } from './store.ts';

/**
 * A safe FTS5 expression for checked words: each quoted, all required, the last one a prefix
 * match when asked. The words hold only letters, digits and `_` (services/search.ts), so no
 * FTS5 syntax can reach the query.
 */
export function ftsExpression(terms: SearchTerms): string {
  const last = terms.words.length - 1;
  return terms.words.map((w, i) => `"${w}"${terms.prefix && i === last ? ' *' : ''}`).join(' ');
}

/**
 * The {@link ForumStore} over the SQLite repositories: reads pass straight through (plain values,
 * no promises), and each atomic write is one synchronous IMMEDIATE transaction, so nothing else on
 * the shared connection runs inside it.
 *
 * @example
 * ```ts
 * const repos = openRepositories(':memory:');
 * const store = createSqliteStore(repos);
 * await store.forums.list(null, 10);
 * ```
 */
export function createSqliteStore(repos: Repositories): ForumStore {
  // Thrown inside savePage's transaction to roll back a revision whose compare-and-set lost.
  const lost = Symbol('lost');
  const ping = repos.db.prepare('SELECT id FROM forums LIMIT 1').pluck();
  return {
    kind: 'sqlite',
    stats: repos.statements.stats,
    forums: repos.forums,
    topics: repos.topics,
    posts: repos.posts,
    sessions: repos.sessions,
    // SQLite hands out due rows without leasing them (it has no row locks to lease with), so
    // there is nothing to give back.
    previews: { ...repos.previews, release() {} },
    wiki: repos.wiki,
    users: {
      insert(username, passwordHash, now) {
        try {
          return repos.users.insert(username, passwordHash, now);
        } catch (err) {
          // Two registrations raced past the service's check; the UNIQUE index decided.
          if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE') throw new UsernameTakenError(err);
          throw err;
        }
      },
      byName: repos.users.byName,
      byId: repos.users.byId,
    },
    search: {
      search: (terms, kind, filters, after, limit) => repos.search.search(ftsExpression(terms), kind, filters, after, limit),
    },
    createTopic({ forumId, authorId, title, body, urls, at }) {
      return repos.transaction(() => {
        const topicId = repos.topics.insert(forumId, authorId, title, at);
        const postId = repos.posts.insert(topicId, null, authorId, body, at);
        repos.previews.enqueue(postId, urls, at);
        repos.topics.touch(topicId, at);
        return { topicId, postId };
      });
    },
    createPost({ topicId, parent, author, body, urls, at }) {
      return repos.transaction(() => {
        // The topic's bump goes first: it says whether the topic exists, and its forum, with no
        // read of its own (a reply used to read the topic first, and its own post back after).
        const forumId = repos.topics.touch(topicId, at);
        if (forumId === undefined) return undefined;
        const post = repos.posts.create(topicId, parent, author, body, at);
        // Queued in the post's own transaction: saving never waits on the upstream, and a
        // preview can't be lost between the post and its queue entry.
        repos.previews.enqueue(post.id, urls, at);
        return { post, forumId };
      });
    },
    editPost({ id, body, urls, at }) {
      return repos.transaction(() => {
        if (!repos.posts.update(id, body, at)) return false;
        // A link the edit removed keeps no preview (nor a pending fetch); kept links keep theirs.
        repos.previews.keepOnly(id, urls);
        repos.previews.enqueue(id, urls, at);
        return true;
      });
    },
    deletePost(id, at) {
      repos.transaction(() => {
        repos.posts.softDelete(id, at);
        // The post's row stays as a tombstone, so ON DELETE CASCADE never fires: its previews
        // (titles of links nobody can see any more, and pending fetches) go here.
        repos.previews.removeAll(id);
      });
    },
    savePage(namespace, title, authorId, at, decide) {
      try {
        return repos.transaction(() => {
          const w: PageWrite = decide(repos.wiki.get(namespace, title));
          if (w.op === 'create') {
            const [pageId] = repos.wiki.create(namespace, title, w.content, w.comment, authorId, at);
            if (w.categories) repos.wiki.setCategories(pageId, w.categories);
            return true;
          }
          // Inside the write lock the page cannot move between decide's read and this write, so
          // the compare-and-set fails only if decide named a revision it did not read.
          if (repos.wiki.edit(w.pageId, w.baseRevision, w.content, w.comment, authorId, at) === null) throw lost;
          if (w.categories) repos.wiki.setCategories(w.pageId, w.categories);
          return false;
        });
      } catch (err) {
        if (err === lost) return null;
        throw err;
      }
    },
    ping() {
      ping.get();
    },
    close() {
      repos.close();
    },
  };
}
