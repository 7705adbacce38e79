/**
 * The leak half of the forum bench: keel soak against a forum process started with
 * `--inspect` (heap sampled after a forced GC through the inspector), first WebSocket
 * connect/subscribe/disconnect cycles, then mixed HTTP requests. Returns each fitted heap
 * slope (bytes per cycle, with R²) and how far the handle count ended from its baseline.
 */
import { inspectorHeapSampler, runSoak } from 'keel/load';
import { Pool } from 'undici';

export interface SoakFigures {
  ws_slope_b: number;
  ws_r2: number;
  ws_errors: number;
  http_slope_b: number;
  http_r2: number;
  http_errors: number;
  handles_delta: number;
  ok: boolean;
}

export async function soakForum(
  base: string,
  inspector: string,
  token: string,
  wsCycles: number,
  httpCycles: number,
  /** How long the handle count may take to return to baseline after the soak, ms. */
  settleMs = 2_000,
): Promise<SoakFigures> {
  const sampler = await inspectorHeapSampler(inspector);
  const pool = new Pool(base, { connections: 8 });
  try {
    const before = (await sampler.sample()).handles;
    const ws = await runSoak({
      action: {
        ws: {
          url: `${base.replace('http', 'ws')}/api/v1/live`,
          message: '{"type":"subscribe","topicId":1}',
          // A cycle counts only when the subscribe was acknowledged (presence may come first):
          // an error reply would exercise no room and leak nothing.
          reply: (text) => {
            const m = JSON.parse(text) as { type?: string; topicId?: number };
            return m.type === 'presence' ? undefined : m.type === 'subscribed' && m.topicId === 1;
          },
        },
      },
      sampler,
      cycles: wsCycles,
      sampleEvery: Math.max(100, Math.floor(wsCycles / 40)),
      warmup: 2_000,
      concurrency: 4,
      maxSlope: 64,
    });
    const paths = ['/api/v1/forums/{f}/topics', '/api/v1/topics/{t}?limit=10', '/api/v1/search?q=latency&limit=10', 'reply'];
    const http = await runSoak({
      action: async (cycle) => {
        const kind = paths[cycle % 20 === 19 ? 3 : cycle % 3] as string;
        // Reads cycle over a bounded set (the 20 lists and 400 topics) so the caches reach
        // their steady size during warm-up; replies go to one topic that is never read, so the
        // soak's own writes do not grow what is cached. Growth that remains is a leak.
        const f = 1 + (cycle % 20);
        const t = 1 + ((cycle * 7919) % 400);
        const res =
          kind === 'reply'
            ? await pool.request({
                method: 'POST',
                path: '/api/v1/topics/50000/posts',
                headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
                body: JSON.stringify({ body: `soak reply ${cycle}` }),
              })
            : await pool.request({ method: 'GET', path: kind.replace('{f}', String(f)).replace('{t}', String(t)) });
        await res.body.dump();
        if (res.statusCode >= 500) throw new Error(`status ${res.statusCode}`);
      },
      sampler,
      cycles: httpCycles,
      sampleEvery: Math.max(100, Math.floor(httpCycles / 40)),
      warmup: 5_000,
      concurrency: 8,
      maxSlope: 64,
    });
    // The handle count is compared once the soak's own client connections are closed.
    await pool.close();
    let after = (await sampler.sample()).handles;
    // The server sees the client's FINs a moment later (and a PostgreSQL pool closes its idle
    // connections after its idle timeout); give it a bounded while.
    for (let i = 0; i < settleMs / 100 && after > before; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      after = (await sampler.sample()).handles;
    }
    return {
      ws_slope_b: ws.slope,
      ws_r2: ws.r2,
      ws_errors: ws.errors,
      http_slope_b: http.slope,
      http_r2: http.r2,
      http_errors: http.errors,
      handles_delta: after - before,
      ok: ws.ok && http.ok && after <= before,
    };
  } finally {
    if (!pool.closed) await pool.close();
    await sampler.close();
  }
}
