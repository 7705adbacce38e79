import { afterAll, beforeAll, it } from 'vitest';

let keep: NodeJS.Timeout | undefined;
it('leaves an unref-ed interval running', () => {
  keep = setInterval(() => {}, 1_000);
  keep.unref();
});

// A tick re-armed with a new setTimeout each time (as keel's Scope does), started before the
// test: the test outlasts its period, and the re-armed timer is the tick's, not the test's.
let tick: NodeJS.Timeout | undefined;
beforeAll(() => {
  const arm = (): void => {
    tick = setTimeout(arm, 5);
  };
  arm();
});
afterAll(() => clearTimeout(tick));
it('outlasts a re-arming tick that predates it', async () => {
  await new Promise<void>((resolve) => setTimeout(resolve, 50));
});

// The same tick started by the test itself, left running: its re-armed timer is the test's.
let own: NodeJS.Timeout | undefined;
it('leaves its own re-arming tick running', async () => {
  const arm = (): void => {
    own = setTimeout(arm, 5);
    own.unref();
  };
  arm();
  await new Promise<void>((resolve) => setTimeout(resolve, 50));
});
