/**
 * Per-statement SQL timings, cheap enough to leave on in production.
 *
 * Every statement the app prepares goes through {@link Statements.prepare}, which hands it to
 * {@link QueryStats.track}: its `run`/`get`/`all`/`iterate` are replaced, on that one instance,
 * by wrappers that read `performance.now()` twice and add to the statement's aggregate (count,
 * total, max and a fixed log-scale histogram). Nothing is allocated per call. Measured on this
 * machine kind: a primary-key `get` costs ≈ 590 ns bare and ≈ 690 ns wrapped.
 *
 * `EXPLAIN QUERY PLAN` runs lazily, once per statement, only for the statements that reach the
 * top list (the dashboard's "slowest SQL" table), with the same default parameter values as the
 * EXPLAIN test.
 *
 * PostgreSQL's plans come from an asynchronous `explain` (db/pg/explain.ts): `top()` stays
 * synchronous, shows the last plan it has (or "plan pending") and starts at most one explain per
 * statement; {@link QueryStats.explainTop} waits for them. Those plans are kept for `planTtlMs`
 * (the server's statistics change with the data), a failure for at most 30 s.
 */
import { performance } from 'node:perf_hooks';
import { CHANNELS, channel, type DbQueryMessage } from 'keel/channels';
import type { Db, Statement } from './connection.ts';

/** One statement's figures, as the dashboard shows them. */
export interface SqlStat {
  /** The name the repository gave it (`topics.listByForum`). */
  name: string;
  sql: string;
  count: number;
  totalMs: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /**
   * SQLite: `EXPLAIN QUERY PLAN` lines, indented by depth; empty when no database was given or
   * EXPLAIN failed. With an async `explain` (PostgreSQL): its lines, bounded, or one line
   * `plan pending` / `plan unavailable: <reason>`.
   */
  plan: string[];
}

export interface QueryStatsOptions {
  /** The database to run `EXPLAIN QUERY PLAN` on. Default: none (plans stay empty). */
  db?: Db;
  /**
   * An asynchronous planner, instead of `db`: the plan lines of a statement's SQL (only ever SQL
   * passed to {@link QueryStats.track}/{@link QueryStats.record}), or a rejection. Default: none.
   */
  explain?: (sql: string) => Promise<string[]>;
  /** How long a plan from `explain` is kept before the next read explains again, ms. Default: `300_000`. */
  planTtlMs?: number;
  /** How many statements {@link QueryStats.top} returns. Default: `10`. */
  topN?: number;
  /** Statements tracked at most; later ones run untimed. Default: `1_000`. */
  maxStatements?: number;
  /** A monotonic millisecond clock (tests script it). Default: `performance.now()`. */
  now?: () => number;
}

// Bucket 0 holds [0, 1) µs; bucket i ≥ 1 holds [2^((i-1)/4), 2^(i/4)) µs: four buckets per
// doubling (±19 %), 100 buckets reach ≈ 28 s. 400 bytes per statement.
const SUB = 4;
const BUCKETS = 100;

function bucketOf(ms: number): number {
  const us = ms * 1000;
  if (us < 1) return 0;
  const i = (Math.log2(us) * SUB + 1) | 0;
  return i < BUCKETS ? i : BUCKETS - 1;
}

class Aggregate {
  readonly name: string;
  readonly sql: string;
  count = 0;
  totalMs = 0;
  maxMs = 0;
  readonly buckets = new Uint32Array(BUCKETS);
  plan: string[] | undefined;
  /** When an async plan goes stale (the `now` clock's ms). */
  planExpiresAt = 0;
  /** The explain in flight, at most one. */
  explaining: Promise<void> | undefined;

  constructor(name: string, sql: string) {
    this.name = name;
    this.sql = sql;
  }

  record(ms: number): void {
    this.count++;
    this.totalMs += ms;
    if (ms > this.maxMs) this.maxMs = ms;
    this.buckets[bucketOf(ms)]!++;
  }

