import { createServer } from 'node:net';
import { Worker } from 'node:worker_threads';
import { beforeAll, it } from 'vitest';

// A server a file's beforeAll opens and no afterAll closes: the file's leak, not a test's.
beforeAll(async () => {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
});

it('passes, though the file leaves its server open', () => {});

it('leaves a worker thread running, which fails the file', async () => {
  const worker = new Worker('setInterval(() => {}, 1000)', { eval: true });
  await new Promise((resolve) => worker.once('online', resolve));
});
