/** Shared pieces of the dashboard tests: a fixed metrics snapshot and an SSE client on a real socket. */
import { request } from 'node:http';
import type { MetricsSnapshot } from '../../src/dashboard/sources.ts';

export const TOKEN = 'dashboard-test-token-0123456789';

export function metricsSnapshot(rps = 42): MetricsSnapshot {
  const w = { count: rps * 10, rps, errorRate: 0.01, p50Ms: 2, p95Ms: 9, p99Ms: 30 };
  return {
    at: 1_700_000_000_000,
    windows: { '10s': w, '1m': w, '5m': w },
    process: {
      eventLoopDelayP50Ms: 10,
      eventLoopDelayP99Ms: 12,
      eventLoopUtilization: 0.2,
      heapUsedBytes: 50e6,
      heapTotalBytes: 80e6,
      rssBytes: 120e6,
      activeHandles: 7,
      inFlight: 1,
    },
    shed: { total: 3, last10s: 1 },
    cache: [{ name: 'topics', l1Hits: 90, l2Hits: 5, misses: 5, stale: 1, loaderErrors: 0, l2Errors: 0, hitRatio: 0.95 }],
    breakers: [{ name: 'previews', state: 'open', since: 1_699_999_990_000 }],
    routes: [{ method: 'GET', route: '/api/v1/forums', count: 420, p50Ms: 1, p99Ms: 5 }],
  };
}

export interface SseClient {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** Parsed `data:` payloads received so far. */
  events: unknown[];
  /** Resolves with the `n`-th event (1-based) once it has arrived. */
  event(n: number): Promise<unknown>;
  /** Resolves when the server ends the stream. */
  ended: Promise<void>;
  /** Closes the connection from the client side. */
  close(): void;
}

/** Opens `GET path` on a real socket and parses server-sent events as they arrive. */
export function openStream(port: number, path: string, headers: Record<string, string> = {}): Promise<SseClient> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers, agent: false }, (res) => {
      const events: unknown[] = [];
      const waiters: Array<{ n: number; resolve: (e: unknown) => void }> = [];
      let buffer = '';
      let endResolve: () => void = () => {};
      const ended = new Promise<void>((r) => {
        endResolve = r;
      });
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buffer += chunk;
        for (let i = buffer.indexOf('\n\n'); i >= 0; i = buffer.indexOf('\n\n')) {
          const block = buffer.slice(0, i);
          buffer = buffer.slice(i + 2);
          const data = block
            .split('\n')
            .filter((l) => l.startsWith('data: '))
            .map((l) => l.slice(6))
            .join('\n');
          if (data) events.push(JSON.parse(data));
        }
        for (const w of waiters.splice(0)) {
          if (events.length >= w.n) w.resolve(events[w.n - 1]);
          else waiters.push(w);
        }
      });
      res.on('end', () => endResolve());
      res.on('close', () => endResolve());
      resolve({
        status: res.statusCode ?? 0,
        headers: res.headers,
        events,
        event: (n) => (events.length >= n ? Promise.resolve(events[n - 1]) : new Promise((r) => waiters.push({ n, resolve: r }))),
        ended,
        close: () => {
          req.destroy();
          res.destroy();
        },
      });
    });
    req.on('error', reject);
    req.end();
  });
}