  /** The upper edge of the bucket holding quantile `q`, capped at the observed max. */
  quantile(q: number): number {
    if (this.count === 0) return 0;
    const rank = Math.ceil(q * this.count);
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.buckets[i]!;
      if (seen >= rank) return Math.min(2 ** (i / SUB) / 1000, this.maxMs);
    }
    return this.maxMs;
  }

  reset(): void {
    this.count = 0;
    this.totalMs = 0;
    this.maxMs = 0;
    this.buckets.fill(0);
  }
}

/**
 * Binds every parameter of a statement to a plausible value so it can be EXPLAINed: named
 * parameters get `1` (`@q`, the FTS query, gets a quoted word), positional ones `1`.
 *
 * @example
 * ```ts
 * defaultParams('SELECT * FROM t WHERE a = ? AND b = ?'); // [1, 1]
 * ```
 */
export function defaultParams(sql: string): unknown[] | Record<string, unknown> {
  const named = [...new Set(sql.match(/@\w+/g) ?? [])];
  if (named.length > 0) return Object.fromEntries(named.map((n) => [n.slice(1), n === '@q' ? '"zebra"' : 1]));
  return Array.from({ length: (sql.match(/\?/g) ?? []).length }, () => 1);
}

export const PLAN_PENDING = 'plan pending';
// A failed explain is retried sooner than a plan expires: the server may be back in a moment.
const FAILED_PLAN_TTL_MS = 30_000;
// What one statement's plan may take in the dashboard's snapshot, sent every second.
const MAX_PLAN_LINES = 100;
const MAX_PLAN_LINE = 400;
const MAX_PLAN_CHARS = 8_000;
const MAX_REASON = 200;

/** At most {@link MAX_PLAN_LINES} lines of {@link MAX_PLAN_LINE} characters, {@link MAX_PLAN_CHARS} in all. */
function boundPlan(lines: readonly unknown[]): string[] {
  const out: string[] = [];
  let chars = 0;
  for (const raw of lines) {
    const text = String(raw);
    const line = text.length > MAX_PLAN_LINE ? `${text.slice(0, MAX_PLAN_LINE)}…` : text;
    if (out.length === MAX_PLAN_LINES || chars + line.length > MAX_PLAN_CHARS) {
      out.push(`… ${lines.length - out.length} more lines`);
      break;
    }
    out.push(line);
    chars += line.length;
  }
  return out;
}

/** The first line of an error's message, bounded: never its stack. */
function reasonOf(err: unknown): string {
  let message: string;
  try {
    message = err instanceof Error ? String(err.message) : String(err);
  } catch {
    message = '';
  }
  const line = message.split('\n', 1)[0]!.trim() || 'unknown error';
  return line.length > MAX_REASON ? `${line.slice(0, MAX_REASON)}…` : line;
}

/** Times the iteration itself (the work happens in `next()`, not in `iterate()`). */
class TimedIterator<T> implements IterableIterator<T> {
  readonly #inner: IterableIterator<T>;
  readonly #record: (ms: number) => void;
  #ms = 0;
  #done = false;

  readonly #now: () => number;

  constructor(inner: IterableIterator<T>, record: (ms: number) => void, now: () => number, startMs: number) {
    this.#inner = inner;
    this.#record = record;
    this.#now = now;
    this.#ms = startMs;
  }

  next(): IteratorResult<T> {
    const t0 = this.#now();
    try {
      const r = this.#inner.next();
      this.#ms += this.#now() - t0;
      if (r.done) this.#finish();
      return r;
    } catch (err) {
      this.#ms += this.#now() - t0;
      this.#finish();
      throw err;
    }
  }

  return(value?: unknown): IteratorResult<T> {
    this.#inner.return?.(value);
    this.#finish();
    return { done: true, value: value as T };
  }

  [Symbol.iterator](): IterableIterator<T> {
    return this;
  }

  #finish(): void {
    if (this.#done) return;
    this.#done = true;
    this.#record(this.#ms);
  }
}

