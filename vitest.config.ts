import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Integration tests start real servers (influxd) and replay captures over loopback.
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
