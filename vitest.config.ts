import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 60_000,
    // lavapipe uses every core for each dispatch; files in parallel only contend for them.
    fileParallelism: false,
    // The last line counts the tests skipped because ../shared (real weights and data, not in the project) is absent.
    reporters: ['default', './test/helpers/shared-reporter.ts'],
  },
});
