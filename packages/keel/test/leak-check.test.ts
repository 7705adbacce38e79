import { describe, expect, it } from 'vitest';

// Proves the suite-wide leak check can fail: a test that leaves an interval running must be
// reported. The hook's error is captured by running the check logic through a child vitest.
describe('leak check', () => {
  it('reports an interval left running by a test', async () => {
    const { execFile } = await import('node:child_process');
    const { promisify } = await import('node:util');
    const run = promisify(execFile);
    const result = await run(
      process.execPath,
      ['node_modules/vitest/vitest.mjs', 'run', '--config', 'test-support/leak-fixture/vitest.config.ts'],
      {
        cwd: process.cwd(),
        env: { ...process.env, CI: 'true' },
      },
    ).then(
      () => ({ code: 0, out: '' }),
      (err: { code: number; stdout: string; stderr: string }) => ({ code: err.code, out: err.stdout + err.stderr }),
    );
    expect(result.code).not.toBe(0);
    // biome-ignore lint/suspicious/noControlCharactersInRegex: vitest colours its output
    const out = result.out.replace(/\x1b\[[0-9;]*m/g, '');
    // leaky.fixture.ts: two of its three tests leave a timer of their own; the third outlasts
    // a tick that predates it, whose re-armed timers are not the test's.
    expect(out).toMatch(/test left handles behind: Timeout x1/);
    // leaky-file.fixture.ts: a server its beforeAll opened and no afterAll closed, and a worker
    // thread a test left running (workers are checked per file: pools start them lazily).
    expect(out).toMatch(
      /test file left handles behind \(opened at its top level or in beforeAll, not closed by afterAll\): TCPSERVERWRAP x1, WORKER x1/,
    );
    expect(out).toMatch(/Tests\s+2 failed \| 3 passed/);
  });
});
