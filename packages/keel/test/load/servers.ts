/** Real HTTP servers the load tests drive, each on a free loopback port. */
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';

export interface TestServer {
  url: string;
  port: number;
  server: Server;
  arrivals: number[];
  close(): Promise<void>;
}

/** Starts a server; `arrivals` records each request's arrival (performance.now()). */
export async function startServer(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<TestServer> {
  const arrivals: number[] = [];
  const timers = new Set<NodeJS.Timeout>();
  const server = createServer((req, res) => {
    arrivals.push(performance.now());
    handler(req, res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/`,
    port,
    server,
    arrivals,
    close: () =>
      new Promise((r) => {
        for (const t of timers) clearTimeout(t);
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** Responds after `ms`, tracking the timer so close() can clear it. */
export function delayed(ms: number): (req: IncomingMessage, res: ServerResponse) => void {
  return (_req, res) => {
    const t = setTimeout(() => res.end('ok'), ms);
    res.on('close', () => clearTimeout(t));
  };
}

/** Answers at once, except during the last `stallMs` of every `everyMs`, when it holds responses until the stall ends. */
export function stalling(everyMs: number, stallMs: number): (req: IncomingMessage, res: ServerResponse) => void {
  const t0 = performance.now();
  return (_req, res) => {
    const phase = (performance.now() - t0) % everyMs;
    if (phase < everyMs - stallMs) {
      res.end('ok');
      return;
    }
    const t = setTimeout(() => res.end('ok'), everyMs - phase);
    res.on('close', () => clearTimeout(t));
  };
}

/**
 * A server answering after `ms`, in its own process: its timers do not share an event loop
 * with the generator, so neither delays the other's timestamps on a busy machine.
 */
export async function startDelayedProcess(ms: number): Promise<{ url: string; close(): Promise<void> }> {
  const code = `require('node:http').createServer((q, s) => setTimeout(() => s.end('ok'), ${ms})).listen(0, '127.0.0.1', function () { console.log(this.address().port); });`;
  const child: ChildProcess = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<string>((resolve) => child.stdout!.once('data', (d: Buffer) => resolve(d.toString().trim())));
  return {
    url: `http://127.0.0.1:${port}/`,
    close: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill();
      await exited;
    },
  };
}
