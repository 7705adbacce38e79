import type { Checkpointer } from '../db/checkpointer.ts';
import type { Repositories } from '../db/index.ts';
import type { ForumStore } from '../db/store.ts';
import type { LiveHub } from '../live/hub.ts';
import type { AuthService } from './auth.ts';
import type { ForumCaches } from './cache.ts';
import type { ForumEventBus } from './events.ts';
import type { ForumService } from './forum.ts';
import type { PreviewWorker } from './previews/worker.ts';
import type { SearchService } from './search.ts';
import type { SearchIndexer } from './search-indexer.ts';
import type { WikiService } from './wiki.ts';

/** Everything the routes use, created once in app.ts. */
export interface Services {
  /** The database, whichever backend (SQLite or PostgreSQL). */
  store: ForumStore;
  /** The SQLite repositories, when the store is SQLite (tests and SQLite-only tools read them). */
  repos?: Repositories;
  events: ForumEventBus;
  auth: AuthService;
  forum: ForumService;
  wiki: WikiService;
  search: SearchService;
  /** Indexes new posts for search in batches after they commit (SQLite; PostgreSQL indexes on write). */
  searchIndex?: SearchIndexer;
  /** The read caches (bodies and sessions). */
  caches: ForumCaches;
  /** Live updates: WebSocket rooms and presence (`hub.stats()` for the dashboard). */
  live: LiveHub;
  /** The link-preview worker, when previews are enabled. */
  previews?: PreviewWorker;
  /** The WAL checkpoint worker (its pauses in writes, `stats()`), for a database file. */
  checkpointer?: Checkpointer;
}
