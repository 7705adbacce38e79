import { seededRandom } from 'keel/testing';
import { type Db, Statements } from './connection.ts';
import { createPostIndexRepository } from './repositories/post-index.ts';

export const SCALES = {
  small: { users: 50, forums: 5, topics: 200, posts: 2_000, pages: 100, revisions: 300 },
  medium: { users: 1_000, forums: 10, topics: 5_000, posts: 50_000, pages: 2_000, revisions: 6_000 },
  large: { users: 10_000, forums: 20, topics: 50_000, posts: 500_000, pages: 20_000, revisions: 100_000 },
} as const;
export type Scale = keyof typeof SCALES;

/** Every seeded account's password (one shared hash: scrypt for 10,000 users would take minutes). */
export const DEMO_PASSWORD = 'demo-password';

const WORDS = (
  'latency throughput cache circuit breaker retry timeout bulkhead queue worker thread event loop heap ' +
  'socket stream buffer index query planner journal replica shard partition lease lock token bucket window ' +
  'metric histogram percentile trace span log alert pager deploy rollback canary health probe ready live ' +
  'sqlite postgres redis node fastify undici pino schema migration backup restore vacuum checkpoint wal ' +
  'the a of to and in is it that for on with as was at by be this from or have an they which one you'
).split(' ');
const NAMESPACES = ['Main', 'Help', 'Ops', 'Design', 'Runbook'];
const CATEGORIES = ['Performance', 'Reliability', 'Operations', 'Databases', 'Caching', 'Networking', 'Howto', 'Reference'];

export interface SeedReport {
  scale: Scale;
  rows: number;
  ms: number;
  rowsPerSecond: number;
}

/**
 * Where the seed generator puts its rows: one method per table, columns in schema order.
 * Positional arguments, not row objects: SQLite binds them straight to a statement and
 * PostgreSQL pushes them onto column arrays, so 680,000 rows allocate nothing in between.
 */
export interface SeedSink {
  user(id: number, username: string, passwordHash: string, createdAt: number): void;
  forum(id: number, slug: string, name: string, description: string, position: number): void;
  topic(id: number, forumId: number, authorId: number, title: string, createdAt: number, updatedAt: number, postCount: number): void;
  post(
    id: number,
    topicId: number,
    parentId: number | null,
    authorId: number,
    body: string,
    depth: number,
    replyCount: number,
    createdAt: number,
    updatedAt: number,
  ): void;
  category(id: number, name: string): void;
  page(
    id: number,
    namespace: string,
    title: string,
    content: string,
    currentRevisionId: number,
    authorId: number,
    createdAt: number,
    updatedAt: number,
  ): void;
  revision(
    id: number,
    pageId: number,
    parentId: number | null,
    authorId: number,
    content: string,
    comment: string,
    createdAt: number,
  ): void;
  pageCategory(pageId: number, categoryId: number): void;
}

/** One table's part of the seed: `units` parent rows (users, topics, pages…), each with its child rows. */
export interface SeedStep {
  readonly table: 'users' | 'forums' | 'topics' | 'categories' | 'pages';
  readonly units: number;
  /** Rows it writes, as SeedReport counts them: topics with their posts, pages with their revisions (links not counted). */
  readonly rows: number;
  /** Writes the next `count` units and their child rows to `sink`. */
  emit(count: number, sink: SeedSink): void;
}

/**
 * The demo forum as a backend-neutral generator: every backend that runs these steps in order,
 * emitting every unit, holds the same rows (ids, values, and one seeded random sequence across
 * all tables, which is why the steps must run in order and cannot be parallelised).
 *
 * @example
 * ```ts
 * for (const step of seedSteps('small', hash)) step.emit(step.units, sink);
 * ```
 */
