/**
 * Times every statement the forum's API runs, against a `large` database, with realistic
 * parameters: `npm run bench -- forum-queries [--db path] [--runs N]`. Seeds
 * `benchmarks/.out/large.db` on first use (minutes), then reuses it. Prints each statement's
 * median and p95 in ms and a final JSON line naming the slowest.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { openRepositories } from '../apps/forum/src/db/index.ts';
import { seed } from '../apps/forum/src/db/seed.ts';
import { toFtsQuery } from '../apps/forum/src/services/search.ts';
import { median } from './lib/measure.ts';

const here = dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({
  options: { db: { type: 'string', default: join(here, '.out', 'large.db') }, runs: { type: 'string', default: '50' } },
});
const runs = Number(values.runs);
const fresh = !existsSync(values.db);
const repos = openRepositories(values.db);
if (fresh) {
  process.stderr.write('seeding large (one-off)…\n');
  const r = seed(repos.db, 'large', 'scrypt$bench');
  if (r === undefined) throw new Error(`${values.db} is being seeded by another process`);
  process.stderr.write(`seeded ${r.rows} rows in ${(r.ms / 1000).toFixed(1)} s\n`);
}
const count = (table: string) => repos.db.prepare(`SELECT max(id) FROM ${table}`).pluck().get() as number;
const topics = count('topics');
const posts = count('posts');
const pages = count('pages');
const forums = count('forums');
let seedN = 7;
const pick = (n: number) => {
  seedN = (seedN * 48271) % 2147483647;
  return 1 + (seedN % n);
};
const page = repos.db.prepare('SELECT namespace, title, id FROM pages WHERE id = ?');
const noFilters = { forumId: null, namespace: null, authorId: null, from: null, to: null };

// The API's read paths, each with a fresh realistic argument per run.
const cases: Record<string, () => unknown> = {
  'forums.list': () => repos.forums.list(null, 20),
  'topics.listByForum': () => repos.topics.list(pick(forums), null, 20),
  'topics.listByForumAfter (page 50)': () => {
    const f = pick(forums);
    const [first] = repos.topics.list(f, null, 1);
    return repos.topics.list(f, first ? { updatedAt: first.updatedAt - 50 * 86_400_000, id: first.id } : null, 20);
  },
  'topics.byId': () => repos.topics.byId(pick(topics)),
  'posts.topicThread (20 roots)': () => repos.posts.topicThread(pick(topics), null, 20, 5, 1000),
  'posts.subThread': () => repos.posts.subThread(pick(posts), 5, 1000),
  'posts.byAuthor': () => repos.posts.byAuthor(pick(10_000), Date.now(), 20),
  'pages.byTitle': () => {
    const p = page.get(pick(pages)) as { namespace: string; title: string };
    return repos.wiki.get(p.namespace, p.title);
  },
  'revisions.list': () => repos.wiki.revisions(pick(pages), null, 20),
  'search.all (common word)': () => repos.search.search(toFtsQuery('latency'), 'all', noFilters, null, 20),
  'search.all (two words)': () => repos.search.search(toFtsQuery('circuit breaker'), 'all', noFilters, null, 20),
  'search.posts (rare word, forum filter)': () =>
    repos.search.search(toFtsQuery('vacuum checkpoint'), 'post', { ...noFilters, forumId: 3 }, null, 20),
  'search.pages (prefix)': () => repos.search.search(toFtsQuery('replic*'), 'page', noFilters, null, 20),
};

const results: Array<{ name: string; p50: number; p95: number }> = [];
for (const [name, fn] of Object.entries(cases)) {
  for (let i = 0; i < 3; i++) fn();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    fn();
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  results.push({ name, p50: median(times), p95: times[Math.floor(times.length * 0.95)] as number });
}
repos.close();
for (const r of results)
  process.stderr.write(`${r.name.padEnd(40)} p50 ${r.p50.toFixed(3).padStart(8)} ms   p95 ${r.p95.toFixed(3).padStart(8)} ms\n`);
const slowest = results.reduce((a, b) => (b.p50 > a.p50 ? b : a));
process.stdout.write(
  `${JSON.stringify({ bench: 'forum-queries', statements: results.length, slowest: slowest.name, slowest_p50_ms: Number(slowest.p50.toFixed(3)), slowest_p95_ms: Number(slowest.p95.toFixed(3)) })}\n`,
);
