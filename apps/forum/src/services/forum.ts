import type { Post, ThreadPost } from '../db/repositories/posts.ts';
import type { LinkPreview } from '../db/repositories/previews.ts';
import type { Topic } from '../db/repositories/topics.ts';
import type { PublicUser } from '../db/repositories/users.ts';
import type { ForumStore, TimeKey } from '../db/store.ts';
import { badRequest, forbidden, notFound } from '../http/errors.ts';
import type { ForumEventBus } from './events.ts';
import { extractUrls } from './previews/extract.ts';

export interface ThreadLimits {
  /** Reply depth read below each root. Default 5. */
  maxDepth: number;
  /** Rows read per thread request, roots and replies together. Default 1,000. */
  maxRows: number;
}

/**
 * Forums, topics and threaded posts. Each write is one store transaction; its events go out
 * after it commits.
 */
export function createForumService(
  store: ForumStore,
  events: ForumEventBus,
  limits: ThreadLimits = { maxDepth: 5, maxRows: 1_000 },
  now: () => number = Date.now,
) {
  async function topicOrThrow(id: number): Promise<Topic> {
    const topic = await store.topics.byId(id);
    if (!topic) throw notFound('topic');
    return topic;
  }

  async function ownPost(id: number, user: PublicUser): Promise<Post> {
    const post = await store.posts.byId(id);
    if (!post || post.deleted) throw notFound('post');
    if (post.author.id !== user.id) throw forbidden('only the author can change this post');
    return post;
  }

  async function forumOrThrow(id: number): Promise<void> {
    if (!(await store.forums.byId(id))) throw notFound('forum');
  }

  return {
    async listForums(after: { position: number; id: number } | null, limit: number) {
      return store.forums.list(after, limit);
    },
    async listTopics(forumId: number, after: { updatedAt: number; id: number } | null, limit: number): Promise<Topic[]> {
      await forumOrThrow(forumId);
      return store.topics.list(forumId, after, limit);
    },
    async getTopic(id: number, after: TimeKey | null, roots: number): Promise<{ topic: Topic; posts: ThreadPost[] }> {
      const topic = await topicOrThrow(id);
      return { topic, posts: await store.posts.topicThread(id, after, roots, limits.maxDepth, limits.maxRows) };
    },
    /**
     * A post's sub-thread; with `after`, the page of its direct replies after that cursor key.
     * `next` is the key to continue from when its direct replies may not all have been returned.
     */
    async thread(postId: number, depth: number, after: TimeKey | null = null): Promise<{ items: ThreadPost[]; next: TimeKey | null }> {
      const post = await store.posts.byId(postId);
      if (!post) throw notFound('post');
      const items = await store.posts.subThread(postId, Math.min(depth, limits.maxDepth), limits.maxRows, after);
      let last: ThreadPost | undefined;
      for (const p of items) if (p.parentId === postId) last = p;
      // The first read knows when the row bound cut the replies (the root's hasMoreReplies); a
      // later page only that it came back full, like every other keyset list.
      const cut = after ? items.length >= limits.maxRows : items[0]?.hasMoreReplies === true;
      return { items, next: cut && last ? { createdAt: last.createdAt, id: last.id } : null };
    },
    async createTopic(forumId: number, user: PublicUser, title: string, body: string): Promise<{ topic: Topic; post: Post }> {
      await forumOrThrow(forumId);
      const ids = await store.createTopic({ forumId, authorId: user.id, title, body, urls: extractUrls(body), at: now() });
      const result = { topic: await topicOrThrow(ids.topicId), post: (await store.posts.byId(ids.postId)) as Post };
      events.emit('topic.created', result);
      events.emit('post.created', { topicId: ids.topicId, forumId, post: result.post });
      return result;
    },
    /** A reply in `topicId` (under `parentId`), with its link previews as queued. */
    async createPost(
      topicId: number,
      user: PublicUser,
      body: string,
      parentId: number | null,
    ): Promise<Post & { previews: LinkPreview[] }> {
      let parent: Post | undefined;
      if (parentId !== null) {
        parent = await store.posts.byId(parentId);
        if (!parent || parent.topicId !== topicId) {
          // A missing topic is a 404 before a bad parent is a 400.
          await topicOrThrow(topicId);
          throw badRequest('parentId', 'parentId must be a post in this topic');
        }
      }
      const urls = extractUrls(body);
      // The store says whether the topic exists and returns the post as written, so a reply
      // reads neither its topic nor itself back.
      const created = await store.createPost({
        topicId,
        parent: parent ? { id: parent.id, depth: parent.depth } : null,
        author: { id: user.id, username: user.username },
        body,
        urls,
        at: now(),
      });
      if (!created) throw notFound('topic');
      const { post, forumId } = created;
      events.emit('post.created', { topicId, forumId, post });
      // A post without links queued no previews: nothing to read.
      return { ...post, previews: urls.length === 0 ? [] : await store.previews.ofPost(post.id) };
    },
    async editPost(id: number, user: PublicUser, body: string): Promise<Post> {
      const post = await ownPost(id, user);
      // Deleted since ownPost read it (another request or instance): nothing is written.
      if (!(await store.editPost({ id, body, urls: extractUrls(body), at: Math.max(now(), post.createdAt + 1) }))) throw notFound('post');
      const updated = (await store.posts.byId(id)) as Post;
      events.emit('post.updated', { topicId: post.topicId, forumId: (await topicOrThrow(post.topicId)).forumId, post: updated });
      return updated;
    },
    async deletePost(id: number, user: PublicUser): Promise<void> {
      const post = await ownPost(id, user);
      await store.deletePost(id, Math.max(now(), post.createdAt + 1));
      events.emit('post.deleted', {
        topicId: post.topicId,
        forumId: (await topicOrThrow(post.topicId)).forumId,
        postId: id,
        authorId: post.author.id,
      });
    },
  };
}
export type ForumService = ReturnType<typeof createForumService>;
