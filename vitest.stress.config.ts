import { defineConfig } from 'vitest/config';

// `npm run test:stress`: the heavy and slow probes (bursts, floods), kept out of `npm test`.
export default defineConfig({
  test: {
    include: ['test/stress/**/*.test.ts'],
    testTimeout: 300_000,
    hookTimeout: 60_000,
  },
});
