/**
 * One server process a test owns (redis-server, postgres): started on demand, polled until it
 * answers, stopped with the signal its kind needs, startable again on the same port. The child
 * is spawned through `untracked`, so the leak check leaves it to the suite's `afterAll`.
 */
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { untracked } from './untracked.ts';

export interface ServerProcessOptions {
  /** For error messages, e.g. `'redis-server'`. */
  name: string;
  spawn: () => ChildProcess;
  /** Resolves true once the server answers. */
  ready: () => Promise<boolean>;
  readyWithinMs: number;
  /** Said when the process exits during start-up, e.g. how to install it. */
  exitHint: string;
  stopSignal: NodeJS.Signals;
}

export interface ServerProcess {
  readonly running: boolean;
  /** Starts the process unless it runs; resolves once `ready` says so. */
  start(): Promise<void>;
  /** Sends `stopSignal` and resolves when the process has exited. */
  stop(): Promise<void>;
}

export function serverProcess(options: ServerProcessOptions): ServerProcess {
  let child: ChildProcess | undefined;
  return {
    get running() {
      return child !== undefined;
    },
    async start() {
      if (child) return;
      const proc = untracked(options.spawn);
      child = proc;
      proc.once('exit', () => {
        if (child === proc) child = undefined;
      });
      const deadline = Date.now() + options.readyWithinMs;
      while (!(await options.ready())) {
        if (!child) throw new Error(`${options.name} exited at start (${options.exitHint})`);
        if (Date.now() > deadline) throw new Error(`${options.name} did not answer within ${options.readyWithinMs} ms`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    async stop() {
      const proc = child;
      if (!proc) return;
      child = undefined;
      const exited = once(proc, 'exit');
      proc.kill(options.stopSignal);
      await exited;
    },
  };
}
