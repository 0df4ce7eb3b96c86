import type { LinkConfig, StoreConfig } from '../config/index.js';
import type { Logger } from '../log.js';
import type { Registry } from '../registry/registry.js';
import { resolveInfluxCredentials } from './influx/credentials.js';
import { createInfluxStore } from './influx/store.js';
import { createSqliteStore } from './sqlite/index.js';
import type { TrafficStore } from './types.js';

/** Builds the configured store: the embedded SQLite file by default, or InfluxDB. */
export async function createStore(
  config: StoreConfig,
  deps: {
    links: readonly LinkConfig[];
    registry: () => Registry;
    log: Logger;
    bucketSeconds: number;
    learnedLinkNames?: () => ReadonlyMap<string, string>;
    /** The scitags_firefly `instance` tag (fireflies.instance; '' = the hostname). */
    instance?: string;
  },
): Promise<TrafficStore> {
  switch (config.type) {
    case 'sqlite': {
      const store = createSqliteStore({ path: config.path, retentionDays: config.retentionDays });
      deps.log.debug('sqlite store opened', { path: config.path, retentionDays: config.retentionDays });
      return store;
    }
    case 'influx':
      return await createInfluxStore(resolveInfluxCredentials(config), {
        registry: deps.registry,
        links: deps.links,
        bucketSeconds: deps.bucketSeconds,
        ...(deps.learnedLinkNames ? { learnedLinkNames: deps.learnedLinkNames } : {}),
        log: deps.log,
        instance: deps.instance,
      });
  }
}
