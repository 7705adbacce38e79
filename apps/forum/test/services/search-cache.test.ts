import { FakeClock } from 'keel/testing';
import { afterEach, describe, expect, it } from 'vitest';
import type { Post } from '../../src/db/repositories/posts.ts';
import { ForumCaches, tags } from '../../src/services/cache.ts';
import { ForumEventBus } from '../../src/services/events.ts';

const post = (authorId: number) => ({ author: { id: authorId, username: `u${authorId}` } }) as Post;

let caches: ForumCaches | undefined;
afterEach(async () => {
  await caches?.close();
  caches = undefined;
});

function setUp() {
  const clock = new FakeClock();
  const events = new ForumEventBus();
  caches = new ForumCaches(
    {
      ttlMs: 60_000,
      graceMs: 300_000,
      searchTtlMs: 10_000,
      listRefreshMs: 250,
      maxEntries: 1_000,
      maxBytes: 1024 * 1024,
      redisUrl: undefined,
      l2TimeoutMs: 150,
    },
    events,
    clock,
  );
  const c = caches;
  // Cached as routes/search.ts caches it.
  const search = (load: () => string) =>
    c.pages.getOrSet('search:q', load, { tags: [tags.search], ttlMs: c.searchTtlMs, graceMs: c.searchGraceMs });
  return { clock, events, c, search };
}

describe('ForumCaches: search results', () => {
  it('caps search grace at the TTL, and a writer bypasses the cache for all of TTL + grace', async () => {
    const { clock, events, c, search } = setUp();
    expect(c.searchGraceMs).toBe(c.searchTtlMs);
    await search(() => 'before');
    events.emit('post.created', { topicId: 1, forumId: 1, post: post(5) });
    // The longest a cached result may still be served: TTL + grace, minus 1 ms.
    clock.advance(c.searchTtlMs + c.searchGraceMs - 1);
    expect(c.wroteRecently(5)).toBe(true);
    expect(await search(() => 'after')).toBe('before'); // stale, while it refreshes
    clock.advance(1);
    expect(c.wroteRecently(5)).toBe(false);
  });

  it('never serves a search result older than TTL + grace', async () => {
    const { clock, c, search } = setUp();
    await search(() => 'old');
    clock.advance(c.searchTtlMs + c.searchGraceMs);
    expect(await search(() => 'new')).toBe('new');
  });

  it('on post.deleted drops cached searches at once and marks the author as a recent writer', async () => {
    const { events, c, search } = setUp();
    await search(() => 'with the deleted post');
    events.emit('post.deleted', { topicId: 1, forumId: 1, postId: 3, authorId: 7 });
    expect(c.pages.peek('search:q')).toBeUndefined();
    expect(await search(() => 'without it')).toBe('without it');
    expect(c.wroteRecently(7)).toBe(true);
  });

  it('on post.updated marks the author as a recent writer', () => {
    const { events, c } = setUp();
    events.emit('post.updated', { topicId: 1, forumId: 1, post: post(8) });
    expect(c.wroteRecently(8)).toBe(true);
  });
});
