/**
 * The behaviours every {@link ForumStore} backend must share, run against each of them
 * (sqlite-store.test.ts, pg-store.test.ts): the services are written once against the contract,
 * so a difference between backends is a bug in one of them. Each test gets a fresh, empty store.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MARK_CLOSE, MARK_OPEN, type SearchCursor, type SearchFilters } from '../../src/db/repositories/search.ts';
import type { Page } from '../../src/db/repositories/wiki.ts';
import { type ForumStore, type PageWrite, UsernameTakenError } from '../../src/db/store.ts';

/** A fresh store, with what a test needs that the contract does not offer. */
export interface StoreHarness {
  store: ForumStore;
  /** Inserts a forum (the contract has no insert for forums); returns its id. */
  addForum(slug: string, position?: number): Promise<number>;
  /** Makes every post written so far searchable (SQLite indexes posts in batches after they commit). */
  flushSearch(): Promise<void>;
  /** Raw SQL on the backend (`$1`… placeholders), for fixtures the contract cannot write. */
  sql?(query: string, params?: unknown[]): Promise<unknown[]>;
  close(): Promise<void>;
}
/** The name sqlite-store.test.ts imports. */
export type Harness = StoreHarness;

// Real epoch milliseconds, above 2^31: a driver that hands back bigint columns as strings fails.
const T0 = 1_700_000_000_000;
const NO_FILTERS: SearchFilters = { forumId: null, namespace: null, authorId: null, from: null, to: null };
const TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
const token = (n: number) => Buffer.alloc(32, n);
/** Turns a synchronous throw (SQLite answers without promises) into a rejection. */
const attempt = <T>(fn: () => T | Promise<T>): Promise<T> => (async () => fn())();

