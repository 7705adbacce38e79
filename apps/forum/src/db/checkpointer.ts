/**
 * Owns the checkpoint worker (see checkpoint-worker.mjs): starts it, and on close stops its
 * timer, closes its connection and waits for the thread to end. The main connection keeps a
 * large auto-checkpoint as a safety net, so the WAL stays bounded even if the worker dies.
 *
 * Past `restartBytes` the worker asks for a short pause in writes, so one checkpoint can copy
 * the whole WAL and the next commit rewinds it. Writers that can wait (the HTTP routes that
 * write, the search indexer) await {@link Checkpointer.writable} first; reads never wait, and
 * nothing on the event loop ever blocks on the worker's locks.
 *
 * The worker also merges the search index's segments (migration 007), in the same pauses:
 * {@link Checkpointer.requestMerge} after writing new segments, and the next tick pauses writes
 * for at most `mergeBudgetMs` of merge steps.
 */
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { intOption } from '../options.ts';
import { SRC_DIR } from '../paths.ts';

export interface CheckpointerOptions {
  /** Time between PASSIVE checkpoints, ms. Default 100 (each copies what 100 ms of commits wrote). */
  intervalMs?: number;
  /** WAL size past which a RESTART checkpoint makes the next commit rewind it, bytes. Default 4 MiB. */
  restartBytes?: number;
  /** WAL size past which a TRUNCATE checkpoint resets it to zero bytes, bytes. Default 64 MiB. */
  truncateBytes?: number;
  /** Longest a pause holds writes back, ms. Default 50 (a pause is the copy of the last few ms of commits and an fsync). */
  pauseMaxMs?: number;
  /** Pauses in a row that may fail to catch up (a writer ignored them) before a RESTART, which blocks writers, is used instead. Default 3. */
  maxFailedPauses?: number;
  /**
   * Longest the worker merges the search index's segments in one pause, ms (migration 007; each
   * step writes ≤ 32 pages and took ≤ ~25 ms on `large`, so a pause can run past this by one
   * step). 0: the worker never merges, and the index's own crisis merges bound its segments.
   * Default 10.
   */
  mergeBudgetMs?: number;
  /** Where a checkpoint failure is reported. Default: ignored. */
  onError?: (message: string) => void;
}

/** What the write pauses did since start. */
export interface CheckpointerStats {
  /** Pauses granted. */
  pauses: number;
  /** Pauses whose checkpoint copied the whole WAL (so the next commit rewound it). */
  caughtUp: number;
  /** Pauses ended by `pauseMaxMs` before the worker finished. */
  timedOut: number;
  /** Longest pause, ms. */
  maxPauseMs: number;
  /** All pauses together, ms. */
  pausedMs: number;
  /** Pauses in which the worker merged the search index (at least one step did work). */
  merges: number;
  /** Merge steps that did work, in all. */
  mergeSteps: number;
  /** Time spent merging, ms. */
  mergeMs: number;
}

