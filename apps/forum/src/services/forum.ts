import type { Repositories } from '../db/index.ts';
import type { Post, ThreadPost } from '../db/repositories/posts.ts';
import type { Topic } from '../db/repositories/topics.ts';
import type { PublicUser } from '../db/repositories/users.ts';
import { badRequest, forbidden, notFound } from '../http/errors.ts';
import type { ForumEventBus } from './events.ts';
import { extractUrls } from './previews/extract.ts';

export interface ThreadLimits {
  /** Reply depth read below each root. Default 5. */
  maxDepth: number;
  /** Rows read per thread request, roots and replies together. Default 1,000. */
  maxRows: number;
}

/** Forums, topics and threaded posts. Writes run in one transaction and emit events after commit. */
export function createForumService(
  repos: Repositories,
  events: ForumEventBus,
  limits: ThreadLimits = { maxDepth: 5, maxRows: 1_000 },
  now: () => number = Date.now,
) {
  function topicOrThrow(id: number): Topic {
    const topic = repos.topics.byId(id);
    if (!topic) throw notFound('topic');
    return topic;
  }

  function ownPost(id: number, user: PublicUser): Post {
    const post = repos.posts.byId(id);
    if (!post || post.deleted) throw notFound('post');
    if (post.author.id !== user.id) throw forbidden('only the author can change this post');
    return post;
  }

  return {
    listForums(after: { position: number; id: number } | null, limit: number) {
      return repos.forums.list(after, limit);
    },
    listTopics(forumId: number, after: { updatedAt: number; id: number } | null, limit: number): Topic[] {
      if (!repos.forums.byId(forumId)) throw notFound('forum');
      return repos.topics.list(forumId, after, limit);
    },
    getTopic(id: number, after: { createdAt: number; id: number } | null, roots: number): { topic: Topic; posts: ThreadPost[] } {
      const topic = topicOrThrow(id);
      return { topic, posts: repos.posts.topicThread(id, after, roots, limits.maxDepth, limits.maxRows) };
    },
    /**
     * A post's sub-thread; with `after`, the page of its direct replies after that cursor key.
     * `next` is the key to continue from when its direct replies may not all have been returned.
     */
    thread(
      postId: number,
      depth: number,
      after: { createdAt: number; id: number } | null = null,
    ): { items: ThreadPost[]; next: { createdAt: number; id: number } | null } {
      const post = repos.posts.byId(postId);
      if (!post) throw notFound('post');
      const items = repos.posts.subThread(postId, Math.min(depth, limits.maxDepth), limits.maxRows, after);
      let last: ThreadPost | undefined;
      for (const p of items) if (p.parentId === postId) last = p;
      // The first read knows when the row bound cut the replies (the root's hasMoreReplies); a
      // later page only that it came back full, like every other keyset list.
      const cut = after ? items.length >= limits.maxRows : items[0]?.hasMoreReplies === true;
      return { items, next: cut && last ? { createdAt: last.createdAt, id: last.id } : null };
    },
    createTopic(forumId: number, user: PublicUser, title: string, body: string): { topic: Topic; post: Post } {
      if (!repos.forums.byId(forumId)) throw notFound('forum');
      const at = now();
      const ids = repos.transaction(() => {
        const topicId = repos.topics.insert(forumId, user.id, title, at);
        const postId = repos.posts.insert(topicId, null, user.id, body, at);
        repos.previews.enqueue(postId, extractUrls(body), at);
        repos.topics.touch(topicId, at);
        return { topicId, postId };
      });
      const result = { topic: topicOrThrow(ids.topicId), post: repos.posts.byId(ids.postId) as Post };
      events.emit('topic.created', result);
      events.emit('post.created', { topicId: ids.topicId, forumId, post: result.post });
      return result;
    },
    createPost(topicId: number, user: PublicUser, body: string, parentId: number | null): Post {
      const topic = topicOrThrow(topicId);
      let parent: Post | undefined;
      if (parentId !== null) {
        parent = repos.posts.byId(parentId);
        if (!parent || parent.topicId !== topicId) throw badRequest('parentId', 'parentId must be a post in this topic');
      }
      const at = now();
      const postId = repos.transaction(() => {
        const id = repos.posts.insert(topicId, parent ? { id: parent.id, depth: parent.depth } : null, user.id, body, at);
        // Queued in the post's own transaction: saving never waits on the upstream, and a
        // preview can't be lost between the post and its queue entry.
        repos.previews.enqueue(id, extractUrls(body), at);
        repos.topics.touch(topicId, at);
        return id;
      });
      const post = repos.posts.byId(postId) as Post;
      events.emit('post.created', { topicId, forumId: topic.forumId, post });
      return post;
    },
    editPost(id: number, user: PublicUser, body: string): Post {
      const post = ownPost(id, user);
      const at = Math.max(now(), post.createdAt + 1);
      const urls = extractUrls(body);
      repos.transaction(() => {
        // Deleted since ownPost read it (another instance on the same file): queue nothing for it.
        if (!repos.posts.update(id, body, at)) throw notFound('post');
        // A link the edit removed keeps no preview (nor a pending fetch); kept links keep theirs.
        repos.previews.keepOnly(id, urls);
        repos.previews.enqueue(id, urls, at);
      });
      const updated = repos.posts.byId(id) as Post;
      events.emit('post.updated', { topicId: post.topicId, forumId: topicOrThrow(post.topicId).forumId, post: updated });
      return updated;
    },
    deletePost(id: number, user: PublicUser): void {
      const post = ownPost(id, user);
      repos.transaction(() => {
        repos.posts.softDelete(id, Math.max(now(), post.createdAt + 1));
        // The post's row stays as a tombstone, so ON DELETE CASCADE never fires: its previews
        // (titles of links nobody can see any more, and pending fetches) go here.
        repos.previews.removeAll(id);
      });
      events.emit('post.deleted', {
        topicId: post.topicId,
        forumId: topicOrThrow(post.topicId).forumId,
        postId: id,
        authorId: post.author.id,
      });
    },
  };
}
export type ForumService = ReturnType<typeof createForumService>;
