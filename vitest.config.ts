import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['packages/*/test/**/*.test.ts', 'apps/*/test/**/*.test.ts'],
    setupFiles: ['./test-support/no-leaks.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Two cores: two workers keep the machine responsive for the servers the tests start.
    maxWorkers: 2,
    reporters: process.env.CI ? ['default'] : ['default'],
  },
});
