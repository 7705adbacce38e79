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
 * Fills an empty, migrated database with deterministic demo data. Rows go in batches of
 * 10,000 per transaction: one transaction per row would fsync per row, one for everything
 * would hold the write lock (and the WAL) for the whole run.
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
  const n = SCALES[scale];
  const rand = seededRandom(options.seed ?? 42);
  const int = (max: number) => Math.floor(rand() * max);
  const words = (count: number) => {
    let s = '';
    for (let i = 0; i < count; i++) s += (i ? ' ' : '') + WORDS[int(WORDS.length)];
    return s;
  };
  const started = performance.now();
  const day = 86_400_000;
  const epoch = Date.UTC(2026, 0, 1);
  let rows = 0;
  const batch = <T>(count: number, label: string, fn: (i: number) => T) => {
    for (let from = 0; from < count; from += 10_000) {
      db.transaction(() => {
        for (let i = from; i < Math.min(count, from + 10_000); i++) fn(i);
      })();
    }
    rows += count;
    options.log?.(`  ${label.padEnd(10)} ${count.toLocaleString('en-US')}`);
  };

  const insUser = db.prepare('INSERT INTO users (id, username, password_hash, created_at) VALUES (?, ?, ?, ?)');
  batch(n.users, 'users', (i) => insUser.run(i + 1, `user${i + 1}`, passwordHash, epoch + i * 1000));

  const insForum = db.prepare('INSERT INTO forums (id, slug, name, description, position) VALUES (?, ?, ?, ?, ?)');
  batch(n.forums, 'forums', (i) => insForum.run(i + 1, `forum-${i + 1}`, `Forum ${i + 1}: ${words(2)}`, words(8), i));

  // Topics and posts are generated in time order so updated_at/post_count come out right
  // without a second pass: each topic gets a share of the posts, threaded at random.
  const insTopic = db.prepare(
    'INSERT INTO topics (id, forum_id, author_id, title, created_at, updated_at, post_count) VALUES (?, ?, ?, ?, ?, ?, ?)',
  );
  const insPost = db.prepare(
    'INSERT INTO posts (id, topic_id, parent_id, author_id, body, depth, reply_count, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
  );
  const perTopic = Math.floor(n.posts / n.topics);
  let postId = 0;
  batch(n.topics, 'topics', (t) => {
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
    insTopic.run(topicId, 1 + (t % n.forums), 1 + int(n.users), words(3 + int(6)), created, last, count);
    for (let k = 0; k < count; k++) {
      const at = created + k * 60_000;
      insPost.run(ids[k], topicId, parents[k], 1 + int(n.users), words(12 + int(60)), depths[k], replies[k], at, at);
    }
  });
  rows += n.posts;
  // Posts are indexed for search after they commit (migration 003); seeding indexes them here,
  // in batches, so a seeded forum is searchable as soon as it starts.
  const postIndex = createPostIndexRepository(new Statements(db));
  const indexBatch = db.transaction(() => postIndex.indexPending(50_000));
  while (indexBatch.immediate() > 0);
  db.prepare('UPDATE forums SET topic_count = (SELECT count(*) FROM topics WHERE forum_id = forums.id)').run();

  const insCategory = db.prepare('INSERT INTO categories (id, name) VALUES (?, ?)');
  batch(CATEGORIES.length, 'categories', (i) => insCategory.run(i + 1, CATEGORIES[i]));
  const insPage = db.prepare(
    'INSERT INTO pages (id, namespace, title, content, current_revision_id, author_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
  );
  const insRev = db.prepare(
    'INSERT INTO revisions (id, page_id, parent_id, author_id, content, comment, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
  );
  const insLink = db.prepare('INSERT OR IGNORE INTO page_categories (page_id, category_id) VALUES (?, ?)');
  const perPage = Math.floor(n.revisions / n.pages);
  let revId = 0;
  batch(n.pages, 'pages', (p) => {
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
    insPage.run(
      pageId,
      NAMESPACES[p % NAMESPACES.length],
      `Page ${pageId} ${words(2)}`,
      content,
      firstRev + count - 1,
      author,
      created,
      created + (count - 1) * day,
    );
    for (let r = 0; r < count; r++) {
      insRev.run(++revId, pageId, r === 0 ? null : revId - 1, author, contents[r], r === 0 ? 'created' : words(3), created + r * day);
    }
    insLink.run(pageId, 1 + int(CATEGORIES.length));
    insLink.run(pageId, 1 + int(CATEGORIES.length));
  });
  rows += n.revisions;
  db.exec('ANALYZE');
  db.prepare("UPDATE meta SET value = 'done' WHERE key = 'seed'").run();
  const ms = performance.now() - started;
  return { scale, rows, ms, rowsPerSecond: Math.round((rows / ms) * 1000) };
}
