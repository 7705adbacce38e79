import { FakeClock } from 'keel/testing';
import { afterEach, describe, expect, it } from 'vitest';
import type { Post } from '../../src/db/repositories/posts.ts';
import { type CacheConfig, ForumCaches } from '../../src/services/cache.ts';
import { ForumEventBus } from '../../src/services/events.ts';

const config = (listRefreshMs: number): CacheConfig => ({
  ttlMs: 60_000,
  graceMs: 300_000,
  searchTtlMs: 10_000,
  listRefreshMs,
  maxEntries: 1_000,
  maxBytes: 1024 * 1024,
  redisUrl: undefined,
  l2TimeoutMs: 150,
});

const post = (authorId: number) => ({ author: { id: authorId, username: `u${authorId}` } }) as Post;

let caches: ForumCaches | undefined;
afterEach(async () => {
  await caches?.close();
  caches = undefined;
});

async function setUp(listRefreshMs: number) {
  const clock = new FakeClock();
  const events = new ForumEventBus();
  caches = new ForumCaches(config(listRefreshMs), events, clock);
  const c = caches;
  // One cached list per forum and one cached topic, tagged as the routes tag them.
  const fill = async () => {
    for (const forum of [1, 2]) await c.pages.getOrSet(`list:${forum}`, () => `list ${forum}`, { tags: [`forum:${forum}`] });
    await c.pages.getOrSet('topic:7', () => 'topic 7', { tags: ['topic:7'] });
  };
  await fill();
  const cached = () => ({ list1: c.pages.peek('list:1'), list2: c.pages.peek('list:2'), topic: c.pages.peek('topic:7') });
  const reply = (forumId: number, topicId: number, authorId = 9) => events.emit('post.created', { topicId, forumId, post: post(authorId) });
  return { clock, c, fill, cached, reply };
}

describe('ForumCaches: coalesced list bumps', () => {
  it('drops the topic at once and its forum list once listRefreshMs has passed, one flush for many replies', async () => {
    const { clock, c, fill, cached, reply } = await setUp(250);
    const timers = clock.pending;
    reply(1, 7);
    expect(cached()).toEqual({ list1: 'list 1', list2: 'list 2', topic: undefined });
    clock.advance(100);
    reply(1, 8);
    reply(1, 9);
    expect(cached().list1).toBe('list 1');
    expect(clock.pending).toBe(timers + 1);
    clock.advance(150);
    expect(cached()).toEqual({ list1: undefined, list2: 'list 2', topic: undefined });
    expect(clock.pending).toBe(timers);
    await c.settle();
    // A later reply starts a new window.
    await fill();
    reply(2, 7);
    clock.advance(249);
    expect(cached().list2).toBe('list 2');
    clock.advance(1);
    expect(cached().list2).toBeUndefined();
  });

  it('with listRefreshMs 0 drops the list with the reply', async () => {
    const { cached, reply, clock } = await setUp(0);
    const timers = clock.pending;
    reply(1, 7);
    expect(cached()).toEqual({ list1: undefined, list2: 'list 2', topic: undefined });
    expect(clock.pending).toBe(timers);
  });

  it('remembers the writer for the window, and flushes pending bumps on close', async () => {
    const { clock, c, cached, reply } = await setUp(250);
    reply(1, 7, 42);
    expect(c.wroteWithin(42, 250)).toBe(true);
    expect(c.wroteWithin(43, 250)).toBe(false);
    clock.advance(250);
    expect(c.wroteWithin(42, 250)).toBe(false);
    expect(c.wroteRecently(42)).toBe(true);
    const timers = clock.pending;
    reply(2, 7);
    expect(clock.pending).toBe(timers + 1);
    expect(cached().list2).toBe('list 2');
    // Observe the invalidations close sends (L1 is cleared on close, so peek can't tell).
    const sent: string[][] = [];
    const invalidateTags = c.pages.invalidateTags.bind(c.pages);
    c.pages.invalidateTags = (tags) => {
      sent.push([...tags]);
      return invalidateTags(tags);
    };
    await c.close();
    caches = undefined;
    expect(sent).toEqual([['forum:2']]);
    expect(clock.pending).toBeLessThanOrEqual(timers);
  });

  it('names a bad listRefreshMs', () => {
    expect(() => new ForumCaches(config(-1), new ForumEventBus())).toThrow(/listRefreshMs/);
    expect(() => new ForumCaches(config(1.5), new ForumEventBus())).toThrow(/listRefreshMs/);
  });
});
