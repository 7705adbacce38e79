/**
 * Fixtures for the fault tests: a real link-preview upstream that can be switched to 500s,
 * the app on a real socket, and small figures helpers.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';

/** An HTML upstream that answers every path with a title, or 500 while `failing`. */
export class PreviewUpstream {
  failing = false;
  requests = 0;
  readonly server: Server = createServer((req, res) => this.#handle(req, res));

  #handle(req: IncomingMessage, res: ServerResponse): void {
    this.requests++;
    if (this.failing) return void res.writeHead(500, { 'content-type': 'text/plain' }).end('upstream down');
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(`<html><head><title>Title of ${req.url}</title></head></html>`);
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return (this.server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** Listens on a free loopback port and returns the base URL (closed with the app). */
export async function listen(app: FastifyInstance): Promise<string> {
  await app.listen({ port: 0, host: '127.0.0.1' });
  return `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
}

/** The `p`-th percentile (0..100) of `values`, nearest rank; NaN when empty. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] as number;
}

export const round = (n: number, digits = 1): number => Math.round(n * 10 ** digits) / 10 ** digits;
