import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeClock } from 'keel/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openRepositories, type Repositories } from '../../src/db/index.ts';
import { seed } from '../../src/db/seed.ts';
import { ForumEventBus } from '../../src/services/events.ts';
import { toFtsQuery } from '../../src/services/search.ts';
import { SearchIndexer } from '../../src/services/search-indexer.ts';

const noFilters = { forumId: null, namespace: null, authorId: null, from: null, to: null };
let dir: string;
let repos: Repositories;
let topic: number;
const indexers: SearchIndexer[] = [];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'forum-indexer-'));
  repos = openRepositories(join(dir, 'forum.db'));
  seed(repos.db, 'small', 'scrypt$test');
  topic = repos.db.prepare('SELECT id FROM topics LIMIT 1').pluck().get() as number;
});
afterEach(() => {
  for (const i of indexers.splice(0)) i.close();
});
afterAll(() => {
  repos.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Post ids the main connection's search finds for `word`. */
const found = (word: string): number[] => repos.search.search(toFtsQuery(word), 'post', noFilters, null, 50).map((h) => h.id);
const post = (body: string): number => repos.transaction(() => repos.posts.insert(topic, null, 1, body, Date.now()));
/** FTS5 checks the index against the posts table; throws when they disagree. */
const integrity = () => repos.db.prepare("INSERT INTO posts_fts(posts_fts, rank) VALUES ('integrity-check', 1)").run();

function start(
  options: { delayMs?: number; batch?: number; writable?: () => Promise<void> | undefined; onIndexed?: (n: number) => void } = {},
) {
  const clock = new FakeClock();
  const events = new ForumEventBus();
  const errors: unknown[] = [];
  const indexer = new SearchIndexer(repos, events, { delayMs: 100, ...options, clock, onError: (e) => errors.push(e) });
  indexers.push(indexer);
  clock.advance(0);
  const created = (id: number) => events.emit('post.created', { topicId: topic, forumId: 1, post: { id } as never });
  return { clock, indexer, created, errors };
}

describe('SearchIndexer', () => {
  it('indexes the posts of one window in one batch, delayMs after the first', () => {
    const { clock, created } = start();
    const a = post('quokka one');
    created(a);
    clock.advance(60);
    const b = post('quokka two');
    created(b);
    expect(found('quokka')).toEqual([]);
    clock.advance(40);
    expect(found('quokka').sort()).toEqual([a, b].sort());
    expect(repos.postIndex.indexedThrough()).toBe(b);
    integrity();
  });

  it('holds a due batch while writes are paused for a checkpoint, and indexes it when the pause ends', async () => {
    let pause: { promise: Promise<void>; end: () => void } | undefined;
    const { clock, created } = start({ writable: () => pause?.promise });
    let end!: () => void;
    pause = { promise: new Promise<void>((r) => (end = r)), end: () => end() };
    const id = post('numbat paused');
    created(id);
    clock.advance(100);
    expect(found('numbat')).toEqual([]);
    const ended = pause.promise;
    pause = undefined;
    end();
    await ended;
    await Promise.resolve();
    expect(found('numbat')).toEqual([id]);
  });

  it('catches up a backlog at start, one bounded batch per tick', () => {
    const ids = Array.from({ length: 7 }, (_, i) => post(`wombat ${i}`));
    // Watch each batch (one transaction per tick) through the repository the indexer calls.
    const batches: number[] = [];
    const indexPending = repos.postIndex.indexPending;
    repos.postIndex.indexPending = (limit) => {
      const n = indexPending(limit);
      batches.push(n);
      return n;
    };
    try {
      start({ batch: 3 });
    } finally {
      repos.postIndex.indexPending = indexPending;
    }
    // A full batch queues the next tick; the short one ends the catch-up.
    expect(batches).toEqual([3, 3, 1]);
    expect(found('wombat').sort()).toEqual(ids.sort());
    integrity();
  });

  it('keeps edits and deletes right on both sides of the mark', () => {
    const { indexer, clock } = start();
    clock.advance(1_000);
    // Edited before it was indexed: indexed once, with the body it has then.
    const early = post('numbat draft');
    repos.posts.update(early, 'numbat final', Date.now());
    // Edited after: the trigger replaces it in the index.
    const late = post('bilby draft');
    indexer.flush();
    repos.posts.update(late, 'bilby final', Date.now());
    expect(found('draft')).toEqual([]);
    expect(found('final').sort()).toEqual([early, late].sort());
    repos.posts.softDelete(late, Date.now());
    expect(found('bilby')).toEqual([]);
    integrity();
  });

  it('indexes at once a post whose id SQLite reused below the mark', () => {
    const { indexer } = start();
    const last = post('dingo gone');
    indexer.flush();
    repos.db.prepare('DELETE FROM posts WHERE id = ?').run(last);
    const reused = post('dingo back');
    expect(reused).toBe(last);
    expect(found('dingo')).toEqual([reused]);
    expect(found('gone')).toEqual([]);
    integrity();
  });

  it('tells onIndexed how many posts each batch indexed, and only when it indexed some', () => {
    const indexed: number[] = [];
    const { clock, created, indexer } = start({ onIndexed: (n) => indexed.push(n) });
    clock.advance(100);
    expect(indexed).toEqual([]);
    created(post('numbat one'));
    created(post('numbat two'));
    clock.advance(100);
    expect(indexed).toEqual([2]);
    created(post('numbat three'));
    indexer.flush();
    expect(indexed).toEqual([2, 1]);
  });

  it('indexes what is pending on close and stops listening', () => {
    const { created, indexer, clock } = start();
    const id = post('platypus');
    created(id);
    indexer.close();
    expect(found('platypus')).toEqual([id]);
    expect(clock.pending).toBe(0);
  });

  it('names a bad option', () => {
    const events = new ForumEventBus();
    expect(() => new SearchIndexer(repos, events, { delayMs: -1 })).toThrow(/delayMs/);
    expect(() => new SearchIndexer(repos, events, { batch: 0 })).toThrow(/batch/);
    expect(() => new SearchIndexer(repos, events, { writable: 'soon' as never })).toThrow(/writable/);
    expect(() => new SearchIndexer(repos, events, { onIndexed: 1 as never })).toThrow(/onIndexed/);
    expect(events.listenerCount('post.created')).toBe(0);
  });
});
