export * from './schema.js';
export * from './load.js';
export * from './format.js';
export * from './usage.js';
export { OPTION_ENTRIES, OPTIONS, type OptionEntry } from './options.js';
