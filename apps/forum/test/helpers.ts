import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { type BuildOptions, buildApp } from '../src/app.ts';
import { type Config, loadConfig } from '../src/config.ts';

export interface TestApp {
  app: FastifyInstance;
  dir: string;
  close(): Promise<void>;
}

/** The real app on a real SQLite file in a fresh temp dir. */
export async function createTestApp(overrides: Partial<Config> = {}, build: BuildOptions = {}): Promise<TestApp> {
  const dir = mkdtempSync(join(tmpdir(), 'forum-test-'));
  const config = loadConfig(
    {},
    {
      databasePath: join(dir, 'forum.db'),
      seedOnEmpty: 'small',
      // Several apps share a test process, and each seeds its database synchronously: that stall
      // is real event-loop delay to every other app alive in the process, and would shed their
      // requests. Only the tests about shedding (test/routes/observe.test.ts) turn it back on.
      shedding: { maxEventLoopDelayMs: 60_000, maxInFlight: 1_000_000, maxHeapUsedRatio: 1 },
      ...overrides,
    },
  );
  const app = await buildApp(config, { logger: false, ...build });
  return {
    app,
    dir,
    async close() {
      await app.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Registers a user and returns its bearer token and id. */
export async function register(
  app: FastifyInstance,
  username: string,
  password = 'correct horse battery',
): Promise<{ token: string; id: number }> {
  const res = await app.inject({ method: 'POST', url: '/api/v1/auth/register', payload: { username, password } });
  if (res.statusCode !== 201) throw new Error(`register failed: ${res.statusCode} ${res.body}`);
  const body = res.json() as { token: string; user: { id: number } };
  return { token: body.token, id: body.user.id };
}

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/** Asserts a 400 that names the field. */
export function expectBadRequest(res: { statusCode: number; json(): unknown }, field: string): void {
  const body = res.json() as { error?: string; field?: string };
  if (res.statusCode !== 400 || body.error !== 'bad_request' || body.field !== field) {
    throw new Error(`expected 400 naming ${field}, got ${res.statusCode} ${JSON.stringify(body)}`);
  }
}

/** Polls `check` until it returns true, at most `timeoutMs` (a bounded wait on real I/O, not a sleep). */
export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
