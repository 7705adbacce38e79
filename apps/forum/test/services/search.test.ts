import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deferred } from 'keel/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openRepositories, type Repositories } from '../../src/db/index.ts';
import { seed } from '../../src/db/seed.ts';
import { createSqliteStore } from '../../src/db/sqlite-store.ts';
import type { ForumStore } from '../../src/db/store.ts';
import { HttpError } from '../../src/http/errors.ts';
import { createSearchService } from '../../src/services/search.ts';

const noFilters = { forumId: null, namespace: null, authorId: null, from: null, to: null };
let dir: string;
let path: string;
let repos: Repositories;
let store: ForumStore;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'forum-search-'));
  path = join(dir, 'forum.db');
  repos = openRepositories(path);
  seed(repos.db, 'small', 'scrypt$test');
  store = createSqliteStore(repos);
});
afterAll(() => {
  repos.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('search service', () => {
  it('answers from its worker thread exactly what the main thread would', async () => {
    const inWorker = createSearchService(store, path, { workers: 1, maxQueue: 16 });
    const onMain = createSearchService(store, path, { workers: 0, maxQueue: 16 });
    try {
      for (const q of ['latency', 'circuit breaker', 'repl*']) {
        expect(await inWorker.search(q, 'all', noFilters, null, 10)).toEqual(await onMain.search(q, 'all', noFilters, null, 10));
      }
    } finally {
      await inWorker.close();
      await onMain.close();
    }
  });

  it('sees an index batch committed on the main connection at once', async () => {
    const service = createSearchService(store, path, { workers: 1, maxQueue: 16 });
    try {
      expect(await service.search('zyzzyva', 'all', noFilters, null, 10)).toEqual([]);
      const topic = repos.db.prepare('SELECT id FROM topics LIMIT 1').pluck().get() as number;
      repos.posts.insert(topic, null, 1, 'a post about the zyzzyva', Date.now());
      // Posts are indexed after commit, in batches (services/search-indexer.ts).
      expect(await service.search('zyzzyva', 'all', noFilters, null, 10)).toEqual([]);
      expect(repos.transaction(() => repos.postIndex.indexPending(1_000))).toBe(1);
      expect(await service.search('zyzzyva', 'all', noFilters, null, 10)).toHaveLength(1);
    } finally {
      await service.close();
    }
  });

  it("records the worker's statement timings in the main thread's stats (the dashboard's slowest SQL)", async () => {
    const searchCounts = () =>
      repos.statements.stats
        .top(1_000)
        .filter((s) => s.name.startsWith('search.'))
        .reduce((n, s) => n + s.count, 0);
    const before = searchCounts();
    const service = createSearchService(store, path, { workers: 1, maxQueue: 16 });
    try {
      await service.search('latency', 'all', noFilters, null, 10);
      await service.search('latency', 'post', noFilters, null, 10);
      expect(searchCounts()).toBeGreaterThanOrEqual(before + 2);
      const ranked = repos.statements.stats.top(1_000).find((s) => s.name.startsWith('search.post'));
      expect(ranked?.sql).toMatch(/MATCH/);
      // The plan comes from the main connection (same schema), as for every other statement.
      expect(ranked?.plan.length).toBeGreaterThan(0);
    } finally {
      await service.close();
    }
  });

  it('ranks in a thread at nice 10, leaving the event loop its priority', async () => {
    // /proc/<pid>/task/<tid>/stat: the nice value is the 17th field after the ")" that ends comm.
    const niceOf = (tid: string): number | undefined => {
      try {
        const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
        return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
      } catch {
        return undefined; // the thread ended while we looked
      }
    };
    const threadsAt = (nice: number): number => readdirSync('/proc/self/task').filter((tid) => niceOf(tid) === nice).length;
    const before = threadsAt(10);
    const mainNice = niceOf(String(process.pid));
    const service = createSearchService(store, path, { workers: 1, maxQueue: 16 });
    try {
      await service.search('latency', 'all', noFilters, null, 10);
      expect(threadsAt(10)).toBe(before + 1);
      expect(niceOf(String(process.pid))).toBe(mainNice);
    } finally {
      await service.close();
    }
  });

  it('starts its worker in a process started with V8 flags (workers refuse them)', () => {
    const service = join(dirname(fileURLToPath(import.meta.url)), '../../src/services/search.ts');
    const code = `
      import { openRepositories } from ${JSON.stringify(join(dirname(service), '../db/index.ts'))};
      import { createSqliteStore } from ${JSON.stringify(join(dirname(service), '../db/sqlite-store.ts'))};
      import { createSearchService } from ${JSON.stringify(service)};
      const repos = openRepositories(${JSON.stringify(path)});
      const s = createSearchService(createSqliteStore(repos), ${JSON.stringify(path)}, { workers: 1, maxQueue: 4 });
      const hits = await s.search('latency', 'all', ${JSON.stringify(noFilters)}, null, 3);
      await s.close();
      repos.close();
      console.log(JSON.stringify({ hits: hits.length }));`;
    const r = spawnSync(process.execPath, ['--max-semi-space-size=8', '--import', 'tsx', '--input-type=module', '-e', code], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(r.stderr).not.toContain('ERR_WORKER_INVALID_EXEC_ARGV');
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout.trim().split('\n').pop() as string)).toEqual({ hits: 3 });
  });

  it('answers 503 past its queue bound instead of queueing without limit', async () => {
    const service = createSearchService(store, path, { workers: 1, maxQueue: 2 });
    try {
      const results = await Promise.allSettled(Array.from({ length: 20 }, () => service.search('latency', 'all', noFilters, null, 10)));
      const refused = results.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason);
      expect(refused.length).toBeGreaterThan(0);
      for (const err of refused) expect(err).toMatchObject({ statusCode: 503 });
      expect(refused[0]).toBeInstanceOf(HttpError);
      expect(results.some((r) => r.status === 'fulfilled')).toBe(true);
    } finally {
      await service.close();
    }
  });

  it('rejects a query with no words before it reaches a worker', async () => {
    const service = createSearchService(store, path, { workers: 1, maxQueue: 2 });
    try {
      await expect(service.search('!!!', 'all', noFilters, null, 10)).rejects.toMatchObject({ statusCode: 400, field: 'q' });
    } finally {
      await service.close();
    }
  });
  it('runs at most `workers` searches in a store without workers (PostgreSQL) at once, queues up to maxQueue and answers 503 past it', async () => {
    // The real store, its search held open at a gate, as a slow PostgreSQL ranking would be.
    const gate = deferred<void>();
    let running = 0;
    let most = 0;
    const slow: ForumStore = {
      ...store,
      kind: 'postgres',
      search: {
        async search(...args: Parameters<ForumStore['search']['search']>) {
          running++;
          most = Math.max(most, running);
          try {
            await gate.promise;
            return await store.search.search(...args);
          } finally {
            running--;
          }
        },
      },
    };
    const service = createSearchService(slow, path, { workers: 2, maxQueue: 2 });
    try {
      const admitted = ['latency', 'cache', 'breaker', 'replica'].map((q) => service.search(q, 'all', noFilters, null, 10));
      await new Promise((r) => setImmediate(r));
      expect(running).toBe(2);
      await expect(service.search('canary', 'all', noFilters, null, 10)).rejects.toMatchObject({
        statusCode: 503,
        message: 'search is busy, retry shortly',
      });
      gate.resolve();
      const results = await Promise.all(admitted);
      expect(results.every((hits) => Array.isArray(hits))).toBe(true);
      expect(most).toBe(2);
    } finally {
      await service.close();
    }
  });
});

