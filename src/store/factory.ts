import type { LinkConfig, StoreConfig } from '../config/index.js';
import type { Logger } from '../log.js';
import { createSqliteStore } from './sqlite/index.js';
import type { TrafficStore } from './types.js';

/** Builds the configured store: the embedded SQLite file by default, or InfluxDB. */
export async function createStore(
  config: StoreConfig,
  _links: readonly LinkConfig[],
  _deps: { now: () => number; log: Logger },
): Promise<TrafficStore> {
  switch (config.type) {
    case 'sqlite':
      return createSqliteStore({ path: config.path, retentionDays: config.retentionDays });
    case 'influx':
      throw new Error('the InfluxDB store is not available yet');
  }
}
