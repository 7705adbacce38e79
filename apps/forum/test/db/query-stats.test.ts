import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { CHANNELS, type DbQueryMessage } from 'keel/channels';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Db } from '../../src/db/connection.ts';
import { openRepositories } from '../../src/db/index.ts';
import { defaultParams, PLAN_PENDING, QueryStats } from '../../src/db/query-stats.ts';

let db: Db;
beforeEach(() => {
  db = new Database(':memory:');
  db.exec(`CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); CREATE INDEX t_v ON t (v);
           INSERT INTO t (v) VALUES ('a'), ('b'), ('c');`);
});
afterEach(() => db.close());

/** A clock that advances by the next scripted step on every read, so each call "takes" a chosen time. */
function scripted(durations: number[]): () => number {
  let t = 0;
  let reads = 0;
  return () => {
    // Reads come in (start, end) pairs: the end read adds the call's duration.
    if (reads++ % 2 === 1) t += durations.shift() ?? 0;
    return t;
  };
}

function tracked(stats: QueryStats, name: string, sql: string) {
  return stats.track(name, sql, db.prepare(sql));
}

describe('QueryStats', () => {
  it('counts run, get and all calls per statement', () => {
    const stats = new QueryStats({ db });
    const byId = tracked(stats, 't.byId', 'SELECT v FROM t WHERE id = ?');
    const all = tracked(stats, 't.all', 'SELECT v FROM t');
    const ins = tracked(stats, 't.insert', 'INSERT INTO t (v) VALUES (?)');
    expect(byId.get(1)).toEqual({ v: 'a' });
    byId.get(2);
    expect(all.all()).toHaveLength(3);
    ins.run('d');
    expect(stats.get('t.byId')?.count).toBe(2);
    expect(stats.get('t.all')?.count).toBe(1);
    expect(stats.get('t.insert')?.count).toBe(1);
  });

  it('keeps timing a statement after pluck(), which returns the same statement', () => {
    const stats = new QueryStats({ db });
    const count = tracked(stats, 't.count', 'SELECT count(*) FROM t');
    expect(count.pluck().get()).toBe(3);
    expect(stats.get('t.count')?.count).toBe(1);
  });

  it('records an iteration once, with the time spent in next()', () => {
    const stats = new QueryStats({ db, now: scripted([1, 2, 2, 2, 2]) });
    const it = tracked(stats, 't.iter', 'SELECT v FROM t ORDER BY id');
    expect([...it.iterate()].map((r) => (r as { v: string }).v)).toEqual(['a', 'b', 'c']);
    const s = stats.get('t.iter')!;
    expect(s.count).toBe(1);
    // iterate() 1 ms, then four next() calls (three rows and done) 2 ms each.
    expect(s.totalMs).toBe(9);
  });

  it('records an iteration abandoned early', () => {
    const stats = new QueryStats({ db });
    const it = tracked(stats, 't.iter', 'SELECT v FROM t');
    for (const _ of it.iterate()) break;
    expect(stats.get('t.iter')?.count).toBe(1);
  });

  it('still records a call that throws', () => {
    const stats = new QueryStats({ db });
    const ins = tracked(stats, 't.insertId', 'INSERT INTO t (id, v) VALUES (?, ?)');
    expect(() => ins.run(1, 'dup')).toThrow(/UNIQUE/);
    expect(stats.get('t.insertId')?.count).toBe(1);
  });

  it('computes total, max, p50 and p99 from the durations', () => {
    const durations = [...Array.from({ length: 98 }, () => 1), 50, 100];
    const stats = new QueryStats({ db, now: scripted([...durations]) });
    const byId = tracked(stats, 't.byId', 'SELECT v FROM t WHERE id = ?');
    for (let i = 0; i < durations.length; i++) byId.get(1);
    const s = stats.get('t.byId')!;
    expect(s.count).toBe(100);
    expect(s.totalMs).toBe(248);
    expect(s.maxMs).toBe(100);
    // Buckets are a quarter-octave wide (±19 %).
    expect(s.p50Ms).toBeGreaterThanOrEqual(1);
    expect(s.p50Ms).toBeLessThan(1.2);
    expect(s.p99Ms).toBeGreaterThanOrEqual(50);
    expect(s.p99Ms).toBeLessThan(60);
  });

  it('ranks the top statements by p99 and leaves out those never run', () => {
    const stats = new QueryStats({ db, topN: 2, now: scripted([5, 1, 20]) });
    const a = tracked(stats, 'a', 'SELECT 1');
    const b = tracked(stats, 'b', 'SELECT 2');
    const c = tracked(stats, 'c', 'SELECT 3');
    tracked(stats, 'never', 'SELECT 4');
    a.get();
    b.get();
    c.get();
    expect(stats.top().map((s) => s.name)).toEqual(['c', 'a']);
    expect(stats.top(10).map((s) => s.name)).toEqual(['c', 'a', 'b']);
  });

  it('explains the plan of a top statement with default parameters, indented by depth', () => {
    const stats = new QueryStats({ db });
    const q = tracked(stats, 't.join', 'SELECT a.v FROM t a JOIN t b ON b.v = a.v WHERE a.id IN (SELECT id FROM t WHERE v = ?)');
    q.all('a');
    const [top] = stats.top();
    expect(top?.plan.length).toBeGreaterThan(1);
    expect(top?.plan.some((line) => /SEARCH|SCAN/.test(line))).toBe(true);
    expect(top?.plan.some((line) => line.startsWith('  '))).toBe(true);
  });

  it('shows no plan, rather than failing, when EXPLAIN cannot bind the statement', () => {
    const stats = new QueryStats({ db });
    const q = tracked(stats, 't.dollar', 'SELECT v FROM t WHERE id = $id');
    q.get({ id: 1 });
    expect(stats.top()[0]?.plan).toEqual([]);
  });

  it('shows no plan without a database', () => {
    const stats = new QueryStats();
    tracked(stats, 'one', 'SELECT 1').get();
    expect(stats.top()[0]?.plan).toEqual([]);
  });

  it('publishes each execution on keel:db:query to a subscriber', () => {
    const stats = new QueryStats({ db, now: scripted([3]) });
    const q = tracked(stats, 't.byId', 'SELECT v FROM t WHERE id = ?');
    const seen: DbQueryMessage[] = [];
    const listener = (m: unknown) => seen.push(m as DbQueryMessage);
    subscribe(CHANNELS.db.query, listener);
    try {
      q.get(1);
    } finally {
      unsubscribe(CHANNELS.db.query, listener);
    }
    q.get(1);
    expect(seen).toEqual([{ name: 't.byId', sql: 'SELECT v FROM t WHERE id = ?', durationMs: 3 }]);
  });

  it('stops tracking new statements past maxStatements', () => {
    const stats = new QueryStats({ db, maxStatements: 1 });
    tracked(stats, 'first', 'SELECT 1').get();
    tracked(stats, 'second', 'SELECT 2').get();
    expect(stats.get('first')?.count).toBe(1);
    expect(stats.get('second')).toBeUndefined();
  });

  it('zeroes the figures on reset', () => {
    const stats = new QueryStats({ db });
    tracked(stats, 'one', 'SELECT 1').get();
    stats.reset();
    expect(stats.get('one')).toMatchObject({ count: 0, totalMs: 0, maxMs: 0, p99Ms: 0 });
    expect(stats.top()).toEqual([]);
  });

  it('rejects bad options naming the option', () => {
    expect(() => new QueryStats({ topN: 0 })).toThrow(/topN/);
    expect(() => new QueryStats({ maxStatements: 1.5 })).toThrow(/maxStatements/);
    expect(() => new QueryStats({ now: 3 as never })).toThrow(/now/);
  });

  it('binds named and positional parameters like the EXPLAIN test', () => {
    expect(defaultParams('SELECT ? , ?')).toEqual([1, 1]);
    expect(defaultParams('SELECT @a, @q, @a')).toEqual({ a: 1, q: '"zebra"' });
  });
});