describe('search service with a worker that cannot start', () => {
  it('answers 503 and reports the error instead of crashing the process', async () => {
    const errors: unknown[] = [];
    const missing = join(dir, 'no-such.db');
    const service = createSearchService(store, missing, { workers: 1, maxQueue: 4 }, { onError: (err) => errors.push(err) });
    try {
      for (let i = 0; i < 2; i++) {
        const err = await service.search('latency', 'all', noFilters, null, 10).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err).toBeInstanceOf(HttpError);
        expect(err).toMatchObject({ statusCode: 503 });
      }
      expect(errors.length).toBeGreaterThan(0);
      // better-sqlite3's error, as it crossed the thread.
      expect(errors[0]).toMatchObject({ code: 'SQLITE_CANTOPEN' });
    } finally {
      await service.close();
    }
  });

  it('stops a query that outlives timeoutMs and answers 503', async () => {
    const errors: unknown[] = [];
    // 1 ms: the worker's own start-up outlasts it.
    const service = createSearchService(store, path, { workers: 1, maxQueue: 4, timeoutMs: 1 }, { onError: (err) => errors.push(err) });
    try {
      const err = await service.search('latency', 'all', noFilters, null, 10).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(HttpError);
      expect(err).toMatchObject({ statusCode: 503, message: 'search timed out, retry shortly' });
      expect(errors).toHaveLength(1);
    } finally {
      await service.close();
    }
  });

  it('names a timeoutMs that is not a positive integer', () => {
    expect(() => createSearchService(store, path, { workers: 1, maxQueue: 4, timeoutMs: 0 })).toThrow(/timeoutMs/);
    expect(() => createSearchService(store, path, { workers: 1, maxQueue: 4, timeoutMs: 1.5 })).toThrow(TypeError);
  });
});
