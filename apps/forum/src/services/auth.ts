import { createHash, randomBytes } from 'node:crypto';
import type { TieredCache } from 'keel/cache';
import { isRateLimitedError, RateLimit } from 'keel/resilience';
import type { PublicUser } from '../db/repositories/users.ts';
import { type ForumStore, UsernameTakenError } from '../db/store.ts';
import { HttpError, tooManyRequests, unauthorized } from '../http/errors.ts';
import type { ForumEventBus } from './events.ts';
import { LoginBudget } from './login-budget.ts';
import { dummyHash, hashPassword, verifyPassword } from './passwords.ts';

export interface AuthOptions {
  sessionTtlMs: number;
  loginAccountLimit: number;
  loginIpLimit: number;
  now?: () => number;
  /** Session lookups cached by token hash (read synchronously; logout deletes everywhere). Default: none. */
  sessions?: TieredCache;
  /** Gets `session.ended` after each logout. Default: none. */
  events?: ForumEventBus;
}

interface CachedSession {
  user: PublicUser;
  expiresAt: number;
}

/** How long a session lookup is trusted from the cache; logout deletes it sooner. */
const SESSION_CACHE_MS = 15_000;

const hashToken = (token: string): Buffer => createHash('sha256').update(token).digest();

/**
 * Accounts and sessions. Tokens are 32 random bytes handed to the client once; only their
 * SHA-256 is stored, so a leaked database holds no usable sessions.
 */
export function createAuthService(store: ForumStore, options: AuthOptions) {
  const now = options.now ?? Date.now;
  const sessions = options.sessions;
  // Failed logins per account (15 min window), checked before the password is, and all
  // attempts per IP (1 min window, a per-key token bucket from keel/resilience); both bounded
  // in keys and rejecting instead of waiting.
  const perAccount = new LoginBudget({ limit: options.loginAccountLimit, windowMs: 15 * 60_000, maxKeys: 50_000, now });
  const perIp = new RateLimit({
    name: 'login-ip',
    tokensPerInterval: options.loginIpLimit,
    intervalMs: 60_000,
    perKey: true,
    maxKeys: 50_000,
  });
  const noop = async () => {};

  async function take(limit: RateLimit, key: string): Promise<void> {
    try {
      await limit.execute(noop, { key });
    } catch (err) {
      if (isRateLimitedError(err)) throw tooManyRequests(err.retryAfterMs / 1000);
      throw err;
    }
  }

  async function issue(user: PublicUser): Promise<{ token: string; expiresAt: number; user: PublicUser }> {
    const token = randomBytes(32).toString('base64url');
    const at = now();
    const expiresAt = at + options.sessionTtlMs;
    await store.sessions.insert(hashToken(token), user.id, at, expiresAt);
    return { token, expiresAt, user };
  }

  /** The session's user from the store, cached under `key` (the hash's base64url, '' without a cache). */
  async function lookup(hash: Buffer, key: string): Promise<PublicUser | undefined> {
    const at = now();
    const found = await store.sessions.lookup(hash, at);
    if (!found) return undefined;
    const user = { id: found.id, username: found.username, createdAt: found.createdAt };
    // Unknown tokens are not cached: anyone could fill the cache with them.
    sessions
      ?.set(key, { user, expiresAt: found.expiresAt }, { ttlMs: Math.max(1, Math.min(SESSION_CACHE_MS, found.expiresAt - at)) })
      .catch(() => {});
    return user;
  }

  return {
    async register(username: string, password: string) {
      if (await store.users.byName(username)) throw new HttpError(409, 'conflict', 'username is taken', { field: 'username' });
      const hash = await hashPassword(password);
      let user: PublicUser;
      try {
        user = await store.users.insert(username, hash, now());
      } catch (err) {
        // Two registrations raced past the check above; the UNIQUE index decided.
        if (err instanceof UsernameTakenError) throw new HttpError(409, 'conflict', 'username is taken', { field: 'username' });
        throw err;
      }
      return issue(user);
    },
    async login(username: string, password: string, ip: string) {
      await take(perIp, ip);
      const account = username.toLowerCase();
      const waitMs = perAccount.reserve(account);
      if (waitMs > 0) throw tooManyRequests(waitMs / 1000);
      const row = await store.users.byName(username);
      const ok = await verifyPassword(password, row?.password_hash ?? (await dummyHash()));
      // A failure keeps the attempt it reserved; a success gives it back.
      if (!row || !ok) throw new HttpError(401, 'unauthorized', 'wrong username or password');
      perAccount.release(account);
      return issue({ id: row.id, username: row.username, createdAt: row.created_at });
    },
    /** Ends the session here and in every instance's session cache. */
    async logout(token: string): Promise<boolean> {
      const hash = hashToken(token);
      const user = options.events && (await store.sessions.lookup(hash, now()));
      const deleted = await store.sessions.delete(hash);
      await sessions?.delete(hash.toString('base64url'));
      // After the cache delete: a listener that re-checks the session must find it gone.
      if (deleted && user) options.events?.emit('session.ended', { userId: user.id });
      return deleted;
    },
    /**
     * The user for a bearer token, or undefined (unknown or expired). A session cached in memory
     * answers without a promise (the common case of every authenticated request); otherwise the
     * store is asked.
     */
    authenticate(token: string): PublicUser | undefined | Promise<PublicUser | undefined> {
      const hash = hashToken(token);
      const key = sessions ? hash.toString('base64url') : '';
      const hit = sessions?.peek<CachedSession>(key);
      if (hit !== undefined && hit.expiresAt > now()) return hit.user;
      return lookup(hash, key);
    },
    async requireUser(token: string | undefined): Promise<PublicUser> {
      const user = token ? await this.authenticate(token) : undefined;
      if (!user) throw unauthorized();
      return user;
    },
    async sweepExpired(): Promise<number> {
      return store.sessions.deleteExpired(now());
    },
    close(): Promise<void> {
      return perIp.close();
    },
  };
}
export type AuthService = ReturnType<typeof createAuthService>;
