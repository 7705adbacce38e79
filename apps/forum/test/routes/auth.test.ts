import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuthService } from '../../src/services/auth.ts';
import { bearer, createTestApp, expectBadRequest, register, type TestApp } from '../helpers.ts';

let t: TestApp;
beforeAll(async () => {
  t = await createTestApp({ seedOnEmpty: 'none', loginAccountLimit: 3, loginIpLimit: 50 });
});
afterAll(() => t.close());

describe('auth routes', () => {
  it('registers, logs in, reports the current user and logs out', async () => {
    const { token } = await register(t.app, 'alice');
    const me = await t.app.inject({ url: '/api/v1/auth/me', headers: bearer(token) });
    expect(me.json()).toMatchObject({ user: { username: 'alice' } });

    const login = await t.app.inject({
      method: 'POST',
      url: '/api/v1/auth/login',
      payload: { username: 'ALICE', password: 'correct horse battery' },
    });
    expect(login.statusCode).toBe(200);
    const second = (login.json() as { token: string }).token;
    expect(second).not.toBe(token);

    const out = await t.app.inject({ method: 'POST', url: '/api/v1/auth/logout', headers: bearer(second) });
    expect(out.statusCode).toBe(204);
    const after = await t.app.inject({ url: '/api/v1/auth/me', headers: bearer(second) });
    expect(after.statusCode).toBe(401);
    const first = await t.app.inject({ url: '/api/v1/auth/me', headers: bearer(token) });
    expect(first.statusCode).toBe(200);
  });

  it('stores only a hash of the session token', async () => {
    const { token } = await register(t.app, 'hashcheck');
    const rows = t.app.services.repos!.db.prepare('SELECT token_hash FROM sessions').pluck().all() as Buffer[];
    expect(rows.some((h) => h.toString('base64url') === token || h.toString() === token)).toBe(false);
  });

  it('refuses a taken username with 409 naming the field', async () => {
    await register(t.app, 'bob');
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/v1/auth/register',
      payload: { username: 'Bob', password: 'another password' },
    });
    expect(res.statusCode).toBe(409);
    expect(res.json()).toMatchObject({ field: 'username' });
  });

  it('answers a wrong password with 401, and rate-limits repeated failures per account with 429', async () => {
    await register(t.app, 'carol');
    const attempt = () =>
      t.app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { username: 'carol', password: 'wrong password' } });
    const codes = [];
    for (let i = 0; i < 4; i++) codes.push((await attempt()).statusCode);
    expect(codes).toEqual([401, 401, 401, 429]);
    const limited = await attempt();
    expect(limited.headers['retry-after']).toMatch(/^\d+$/);
  });

  it('refuses even the right password with 429 once the account has spent its failure budget', async () => {
    await register(t.app, 'erin');
    const login = (password: string) =>
      t.app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { username: 'erin', password } });
    for (let i = 0; i < 3; i++) expect((await login('wrong password')).statusCode).toBe(401);
    // A 200 here would tell a guesser which password was right despite the limit.
    const right = await login('correct horse battery');
    expect(right.statusCode).toBe(429);
    expect(right.json()).toMatchObject({ error: 'too_many_requests' });
  });

  it('spends the account budget only on failed logins', async () => {
    await register(t.app, 'frank');
    const login = () =>
      t.app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { username: 'frank', password: 'correct horse battery' } });
    const codes = [];
    for (let i = 0; i < 5; i++) codes.push((await login()).statusCode);
    expect(codes).toEqual([200, 200, 200, 200, 200]);
  });

  it('lets concurrent wrong guesses spend no more than the account budget', async () => {
    await register(t.app, 'grace');
    const guesses = await Promise.all(
      Array.from({ length: 5 }, () =>
        t.app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { username: 'grace', password: 'wrong password' } }),
      ),
    );
    expect(guesses.map((r) => r.statusCode).sort()).toEqual([401, 401, 401, 429, 429]);
  });

  it('rate-limits login attempts per IP address', async () => {
    const local = await createTestApp({ seedOnEmpty: 'none', loginAccountLimit: 100, loginIpLimit: 2 });
    try {
      const attempt = (username: string) =>
        local.app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { username, password: 'whatever pass' } });
      expect((await attempt('user1')).statusCode).toBe(401);
      expect((await attempt('user2')).statusCode).toBe(401);
      expect((await attempt('user3')).statusCode).toBe(429);
    } finally {
      await local.close();
    }
  });

  it('requires a session for me and logout', async () => {
    for (const headers of [{}, { authorization: 'Bearer nope' }, { authorization: 'Basic abc' }, bearer('x'.repeat(43))]) {
      const res = await t.app.inject({ url: '/api/v1/auth/me', headers });
      expect(res.statusCode).toBe(401);
      expect(res.json()).toMatchObject({ error: 'unauthorized' });
    }
  });

  it.each([
    [{ username: 'ab', password: 'long enough' }, 'username'],
    [{ username: 'has space', password: 'long enough' }, 'username'],
    [{ username: 'x'.repeat(33), password: 'long enough' }, 'username'],
    [{ username: 'valid', password: 'short' }, 'password'],
    [{ username: 'valid', password: 'p'.repeat(257) }, 'password'],
    [{ password: 'long enough' }, 'username'],
    [{ username: 'valid' }, 'password'],
    [{ username: 'valid', password: 'long enough', admin: true }, 'admin'],
    [{ username: 42, password: 'long enough' }, 'username'],
  ])('rejects register body %j naming %s', async (payload, field) => {
    expectBadRequest(await t.app.inject({ method: 'POST', url: '/api/v1/auth/register', payload }), field);
  });

  it('rejects a malformed JSON body with 400 naming the body', async () => {
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/v1/auth/login',
      headers: { 'content-type': 'application/json' },
      payload: '{"username":',
    });
    expectBadRequest(res, 'body');
  });

  it('rejects an oversized body with 413', async () => {
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/v1/auth/login',
      payload: { username: 'a'.repeat(100_000), password: 'x' },
    });
    expect(res.statusCode).toBe(413);
    expect(res.json()).toMatchObject({ field: 'body' });
  });
});

describe('auth service', () => {
  it('expires sessions and deletes expired ones on sweep', async () => {
    let now = 1_000_000;
    const auth = createAuthService(t.app.services.store, { sessionTtlMs: 60_000, loginAccountLimit: 5, loginIpLimit: 5, now: () => now });
    try {
      const { token } = await auth.register('dave', 'long enough password');
      expect((await auth.authenticate(token))?.username).toBe('dave');
      now += 60_001;
      expect(await auth.authenticate(token)).toBeUndefined();
      expect(await auth.sweepExpired()).toBeGreaterThanOrEqual(1);
    } finally {
      await auth.close();
    }
  });
});