export function storeContract(name: string, open: () => Promise<StoreHarness>): void {
  describe(`${name}: the ForumStore contract`, () => {
    let h: StoreHarness;
    let store: ForumStore;
    let forumId: number;
    let alice: number;

    beforeEach(async () => {
      h = await open();
      store = h.store;
      forumId = await h.addForum('general', 1);
      alice = (await store.users.insert('alice', 'hash-a', T0)).id;
    });
    afterEach(async () => {
      await h?.close();
    });

    const topic = (title: string, body: string, at: number, urls: string[] = [], forum = forumId, author = alice) =>
      store.createTopic({ forumId: forum, authorId: author, title, body, urls, at });
    const createReply = async (
      topicId: number,
      parentId: number | null,
      body: string,
      at: number,
      urls: string[] = [],
      author = { id: alice, username: 'alice' },
    ) => {
      const parent = parentId === null ? null : await store.posts.byId(parentId);
      return store.createPost({
        topicId,
        parent: parent ? { id: parent.id, depth: parent.depth } : null,
        author,
        body,
        urls,
        at,
      });
    };
    /** A reply's id (its topic must exist). */
    const reply = async (...args: Parameters<typeof createReply>): Promise<number> => {
      const created = await createReply(...args);
      if (!created) throw new Error(`no topic ${args[0]}`);
      return created.post.id;
    };

    describe('forums', () => {
      it('lists forums by position then id, continuing after a keyset cursor', async () => {
        const b = await h.addForum('b', 2);
        const c = await h.addForum('c', 2);
        expect((await store.forums.list(null, 10)).map((f) => f.id)).toEqual([forumId, b, c]);
        expect((await store.forums.list({ position: 2, id: b }, 10)).map((f) => f.id)).toEqual([c]);
        expect((await store.forums.list(null, 2)).map((f) => f.id)).toEqual([forumId, b]);
      });

      it('finds a forum by id, and nothing for an unknown id', async () => {
        expect(await store.forums.byId(forumId)).toEqual({
          id: forumId,
          slug: 'general',
          name: 'general',
          description: '',
          position: 1,
          topicCount: 0,
        });
        expect(await store.forums.byId(forumId + 1000)).toBeUndefined();
      });
    });

    describe('topics', () => {
      it('lists a forum’s topics most recently updated first, continuing after a keyset cursor', async () => {
        const t1 = await topic('one', 'x', T0 + 1);
        const t2 = await topic('two', 'x', T0 + 2);
        const t3 = await topic('three', 'x', T0 + 2);
        const first = await store.topics.list(forumId, null, 2);
        expect(first.map((t) => t.id)).toEqual([t3.topicId, t2.topicId]);
        const last = first[1]!;
        expect((await store.topics.list(forumId, { updatedAt: last.updatedAt, id: last.id }, 2)).map((t) => t.id)).toEqual([t1.topicId]);
      });

      it('lists only the topics of the forum asked for', async () => {
        const other = await h.addForum('other', 2);
        await topic('elsewhere', 'x', T0, [], other);
        expect(await store.topics.list(forumId, null, 10)).toEqual([]);
      });

      it('createTopic counts the topic in its forum and its first post in the topic', async () => {
        const { topicId, postId } = await topic('Hello', 'first post', T0);
        expect((await store.forums.byId(forumId))?.topicCount).toBe(1);
        expect(await store.topics.byId(topicId)).toEqual({
          id: topicId,
          forumId,
          title: 'Hello',
          author: { id: alice, username: 'alice' },
          createdAt: T0,
          updatedAt: T0,
          postCount: 1,
        });
        const post = await store.posts.byId(postId);
        expect(post).toMatchObject({ topicId, parentId: null, depth: 0, body: 'first post', replyCount: 0, deleted: false, edited: false });
      });

      it('createPost bumps its topic’s post count and updated_at, and moves it to the top of its forum', async () => {
        const older = await topic('older', 'x', T0);
        const newer = await topic('newer', 'x', T0 + 1);
        await reply(older.topicId, null, 'bump', T0 + 5);
        expect(await store.topics.byId(older.topicId)).toMatchObject({ postCount: 2, updatedAt: T0 + 5, createdAt: T0 });
        expect((await store.topics.list(forumId, null, 10)).map((t) => t.id)).toEqual([older.topicId, newer.topicId]);
      });

      it('finds nothing for an unknown topic id', async () => {
        expect(await store.topics.byId(12345)).toBeUndefined();
      });
    });

    describe('posts', () => {
      it('createPost under a parent sets its depth and bumps the parent’s reply count', async () => {
        const { topicId, postId } = await topic('t', 'root', T0);
        const child = await reply(topicId, postId, 'child', T0 + 1);
        const grandchild = await reply(topicId, child, 'grandchild', T0 + 2);
        expect(await store.posts.byId(grandchild)).toMatchObject({ parentId: child, depth: 2, author: { id: alice, username: 'alice' } });
        expect((await store.posts.byId(postId))?.replyCount).toBe(1);
        expect((await store.posts.byId(child))?.replyCount).toBe(1);
      });

      it('createPost returns the post as byId reads it back, and its topic’s forum, and bumps the topic', async () => {
        const { topicId, postId } = await topic('t', 'root', T0);
        const created = await createReply(topicId, postId, 'a reply', T0 + 5);
        expect(created?.forumId).toBe(forumId);
        expect(created?.post).toEqual(await store.posts.byId(created?.post.id ?? 0));
        expect(created?.post).toMatchObject({ topicId, parentId: postId, body: 'a reply', depth: 1, deleted: false, edited: false });
        expect(await store.topics.byId(topicId)).toMatchObject({ postCount: 2, updatedAt: T0 + 5 });
      });

      it('createPost in a topic that does not exist returns undefined and writes nothing', async () => {
        expect(await createReply(4242, null, 'into the void https://example.com/', T0, ['https://example.com/'])).toBeUndefined();
        expect(await store.posts.byAuthor(alice, T0 + 1, 10)).toEqual([]);
        expect(await store.previews.pendingCount()).toBe(0);
      });

      it('byAuthor lists an author’s posts before a time, newest first', async () => {
        const { topicId, postId } = await topic('t', 'one', T0);
        const two = await reply(topicId, null, 'two', T0 + 1);
        const three = await reply(topicId, null, 'three', T0 + 2);
        expect((await store.posts.byAuthor(alice, T0 + 2, 10)).map((p) => p.id)).toEqual([two, postId]);
        expect((await store.posts.byAuthor(alice, T0 + 10, 1)).map((p) => p.id)).toEqual([three]);
      });

      it('editPost sets a live post’s body and marks it edited', async () => {
        const { postId } = await topic('t', 'before', T0);
        expect(await store.editPost({ id: postId, body: 'after', urls: [], at: T0 + 7 })).toBe(true);
        expect(await store.posts.byId(postId)).toMatchObject({ body: 'after', edited: true, updatedAt: T0 + 7, createdAt: T0 });
      });

      it('editPost answers false for a deleted post and leaves its tombstone', async () => {
        const { postId } = await topic('t', 'body', T0);
        await store.deletePost(postId, T0 + 1);
        expect(await store.editPost({ id: postId, body: 'revived', urls: [], at: T0 + 2 })).toBe(false);
        expect(await store.posts.byId(postId)).toMatchObject({ body: '', deleted: true, updatedAt: T0 + 1 });
      });

      it('deletePost tombstones the post: its body is emptied and the row stays', async () => {
        const { postId } = await topic('t', 'secret', T0);
        await store.deletePost(postId, T0 + 3);
        expect(await store.posts.byId(postId)).toMatchObject({ id: postId, body: '', deleted: true, edited: true, updatedAt: T0 + 3 });
      });

      it('finds nothing for an unknown post id', async () => {
        expect(await store.posts.byId(98765)).toBeUndefined();
      });
    });

    describe('threads', () => {
      // r1 ─┬─ a ── a1 ── a1x
      //     └─ b
      // r2
      let ids: { topicId: number; r1: number; a: number; b: number; a1: number; a1x: number; r2: number };
      beforeEach(async () => {
        const { topicId, postId: r1 } = await topic('thread', 'r1', T0);
        const a = await reply(topicId, r1, 'a', T0 + 1);
        const b = await reply(topicId, r1, 'b', T0 + 2);
        const a1 = await reply(topicId, a, 'a1', T0 + 3);
        const a1x = await reply(topicId, a1, 'a1x', T0 + 4);
        const r2 = await reply(topicId, null, 'r2', T0 + 5);
        ids = { topicId, r1, a, b, a1, a1x, r2 };
      });

      it('topicThread returns each root followed by its replies, each reply right after its parent', async () => {
        const thread = await store.posts.topicThread(ids.topicId, null, 10, 10, 100);
        expect(thread.map((p) => [p.id, p.threadDepth, p.hasMoreReplies])).toEqual([
          [ids.r1, 0, false],
          [ids.a, 1, false],
          [ids.a1, 2, false],
          [ids.a1x, 3, false],
          [ids.b, 1, false],
          [ids.r2, 0, false],
        ]);
      });

      it('topicThread stops at maxDepth and marks the posts whose replies it cut', async () => {
        const thread = await store.posts.topicThread(ids.topicId, null, 10, 1, 100);
        expect(thread.map((p) => [p.id, p.hasMoreReplies])).toEqual([
          [ids.r1, false],
          [ids.a, true],
          [ids.b, false],
          [ids.r2, false],
        ]);
      });

      it('topicThread returns at most maxRows rows, walking breadth-first, and marks the parents it cut', async () => {
        const thread = await store.posts.topicThread(ids.topicId, null, 10, 10, 3);
        expect(thread.map((p) => [p.id, p.hasMoreReplies])).toEqual([
          [ids.r1, true],
          [ids.a, true],
          [ids.r2, false],
        ]);
      });

      it('topicThread returns at most `roots` roots, continuing after a root’s keyset cursor', async () => {
        const first = await store.posts.topicThread(ids.topicId, null, 1, 10, 100);
        expect(first.filter((p) => p.parentId === null).map((p) => p.id)).toEqual([ids.r1]);
        const root = first[0]!;
        const next = await store.posts.topicThread(ids.topicId, { createdAt: root.createdAt, id: root.id }, 1, 10, 100);
        expect(next.map((p) => p.id)).toEqual([ids.r2]);
      });

      it('subThread returns a post and its replies, depths relative to it', async () => {
        const sub = await store.posts.subThread(ids.a, 10, 100);
        expect(sub.map((p) => [p.id, p.threadDepth])).toEqual([
          [ids.a, 0],
          [ids.a1, 1],
          [ids.a1x, 2],
        ]);
      });

      it('subThread with a cursor returns only the direct replies after it, each with its replies', async () => {
        const all = await store.posts.subThread(ids.r1, 10, 100, { createdAt: 0, id: 0 });
        expect(all.map((p) => [p.id, p.threadDepth])).toEqual([
          [ids.a, 1],
          [ids.a1, 2],
          [ids.a1x, 3],
          [ids.b, 1],
        ]);
        const after = await store.posts.subThread(ids.r1, 10, 100, { createdAt: T0 + 1, id: ids.a });
        expect(after.map((p) => p.id)).toEqual([ids.b]);
      });

      it('subThread stops at maxDepth and maxRows and marks the posts whose replies it cut', async () => {
        const shallow = await store.posts.subThread(ids.r1, 1, 100);
        expect(shallow.map((p) => [p.id, p.hasMoreReplies])).toEqual([
          [ids.r1, false],
          [ids.a, true],
          [ids.b, false],
        ]);
        const short = await store.posts.subThread(ids.r1, 10, 2);
        expect(short.map((p) => [p.id, p.hasMoreReplies])).toEqual([
          [ids.r1, true],
          [ids.a, true],
        ]);
      });

      it('subThread with a cursor returns at most maxRows rows, the earliest replies first', async () => {
        const page = await store.posts.subThread(ids.r1, 10, 2, { createdAt: 0, id: 0 });
        expect(page.map((p) => [p.id, p.hasMoreReplies])).toEqual([
          [ids.a, true],
          [ids.b, false],
        ]);
      });

      it('keeps a deleted reply in its thread as a tombstone', async () => {
        await store.deletePost(ids.a1, T0 + 9);
        const sub = await store.posts.subThread(ids.a, 10, 100);
        expect(sub.map((p) => [p.id, p.deleted, p.body])).toEqual([
          [ids.a, false, 'a'],
          [ids.a1, true, ''],
          [ids.a1x, false, 'a1x'],
        ]);
      });
    });

    describe('users', () => {
      it('inserts a user and finds it by name, whatever the case, with its password hash', async () => {
        const bob = await store.users.insert('Bob', 'hash-b', T0 + 1);
        expect(bob).toEqual({ id: bob.id, username: 'Bob', createdAt: T0 + 1 });
        expect(await store.users.byName('bOB')).toEqual({ id: bob.id, username: 'Bob', password_hash: 'hash-b', created_at: T0 + 1 });
        expect(await store.users.byId(bob.id)).toEqual(bob);
      });

      it('refuses a taken username in another case with UsernameTakenError', async () => {
        const err = await attempt(() => store.users.insert('ALICE', 'h', T0)).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(UsernameTakenError);
        expect((err as UsernameTakenError).code).toBe('FORUM_USERNAME_TAKEN');
      });

      it('finds no user for an unknown name or id', async () => {
        expect(await store.users.byName('nobody')).toBeUndefined();
        expect(await store.users.byId(alice + 1000)).toBeUndefined();
      });
    });

    describe('sessions', () => {
      it('looks a session up to its user while it has not expired', async () => {
        await store.sessions.insert(token(1), alice, T0, T0 + 1000);
        expect(await store.sessions.lookup(token(1), T0 + 999)).toEqual({
          id: alice,
          username: 'alice',
          createdAt: T0,
          expiresAt: T0 + 1000,
        });
      });

      it('finds no session at or after its expiry, nor for an unknown token', async () => {
        await store.sessions.insert(token(1), alice, T0, T0 + 1000);
        expect(await store.sessions.lookup(token(1), T0 + 1000)).toBeUndefined();
        expect(await store.sessions.lookup(token(2), T0)).toBeUndefined();
      });

      it('deletes a session and says whether there was one', async () => {
        await store.sessions.insert(token(1), alice, T0, T0 + 1000);
        expect(await store.sessions.delete(token(1))).toBe(true);
        expect(await store.sessions.delete(token(1))).toBe(false);
        expect(await store.sessions.lookup(token(1), T0)).toBeUndefined();
      });

      it('deleteExpired removes only the expired sessions and counts them', async () => {
        await store.sessions.insert(token(1), alice, T0, T0 + 10);
        await store.sessions.insert(token(2), alice, T0, T0 + 20);
        await store.sessions.insert(token(3), alice, T0, T0 + 30);
        expect(await store.sessions.deleteExpired(T0 + 20)).toBe(2);
        expect(await store.sessions.lookup(token(3), T0)).toBeDefined();
      });
    });

    describe('link previews', () => {
      const A = 'https://a.example/';
      const B = 'https://b.example/';
      const C = 'https://c.example/';

      it('queues one pending preview per distinct link of a new post', async () => {
        const { postId } = await topic('t', 'links', T0, [A, B, A]);
        expect(await store.previews.ofPost(postId)).toEqual([
          { url: A, status: 'pending', title: null },
          { url: B, status: 'pending', title: null },
        ]);
        expect(await store.previews.pendingCount()).toBe(2);
      });

      it('due hands out only the previews whose time has come', async () => {
        await topic('t', 'x', T0, [A]);
        await topic('u', 'y', T0 + 5, [B]);
        expect((await store.previews.due(T0 + 4, 10)).map((p) => p.url)).toEqual([A]);
      });

      it('due hands out the oldest first, at most `limit`', async () => {
        const { topicId } = await topic('t', 'x', T0 + 1, [C]);
        await reply(topicId, null, 'y', T0, [A, B]);
        const due = await store.previews.due(T0 + 5, 2);
        expect(due.map((p) => p.url)).toEqual([A, B]);
        expect(due[0]).toMatchObject({ attempts: 0, traceparent: null });
      });

      it('records the queuing request’s trace context from traceFrom', async () => {
        store.previews.traceFrom(() => TRACEPARENT);
        await topic('t', 'x', T0, [A]);
        store.previews.traceFrom(() => 'not a traceparent');
        await topic('u', 'y', T0 + 1, [B]);
        expect((await store.previews.due(T0 + 1, 10)).map((p) => p.traceparent)).toEqual([TRACEPARENT, null]);
      });

      it('queues a reply’s distinct links in order, with the queuing request’s trace context', async () => {
        const { topicId } = await topic('t', 'x', T0);
        store.previews.traceFrom(() => TRACEPARENT);
        const id = await reply(topicId, null, 'links', T0 + 1, [B, A, B]);
        store.previews.traceFrom(undefined);
        expect(await store.previews.ofPost(id)).toEqual([
          { url: B, status: 'pending', title: null },
          { url: A, status: 'pending', title: null },
        ]);
        expect((await store.previews.due(T0 + 1, 10)).map((p) => [p.url, p.traceparent])).toEqual([
          [B, TRACEPARENT],
          [A, TRACEPARENT],
        ]);
      });

      it('markReady stores the title and takes the preview off the queue', async () => {
        const { postId } = await topic('t', 'x', T0, [A]);
        const [p] = await store.previews.due(T0, 10);
        await store.previews.markReady(p!.id, 'Title A', 1, T0 + 1);
        expect(await store.previews.ofPost(postId)).toEqual([{ url: A, status: 'ready', title: 'Title A' }]);
        expect(await store.previews.due(T0 + 100_000_000, 10)).toEqual([]);
        expect(await store.previews.pendingCount()).toBe(0);
      });

      it('markFailed marks the preview failed and takes it off the queue', async () => {
        const { postId } = await topic('t', 'x', T0, [A]);
        const [p] = await store.previews.due(T0, 10);
        await store.previews.markFailed(p!.id, 'boom', 1, T0 + 1);
        expect(await store.previews.ofPost(postId)).toEqual([{ url: A, status: 'failed', title: null }]);
        expect(await store.previews.due(T0 + 100_000_000, 10)).toEqual([]);
      });

      it('retryLater keeps the preview pending until its time, counting the attempt', async () => {
        await topic('t', 'x', T0, [A]);
        const [p] = await store.previews.due(T0, 10);
        await store.previews.retryLater(p!.id, 'busy', T0 + 1000, T0, 1);
        expect(await store.previews.due(T0 + 999, 10)).toEqual([]);
        expect(await store.previews.due(T0 + 1000, 10)).toEqual([{ id: p!.id, url: A, attempts: 1, traceparent: null }]);
        expect(await store.previews.pendingCount()).toBe(1);
      });

      it('a released preview is due again at once', async () => {
        await topic('t', 'x', T0, [A]);
        const [p] = await store.previews.due(T0, 10);
        await store.previews.release(p!.id);
        expect((await store.previews.due(T0, 10)).map((d) => d.id)).toEqual([p!.id]);
      });

      it('editPost drops the previews of links it removed, keeps the others and queues new ones', async () => {
        const { postId } = await topic('t', 'x', T0, [A, B]);
        const due = await store.previews.due(T0, 10);
        await store.previews.markReady(due.find((d) => d.url === A)!.id, 'Title A', 1, T0);
        await store.editPost({ id: postId, body: 'y', urls: [A, C], at: T0 + 1 });
        expect(await store.previews.ofPost(postId)).toEqual([
          { url: A, status: 'ready', title: 'Title A' },
          { url: C, status: 'pending', title: null },
        ]);
      });

      it('deletePost drops every preview of the post, pending ones included', async () => {
        const { postId } = await topic('t', 'x', T0, [A, B]);
        await store.deletePost(postId, T0 + 1);
        expect(await store.previews.ofPost(postId)).toEqual([]);
        expect(await store.previews.pendingCount()).toBe(0);
        expect(await store.previews.due(T0 + 1, 10)).toEqual([]);
      });
    });

    describe('wiki', () => {
      const create = (content: string, categories?: string[]) => (): PageWrite => ({ op: 'create', content, comment: 'first', categories });
      const edit =
        (content: string, categories?: string[]) =>
        (cur: Page | undefined): PageWrite => ({
          op: 'edit',
          pageId: cur!.id,
          baseRevision: cur!.revisionId,
          content,
          comment: 'next',
          categories,
        });

      it('savePage creates a missing page with its first revision and categories', async () => {
        let seen: Page | undefined | null = null;
        const created = await store.savePage('Main', 'Home', alice, T0, (cur) => {
          seen = cur;
          return create('hello', ['b', 'a', 'b'])();
        });
        expect(created).toBe(true);
        expect(seen).toBeUndefined();
        const page = await store.wiki.get('Main', 'Home');
        expect(page).toMatchObject({
          namespace: 'Main',
          title: 'Home',
          content: 'hello',
          categories: ['a', 'b'],
          createdAt: T0,
          updatedAt: T0,
        });
        expect(page?.author).toEqual({ id: alice, username: 'alice' });
        const revs = await store.wiki.revisions(page!.id, null, 10);
        expect(revs).toEqual([
          {
            id: page!.revisionId,
            pageId: page!.id,
            parentId: null,
            author: { id: alice, username: 'alice' },
            comment: 'first',
            size: 5,
            createdAt: T0,
          },
        ]);
      });

      it('savePage edits the current page from its revision and replaces its categories', async () => {
        await store.savePage('Main', 'Home', alice, T0, create('hello', ['a']));
        const before = await store.wiki.get('Main', 'Home');
        expect(await store.savePage('Main', 'Home', alice, T0 + 1, edit('hello world', ['c']))).toBe(false);
        const after = await store.wiki.get('Main', 'Home');
        expect(after).toMatchObject({ id: before!.id, content: 'hello world', categories: ['c'], createdAt: T0, updatedAt: T0 + 1 });
        const revs = await store.wiki.revisions(before!.id, null, 10);
        expect(revs.map((r) => [r.id, r.parentId, r.size])).toEqual([
          [after!.revisionId, before!.revisionId, 11],
          [before!.revisionId, null, 5],
        ]);
      });

      it('savePage keeps a page’s categories when the write names none', async () => {
        await store.savePage('Main', 'Home', alice, T0, create('hello', ['a']));
        await store.savePage('Main', 'Home', alice, T0 + 1, edit('again'));
        expect((await store.wiki.get('Main', 'Home'))?.categories).toEqual(['a']);
      });

      it('lists revisions newest first, continuing after a keyset cursor', async () => {
        await store.savePage('Main', 'Home', alice, T0, create('v1'));
        await store.savePage('Main', 'Home', alice, T0 + 1, edit('v2'));
        await store.savePage('Main', 'Home', alice, T0 + 2, edit('v3'));
        const page = await store.wiki.get('Main', 'Home');
        const first = await store.wiki.revisions(page!.id, null, 2);
        expect(first.map((r) => r.createdAt)).toEqual([T0 + 2, T0 + 1]);
        const last = first[1]!;
        expect((await store.wiki.revisions(page!.id, { createdAt: last.createdAt, id: last.id }, 2)).map((r) => r.createdAt)).toEqual([T0]);
      });

      it('a decide that throws fails the save and leaves nothing written', async () => {
        await store.savePage('Main', 'Home', alice, T0, create('hello', ['a']));
        const refuse = () => {
          throw new Error('forbidden');
        };
        await expect(attempt(() => store.savePage('Main', 'Home', alice, T0 + 1, refuse))).rejects.toThrow('forbidden');
        await expect(attempt(() => store.savePage('Main', 'Other', alice, T0 + 1, refuse))).rejects.toThrow('forbidden');
        const page = await store.wiki.get('Main', 'Home');
        expect(page).toMatchObject({ content: 'hello', categories: ['a'], updatedAt: T0 });
        expect(await store.wiki.revisions(page!.id, null, 10)).toHaveLength(1);
        expect(await store.wiki.get('Main', 'Other')).toBeUndefined();
      });

      it('savePage answers null and writes nothing when the edit starts from a revision that is not current', async () => {
        await store.savePage('Main', 'Home', alice, T0, create('v1'));
        const stale = await store.wiki.get('Main', 'Home');
        await store.savePage('Main', 'Home', alice, T0 + 1, edit('v2'));
        const lost = await store.savePage('Main', 'Home', alice, T0 + 2, () => edit('v3')(stale));
        expect(lost).toBeNull();
        expect((await store.wiki.get('Main', 'Home'))?.content).toBe('v2');
        expect(await store.wiki.revisions(stale!.id, null, 10)).toHaveLength(2);
      });

      it('finds no page for an unknown title, nor in another namespace', async () => {
        await store.savePage('Main', 'Home', alice, T0, create('x'));
        expect(await store.wiki.get('Help', 'Home')).toBeUndefined();
        expect(await store.wiki.get('Main', 'home')).toBeUndefined();
      });
    });

    describe('search', () => {
      const words = (...w: string[]) => ({ words: w, prefix: false });
      const find = async (terms: { words: string[]; prefix: boolean }, kind: 'all' | 'post' | 'page' = 'all', filters = NO_FILTERS) => {
        await h.flushSearch();
        return store.search.search(terms, kind, filters, null, 50);
      };

      it('finds a post by a word, with its topic’s title and a marked snippet', async () => {
        const { topicId, postId } = await topic('Zoo news', 'the zebra escaped again', T0);
        await topic('Other', 'nothing to see', T0 + 1);
        const hits = await find(words('zebra'));
        expect(hits).toHaveLength(1);
        expect(hits[0]).toMatchObject({
          kind: 'post',
          id: postId,
          title: 'Zoo news',
          topicId,
          namespace: null,
          authorId: alice,
          createdAt: T0,
        });
        expect(hits[0]!.snippet).toContain(`${MARK_OPEN}zebra${MARK_CLOSE}`);
      });

      it('finds a page by a word in its title or content, with its namespace', async () => {
        await store.savePage('Help', 'Zebra care', alice, T0, () => ({ op: 'create', content: 'feed them grass', comment: '' }));
        const hits = await find(words('zebra'));
        expect(hits).toHaveLength(1);
        expect(hits[0]).toMatchObject({
          kind: 'page',
          title: 'Zebra care',
          namespace: 'Help',
          topicId: null,
          authorId: alice,
          createdAt: T0,
        });
        expect((await find(words('grass')))[0]?.snippet).toContain(`${MARK_OPEN}grass${MARK_CLOSE}`);
      });

      it('requires every word', async () => {
        const { postId } = await topic('t', 'alpha beta gamma', T0);
        await topic('u', 'alpha only', T0 + 1);
        expect((await find(words('alpha', 'beta'))).map((x) => x.id)).toEqual([postId]);
      });

      it('matches the last word as a prefix when asked, and only then', async () => {
        const { postId } = await topic('t', 'many zebras here', T0);
        expect((await find({ words: ['many', 'zeb'], prefix: true })).map((x) => x.id)).toEqual([postId]);
        expect(await find(words('many', 'zeb'))).toEqual([]);
      });

      it('kind post finds only posts and kind page only pages', async () => {
        const { postId } = await topic('t', 'quokka post', T0);
        await store.savePage('Main', 'Quokka', alice, T0, () => ({ op: 'create', content: 'quokka page', comment: '' }));
        expect((await find(words('quokka'), 'post')).map((x) => [x.kind, x.id])).toEqual([['post', postId]]);
        expect((await find(words('quokka'), 'page')).map((x) => x.kind)).toEqual(['page']);
        expect(await find(words('quokka'), 'all')).toHaveLength(2);
      });

      it('filters posts by forum, leaving pages out', async () => {
        const other = await h.addForum('other', 2);
        await topic('t', 'kiwi here', T0);
        const { postId } = await topic('u', 'kiwi there', T0, [], other);
        await store.savePage('Main', 'Kiwi', alice, T0, () => ({ op: 'create', content: 'kiwi page', comment: '' }));
        expect((await find(words('kiwi'), 'all', { ...NO_FILTERS, forumId: other })).map((x) => x.id)).toEqual([postId]);
      });

      it('filters pages by namespace, leaving posts out', async () => {
        await topic('t', 'kiwi post', T0);
        await store.savePage('Main', 'Kiwi', alice, T0, () => ({ op: 'create', content: 'kiwi', comment: '' }));
        await store.savePage('Help', 'Kiwi', alice, T0, () => ({ op: 'create', content: 'kiwi', comment: '' }));
        const hits = await find(words('kiwi'), 'all', { ...NO_FILTERS, namespace: 'Help' });
        expect(hits.map((x) => [x.kind, x.namespace])).toEqual([['page', 'Help']]);
      });

      it('filters by author and by a [from, to) time range', async () => {
        const bob = (await store.users.insert('bob', 'h', T0)).id;
        const { topicId } = await topic('t', 'kiwi one', T0);
        const two = await reply(topicId, null, 'kiwi two', T0 + 10, [], { id: bob, username: 'bob' });
        const three = await reply(topicId, null, 'kiwi three', T0 + 20);
        expect((await find(words('kiwi'), 'all', { ...NO_FILTERS, authorId: bob })).map((x) => x.id)).toEqual([two]);
        const ranged = await find(words('kiwi'), 'all', { ...NO_FILTERS, from: T0 + 10, to: T0 + 21 });
        expect(ranged.map((x) => x.id).sort((a, b) => a - b)).toEqual([two, three]);
      });

      it('pages through every hit exactly once, best first, with the last hit as the cursor', async () => {
        const { topicId } = await topic('t', 'ocelot', T0);
        for (let i = 1; i <= 6; i++) await reply(topicId, null, `${'ocelot '.repeat(i)}and ${'filler '.repeat(7 - i)}`, T0 + i);
        for (let i = 1; i <= 3; i++)
          await store.savePage('Main', `P${i}`, alice, T0, () => ({ op: 'create', content: `ocelot ${i}`, comment: '' }));
        await h.flushSearch();
        const seen: string[] = [];
        const ranks: number[] = [];
        let after: SearchCursor | null = null;
        for (let page = 0; page < 20; page++) {
          const hits = await store.search.search(words('ocelot'), 'all', NO_FILTERS, after, 2);
          if (hits.length === 0) break;
          for (const x of hits) {
            seen.push(`${x.kind}:${x.id}`);
            ranks.push(x.rank);
          }
          const last = hits[hits.length - 1]!;
          after = { rank: last.rank, kind: last.kind, id: last.id };
        }
        expect(seen).toHaveLength(10);
        expect(new Set(seen).size).toBe(10);
        expect(ranks).toEqual([...ranks].sort((a, b) => a - b));
      });

      it('does not find a deleted post', async () => {
        const { postId } = await topic('t', 'mango', T0);
        await h.flushSearch();
        await store.deletePost(postId, T0 + 1);
        expect(await find(words('mango'))).toEqual([]);
      });

      it('finds an edited post by its new words and not its old ones', async () => {
        const { postId } = await topic('t', 'papaya', T0);
        await h.flushSearch();
        await store.editPost({ id: postId, body: 'guava', urls: [], at: T0 + 1 });
        expect(await find(words('papaya'))).toEqual([]);
        expect((await find(words('guava'))).map((x) => x.id)).toEqual([postId]);
      });
    });

    describe('health and bookkeeping', () => {
      it('ping answers while the database is open', async () => {
        await expect(attempt(() => store.ping())).resolves.toBeUndefined();
      });

      it('times each statement under its name for the slowest-SQL table', async () => {
        await store.forums.list(null, 10);
        await store.forums.list(null, 10);
        expect(store.stats.get('forums.list')?.count).toBe(2);
        expect(store.stats.get('forums.list')?.sql).toMatch(/FROM forums/);
      });

      it('closing twice is harmless', async () => {
        await store.close();
        await store.close();
      });
    });
  });
}
