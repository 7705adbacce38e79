import type { Statements } from '../connection.ts';

export interface Forum {
  id: number;
  slug: string;
  name: string;
  description: string;
  position: number;
  topicCount: number;
}

export interface ForumRow {
  id: number;
  slug: string;
  name: string;
  description: string;
  position: number;
  topic_count: number;
}

export const toForum = (r: ForumRow): Forum => ({
  id: r.id,
  slug: r.slug,
  name: r.name,
  description: r.description,
  position: r.position,
  topicCount: r.topic_count,
});

export function createForumsRepository(st: Statements) {
  const list = st.prepare(
    'forums.list',
    'SELECT id, slug, name, description, position, topic_count FROM forums WHERE (position, id) > (?, ?) ORDER BY position, id LIMIT ?',
  );
  const byId = st.prepare('forums.byId', 'SELECT id, slug, name, description, position, topic_count FROM forums WHERE id = ?');
  return {
    list(after: { position: number; id: number } | null, limit: number): Forum[] {
      return (list.all(after?.position ?? -1, after?.id ?? 0, limit) as ForumRow[]).map(toForum);
    },
    byId(id: number): Forum | undefined {
      const r = byId.get(id) as ForumRow | undefined;
      return r && toForum(r);
    },
  };
}
export type ForumsRepository = ReturnType<typeof createForumsRepository>;
