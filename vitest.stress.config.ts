import { defineConfig } from 'vitest/config';

// `npm run test:stress`: the heavy probes (test/stress), minutes long, one file at a time.
export default defineConfig({
  test: {
    include: ['test/stress/**/*.test.ts'],
    testTimeout: 600_000,
    hookTimeout: 60_000,
    fileParallelism: false,
  },
});
