/**
 * The live progress line: rewritten in place on a TTY; in CI (not a TTY) a plain line every
 * `plainEveryMs` instead, so logs stay readable and short.
 */
import type { WindowStats } from './histogram.ts';

/** Where progress goes: any writable with an optional `isTTY`. */
export interface ProgressStream {
  write(text: string): unknown;
  isTTY?: boolean;
}

/**
 * Returns an `onWindow` callback for {@link runLoad} and a `done()` that ends the line.
 *
 * @example
 * ```ts
 * const progress = createProgress(process.stderr);
 * const result = await runLoad({ url, onWindow: progress.onWindow });
 * progress.done();
 * ```
 */
export function createProgress(
  stream: ProgressStream,
  plainEveryMs = 10_000,
): { onWindow: (w: WindowStats, elapsedMs: number) => void; done: () => void } {
  let lastPlain = 0;
  let drawn = false;
  return {
    onWindow(w, elapsedMs) {
      const text = `${(elapsedMs / 1000).toFixed(0).padStart(4)}s  ${String(w.rps).padStart(7)} req/s  p50 ${w.p50.toFixed(1)} ms  p99 ${w.p99.toFixed(1)} ms  errors ${w.errors}`;
      if (stream.isTTY) {
        stream.write(`\r\x1b[2K${text}`);
        drawn = true;
      } else if (elapsedMs - lastPlain >= plainEveryMs) {
        lastPlain = elapsedMs;
        stream.write(`${text}\n`);
      }
    },
    done() {
      if (drawn) stream.write('\r\x1b[2K');
    },
  };
}
