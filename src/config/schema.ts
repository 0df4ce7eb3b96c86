import { availableParallelism } from 'node:os';
import { isIP } from 'node:net';
import { z } from 'zod';
import { parseCidr } from '../../collectors/allowlist.js';

/**
 * The collector's configuration: one strict schema (unknown keys are rejected) with a default
 * for everything, so `serve` runs with no file at all. Loading (file -> environment -> flags)
 * is in load.ts; printing (`--dump-config`) in format.ts.
 */

// ---------------------------------------------------------------------------------------
// Addresses and CIDRs (IPv4 and IPv6, validated without third-party code; CIDRs are parsed
// by collectors/allowlist.ts, which the allow-list and the sampling rules use too)
// ---------------------------------------------------------------------------------------

export { parseCidr };

const ipAddress = z.string().refine((s) => isIP(s) !== 0, { message: 'must be an IPv4 or IPv6 address' });
const bindAddress = z
  .string()
  .refine((s) => isIP(s) !== 0, { message: "must be an IPv4 or IPv6 address ('::' = all, dual-stack; '0.0.0.0' = all IPv4)" });
const cidr = z.string().refine((s) => parseCidr(s) !== undefined, {
  message: 'must be a CIDR (192.0.2.0/24, 2001:db8::/32) or a single address',
});
const port = z.number().int().min(0, { message: 'must be >= 0 (0 disables)' }).max(65535, { message: 'must be <= 65535' });
const positiveInt = z.number().int().min(1);

// ---------------------------------------------------------------------------------------
// Sections
// ---------------------------------------------------------------------------------------

/** Default UDP socket receive buffer: 8 MiB (the kernel caps it at net.core.rmem_max). */
export const DEFAULT_RECEIVE_BUFFER_BYTES = 8 * 1024 * 1024;

const listener = (defaultPort: number) =>
  z.strictObject({
    /** UDP port; 0 disables this listener. */
    port: port.default(defaultPort),
    /** '::' is dual-stack (IPv4 and IPv6), '0.0.0.0' IPv4 only, or one local address. */
    bind: bindAddress.default('::'),
    /** SO_RCVBUF in bytes; 0 keeps the operating system's default. */
    receiveBufferBytes: z.number().int().min(0).max(2 ** 31 - 1).default(DEFAULT_RECEIVE_BUFFER_BYTES),
  });

export const DEFAULT_PORTS = { ipfix: 4739, netflow: 2055, sflow: 6343 } as const;
export type ListenerProtocol = keyof typeof DEFAULT_PORTS;

const listenersSchema = z.strictObject({
  ipfix: z.array(listener(DEFAULT_PORTS.ipfix)).prefault([{}]),
  netflow: z.array(listener(DEFAULT_PORTS.netflow)).prefault([{}]),
  sflow: z.array(listener(DEFAULT_PORTS.sflow)).prefault([{}]),
});

const queueSchema = z.strictObject({
  /** Datagrams waiting for decoding; overflow is dropped and counted per exporter. */
  size: positiveInt.max(16 * 1024 * 1024).default(65536),
});

const samplingEntry = z.strictObject({
  /** Exporter address (no port) or a CIDR of exporters. */
  exporter: cidr,
  /** Observation domain / source id / sub-agent the entry is limited to; all when absent. */
  domain: z.number().int().min(0).max(0xffffffff).optional(),
  rate: positiveInt,
  /**
   * 'default': used when the exporter says nothing about sampling;
   * 'override': replaces whatever the exporter reports.
   */
  mode: z.enum(['default', 'override']).default('default'),
});

const exportersSchema = z.strictObject({
  /** Exporters allowed to send (CIDRs, IPv4 and IPv6); empty allows all. */
  allow: z.array(cidr).default([]),
  /** Sampling rate assumed when neither the exporter nor an entry below says (1 = unsampled). */
  defaultSamplingRate: positiveInt.default(1),
  sampling: z.array(samplingEntry).default([]),
});

