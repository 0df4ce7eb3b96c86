export { createSqliteStore, DEFAULT_SQLITE_STORE_CONFIG, SqliteTrafficStore } from './store.js';
export type { SqliteStoreConfig } from './store.js';
export { formatLinkKey, parseLinkKey } from './link-key.js';
export { SCHEMA_VERSION } from './schema.js';
