import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // The machine has 2 cores; CLI tests spawn processes. Two workers keep runs predictable.
    maxWorkers: 2,
  },
});