/** One decode worker per core (os.availableParallelism, Node >= 18.14). */
export const DEFAULT_WORKERS = Math.max(1, Math.min(64, availableParallelism()));

const decoderSchema = z.strictObject({
  /** IPFIX / NetFlow v9 templates kept per (exporter session, observation domain). */
  maxTemplatesPerSession: positiveInt.max(65535).default(1024),
  /** Exporter sessions with template state at once. */
  maxSessions: positiveInt.default(10000),
  /** Bytes of data sets buffered per session while their template is missing. */
  maxBufferedBytesPerSession: z.number().int().min(0).default(1024 * 1024),
  /**
   * Templates not refreshed for this long are forgotten (RFC 7011 8.4, UDP template
   * lifetime); their data then waits for the next refresh. 0 keeps templates until they are
   * withdrawn or redefined. When set, use at least 3x the exporters' refresh interval.
   */
  templateTimeoutSeconds: z.number().int().min(0).default(0),
  /**
   * Templates, sampling options and held data sets are saved here (every minute and at
   * shutdown) and loaded at start, so a restart does not wait for the exporters' next
   * template refresh. Empty disables.
   */
  stateFile: z.string().default('./data/decoder-state.json'),
  /**
   * Decode threads. Datagrams are sharded by exporter address, so each exporter's templates,
   * sampling options and sequence state live in exactly one worker. 1 decodes on the main
   * thread (no worker threads); the default is one per core.
   */
  workers: positiveInt.max(64).default(DEFAULT_WORKERS),
  /**
   * Datagrams that made a decoder throw (a bug, isolated and counted as `decoder-crash`) are
   * kept here as regression fixtures, at most 100 files and 16 MiB. Empty keeps none.
   */
  crashDir: z.string().default('./data/crashes'),
});

const pairSelector = z.strictObject({
  community: z.number().int().min(0).max(511),
  /** All activities of the community when absent. */
  activity: z.number().int().min(0).max(63).optional(),
});

const aggregationSchema = z.strictObject({
  bucketSeconds: positiveInt.max(86400).default(60),
  /** A bucket is written this long after it closes (late datagrams in flight). */
  graceSeconds: z.number().int().min(0).default(10),
  /** Records up to this late rewrite their (already written) bucket; later ones are counted. */
  lateWindowSeconds: z.number().int().min(0).default(300),
  /** Cap on live aggregation keys; overflow is folded and counted. */
  maxLiveKeys: positiveInt.default(100000),
  /** Unregistered pairs kept as their own series instead of folded into `unregistered`. */
  keepUnregistered: z.array(pairSelector).default([]),
});

const linkSchema = z.strictObject({
  exporter: ipAddress,
  ifIndex: z.number().int().min(0).max(0xffffffff),
  name: z
    .string()
    .min(1)
    .max(200)
    .refine((s) => !s.includes(','), { message: 'must not contain a comma (API filters are comma-separated)' }),
  capacityBps: z.number().positive().optional(),
});

export const DEFAULT_SQLITE_PATH = './data/scitags.sqlite';

const sqliteStore = z.strictObject({
  type: z.literal('sqlite'),
  path: z.string().min(1).default(DEFAULT_SQLITE_PATH),
  /** Rows older than this are deleted; 0 keeps everything. */
  retentionDays: z.number().min(0).default(30),
});

