/**
 * The forum under faults (issue 7, "Under faults"), with real Redis, real sockets and keel
 * chaos proxies in front of the dependencies:
 * - Redis blackholed for 10 s during a constant-rate read load: reads keep succeeding, health
 *   says `degraded` (200), a write made during the outage is read back, and L2 serves again
 *   within 5 s of Redis returning.
 * - The link-preview upstream answers 500 (slowly) for 30 s: posting keeps its latency, the
 *   breaker opens, previews stay `pending`, and all fill within 10 s of recovery.
 * SIGTERM under load is covered by shutdown.test.ts.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { setTimeout as sleep } from 'node:timers/promises';
import type { BreakerStateMessage, CacheHitMessage } from 'keel/channels';
import { CHANNELS } from 'keel/channels';
import { createFaultProxy, type FaultProxy, runLoad, type WindowStats } from 'keel/load';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RedisServer, startRedis } from '../../../../test-support/redis.ts';
import { loadConfig } from '../../src/config.ts';
import { bearer, createTestApp, register, waitFor } from '../helpers.ts';
import { listen, PreviewUpstream, percentile, round } from './faults-fixtures.ts';

const defaults = loadConfig({});
// Figures go to the report (stdout) so a run shows what it measured, not only pass/fail.
const report = (what: string, figures: Record<string, unknown>) => console.log(`[faults] ${what} ${JSON.stringify(figures)}`);

let redis: RedisServer;
let redisProxy: FaultProxy;
let upstream: PreviewUpstream;
let upstreamProxy: FaultProxy;

beforeAll(async () => {
  redis = await startRedis();
  redisProxy = await createFaultProxy({ target: { port: redis.port } });
  upstream = new PreviewUpstream();
  upstreamProxy = await createFaultProxy({ target: { port: await upstream.listen() } });
});
afterAll(async () => {
  await upstreamProxy?.close();
  await upstream?.close();
  await redisProxy?.close();
  await redis?.close();
});

async function getJson(agent: Agent, url: string, headers: Record<string, string> = {}) {
  const res = await request(url, { dispatcher: agent, headers });
  return { status: res.statusCode, body: (await res.body.json()) as Record<string, unknown> };
}

async function postJson(agent: Agent, url: string, token: string, payload: unknown) {
  const started = performance.now();
  const res = await request(url, {
    method: 'POST',
    dispatcher: agent,
    headers: { ...bearer(token), 'content-type': 'application/json' },
    body: JSON.stringify(payload),
  });
  const body = (await res.body.json()) as { id: number; previews: Array<{ status: string }> };
  return { status: res.statusCode, body, ms: performance.now() - started };
}

describe('the forum with Redis blackholed', () => {
  it('keeps reads under 0.1 % errors, reports degraded, loses no write and uses L2 again within 5 s', async () => {
    const t = await createTestApp({
      redisUrl: `redis://127.0.0.1:${redisProxy.port}`,
      // A 1 s TTL and an 8-entry L1 over ~50 hot keys: most reads go past L1 to Redis, so the
      // outage is on the read path, and L2 hits (entries another read just wrote) show it working.
      cache: { ...defaults.cache, ttlMs: 1_000, maxEntries: 8 },
      previews: { enabled: false },
      // The app and the load generator share this process on a shared 2-core machine: two 200 ms
      // stalls in a row from a neighbour's CPU burst would shed ~1 s of reads (the cool-down)
      // and hide what this test measures, the cost of the Redis outage. Stalls still show in
      // the latency bounds below; shedding itself is tested in keel/observe.
      shedding: { ...defaults.shedding, maxEventLoopDelayMs: 1_000 },
    });
    const agent = new Agent({ connections: 4 });
    const sheds: number[] = [];
    const onShed = () => sheds.push(performance.now());
    subscribe(CHANNELS.http.shed, onShed);
    const l2Hits: number[] = [];
    const onHit = (m: unknown) => {
      const hit = m as CacheHitMessage;
      if (hit.name === 'pages' && hit.tier === 'l2') l2Hits.push(performance.now());
    };
    subscribe(CHANNELS.cache.hit, onHit);
    try {
      const base = await listen(t.app);
      const pages = t.app.services.caches.pages;
      await waitFor(() => pages.stats().l2 === 'up', 5_000, 'L2 up');
      const writer = await register(t.app, 'outage-writer');
      const wiki = (
        t.app.services.repos!.db.prepare('SELECT namespace, title FROM pages ORDER BY id LIMIT 8').all() as Array<{
          namespace: string;
          title: string;
        }>
      ).map((p) => `${encodeURIComponent(p.namespace)}/${encodeURIComponent(p.title)}`);
      const windows: WindowStats[] = [];
      const loadMs = 18_000;
      const load = runLoad({
        url: base,
        scenario: {
          requests: [
            { name: 'topic list', path: '/api/v1/forums/{{1..5}}/topics', weight: 3 },
            { name: 'topic', path: '/api/v1/topics/{{1..40}}', weight: 5 },
            { name: 'wiki page', path: `/api/v1/wiki/{{${wiki.join('|')}}}`, weight: 2 },
          ],
        },
        rate: 200,
        durationMs: loadMs,
        connections: 16,
        timeoutMs: 5_000,
        onWindow: (w) => windows.push(w),
      });
      const loadStarted = performance.now();

      await sleep(2_000);
      const l2HitsBefore = l2Hits.length;
      expect(l2HitsBefore).toBeGreaterThan(0);
      expect((await getJson(agent, `${base}/health`)).body.status).toBe('healthy');

      await redisProxy.set({ blackhole: true });
      const blackholeAt = performance.now();
      const health: Array<{ at: number; code: number; status: unknown; ready: number }> = [];
      const polling = (async () => {
        while (performance.now() - blackholeAt < 9_750) {
          const [h, r] = await Promise.all([getJson(agent, `${base}/health`), getJson(agent, `${base}/health/ready`)]);
          health.push({ at: performance.now() - blackholeAt, code: h.status, status: h.body.status, ready: r.status });
          await sleep(250);
        }
      })();
      // A reply written during the outage is on the next read (topic 7 is in the read mix).
      await sleep(3_000);
      const reply = await postJson(agent, `${base}/api/v1/topics/7/posts`, writer.token, { body: 'written while Redis was away' });
      expect(reply.status).toBe(201);
      const readBack = await getJson(agent, `${base}/api/v1/topics/7?limit=100`);
      await polling;
      await sleep(Math.max(0, 10_000 - (performance.now() - blackholeAt)));

      await redisProxy.set({ blackhole: false });
      const returnedAt = performance.now();
      const l2HitsDuring = l2Hits.filter((at) => at > blackholeAt && at < returnedAt).length;
      await waitFor(
        () => pages.stats().l2 === 'up' && l2Hits.some((at) => at > returnedAt),
        loadMs - (returnedAt - loadStarted),
        'L2 hits again',
      );
      const l2BackMs = (l2Hits.find((at) => at > returnedAt) as number) - returnedAt;
      const afterRecovery = await getJson(agent, `${base}/api/v1/topics/7?limit=100`);
      await waitFor(async () => (await getJson(agent, `${base}/health`)).body.status === 'healthy', 5_000, 'healthy again');
      const result = await load;

      const during = windows.slice(2, 12);
      report('redis blackhole', {
        sent: result.sent,
        completed: result.completed,
        errorRate: result.errors.rate,
        errors: result.errors,
        statusCodes: result.statusCodes,
        p50: result.latency.p50,
        p99: result.latency.p99,
        max: result.latency.max,
        duringMaxP99: Math.max(...during.map((w) => w.p99)),
        errorsPerWindow: windows.map((w) => w.errors).join(','),
        shedAtS: sheds.length > 0 ? [round((sheds[0] as number) - loadStarted) / 1000, sheds.length] : [],
        healthDuring: health.map((h) => `${round(h.at / 1000)}s:${h.code}:${h.status}:${h.ready}`),
        replyMs: round(reply.ms),
        l2HitsBefore,
        l2HitsDuring,
        l2BackMs: round(l2BackMs),
      });

      // Reads: every scheduled request sent and answered, under 0.1 % errors, none near the timeout.
      expect(result.sent).toBeGreaterThanOrEqual(0.95 * (result.expected ?? 0));
      expect(result.completed).toBe(result.sent);
      expect(result.errors.timeouts + result.errors.socket).toBe(0);
      expect(result.errors.rate).toBeLessThan(0.001);
      expect(result.latency.p99).toBeLessThan(1_000);
      expect(result.latency.max).toBeLessThan(2_000);
      // Health: Redis is optional, so the service is degraded (200) and still ready, never unhealthy.
      expect(health.length).toBeGreaterThan(20);
      expect(health.filter((h) => h.code !== 200 || h.status === 'unhealthy' || h.ready !== 200)).toEqual([]);
      const settled = health.filter((h) => h.at > 1_000);
      expect(settled.filter((h) => h.status === 'degraded').length).toBeGreaterThanOrEqual(0.8 * settled.length);
      // No write lost: the reply is on the next read, during the outage and after it.
      const ids = (r: { body: Record<string, unknown> }) => (r.body.posts as Array<{ id: number }>).map((p) => p.id);
      expect(readBack.status).toBe(200);
      expect(ids(readBack)).toContain(reply.body.id);
      expect(ids(afterRecovery)).toContain(reply.body.id);
      // L2 came back by itself, within 5 s.
      expect(l2BackMs).toBeLessThan(5_000);
    } finally {
      unsubscribe(CHANNELS.cache.hit, onHit);
      unsubscribe(CHANNELS.http.shed, onShed);
      await redisProxy.reset();
      await agent.close();
      await t.close();
    }
  }, 45_000);
});

describe('the forum with the link-preview upstream failing', () => {
  it('posts as fast through 30 s of upstream 500s, opens the breaker, keeps previews pending and fills all within 10 s of recovery', async () => {
    // Recovery within 10 s by design: the breaker probes 1 s after opening, a pending preview
    // waits at most 1 s between tries, the worker polls every 100 ms, and the per-host limit
    // (5/s) fills the ~15 previews queued during the outage in ~3 s: about 5 s in all.
    // Time runs 5x fast here (a 1 s breaker and retry cap against the defaults' 5 s), so the
    // rows' attempt budget is 5x the default 10 too. Failed half-open probes are no longer
    // charged (services/previews/worker.ts), but the first rows of the outage still spend tries
    // while the breaker counts up to open, and the budget keeps this test about the outage.
    const t = await createTestApp({
      previews: { enabled: true, allowPrivateHosts: true, pollMs: 100, breakerOpenMs: 1_000, maxRetryDelayMs: 1_000, maxAttempts: 50 },
    });
    const worker = t.app.services.previews;
    const agent = new Agent({ connections: 2 });
    const transitions: Array<{ to: string; at: number }> = [];
    const onState = (m: unknown) => {
      const s = m as BreakerStateMessage;
      if (s.name === 'previews-upstream') transitions.push({ to: s.to, at: performance.now() });
    };
    subscribe(CHANNELS.resilience.breakerState, onState);
    try {
      if (!worker) throw new Error('previews are off');
      const base = await listen(t.app);
      const { token } = await register(t.app, 'linker');
      const previews = t.app.services.repos!.previews;
      const statusOf = (id: number) => previews.ofPost(id)[0]?.status;
      const post = async (path: string) => {
        const r = await postJson(agent, `${base}/api/v1/topics/3/posts`, token, {
          body: `see http://127.0.0.1:${upstreamProxy.port}${path} for details`,
        });
        expect(r.status).toBe(201);
        expect(r.body.previews.map((p) => p.status)).toEqual(['pending']);
        return r;
      };

      for (let i = 0; i < 3; i++) await post(`/warm-${i}`);
      const before: number[] = [];
      const beforeIds: number[] = [];
      for (let i = 0; i < 12; i++) {
        const r = await post(`/before-${i}`);
        before.push(r.ms);
        beforeIds.push(r.body.id);
        await sleep(100);
      }
      await waitFor(() => beforeIds.every((id) => statusOf(id) === 'ready'), 10_000, 'the baseline previews');
      expect(worker.breaker.state).toBe('closed');

      // A sick upstream: 500s, each 300 ms late. A post that waited on its preview would take that long.
      upstream.failing = true;
      await upstreamProxy.set({ latencyMs: 300 });
      const outageAt = performance.now();
      const callsBefore = upstream.requests;
      const during: number[] = [];
      const outageIds: number[] = [];
      const notPending: Array<{ id: number; status: string | undefined; at: number }> = [];
      while (performance.now() - outageAt < 29_000) {
        const slot = outageAt + during.length * 2_000;
        await sleep(Math.max(0, slot - performance.now()));
        const r = await post(`/during-${during.length}`);
        during.push(r.ms);
        outageIds.push(r.body.id);
        for (const id of outageIds) {
          const status = statusOf(id);
          if (status !== 'pending') notPending.push({ id, status, at: performance.now() - outageAt });
        }
      }
      await sleep(Math.max(0, 30_000 - (performance.now() - outageAt)));
      const stateAtEnd = worker.breaker.state;
      const upstreamCalls = upstream.requests - callsBefore;
      const attempts = t.app.services
        .repos!.db.prepare(`SELECT max(attempts) FROM link_previews WHERE post_id IN (${outageIds.join(',')})`)
        .pluck()
        .get() as number;

      upstream.failing = false;
      await upstreamProxy.set({ latencyMs: 0 });
      const recoveredAt = performance.now();
      await waitFor(() => outageIds.every((id) => statusOf(id) !== 'pending'), 10_000, 'every outage preview settled');
      const fillMs = performance.now() - recoveredAt;

      const opened = transitions.find((s) => s.to === 'open' && s.at > outageAt);
      const closedAgain = transitions.find((s) => s.to === 'closed' && s.at > outageAt);
      report('preview upstream 500s', {
        postP50BeforeMs: round(percentile(before, 50)),
        postP50DuringMs: round(percentile(during, 50)),
        postMaxDuringMs: round(Math.max(...during)),
        posts: during.length,
        breakerOpenAfterMs: opened && round(opened.at - outageAt),
        transitions: transitions.filter((s) => s.at > outageAt).length,
        upstreamCallsDuring: upstreamCalls,
        maxSentAttempts: attempts,
        fillMs: round(fillMs),
        closedAfterRecoveryMs: closedAgain && round(closedAgain.at - recoveredAt),
      });

      // Posting does not wait on the upstream: the median stays near the baseline, far below its 300 ms.
      expect(percentile(during, 50)).toBeLessThan(Math.max(100, 3 * percentile(before, 50)));
      // The breaker opened early in the outage and never closed until the upstream recovered.
      expect(opened?.at).toBeDefined();
      expect((opened?.at ?? Number.POSITIVE_INFINITY) - outageAt).toBeLessThan(10_000);
      expect(closedAgain?.at ?? Number.POSITIVE_INFINITY).toBeGreaterThan(recoveredAt);
      expect(stateAtEnd).not.toBe('closed');
      // ... so the upstream saw a trickle of probes, not a retry storm.
      expect(upstreamCalls).toBeLessThan(60);
      // Every preview queued during the outage stayed pending, then all were filled.
      expect(outageIds.length).toBeGreaterThanOrEqual(14);
      expect(notPending).toEqual([]);
      expect(outageIds.map(statusOf).filter((s) => s !== 'ready')).toEqual([]);
      expect(fillMs).toBeLessThan(10_000);
      expect(worker.breaker.state).toBe('closed');
    } finally {
      unsubscribe(CHANNELS.resilience.breakerState, onState);
      upstream.failing = false;
      await upstreamProxy.reset();
      await agent.close();
      await t.close();
    }
  }, 60_000);
});
