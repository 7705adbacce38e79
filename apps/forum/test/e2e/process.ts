/**
 * The forum as a real process, on a free port and a fresh SQLite file, for the end-to-end
 * tests: `src/server.ts` through tsx as `npm start` runs it, or with `built` the bundle
 * (`dist/server.js`) as `npm run start:prod` runs it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const appDir = join(dirname(fileURLToPath(import.meta.url)), '../..');

export interface ForumProcess {
  child: ChildProcess;
  port: number;
  base: string;
  output: () => string;
  exited: Promise<number | null>;
  /** Stops it if still running and removes its data. */
  cleanup(): Promise<void>;
}

export async function startForum(env: Record<string, string> = {}, { built = false } = {}): Promise<ForumProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'forum-e2e-'));
  const args = built ? [join(appDir, 'dist/server.js')] : ['--import', 'tsx', join(appDir, 'src/server.ts')];
  const child = spawn(process.execPath, args, {
    cwd: appDir,
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', DATABASE_PATH: join(dir, 'forum.db'), PREVIEWS: 'off', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const onData = (d: Buffer) => {
    out += d.toString();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`forum did not start within 30 s:\n${out}`)), 30_000);
    const check = () => {
      const m = /listening at http:\/\/127\.0\.0\.1:(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        child.stdout!.off('data', check);
        resolve(Number(m[1]));
      }
    };
    child.stdout!.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`forum exited (${code}) at start:\n${out}`));
    });
  });
  return {
    child,
    port,
    base: `http://127.0.0.1:${port}`,
    output: () => out,
    exited,
    async cleanup() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
