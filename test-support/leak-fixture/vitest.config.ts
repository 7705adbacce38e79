import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: { root: 'test-support/leak-fixture', include: ['*.fixture.ts'], setupFiles: ['../no-leaks.ts'], pool: 'forks' },
});
