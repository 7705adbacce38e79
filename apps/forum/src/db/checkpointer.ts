/**
 * Owns the checkpoint worker (see checkpoint-worker.mjs): starts it, and on close stops its
 * timer, closes its connection and waits for the thread to end. The main connection keeps a
 * large auto-checkpoint as a safety net, so the WAL stays bounded even if the worker dies.
 */
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';

export interface CheckpointerOptions {
  /** Time between PASSIVE checkpoints, ms. Default 100 (each copies what 100 ms of commits wrote). */
  intervalMs?: number;
  /** WAL size past which a RESTART checkpoint makes the next commit rewind it, bytes. Default 4 MiB. */
  restartBytes?: number;
  /** WAL size past which a TRUNCATE checkpoint resets it to zero bytes, bytes. Default 64 MiB. */
  truncateBytes?: number;
  /** Where a checkpoint failure is reported. Default: ignored. */
  onError?: (message: string) => void;
}

export class Checkpointer implements AsyncDisposable {
  readonly #worker: Worker;
  #closed: Promise<void> | undefined;

  constructor(path: string, options: CheckpointerOptions = {}) {
    this.#worker = new Worker(new URL('./checkpoint-worker.mjs', import.meta.url), {
      workerData: {
        path,
        intervalMs: options.intervalMs ?? 100,
        restartBytes: options.restartBytes ?? 4 * 1024 * 1024,
        truncateBytes: options.truncateBytes ?? 64 * 1024 * 1024,
      },
    });
    this.#worker.unref();
    const onError = options.onError;
    this.#worker.on('message', (m: { error?: string }) => {
      if (m.error) onError?.(m.error);
    });
    this.#worker.on('error', (err) => onError?.(err.message));
  }

  close(): Promise<void> {
    this.#closed ??= (async () => {
      const exited = once(this.#worker, 'exit');
      this.#worker.postMessage('close');
      const timer = setTimeout(() => void this.#worker.terminate(), 2_000);
      await exited;
      clearTimeout(timer);
    })();
    return this.#closed;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
