import { type Clock, realClock } from 'keel/clock';
import type { Repositories } from '../db/index.ts';
import { intOption } from '../options.ts';
import type { ForumEventBus } from './events.ts';

export interface SearchIndexerOptions {
  /** Longest a new post waits to be indexed, ms: the posts of that window go in one batch. Default 100. */
  delayMs?: number;
  /** Posts indexed per transaction at most (a backlog goes in several, one per tick). Default 1,000. */
  batch?: number;
  /** Where an indexing failure is reported (it is retried after `delayMs`). Default: ignored. */
  onError?: (err: unknown) => void;
  /** A promise while writes are paused for a checkpoint (Checkpointer.writable); a batch waits for it. Default: never paused. */
  writable?: () => Promise<void> | undefined;
  /** Called after a batch indexed posts, with how many (the app asks the checkpoint worker to merge the new segment). Default: nothing. */
  onIndexed?: (posts: number) => void;
  clock?: Clock;
}

/**
 * Indexes new posts for search after they commit, in batches (migration 003 says why). A post
 * is searchable within `delayMs` for everyone, and at once for its writer: the search route
 * calls {@link SearchIndexer.flush} before a recent writer's uncached search. The mark is
 * durable, so posts a crash left unindexed are indexed at the next start.
 */
export class SearchIndexer implements AsyncDisposable {
  readonly #repos: Repositories;
  readonly #events: ForumEventBus;
  readonly #delayMs: number;
  readonly #batch: number;
  readonly #onError: (err: unknown) => void;
  readonly #clock: Clock;
  readonly #writable: () => Promise<void> | undefined;
  readonly #onIndexed: (posts: number) => void;
  #timer: ReturnType<Clock['setTimeout']> | undefined;
  #closed = false;
  readonly #onPost = (): void => this.#schedule(this.#delayMs);

  constructor(repos: Repositories, events: ForumEventBus, options: SearchIndexerOptions = {}) {
    const delayMs = intOption('SearchIndexer', 'delayMs', options.delayMs, 100);
    const batch = intOption('SearchIndexer', 'batch', options.batch, 1_000, 1);
    this.#repos = repos;
    this.#events = events;
    this.#delayMs = delayMs;
    this.#batch = batch;
    this.#onError = options.onError ?? (() => {});
    this.#clock = options.clock ?? realClock;
    if (options.writable !== undefined && typeof options.writable !== 'function')
      throw new TypeError(`SearchIndexer: writable must be a function, got ${typeof options.writable}`);
    this.#writable = options.writable ?? (() => undefined);
    if (options.onIndexed !== undefined && typeof options.onIndexed !== 'function')
      throw new TypeError(`SearchIndexer: onIndexed must be a function, got ${typeof options.onIndexed}`);
    this.#onIndexed = options.onIndexed ?? (() => {});
    events.on('post.created', this.#onPost);
    // Catch up whatever the last process committed and did not index.
    this.#schedule(0);
  }

  #schedule(ms: number): void {
    if (this.#closed || this.#timer !== undefined) return;
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = undefined;
      this.#tick();
    }, ms);
  }

  #tick(): void {
    const paused = this.#writable();
    if (paused !== undefined) {
      // A checkpoint holds writes back for a few ms: the batch goes right after it.
      void paused.then(() => {
        if (!this.#closed) this.#tick();
      });
      return;
    }
    try {
      // A full batch means more may wait: the next one goes on the next tick, not in this one.
      if (this.#indexOnce() === this.#batch) this.#schedule(0);
    } catch (err) {
      this.#onError(err);
      this.#schedule(this.#delayMs);
    }
  }

  #indexOnce(): number {
    const n = this.#repos.transaction(() => this.#repos.postIndex.indexPending(this.#batch));
    if (n > 0) this.#onIndexed(n);
    return n;
  }

  /** Indexes every committed post now (synchronously). Throws what SQLite throws (a busy database). */
  flush(): void {
    while (this.#indexOnce() === this.#batch);
  }

  /** Indexes what is pending and stops. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#events.off('post.created', this.#onPost);
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    try {
      this.flush();
    } catch (err) {
      // Not lost: the mark is durable and the next start indexes the rest.
      this.#onError(err);
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
  }
}