/**
 * Per-statement count, total, max and p50/p99 for every statement it tracks, plus the query
 * plans of the slowest.
 *
 * @example
 * ```ts
 * const stats = new QueryStats({ db });
 * const byId = stats.track('users.byId', sql, db.prepare(sql));
 * byId.get(1);
 * stats.top(); // [{ name: 'users.byId', count: 1, p99Ms: 0.01, plan: ['SEARCH users USING INTEGER PRIMARY KEY (rowid=?)'], … }]
 * ```
 */
export class QueryStats {
  readonly #db: Db | undefined;
  readonly #explain: ((sql: string) => Promise<string[]>) | undefined;
  readonly #planTtlMs: number;
  readonly #topN: number;
  readonly #maxStatements: number;
  readonly #byName = new Map<string, Aggregate>();
  readonly #now: () => number;
  readonly #channel = channel(CHANNELS.db.query);

  constructor(options: QueryStatsOptions = {}) {
    if (typeof options !== 'object' || options === null) throw new TypeError('QueryStats: options must be an object');
    const { db, explain, planTtlMs = 300_000, topN = 10, maxStatements = 1_000, now = () => performance.now() } = options;
    if (!Number.isInteger(topN) || topN < 1) throw new TypeError('QueryStats: topN must be an integer ≥ 1');
    if (explain !== undefined && typeof explain !== 'function') throw new TypeError('QueryStats: explain must be a function');
    if (explain !== undefined && db !== undefined) throw new TypeError('QueryStats: give db or explain, not both');
    if (!Number.isInteger(planTtlMs) || planTtlMs < 1) throw new TypeError('QueryStats: planTtlMs must be an integer ≥ 1');
    if (!Number.isInteger(maxStatements) || maxStatements < 1) throw new TypeError('QueryStats: maxStatements must be an integer ≥ 1');
    this.#db = db;
    this.#explain = explain;
    this.#planTtlMs = planTtlMs;
    this.#topN = topN;
    this.#maxStatements = maxStatements;
    if (typeof now !== 'function') throw new TypeError('QueryStats: now must be a function');
    this.#now = now;
  }