/** An async planner whose calls the test settles one by one. */
function deferredExplain() {
  const calls: Array<{ sql: string; resolve: (lines: string[]) => void; reject: (err: unknown) => void }> = [];
  const explain = (sql: string) =>
    new Promise<string[]>((resolve, reject) => {
      calls.push({ sql, resolve, reject });
    });
  return { calls, explain };
}

describe('QueryStats with an async explain (PostgreSQL)', () => {
  it('shows "plan pending", runs one explain per statement however often it is read, then shows the plan', async () => {
    const { calls, explain } = deferredExplain();
    const stats = new QueryStats({ explain });
    stats.record('users.byId', 'SELECT * FROM users WHERE id = $1', 2);
    for (let i = 0; i < 5; i++) expect(stats.top()[0]?.plan).toEqual([PLAN_PENDING]);
    const waiting = stats.explainTop();
    expect(calls.map((c) => c.sql)).toEqual(['SELECT * FROM users WHERE id = $1']);
    calls[0]!.resolve(['Index Scan using users_pkey on users', '  Index Cond: (id = $1)']);
    await waiting;
    expect(stats.top()[0]?.plan).toEqual(['Index Scan using users_pkey on users', '  Index Cond: (id = $1)']);
    expect(calls).toHaveLength(1);
  });

  it('keeps a plan for planTtlMs, then explains again, showing the old plan meanwhile', async () => {
    let t = 0;
    const { calls, explain } = deferredExplain();
    const stats = new QueryStats({ explain, planTtlMs: 1_000, now: () => t });
    stats.record('a', 'SELECT 1', 1);
    const first = stats.explainTop();
    calls[0]!.resolve(['Result']);
    await first;
    t = 999;
    await stats.explainTop();
    expect(calls).toHaveLength(1);
    t = 1_000;
    expect(stats.top()[0]?.plan).toEqual(['Result']);
    expect(calls).toHaveLength(2);
    calls[1]!.resolve(['Result (new)']);
    await stats.explainTop();
    expect(stats.top()[0]?.plan).toEqual(['Result (new)']);
  });

  it('shows "plan unavailable: <first line of the reason>" for a failed explain, never its stack, and retries after 30 s', async () => {
    let t = 0;
    const { calls, explain } = deferredExplain();
    const stats = new QueryStats({ explain, now: () => t });
    stats.record('a', 'SELECT * FROM gone', 1);
    const waiting = stats.explainTop();
    calls[0]!.reject(new Error('relation "gone" does not exist\nDETAIL: more'));
    await expect(waiting).resolves.toBeUndefined();
    expect(stats.top()[0]?.plan).toEqual(['plan unavailable: relation "gone" does not exist']);
    t = 29_999;
    stats.top();
    expect(calls).toHaveLength(1);
    t = 30_000;
    stats.top();
    expect(calls).toHaveLength(2);
  });

  it('turns an explain that throws at once, or returns no lines, into "plan unavailable"', async () => {
    const stats = new QueryStats({
      explain: (sql) => {
        if (sql === 'SELECT 1') throw new TypeError('boom');
        return Promise.resolve([]);
      },
    });
    stats.record('throws', 'SELECT 1', 2);
    stats.record('empty', 'SELECT 2', 1);
    await stats.explainTop();
    expect(stats.top().map((s) => s.plan)).toEqual([['plan unavailable: boom'], ['plan unavailable: no plan returned']]);
  });

  it('bounds the plan text: long lines cut, at most 100 lines', async () => {
    const stats = new QueryStats({ explain: async () => Array.from({ length: 500 }, (_, i) => `${i} ${'x'.repeat(1_000)}`) });
    stats.record('big', 'SELECT 1', 1);
    await stats.explainTop();
    const plan = stats.top()[0]!.plan;
    expect(plan.length).toBeLessThanOrEqual(101);
    expect(plan.join('').length).toBeLessThanOrEqual(8_100);
    expect(plan.every((line) => line.length <= 401)).toBe(true);
    expect(plan.at(-1)).toMatch(/^… \d+ more lines$/);
  });

  it('explains only statements in the top list, and only when asked', async () => {
    const { calls, explain } = deferredExplain();
    const stats = new QueryStats({ explain, topN: 1 });
    stats.record('slow', 'SELECT 1', 9);
    stats.record('fast', 'SELECT 2', 1);
    expect(calls).toHaveLength(0);
    void stats.explainTop();
    expect(calls.map((c) => c.sql)).toEqual(['SELECT 1']);
  });

  it('refuses db and explain together, and a bad planTtlMs', () => {
    expect(() => new QueryStats({ db, explain: async () => [] })).toThrow(/db or explain/);
    expect(() => new QueryStats({ explain: 'x' as never })).toThrow(/explain/);
    expect(() => new QueryStats({ explain: async () => [], planTtlMs: 0 })).toThrow(/planTtlMs/);
  });
});

describe('the forum statements', () => {
  it('are all timed through Statements.prepare', () => {
    const dir = mkdtempSync(join(tmpdir(), 'forum-qs-'));
    const repos = openRepositories(join(dir, 'forum.db'));
    try {
      repos.forums.list(null, 10);
      repos.forums.list(null, 5);
      const stats = repos.statements.stats;
      expect(stats.get('forums.list')?.count).toBe(2);
      expect(repos.statements.list().every((s) => stats.get(s.name) !== undefined)).toBe(true);
    } finally {
      repos.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
