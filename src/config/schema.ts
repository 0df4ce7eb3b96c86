import { isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import type { FlowDecoderLimits } from '../../decoders/ipfix/state.js';
import { parseCidr } from '../../collectors/allowlist.js';
import { OPTION_ENTRIES, OPTIONS, shapeOf } from './options.js';

/**
 * The collector's configuration: one strict schema (unknown keys are rejected) with a default
 * for everything, so `serve` runs with no file at all, built from the option table
 * (options.ts). Loading (file -> environment -> flags) is in load.ts; printing
 * (`--dump-config`) in format.ts.
 */

export { parseCidr };
export {
  DEFAULT_DATA_DIR,
  DEFAULT_PORTS,
  DEFAULT_RECEIVE_BUFFER_BYTES,
  DEFAULT_SQLITE_PATH,
  DEFAULT_WORKERS,
  influxStoreSchema,
  type ListenerProtocol,
  LOG_FORMATS,
  LOG_LEVELS,
} from './options.js';

export const configSchema = z.strictObject(shapeOf(OPTIONS)).superRefine((cfg, ctx) => {
  const names = new Map<string, number>();
  const keys = new Map<string, number>();
  for (const [i, link] of cfg.links.entries()) {
    const prev = names.get(link.name);
    if (prev !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['links', i, 'name'], message: `duplicate link name (also links.${prev})` });
    }
    names.set(link.name, i);
    const key = `${link.exporter}|${link.ifIndex}`;
    const prevKey = keys.get(key);
    if (prevKey !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['links', i],
        message: `exporter ${link.exporter} ifIndex ${link.ifIndex} is already links.${prevKey}`,
      });
    }
    keys.set(key, i);
  }
  for (const proto of ['ipfix', 'netflow', 'sflow', 'firefly'] as const) {
    const seen = new Map<string, number>();
    for (const [i, l] of cfg.listeners[proto].entries()) {
      if (l.port === 0) continue;
      const key = `${l.bind}|${l.port}`;
      const prev = seen.get(key);
      if (prev !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['listeners', proto, i, 'port'],
          message: `port ${l.port} on ${l.bind} is already listeners.${proto}.${prev}`,
        });
      }
      seen.set(key, i);
    }
  }
});

export type Config = z.output<typeof configSchema>;
/** What a config file may contain (every key optional). */
export type ConfigInput = z.input<typeof configSchema>;
export type ListenerConfig = Config['listeners']['ipfix'][number];
export type SamplingConfig = Config['exporters']['sampling'][number];
export type LinkConfig = Config['links'][number];
export type StoreConfig = Config['store'];
export type SqliteStoreConfig = Extract<StoreConfig, { type: 'sqlite' }>;
export type InfluxStoreConfig = Extract<StoreConfig, { type: 'influx' }>;
export type AggregationConfig = Config['aggregation'];
export type DecoderConfig = Config['decoder'];
export type ApiConfig = Config['api'];
export type LogLevel = Config['log']['level'];

/** The configuration with every default and nothing else. */
export function defaultConfig(): Config {
  return configSchema.parse({});
}

/** The decoders' limits as the configuration sets them: `serve` and `ingest` both use this. */
export function flowLimitsOf(decoder: DecoderConfig): Partial<FlowDecoderLimits> {
  return {
    maxSessions: decoder.maxSessions,
    maxTemplatesPerSession: decoder.maxTemplatesPerSession,
    maxPendingBytes: decoder.maxBufferedBytesPerSession,
    templateLifetimeMs: decoder.templateTimeoutSeconds * 1000,
    stateBudgetBytes: decoder.stateBudgetBytes,
  };
}

/** Key paths of the files and directories that live in dataDir (from the option table). */
export const DATA_PATHS: readonly string[] = OPTION_ENTRIES.filter((e) => e.option.value === 'dataPath').map((e) => e.path);

/**
 * The configuration with every data path absolute: relative ones are resolved against
 * dataDir (itself relative to `cwd`), absolute ones stay, '' (disabled) and SQLite's
 * ':memory:' stay. Idempotent, so a caller may resolve a configuration already resolved.
 */
export function resolveDataPaths(config: Config, cwd: string = process.cwd()): Config {
  const dataDir = resolve(cwd, config.dataDir);
  const out = structuredClone(config);
  for (const path of DATA_PATHS) {
    const keys = path.split('.');
    const last = keys.pop()!;
    let parent: unknown = out;
    for (const k of keys) parent = (parent as Record<string, unknown> | undefined)?.[k];
    if (parent === null || typeof parent !== 'object' || !(last in parent)) continue; // the other store type
    const holder = parent as Record<string, unknown>;
    const value = holder[last];
    if (typeof value !== 'string' || value === '' || value === ':memory:' || isAbsolute(value)) continue;
    holder[last] = resolve(dataDir, value);
  }
  return { ...out, dataDir };
}
