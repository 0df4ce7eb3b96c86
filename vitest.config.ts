import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Heavy probes run by `npm run test:stress` (vitest.stress.config.ts).
    exclude: ['test/stress/**', '**/node_modules/**'],
    // Integration tests start real servers (influxd) and replay captures over loopback.
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
