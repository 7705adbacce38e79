import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, createTestApp, register, type TestApp } from '../helpers.ts';

// Past 4 MiB of WAL the checkpoint worker asks for a short pause in writes (db/checkpointer.ts).
// A request that writes waits it out on the event loop instead of blocking on SQLite's lock;
// reads go on meanwhile.
let t: TestApp;
let token: string;

beforeAll(async () => {
  t = await createTestApp({ seedOnEmpty: 'small' });
  token = (await register(t.app, 'pause-writer')).token;
});
afterAll(async () => {
  await t.close();
});

/** Writes straight through the repository until the worker asks for a pause; returns it. */
async function nextPause(): Promise<{ paused: Promise<void> }> {
  const checkpointer = t.app.services.checkpointer!;
  const insert = t.app.services.repos!.db.prepare('INSERT INTO users (username, password_hash, created_at) VALUES (?, ?, ?)');
  for (let n = 0; n < 100_000; n++) {
    const paused = checkpointer.writable();
    // Wrapped: an async function returning the promise would wait for the pause to end.
    if (paused !== undefined) return { paused };
    insert.run(`filler-${Date.now()}-${n}`, 'x'.repeat(4_000), n);
    if (n % 50 === 0) await new Promise((r) => setTimeout(r, 2));
  }
  throw new Error('the checkpoint worker never asked for a pause');
}

describe('a checkpoint pause in writes', () => {
  it('holds a reply until the pause ends, while a read is answered during it', async () => {
    const { paused } = await nextPause();
    const order: string[] = [];
    void paused.then(() => order.push('pause ended'));
    const [reply, read] = await Promise.all([
      t.app
        .inject({ method: 'POST', url: '/api/v1/topics/1/posts', headers: bearer(token), payload: { body: 'during a pause' } })
        .then((r) => {
          order.push('reply');
          return r;
        }),
      t.app.inject({ url: '/api/v1/forums' }).then((r) => {
        order.push('read');
        return r;
      }),
    ]);
    expect(reply.statusCode).toBe(201);
    expect(read.statusCode).toBe(200);
    expect(order.indexOf('pause ended')).toBeLessThan(order.indexOf('reply'));
    expect(order.indexOf('read')).toBeLessThan(order.indexOf('pause ended'));
    expect(t.app.services.checkpointer!.stats().pauses).toBeGreaterThan(0);
  });
});
