/**
 * The forum's storage contract: what the services need from a database, whichever it is.
 *
 * Two backends implement it: SQLite (db/sqlite-store.ts, the embedded default: one file, one
 * process, synchronous better-sqlite3 underneath) and PostgreSQL (db/pg/store.ts, for several
 * instances side by side on one database). Every method returns {@link Awaitable}: SQLite answers
 * with plain values (no promise on its hot path; the caller's `await` costs one microtask), PostgreSQL
 * with promises.
 *
 * Writes that must be atomic are single methods here (`createPost`, `savePage`…) rather than a
 * generic `transaction(fn)`: SQLite's transaction must never span an `await` (every other request
 * shares its one connection), PostgreSQL's must (each statement is a round trip), so each backend
 * runs its own transaction around the same domain decision.
 */

import type { QueryStats } from './query-stats.ts';
import type { Forum } from './repositories/forums.ts';
import type { Post, ThreadPost } from './repositories/posts.ts';
import type { DuePreview, LinkPreview } from './repositories/previews.ts';
import type { SearchCursor, SearchFilters, SearchHit } from './repositories/search.ts';
import type { Topic } from './repositories/topics.ts';
import type { PublicUser, UserRow } from './repositories/users.ts';
import type { Page, Revision } from './repositories/wiki.ts';

export type Awaitable<T> = T | Promise<T>;

/** A keyset position in a (created_at, id) ordered list. */
export interface TimeKey {
  createdAt: number;
  id: number;
}

/** What a search asks for, already checked (services/search.ts): words of letters, digits and `_` only, all required. */
export interface SearchTerms {
  words: readonly string[];
  /** The last word matches as a prefix. */
  prefix: boolean;
}

/**
 * What {@link ForumStore.savePage}'s `decide` returns for the page as it stands (read inside the
 * write transaction, so no other edit lands in between): what to write. It may throw (an
 * HttpError: not found, forbidden, stale revision); then nothing is written.
 */
// `categories`: the page's full list afterwards (`[]` clears it); left out, the page keeps its own.
export type PageWrite =
  | { op: 'create'; content: string; comment: string; categories?: readonly string[] | undefined }
  | { op: 'edit'; pageId: number; baseRevision: number; content: string; comment: string; categories?: readonly string[] | undefined };

/** Why a username insert failed: it is taken (the UNIQUE index decided a race). */
export class UsernameTakenError extends Error {
  readonly code = 'FORUM_USERNAME_TAKEN';
  constructor(cause?: unknown) {
    super('username is taken', { cause });
    this.name = 'UsernameTakenError';
  }
}

export interface ForumStore {
  /** Which backend this is (`'sqlite'` or `'postgres'`): health checks and the dashboard name it. */
  readonly kind: 'sqlite' | 'postgres';
  /** Timings of every statement, for the dashboard's slowest-SQL table. */
  readonly stats: QueryStats;