  /** Wraps `stmt`'s run/get/all/iterate in place (so `pluck()`/`raw()`, which return `this`, keep the timing) and returns it. */
  track<S extends Statement>(name: string, sql: string, stmt: S): S {
    let agg = this.#byName.get(name);
    if (!agg) {
      if (this.#byName.size >= this.#maxStatements) return stmt;
      agg = new Aggregate(name, sql);
      this.#byName.set(name, agg);
    }
    const a = agg;
    const ch = this.#channel;
    const now = this.#now;
    const record = (ms: number): void => {
      a.record(ms);
      if (ch.hasSubscribers) {
        const message: DbQueryMessage = { name: a.name, sql: a.sql, durationMs: ms };
        ch.publish(message);
      }
    };
    const s = stmt as unknown as Record<'run' | 'get' | 'all' | 'iterate', (...args: unknown[]) => unknown>;
    for (const method of ['run', 'get', 'all'] as const) {
      const original = s[method]!;
      s[method] = function timed(this: unknown) {
        const t0 = now();
        try {
          // `apply(…, arguments)` is the pattern V8 forwards without materialising an array.
          // biome-ignore lint/complexity/noArguments: no per-call allocation on the hot path
          return original.apply(stmt, arguments as unknown as unknown[]);
        } finally {
          record(now() - t0);
        }
      };
    }
    const iterate = s.iterate!;
    s.iterate = function timedIterate(this: unknown) {
      const t0 = now();
      // biome-ignore lint/complexity/noArguments: same as above
      const inner = iterate.apply(stmt, arguments as unknown as unknown[]) as IterableIterator<unknown>;
      return new TimedIterator(inner, record, now, now() - t0);
    };
    return stmt;
  }

  /**
   * Adds a timing measured elsewhere under `name`: a statement a worker thread ran on its own
   * connection (search), which this thread's wrappers never see. Bounded like {@link track}.
   */
  record(name: string, sql: string, ms: number): void {
    let agg = this.#byName.get(name);
    if (!agg) {
      if (this.#byName.size >= this.#maxStatements) return;
      agg = new Aggregate(name, sql);
      this.#byName.set(name, agg);
    }
    agg.record(ms);
  }

  /** The `n` statements with the highest p99 (ties: highest total), each with its plan. */
  top(n = this.#topN): SqlStat[] {
    return this.#ranked(n).map((agg) => this.#stat(agg));
  }

  /**
   * Resolves once the plans of the `n` slowest statements are current (each explained at most
   * once at a time; failures become `plan unavailable`, never a rejection). Resolves at once
   * without an async `explain`: SQLite's plans are computed by {@link top} itself.
   */
  async explainTop(n = this.#topN): Promise<void> {
    if (!this.#explain) return;
    await Promise.all(this.#ranked(n).map((agg) => this.#refreshPlan(agg)));
  }

  #ranked(n: number): Aggregate[] {
    const ranked: Array<{ agg: Aggregate; p99: number }> = [];
    for (const agg of this.#byName.values()) if (agg.count > 0) ranked.push({ agg, p99: agg.quantile(0.99) });
    ranked.sort((x, y) => y.p99 - x.p99 || y.agg.totalMs - x.agg.totalMs);
    return ranked.slice(0, n).map(({ agg }) => agg);
  }

  /** One statement's figures by name, or `undefined` if it was never tracked. */
  get(name: string): SqlStat | undefined {
    const agg = this.#byName.get(name);
    return agg && this.#stat(agg);
  }

  /** Zeroes every figure (plans are kept: they depend on the schema, not on traffic). */
  reset(): void {
    for (const agg of this.#byName.values()) agg.reset();
  }

  #stat(agg: Aggregate): SqlStat {
    return {
      name: agg.name,
      sql: agg.sql,
      count: agg.count,
      totalMs: agg.totalMs,
      p50Ms: agg.quantile(0.5),
      p99Ms: agg.quantile(0.99),
      maxMs: agg.maxMs,
      plan: this.#plan(agg),
    };
  }

  /** Starts an explain of `agg` unless one is in flight or its plan is current; the one in flight, if any. */
  #refreshPlan(agg: Aggregate): Promise<void> | undefined {
    const explain = this.#explain!;
    if (agg.explaining) return agg.explaining;
    if (agg.plan && this.#now() < agg.planExpiresAt) return undefined;
    let started: Promise<string[]>;
    try {
      started = Promise.resolve(explain(agg.sql));
    } catch (err) {
      started = Promise.reject(err);
    }
    const done: Promise<void> = started
      .then((lines) => {
        if (!Array.isArray(lines) || lines.length === 0) throw new Error('no plan returned');
        agg.plan = boundPlan(lines);
        agg.planExpiresAt = this.#now() + this.#planTtlMs;
      })
      .catch((err: unknown) => {
        agg.plan = [`plan unavailable: ${reasonOf(err)}`];
        agg.planExpiresAt = this.#now() + Math.min(this.#planTtlMs, FAILED_PLAN_TTL_MS);
      })
      .finally(() => {
        if (agg.explaining === done) agg.explaining = undefined;
      });
    agg.explaining = done;
    return done;
  }

  #plan(agg: Aggregate): string[] {
    if (this.#explain) {
      void this.#refreshPlan(agg);
      return agg.plan ?? [PLAN_PENDING];
    }
    if (agg.plan) return agg.plan;
    const db = this.#db;
    if (!db?.open) return [];
    try {
      const rows = db.prepare(`EXPLAIN QUERY PLAN ${agg.sql}`).all(defaultParams(agg.sql) as never) as Array<{
        id: number;
        parent: number;
        detail: string;
      }>;
      const depth = new Map<number, number>([[0, -1]]);
      agg.plan = rows.map((r) => {
        const d = (depth.get(r.parent) ?? -1) + 1;
        depth.set(r.id, d);
        return `${'  '.repeat(d)}${r.detail}`;
      });
    } catch {
      // A statement EXPLAIN cannot bind (an unusual parameter shape) shows no plan rather than failing the dashboard.
      agg.plan = [];
    }
    return agg.plan;
  }
}
