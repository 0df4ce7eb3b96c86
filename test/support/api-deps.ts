import type { ApiDeps } from '../../src/api/index.js';
import { silentLogger } from '../../src/log.js';
import { createMetrics } from '../../src/metrics/index.js';
import { RegistryService } from '../../src/registry/service.js';
import type { TrafficStore } from '../../src/store/types.js';

/** The shipped registry snapshot, never refreshed (the download always fails). */
export function offlineRegistry(now: number): RegistryService {
  return new RegistryService(
    { url: '', refreshSeconds: 3600, cacheFile: '', timeoutMs: 1000 },
    { now: () => now, fetchText: () => Promise.reject(new Error('offline')), log: silentLogger() },
  );
}

/** API dependencies with nothing configured or seen: no links, no exporters, health ok, 60 s buckets, a fixed clock. */
export function bareApiDeps(store: TrafficStore, now: number, extra: Partial<ApiDeps> = {}): ApiDeps {
  const registry = offlineRegistry(now);
  const metrics = createMetrics({ registryStatus: () => registry.status(), now: () => now });
  return {
    store,
    registry,
    links: [],
    exporters: () => [],
    health: () => ({ status: 'ok', checks: {} }),
    metricsRegistry: metrics.registry,
    bucketSeconds: 60,
    now: () => now,
    ...extra,
  };
}