  forums: {
    list(after: { position: number; id: number } | null, limit: number): Awaitable<Forum[]>;
    byId(id: number): Awaitable<Forum | undefined>;
  };
  topics: {
    list(forumId: number, after: { updatedAt: number; id: number } | null, limit: number): Awaitable<Topic[]>;
    byId(id: number): Awaitable<Topic | undefined>;
  };
  posts: {
    /** Root posts after the cursor, each with replies down to `maxDepth`, at most `maxRows` rows, each reply right after its parent. */
    topicThread(topicId: number, after: TimeKey | null, roots: number, maxDepth: number, maxRows: number): Awaitable<ThreadPost[]>;
    /**
     * A post and its replies down to `maxDepth` (at most `maxRows` rows); with `after`, only its
     * direct replies after that key (at `threadDepth` 1, counted from the post), each with its
     * replies. Siblings come in id (creation) order; a row bound keeps each parent's first replies.
     */
    subThread(rootId: number, maxDepth: number, maxRows: number, after?: TimeKey | null): Awaitable<ThreadPost[]>;
    byId(id: number): Awaitable<Post | undefined>;
    byAuthor(authorId: number, before: number, limit: number): Awaitable<Post[]>;
  };
  users: {
    /** Throws {@link UsernameTakenError} when the name (case-insensitive) is taken. */
    insert(username: string, passwordHash: string, now: number): Awaitable<PublicUser>;
    /** Case-insensitive. */
    byName(username: string): Awaitable<UserRow | undefined>;
    byId(id: number): Awaitable<PublicUser | undefined>;
  };
  sessions: {
    insert(tokenHash: Buffer, userId: number, now: number, expiresAt: number): Awaitable<void>;
    /** The session's user if it exists and `expires_at > now`. */
    lookup(tokenHash: Buffer, now: number): Awaitable<(PublicUser & { expiresAt: number }) | undefined>;
    delete(tokenHash: Buffer): Awaitable<boolean>;
    deleteExpired(now: number): Awaitable<number>;
  };
  previews: {
    /** Where writes read the `traceparent` of the request queuing previews (the preview worker sets it). `undefined` stops recording. */
    traceFrom(source: (() => string | undefined) | undefined): void;
    /**
     * Pending previews whose time has come, oldest first, at most `limit`. PostgreSQL also leases
     * them to this caller until `now + previewLeaseMs` (other instances skip them until then), so
     * two instances never fetch one preview at once. Each outcome below ends the lease.
     */
    due(now: number, limit: number): Awaitable<DuePreview[]>;
    /** Gives back a preview `due` handed out and nothing was tried for (an open breaker turned it away): it keeps its place in the queue. */
    release(id: number): Awaitable<void>;
    markReady(id: number, title: string, attempts: number, now: number): Awaitable<void>;
    markFailed(id: number, error: string, attempts: number, now: number): Awaitable<void>;
    retryLater(id: number, error: string, at: number, now: number, attempts: number): Awaitable<void>;
    ofPost(postId: number): Awaitable<LinkPreview[]>;
    pendingCount(): Awaitable<number>;
  };
  wiki: {
    get(namespace: string, title: string): Awaitable<Page | undefined>;
    revisions(pageId: number, after: TimeKey | null, limit: number): Awaitable<Revision[]>;
  };
  search: {
    /** Ranked hits (ascending `rank`: best first), after the cursor, at most `limit`; snippets marked with MARK_OPEN/MARK_CLOSE. */
    search(
      terms: SearchTerms,
      kind: 'all' | 'post' | 'page',
      filters: SearchFilters,
      after: SearchCursor | null,
      limit: number,
    ): Awaitable<SearchHit[]>;
  };

  /** A topic and its first post (with its previews queued), in one transaction. */
  createTopic(t: { forumId: number; authorId: number; title: string; body: string; urls: readonly string[]; at: number }): Awaitable<{
    topicId: number;
    postId: number;
  }>;
  /**
   * A post (bumping its parent's reply count and its topic), with its previews queued, atomically.
   * Returns the post as written (labelled with `author`; nothing is read back) and its topic's
   * forum; undefined, with nothing written, when the topic does not exist.
   */
  createPost(p: {
    topicId: number;
    parent: { id: number; depth: number } | null;
    author: { id: number; username: string };
    body: string;
    urls: readonly string[];
    at: number;
  }): Awaitable<{ post: Post; forumId: number } | undefined>;
  /** Sets a live post's body; drops previews of links it no longer has and queues new ones. False when the post is gone (deleted meanwhile). */
  editPost(e: { id: number; body: string; urls: readonly string[]; at: number }): Awaitable<boolean>;
  /** Tombstones a post and drops all its previews. */
  deletePost(id: number, at: number): Awaitable<void>;
  /** Reads the page in a write transaction, asks `decide` what to write, writes it. Returns whether it created the page, or null when the compare-and-set lost to a concurrent edit. */
  savePage(
    namespace: string,
    title: string,
    authorId: number,
    at: number,
    decide: (current: Page | undefined) => PageWrite,
  ): Awaitable<boolean | null>;

  /** Throws when the database cannot answer (the health check). Reads a real row, so a broken file or a dead server fails it. */
  ping(): Awaitable<void>;
  close(): Awaitable<void>;
}
