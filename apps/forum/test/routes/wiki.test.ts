import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, createTestApp, expectBadRequest, register, type TestApp } from '../helpers.ts';

let t: TestApp;
let alice: string;
let bob: string;
beforeAll(async () => {
  t = await createTestApp({ seedOnEmpty: 'none' });
  alice = (await register(t.app, 'alice')).token;
  bob = (await register(t.app, 'bob')).token;
});
afterAll(() => t.close());

const put = (token: string, title: string, payload: object, ns = 'Main') =>
  t.app.inject({ method: 'PUT', url: `/api/v1/wiki/${ns}/${encodeURIComponent(title)}`, headers: bearer(token), payload });

describe('wiki routes', () => {
  it('creates a page, reads it, and edits it into a new revision', async () => {
    const created = await put(alice, 'Runbook', { content: 'v1', categories: ['Operations'] });
    expect(created.statusCode).toBe(201);
    const { revisionId } = created.json() as { revisionId: number };
    const edited = await put(alice, 'Runbook', { content: 'v2', comment: 'more', baseRevision: revisionId });
    expect(edited.statusCode).toBe(200);
    const page = (await t.app.inject({ url: '/api/v1/wiki/Main/Runbook' })).json() as {
      content: string;
      categories: string[];
      revisionId: number;
    };
    expect(page).toMatchObject({ content: 'v2', categories: ['Operations'] });
    expect(page.revisionId).not.toBe(revisionId);
  });

  it('answers a stale base revision with 409 carrying the current revision', async () => {
    const { revisionId: r1 } = (await put(alice, 'Stale', { content: 'one' })).json() as { revisionId: number };
    const { revisionId: r2 } = (await put(alice, 'Stale', { content: 'two', baseRevision: r1 })).json() as { revisionId: number };
    const stale = await put(alice, 'Stale', { content: 'three', baseRevision: r1 });
    expect(stale.statusCode).toBe(409);
    expect(stale.json()).toMatchObject({ error: 'conflict', current: { revisionId: r2, content: 'two' } });
  });

  it('lets exactly one of two concurrent edits from the same revision win; the other gets 409', async () => {
    const { revisionId } = (await put(alice, 'Race', { content: 'base' })).json() as { revisionId: number };
    const [a, b] = await Promise.all([
      put(alice, 'Race', { content: 'A', baseRevision: revisionId }),
      put(alice, 'Race', { content: 'B', baseRevision: revisionId }),
    ]);
    expect([a.statusCode, b.statusCode].sort()).toEqual([200, 409]);
    const winner = a.statusCode === 200 ? 'A' : 'B';
    const page = (await t.app.inject({ url: '/api/v1/wiki/Main/Race' })).json() as { content: string };
    expect(page.content).toBe(winner);
  });

  it('requires baseRevision to edit an existing page', async () => {
    await put(alice, 'NeedsBase', { content: 'x' });
    expectBadRequest(await put(alice, 'NeedsBase', { content: 'y' }), 'baseRevision');
  });

  it('lets only the page owner edit (403 otherwise)', async () => {
    const { revisionId } = (await put(alice, 'Owned', { content: 'mine' })).json() as { revisionId: number };
    expect((await put(bob, 'Owned', { content: 'theirs', baseRevision: revisionId })).statusCode).toBe(403);
  });

  it('lists revisions newest first with keyset pagination', async () => {
    let { revisionId } = (await put(alice, 'History', { content: 'r0' })).json() as { revisionId: number };
    for (let i = 1; i < 5; i++)
      ({ revisionId } = (await put(alice, 'History', { content: `r${i}`, baseRevision: revisionId })).json() as { revisionId: number });
    const first = (await t.app.inject({ url: '/api/v1/wiki/Main/History/revisions?limit=3' })).json() as {
      items: Array<{ id: number }>;
      nextCursor: string;
    };
    const second = (await t.app.inject({ url: `/api/v1/wiki/Main/History/revisions?limit=3&cursor=${first.nextCursor}` })).json() as {
      items: Array<{ id: number }>;
      nextCursor: string | null;
    };
    const ids = [...first.items, ...second.items].map((r) => r.id);
    expect(ids).toHaveLength(5);
    expect(ids[0]).toBe(revisionId);
    expect(second.nextCursor).toBeNull();
  });

  it('answers 404 for a missing page', async () => {
    expect((await t.app.inject({ url: '/api/v1/wiki/Main/Nope' })).statusCode).toBe(404);
  });

  it.each([
    ['/api/v1/wiki/main/Title', 'namespace'],
    ['/api/v1/wiki/Main/%20leading', 'title'],
    ['/api/v1/wiki/Main/a%2Fb', 'title'],
    ['/api/v1/wiki/Main/bad%01char', 'title'],
    [`/api/v1/wiki/Main/${'t'.repeat(201)}`, 'title'],
    ['/api/v1/wiki/Main/Title/revisions?limit=1000', 'limit'],
  ])('rejects GET %s naming %s', async (url, field) => {
    expectBadRequest(await t.app.inject({ url }), field);
  });

  it.each([
    [{}, 'content'],
    [{ content: 1 }, 'content'],
    [{ content: 'x', baseRevision: 'abc' }, 'baseRevision'],
    [{ content: 'x', comment: 'c'.repeat(501) }, 'comment'],
    [{ content: 'x', categories: ['ok', 'ok'] }, 'categories'],
    [{ content: 'x', categories: ['<script>'] }, 'categories.0'],
    [{ content: 'x', locked: true }, 'locked'],
  ])('rejects PUT body %j naming %s', async (payload, field) => {
    expectBadRequest(await put(alice, 'Validated', payload), field);
  });
});
