import type { Statements } from '../connection.ts';

export interface UserRow {
  id: number;
  username: string;
  password_hash: string;
  created_at: number;
}

export interface PublicUser {
  id: number;
  username: string;
  createdAt: number;
}

export function toPublicUser(row: { id: number; username: string; created_at: number }): PublicUser {
  return { id: row.id, username: row.username, createdAt: row.created_at };
}

export function createUsersRepository(st: Statements) {
  const insert = st.prepare(
    'users.insert',
    'INSERT INTO users (username, password_hash, created_at) VALUES (?, ?, ?) RETURNING id, username, created_at',
  );
  const byName = st.prepare('users.byName', 'SELECT id, username, password_hash, created_at FROM users WHERE username = ?');
  const byId = st.prepare('users.byId', 'SELECT id, username, created_at FROM users WHERE id = ?');
  return {
    insert(username: string, passwordHash: string, now: number): PublicUser {
      return toPublicUser(insert.get(username, passwordHash, now) as UserRow);
    },
    byName(username: string): UserRow | undefined {
      return byName.get(username) as UserRow | undefined;
    },
    byId(id: number): PublicUser | undefined {
      const row = byId.get(id) as UserRow | undefined;
      return row && toPublicUser(row);
    },
  };
}
export type UsersRepository = ReturnType<typeof createUsersRepository>;