export function seedSteps(scale: Scale, passwordHash: string, seed = 42): SeedStep[] {
  const n = SCALES[scale];
  const rand = seededRandom(seed);
  const int = (max: number) => Math.floor(rand() * max);
  const words = (count: number) => {
    let s = '';
    for (let i = 0; i < count; i++) s += (i ? ' ' : '') + WORDS[int(WORDS.length)];
    return s;
  };
  const day = 86_400_000;
  const epoch = Date.UTC(2026, 0, 1);
  const step = (table: SeedStep['table'], units: number, rows: number, unit: (i: number, sink: SeedSink) => void): SeedStep => {
    let next = 0;
    return {
      table,
      units,
      rows,
      emit(count, sink) {
        const end = Math.min(units, next + count);
        for (; next < end; next++) unit(next, sink);
      },
    };
  };

  // Topics and posts are generated in time order so updated_at/post_count come out right
  // without a second pass: each topic gets a share of the posts, threaded at random.
  const perTopic = Math.floor(n.posts / n.topics);
  let postId = 0;
  const topic = (t: number, sink: SeedSink) => {
    const topicId = t + 1;
    const created = epoch + int(300) * day + int(day);
    const count = t === n.topics - 1 ? n.posts - postId : perTopic;
    const ids: number[] = [];
    const depths: number[] = [];
    const replies: number[] = [];
    const parents: (number | null)[] = [];
    for (let k = 0; k < count; k++) {
      const parentIdx = k === 0 || rand() < 0.4 ? -1 : int(k);
      ids.push(++postId);
      parents.push(parentIdx < 0 ? null : (ids[parentIdx] as number));
      depths.push(parentIdx < 0 ? 0 : (depths[parentIdx] as number) + 1);
      replies.push(0);
      if (parentIdx >= 0) replies[parentIdx] = (replies[parentIdx] as number) + 1;
    }
    const last = created + count * 60_000;
    sink.topic(topicId, 1 + (t % n.forums), 1 + int(n.users), words(3 + int(6)), created, last, count);
    for (let k = 0; k < count; k++) {
      const at = created + k * 60_000;
      sink.post(
        ids[k] as number,
        topicId,
        parents[k] as number | null,
        1 + int(n.users),
        words(12 + int(60)),
        depths[k] as number,
        replies[k] as number,
        at,
        at,
      );
    }
  };

  const perPage = Math.floor(n.revisions / n.pages);
  let revId = 0;
  const page = (p: number, sink: SeedSink) => {
    const pageId = p + 1;
    const count = p === n.pages - 1 ? n.revisions - revId : perPage;
    const created = epoch + int(300) * day;
    const author = 1 + int(n.users);
    const contents: string[] = [];
    let content = '';
    for (let r = 0; r < count; r++) {
      content = `${content}\n\n${words(20 + int(40))}`.trim();
      contents.push(content);
    }
    const firstRev = revId + 1;
    const title = `Page ${pageId} ${words(2)}`;
    sink.page(
      pageId,
      NAMESPACES[p % NAMESPACES.length] as string,
      title,
      content,
      firstRev + count - 1,
      author,
      created,
      created + (count - 1) * day,
    );
    for (let r = 0; r < count; r++) {
      sink.revision(
        ++revId,
        pageId,
        r === 0 ? null : revId - 1,
        author,
        contents[r] as string,
        r === 0 ? 'created' : words(3),
        created + r * day,
      );
    }
    // Two categories drawn at random may be the same one; the links are a set.
    const a = 1 + int(CATEGORIES.length);
    const b = 1 + int(CATEGORIES.length);
    sink.pageCategory(pageId, a);
    if (b !== a) sink.pageCategory(pageId, b);
  };

  return [
    step('users', n.users, n.users, (i, sink) => sink.user(i + 1, `user${i + 1}`, passwordHash, epoch + i * 1000)),
    step('forums', n.forums, n.forums, (i, sink) => sink.forum(i + 1, `forum-${i + 1}`, `Forum ${i + 1}: ${words(2)}`, words(8), i)),
    step('topics', n.topics, n.topics + n.posts, topic),
    step('categories', CATEGORIES.length, CATEGORIES.length, (i, sink) => sink.category(i + 1, CATEGORIES[i] as string)),
    step('pages', n.pages, n.pages + n.revisions, page),
  ];
}

/** How far demo seeding got in this database: never began, began and did not finish, or finished (meta.seed, migration 005). */
export function seedState(db: Db): 'none' | 'started' | 'done' {
  const v = db.prepare("SELECT value FROM meta WHERE key = 'seed'").pluck().get() as string | undefined;
  return v === 'done' ? 'done' : v === undefined ? 'none' : 'started';
}

/**
 * At start-up: throws if a seed began and never finished (an interrupted first start, or another
 * process seeding the same file right now), naming the file; else seeds an empty database.
 * Never deletes anything: a half-seeded file may have taken user writes since.
 */
export async function seedOnStart(db: Db, path: string, scale: Scale | 'none', passwordHash: () => Promise<string>): Promise<void> {
  const check = () => {
    if (seedState(db) === 'started') {
      throw new Error(
        `DATABASE_PATH=${path}: its demo seeding began and did not finish (interrupted, or another process is seeding it now); ` +
          'wait for that process and restart, or delete the file (and its -wal/-shm) to seed again',
      );
    }
  };
  check();
  if (scale === 'none') return;
  const empty = db.prepare('SELECT NOT EXISTS (SELECT 1 FROM forums) AND NOT EXISTS (SELECT 1 FROM users)').pluck();
  if (empty.get() !== 1) return;
  const hash = await passwordHash();
  if (seed(db, scale, hash) === undefined) check();
}