/** InfluxDB 1.x store (issue 6 fills in the details; the shape is stable). */
export const influxStoreSchema = z.strictObject({
  type: z.literal('influx'),
  url: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL such as http://localhost:8086' }).default('http://localhost:8086'),
  database: z.string().min(1).default('scitags'),
  /** Empty: the database's default retention policy. */
  retentionPolicy: z.string().default(''),
  username: z.string().default(''),
  password: z.string().default(''),
  tls: z
    .strictObject({
      /** Verify the server certificate (https only). */
      rejectUnauthorized: z.boolean().default(true),
      /** PEM file with the CA(s) to trust; system CAs when empty. */
      caFile: z.string().default(''),
    })
    .prefault({}),
  timeoutMs: positiveInt.default(10000),
  batchSize: positiveInt.default(5000),
  /** Batches InfluxDB did not accept wait here (one file each, fsynced) and are replayed in order. */
  spoolDir: z.string().min(1).default('./data/influx-spool'),
  /** Cap on the spool; beyond it batches are refused and counted (default 1 GiB). */
  spoolMaxBytes: positiveInt.default(1024 * 1024 * 1024),
  /**
   * On start: create the database, retention policies `raw` (default, rawRetention) and
   * `rollup_1h` (rollupRetention), and continuous queries rolling 1-minute buckets up to
   * 1-hour sums (docs/influx-schema.md). Needs admin rights; turn off on managed servers.
   */
  createDatabase: z.boolean().default(true),
  rawRetention: z.string().regex(/^(\d+[hdw]|INF)$/, 'must look like 30d, 12w, 48h or INF').default('30d'),
  rollupRetention: z.string().regex(/^(\d+[hdw]|INF)$/, 'must look like 400d, 12w, 48h or INF').default('400d'),
  continuousQueries: z.boolean().default(true),
  /** Seconds between collector_stats points (the collector's own counters). */
  statsIntervalSeconds: positiveInt.default(60),
});

const storeSchema = z.preprocess(
  // `type` may be left out: a store section without it is the embedded SQLite store.
  (v) => (v !== null && typeof v === 'object' && !Array.isArray(v) && !('type' in v) ? { type: 'sqlite', ...v } : v),
  z.discriminatedUnion('type', [sqliteStore, influxStoreSchema]),
);

const registrySchema = z.strictObject({
  /** Empty string: never download (offline; the cache or the shipped snapshot is used). */
  url: z
    .union([z.literal(''), z.url({ protocol: /^https?$/, error: "must be an http(s) URL, or '' to disable downloads" })])
    .default('https://www.scitags.org/api.json'),
  refreshSeconds: positiveInt.default(3600),
  /** Last good download; empty string disables the cache. */
  cacheFile: z.string().default('./data/registry-cache.json'),
  timeoutMs: positiveInt.default(10000),
});

const apiSchema = z.strictObject({
  /** HTTP port of the REST API, /metrics and /health; 0 disables the API. */
  port: port.default(8080),
  /**
   * Loopback by default: the API has no authentication, so exposing it is a deliberate
   * choice ('::' or '0.0.0.0'; containers set SCITAGS_API_BIND=::).
   */
  bind: bindAddress.default('127.0.0.1'),
  /** Largest number of points (range / step) one series may have. */
  maxPoints: positiveInt.max(1_000_000).default(10000),
  /** Largest number of series (groups) in one answer; the rest are reported as omitted. */
  maxGroups: positiveInt.max(100_000).default(500),
});

const metricsSchema = z.strictObject({
  /** Distinct exporter label values per metric; further exporters are counted as 'other'. */
  maxExporterLabels: positiveInt.default(200),
});

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export const LOG_FORMATS = ['json', 'pretty'] as const;

const logSchema = z.strictObject({
  level: z.enum(LOG_LEVELS).default('info'),
  /** 'json': one JSON object per line (log shippers, jq); 'pretty': human lines for a terminal. */
  format: z.enum(LOG_FORMATS).default('json'),
  /** One line per API request (method, url, status, response time, remote address). */
  accessLog: z.boolean().default(false),
});

export const configSchema = z
  .strictObject({
    listeners: listenersSchema.prefault({}),
    queue: queueSchema.prefault({}),
    exporters: exportersSchema.prefault({}),
    decoder: decoderSchema.prefault({}),
    aggregation: aggregationSchema.prefault({}),
    links: z.array(linkSchema).default([]),
    store: storeSchema.prefault({ type: 'sqlite' }),
    registry: registrySchema.prefault({}),
    api: apiSchema.prefault({}),
    metrics: metricsSchema.prefault({}),
    log: logSchema.prefault({}),
  })
  .superRefine((cfg, ctx) => {
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
    for (const proto of ['ipfix', 'netflow', 'sflow'] as const) {
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
