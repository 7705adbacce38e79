import { EventEmitter } from 'node:events';
import type { Post } from '../db/repositories/posts.ts';
import type { Topic } from '../db/repositories/topics.ts';

/** Domain events the services emit after a write commits (live updates and caches listen). */
export interface ForumEvents {
  'topic.created': [{ topic: Topic; post: Post }];
  'post.created': [{ topicId: number; forumId: number; post: Post }];
  'post.updated': [{ topicId: number; forumId: number; post: Post }];
  'post.deleted': [{ topicId: number; forumId: number; postId: number; authorId: number }];
  'page.updated': [{ namespace: string; title: string; pageId: number; revisionId: number }];
  /** A session was logged out (expiry has no event); live closes the user's private channel at once. */
  'session.ended': [{ userId: number }];
}

export class ForumEventBus extends EventEmitter<ForumEvents> {
  constructor() {
    super({ captureRejections: true });
    // Bounded by design: a handful of subsystems subscribe (live, cache, previews).
    this.setMaxListeners(32);
  }
}
