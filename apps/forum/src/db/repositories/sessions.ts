import type { Statements } from '../connection.ts';
import type { PublicUser } from './users.ts';

export function createSessionsRepository(st: Statements) {
  const insert = st.prepare('sessions.insert', 'INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)');
  const lookup = st.prepare(
    'sessions.lookup',
    'SELECT u.id, u.username, u.created_at, s.expires_at FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = ? AND s.expires_at > ?',
  );
  const remove = st.prepare('sessions.delete', 'DELETE FROM sessions WHERE token_hash = ?');
  const removeExpired = st.prepare('sessions.deleteExpired', 'DELETE FROM sessions WHERE expires_at <= ?');
  return {
    insert(tokenHash: Buffer, userId: number, now: number, expiresAt: number): void {
      insert.run(tokenHash, userId, now, expiresAt);
    },
    lookup(tokenHash: Buffer, now: number): (PublicUser & { expiresAt: number }) | undefined {
      const row = lookup.get(tokenHash, now) as { id: number; username: string; created_at: number; expires_at: number } | undefined;
      return row && { id: row.id, username: row.username, createdAt: row.created_at, expiresAt: row.expires_at };
    },
    delete(tokenHash: Buffer): boolean {
      return remove.run(tokenHash).changes > 0;
    },
    deleteExpired(now: number): number {
      return removeExpired.run(now).changes;
    },
  };
}
export type SessionsRepository = ReturnType<typeof createSessionsRepository>;
