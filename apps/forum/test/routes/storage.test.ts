/**
 * A database that cannot store (here: full, via max_page_count on the app's own connection, the
 * same SQLITE_FULL a full disk raises) answers writes with a 503 naming the cause, and the
 * health report says so while reads go on.
 */
import { FakeClock } from 'keel/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StorageFailures } from '../../src/http/error-handler.ts';
import { bearer, createTestApp, register, type TestApp } from '../helpers.ts';

let t: TestApp;
let token: string;
beforeAll(async () => {
  t = await createTestApp({ seedOnEmpty: 'small' });
  token = (await register(t.app, 'writer')).token;
});
afterAll(() => t.close());

const write = (i: number) =>
  t.app.inject({
    method: 'POST',
    url: '/api/v1/forums/1/topics',
    headers: bearer(token),
    payload: { title: `Filling ${i}`, body: `words ${i} `.repeat(500) },
  });

describe('storage failures', () => {
  it('answers a write on a full database with 503 storage_unavailable and Retry-After, and degrades /health', async () => {
    const db = t.app.services.repos!.db;
    const pages = db.pragma('page_count', { simple: true }) as number;
    db.pragma(`max_page_count = ${pages}`);
    try {
      // Each write needs a few pages; some may fit in free pages the file already has.
      let res = await write(0);
      for (let i = 1; i < 200 && res.statusCode === 201; i++) res = await write(i);
      expect(res.statusCode).toBe(503);
      expect(res.headers['retry-after']).toBe('30');
      expect(res.json()).toMatchObject({ error: 'storage_unavailable', retryAfter: 30 });
      const health = await t.app.inject({ url: '/health' });
      const body = health.json() as { status: string; checks: Record<string, { status: string }> };
      expect(health.statusCode).toBe(200);
      expect(body.status).toBe('degraded');
      expect(body.checks.sqlite?.status).toBe('up');
      expect(body.checks['sqlite-storage']?.status).toBe('down');
      // Reads still work.
      expect((await t.app.inject({ url: '/api/v1/forums' })).statusCode).toBe(200);
    } finally {
      db.pragma('max_page_count = 4294967294');
    }
  });

  it('StorageFailures reports a failure for windowMs after it, on its clock', () => {
    const clock = new FakeClock();
    const s = new StorageFailures(30_000, clock);
    expect(s.recentMs()).toBeUndefined();
    s.record();
    clock.advance(29_999);
    expect(s.recentMs()).toBe(29_999);
    clock.advance(1);
    expect(s.recentMs()).toBeUndefined();
  });
});
