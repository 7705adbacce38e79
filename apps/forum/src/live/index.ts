/**
 * Live updates: the hub (rooms, presence, heartbeats, bounded sends), its wiring to the
 * forum's domain events, and the optional Redis fan-out. `app.ts` calls {@link createLive}
 * once and registers {@link liveRoutes} under `/api/v1`.
 */
import type { Post } from '../db/repositories/posts.ts';
import type { ForumStore } from '../db/store.ts';
import type { AuthService } from '../services/auth.ts';
import type { ForumEventBus, ForumEvents } from '../services/events.ts';
import { type FanoutDeliver, LiveHub, type LiveLimits } from './hub.ts';
import { RedisFanout } from './redis-fanout.ts';

export type { LiveSocket, LiveStats, LiveUser } from './hub.ts';
export { LiveHub } from './hub.ts';
export type { LiveLimits } from './limits.ts';
export { LIVE_DEFAULTS } from './limits.ts';
export { ClientProtocol, CloseCode } from './protocol.ts';
export { RedisFanout } from './redis-fanout.ts';
export { liveRoutes } from './routes.ts';

export interface LiveDeps {
  events: ForumEventBus;
  auth: Pick<AuthService, 'authenticate'>;
  store: Pick<ForumStore, 'topics' | 'posts'>;
  config: { live: LiveLimits; redisUrl?: string | undefined };
}

/**
 * The hub with the forum's events wired in: new posts, edits and deletions go to the topic's
 * room; a reply also goes to the `me` channel of the parent post's author (unless they replied
 * to themselves). With `config.redisUrl`, events reach the other instances too.
 *
 * @example
 * ```ts
 * const live = scope.add(createLive({ events, auth, store, config }));
 * await app.register(liveRoutes(live, auth), { prefix: '/api/v1' });
 * ```
 */
export function createLive({ events, auth, store, config }: LiveDeps): LiveHub {
  const redisUrl = config.redisUrl;
  const hub = new LiveHub({
    ...config.live,
    authenticate: (token) => auth.authenticate(token),
    topicExists: (topicId) => {
      const topic = store.topics.byId(topicId);
      return topic instanceof Promise ? topic.then((t) => t !== undefined) : topic !== undefined;
    },
    ...(redisUrl
      ? {
          fanout: (deliver: FanoutDeliver, subscribed: () => void) => new RedisFanout({ url: redisUrl, onSubscribed: subscribed }, deliver),
        }
      : {}),
  });
  // A listener runs inside the service's emit, after the commit: it must never throw into the
  // request that made the write, so a failure here costs only the live message.
  const guard =
    <A extends unknown[]>(fn: (...args: A) => void) =>
    (...args: A): void => {
      try {
        fn(...args);
      } catch {
        // The write is committed; clients re-read on reconnect.
      }
    };
  const onCreated = guard(({ topicId, post }: ForumEvents['post.created'][0]) => {
    hub.publishTopic(topicId, { type: 'post.created', topicId, post });
    if (post.parentId === null || !hub.hasUserListeners) return;
    const notify = (parent: Post | undefined): void => {
      if (parent && parent.author.id !== post.author.id) hub.notifyUser(parent.author.id, { type: 'reply', channel: 'me', topicId, post });
    };
    const parent = store.posts.byId(post.parentId);
    // A failed lookup costs only the notification, as a throw does above.
    if (parent instanceof Promise) parent.then(notify, () => {});
    else notify(parent);
  });
  const onUpdated = guard(({ topicId, post }: ForumEvents['post.updated'][0]) =>
    hub.publishTopic(topicId, { type: 'post.updated', topicId, post }),
  );
  const onDeleted = guard(({ topicId, postId }: ForumEvents['post.deleted'][0]) =>
    hub.publishTopic(topicId, { type: 'post.deleted', topicId, postId }),
  );
  // A logout closes that user's me channels here at once; on other instances each delivery
  // re-checks the session (hub.ts), and expiry is caught there or at the next heartbeat.
  const onSessionEnded = guard(({ userId }: ForumEvents['session.ended'][0]) => hub.sessionEnded(userId));
  events.on('post.created', onCreated);
  events.on('post.updated', onUpdated);
  events.on('post.deleted', onDeleted);
  events.on('session.ended', onSessionEnded);
  hub.adopt(() => {
    events.off('post.created', onCreated);
    events.off('post.updated', onUpdated);
    events.off('post.deleted', onDeleted);
    events.off('session.ended', onSessionEnded);
  });
  return hub;
}