/**
 * Fills an empty, migrated database with deterministic demo data (the rows of {@link seedSteps},
 * which the PostgreSQL seed writes too). Rows go in batches of 10,000 per transaction: one
 * transaction per row would fsync per row, one for everything would hold the write lock (and
 * the WAL) for the whole run.
 */
export function seed(
  db: Db,
  scale: Scale,
  passwordHash: string,
  options: { seed?: number; log?: (line: string) => void } = {},
): SeedReport | undefined {
  // Claimed under the write lock: of two processes seeding one fresh file, one seeds and the
  // other gets undefined. 'done' is written last, so an interrupted seed stays visible.
  const claimed = db
    .transaction(() => {
      const busy = db
        .prepare("SELECT EXISTS (SELECT 1 FROM meta WHERE key = 'seed') OR EXISTS (SELECT 1 FROM forums) OR EXISTS (SELECT 1 FROM users)")
        .pluck()
        .get();
      if (busy === 1) return false;
      db.prepare("INSERT INTO meta (key, value) VALUES ('seed', 'started')").run();
      return true;
    })
    .immediate();
  if (!claimed) return undefined;
  const started = performance.now();
  const insUser = db.prepare('INSERT INTO users (id, username, password_hash, created_at) VALUES (?, ?, ?, ?)');
  const insForum = db.prepare('INSERT INTO forums (id, slug, name, description, position) VALUES (?, ?, ?, ?, ?)');
  const insTopic = db.prepare(
    'INSERT INTO topics (id, forum_id, author_id, title, created_at, updated_at, post_count) VALUES (?, ?, ?, ?, ?, ?, ?)',
  );
  const insPost = db.prepare(
    'INSERT INTO posts (id, topic_id, parent_id, author_id, body, depth, reply_count, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
  );
  const insCategory = db.prepare('INSERT INTO categories (id, name) VALUES (?, ?)');
  const insPage = db.prepare(
    'INSERT INTO pages (id, namespace, title, content, current_revision_id, author_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
  );
  const insRev = db.prepare(
    'INSERT INTO revisions (id, page_id, parent_id, author_id, content, comment, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
  );
  const insLink = db.prepare('INSERT OR IGNORE INTO page_categories (page_id, category_id) VALUES (?, ?)');
  const sink: SeedSink = {
    user: (...row) => insUser.run(...row),
    forum: (...row) => insForum.run(...row),
    topic: (...row) => insTopic.run(...row),
    post: (...row) => insPost.run(...row),
    category: (...row) => insCategory.run(...row),
    page: (...row) => insPage.run(...row),
    revision: (...row) => insRev.run(...row),
    pageCategory: (...row) => insLink.run(...row),
  };
  let rows = 0;
  for (const step of seedSteps(scale, passwordHash, options.seed ?? 42)) {
    const batch = db.transaction(() => step.emit(10_000, sink));
    for (let from = 0; from < step.units; from += 10_000) batch();
    rows += step.rows;
    options.log?.(`  ${step.table.padEnd(10)} ${step.units.toLocaleString('en-US')}`);
    if (step.table !== 'topics') continue;
    // Posts are indexed for search after they commit (migration 003); seeding indexes them here,
    // in batches, so a seeded forum is searchable as soon as it starts.
    const postIndex = createPostIndexRepository(new Statements(db));
    const indexBatch = db.transaction(() => postIndex.indexPending(50_000));
    while (indexBatch.immediate() > 0);
    // FTS5 flushes a segment each time its pending terms fill up, and with automerge off
    // (migration 007) nothing merges them here: `large` left 60 segments on level 0. A crisis
    // merge runs at 64, in the writer's transaction, so the forum's fourth index batch after
    // start merged the whole index on the event loop (0.9 s on `large`). Merged into one
    // segment now (1.3 s on `large`), a seeded forum starts as an incrementally built one runs.
    db.prepare("INSERT INTO posts_fts (posts_fts) VALUES ('optimize')").run();
    db.prepare('UPDATE forums SET topic_count = (SELECT count(*) FROM topics WHERE forum_id = forums.id)').run();
  }
  db.exec('ANALYZE');
  db.prepare("UPDATE meta SET value = 'done' WHERE key = 'seed'").run();
  const ms = performance.now() - started;
  return { scale, rows, ms, rowsPerSecond: Math.round((rows / ms) * 1000) };
}