export class Checkpointer implements AsyncDisposable {
  readonly #worker: Worker;
  readonly #pauseMaxMs: number;
  #closed: Promise<void> | undefined;
  /** The current pause: writers await `promise`; undefined while writes may go ahead. */
  #pause: { promise: Promise<void>; resolve: () => void; timer: NodeJS.Timeout; startedAt: number } | undefined;
  readonly #stats: CheckpointerStats = {
    pauses: 0,
    caughtUp: 0,
    timedOut: 0,
    maxPauseMs: 0,
    pausedMs: 0,
    merges: 0,
    mergeSteps: 0,
    mergeMs: 0,
  };
  /** A merge was asked for since the worker's last pause (so one message per pause at most). */
  #mergeAsked = false;
  readonly #ready: Promise<void>;
  /** Settles when the worker thread has ended, however it ended. */
  readonly #exited: Promise<void>;

  constructor(path: string, options: CheckpointerOptions = {}) {
    const maxFailedPauses = intOption('Checkpointer', 'maxFailedPauses', options.maxFailedPauses, 3);
    const intervalMs = intOption('Checkpointer', 'intervalMs', options.intervalMs, 100);
    this.#pauseMaxMs = intOption('Checkpointer', 'pauseMaxMs', options.pauseMaxMs, 50);
    this.#worker = new Worker(join(SRC_DIR, 'db', 'checkpoint-worker.mjs'), {
      // Plain JavaScript: no TypeScript loader, whatever the parent runs with.
      execArgv: [],
      workerData: {
        path,
        intervalMs: Math.max(1, intervalMs),
        restartBytes: intOption('Checkpointer', 'restartBytes', options.restartBytes, 4 * 1024 * 1024),
        truncateBytes: intOption('Checkpointer', 'truncateBytes', options.truncateBytes, 64 * 1024 * 1024),
        maxFailedPauses,
        mergeBudgetMs: intOption('Checkpointer', 'mergeBudgetMs', options.mergeBudgetMs, 10),
      },
    });
    this.#worker.unref();
    const onError = options.onError;
    let markReady!: () => void;
    let failReady!: (err: Error) => void;
    this.#ready = new Promise<void>((resolve, reject) => {
      markReady = resolve;
      failReady = reject;
    });
    // Settled either way; only a caller of ready() sees the rejection.
    this.#ready.catch(() => {});
    type Message = {
      error?: string;
      ready?: boolean;
      pause?: boolean;
      resume?: boolean;
      complete?: boolean;
      merged?: number;
      mergeMs?: number;
    };
    this.#worker.on('message', (m: Message) => {
      if (m.error) onError?.(m.error);
      else if (m.ready) markReady();
      else if (m.pause) this.#startPause();
      else if (m.resume) {
        if ((m.merged ?? 0) > 0) {
          this.#stats.merges++;
          this.#stats.mergeSteps += m.merged ?? 0;
        }
        this.#stats.mergeMs += m.mergeMs ?? 0;
        this.#endPause(m.complete === true);
      }
    });
    this.#worker.on('error', (thrown: unknown) => {
      // A worker's uncaught error arrives structured-cloned: not always an Error with a message.
      const code = (thrown as { code?: unknown } | null)?.code;
      const err =
        thrown instanceof Error && thrown.message
          ? thrown
          : new Error(`the checkpoint worker failed${typeof code === 'string' ? ` (${code})` : ''}`);
      onError?.(err.message);
      failReady(err);
    });
    this.#exited = new Promise<void>((resolve) => {
      this.#worker.once('exit', () => {
        failReady(new Error('the checkpoint worker exited before it was ready'));
        resolve();
      });
    });
  }

  /**
   * Settles once the worker has opened its connection, so checkpoints run from then on; rejects
   * if the worker could not start (the error also goes to `onError`). Until then commits only
   * grow the WAL, bounded by the main connection's auto-checkpoint.
   */
  ready(): Promise<void> {
    return this.#ready;
  }

  /**
   * Undefined while writes may go ahead (the common case: no promise is made); during a pause,
   * a promise that settles when it ends, at most `pauseMaxMs` later. Never rejects.
   */
  writable(): Promise<void> | undefined {
    return this.#pause?.promise;
  }

  /**
   * New search-index segments were written (the indexer calls it after each batch): the worker
   * merges them in its next pause. Cheap to call often: one message per pause at most.
   */
  requestMerge(): void {
    if (this.#mergeAsked || this.#closed !== undefined) return;
    this.#mergeAsked = true;
    this.#worker.postMessage('merge');
  }

  stats(): CheckpointerStats {
    return { ...this.#stats };
  }

  #startPause(): void {
    if (this.#closed !== undefined || this.#pause !== undefined) return;
    let resolve!: () => void;
    const promise = new Promise<void>((r) => {
      resolve = r;
    });
    const timer = setTimeout(() => {
      this.#stats.timedOut++;
      this.#endPause(false);
    }, this.#pauseMaxMs);
    this.#pause = { promise, resolve, timer, startedAt: performance.now() };
    this.#stats.pauses++;
    // Writes are synchronous on this thread, so none is open now: the worker may copy. A merge
    // asked for before this point is done in this pause; one asked for after it, in the next.
    this.#mergeAsked = false;
    this.#worker.postMessage('paused');
  }

  #endPause(caughtUp: boolean): void {
    const p = this.#pause;
    if (p === undefined) return;
    this.#pause = undefined;
    clearTimeout(p.timer);
    const ms = performance.now() - p.startedAt;
    this.#stats.pausedMs += ms;
    if (ms > this.#stats.maxPauseMs) this.#stats.maxPauseMs = ms;
    if (caughtUp) this.#stats.caughtUp++;
    p.resolve();
  }

  close(): Promise<void> {
    // No writer may wait on a pause that will never end.
    this.#endPause(false);
    // Awaits the exit seen since construction: a worker that already died (it could not open
    // the database, say) emits no second 'exit', and waiting for one would never end.
    this.#closed ??= (async () => {
      this.#worker.postMessage('close');
      const timer = setTimeout(() => void this.#worker.terminate(), 2_000);
      await this.#exited;
      clearTimeout(timer);
    })();
    return this.#closed;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
