import { Nat64Prefixes, WELL_KNOWN_NAT64_PREFIX } from '../enrich/nat64.js';
import { availableParallelism } from 'node:os';
import { isIP } from 'node:net';
import { z } from 'zod';
import { DEFAULT_LIMITS } from '../../decoders/ipfix/state.js';
import { DEFAULT_NEW_SESSIONS_PER_SECOND } from '../pipeline/rate-limit.js';
import { parseCidr } from '../../collectors/allowlist.js';
import { DEFAULT_AGGREGATOR_CONFIG } from '../aggregate/config.js';
import { DEFAULT_API_LIMITS, DEFAULT_API_MAX_IN_FLIGHT, DEFAULT_API_RATE_LIMIT_PER_MINUTE } from '../api/types.js';
import { DEFAULT_REGISTRY_URL } from '../registry/loader.js';
import { DEFAULT_REGISTRY_MAX_BYTES } from '../registry/service.js';
import {
  DEFAULT_EXPORTER_LABEL_IDLE_SECONDS,
  DEFAULT_MAX_TRAFFIC_SERIES,
  DEFAULT_TRAFFIC_SERIES_IDLE_SECONDS,
} from '../metrics/traffic-defaults.js';
import { validSiteName } from '../sites/cric.js';
import { DEFAULT_CRIC_MAX_BYTES, DEFAULT_MAX_SITE_PREFIXES, DEFAULT_MAX_SITES } from '../sites/service.js';
import { DEFAULT_FLOW_TABLE_CONFIG } from '../fireflies/tracker.js';
import { ENDED_ENTRY_BYTES, FLOW_ENTRY_BYTES } from '../fireflies/flow-table.js';
import { DEFAULT_FORWARD_MAX_PER_SECOND, parseHostPort } from '../../collectors/firefly-forward.js';
import { DEFAULT_SYSLOG_IDLE_SECONDS, DEFAULT_SYSLOG_MAX_CONNECTIONS } from '../../collectors/syslog-tcp.js';
import { DEFAULT_GOFLOW2_MAX_MESSAGE_BYTES, DEFAULT_GOFLOW2_SEPARATOR, GOFLOW2_SEPARATORS } from '../../collectors/goflow2-stream.js';

/**
 * The option table: every configuration option once, with its schema, default, help line,
 * environment variable, flag and sample value. The zod schema (schema.ts), `serve --help`
 * (usage.ts), the SCITAGS_* variables and flags (load.ts) and deploy/config.yaml (sample.ts)
 * are all built from it, so they cannot disagree. Components that own a default export it
 * (the decoders' DEFAULT_LIMITS, the aggregator's DEFAULT_AGGREGATOR_CONFIG, ...) and the
 * table takes it from there; defaults no component owns live here.
 */

/** How a value is written in an environment variable or on the command line. */
export type ValueKind =
  | 'int'
  /** One port, 0..65535. */
  | 'port'
  | 'number'
  | 'string'
  | 'boolean'
  | 'enum'
  /** "60", "60s", "5m", "1h", "1d" -> seconds. */
  | 'duration'
  /** Comma-separated strings. */
  | 'list'
  /** A YAML (flow) value, e.g. [{exporter: 192.0.2.1, ifIndex: 1, name: x}]. */
  | 'yaml'
  /** A file or directory: relative paths are resolved against dataDir; empty disables. */
  | 'dataPath'
  /** Comma-separated UDP ports of one protocol's listeners (bind and buffer kept). */
  | 'ports'
  /** sqlite:PATH or influx://[user:password@]host:port/database (the whole store). */
  | 'store';

export interface Option<S extends z.ZodType = z.ZodType> {
  readonly kind: 'option';
  /** The value's schema with its default: what the config schema uses for this key. */
  readonly schema: S;
  readonly default: unknown;
  /** One line for --help and the sample config. */
  readonly help: string;
  readonly value: ValueKind;
  /** The argument's name in --help (PORT, N, DURATION, ...). */
  readonly arg: string;
  /** Overrides of the names generated from the path (established short names). */
  readonly env?: string;
  readonly flag?: string;
  /** Shown in --help instead of the default value (computed or per-host defaults). */
  readonly defaultText?: string;
  /** Written in the sample config instead of the default (an example). */
  readonly sample?: unknown;
  /** The sample config shows the option commented out (per-host values such as workers). */
  readonly sampleCommented?: boolean;
  /** Text -> value before validation, when the kind's parser is not enough. */
  readonly fromText?: (text: string) => unknown;
}

/** A store-like section: one option for the whole (--store SPEC) and per-type option sets. */
export interface Variants<S extends z.ZodType = z.ZodType> {
  readonly kind: 'variants';
  readonly schema: S;
  readonly self: Option;
  readonly variants: Readonly<Record<string, Section>>;
  /** The variant the sample config writes; the others are shown commented out. */
  readonly sampleVariant: string;
}

export interface Section {
  readonly [key: string]: Option | Variants | Section;
}

type Meta = Omit<Option, 'kind' | 'schema' | 'default'>;

/** An option whose value is `base` and defaults to `def`. */
function opt<B extends z.ZodType>(base: B, def: z.output<B>, meta: Meta): Option<z.ZodDefault<B>> {
  return { kind: 'option', schema: base.default(def as never) as z.ZodDefault<B>, default: def, ...meta };
}

/** An integer option (most of the table), on one line. */
function int<B extends z.ZodType>(base: B, def: z.output<B>, arg: string, help: string): Option<z.ZodDefault<B>> {
  return opt(base, def, { help, value: 'int', arg });
}

export type SchemaOf<N> =
  N extends Option<infer S>
    ? S
    : N extends Variants<infer S>
      ? S
      : N extends Section
        ? z.ZodPrefault<z.ZodObject<ShapeOf<N>, z.core.$strict>>
        : never;
export type ShapeOf<T extends Section> = { -readonly [K in keyof T]: SchemaOf<T[K]> };

function isOption(n: Option | Variants | Section): n is Option {
  return (n as Option).kind === 'option';
}
function isVariants(n: Option | Variants | Section): n is Variants {
  return (n as Variants).kind === 'variants';
}

/** The zod shape of a section: its options' schemas, sub-sections strict with defaults. */
export function shapeOf<T extends Section>(section: T): ShapeOf<T> {
  const shape: Record<string, z.ZodType> = {};
  for (const [key, node] of Object.entries(section)) {
    shape[key] = isOption(node) || isVariants(node) ? node.schema : z.strictObject(shapeOf(node)).prefault({});
  }
  return shape as ShapeOf<T>;
}

// ---------------------------------------------------------------------------------------
// Value schemas (IPv4 and IPv6 validated without third-party code; CIDRs are parsed by
// collectors/allowlist.ts, which the allow-list and the sampling rules use too)
// ---------------------------------------------------------------------------------------

const ipAddress = z.string().refine((s) => isIP(s) !== 0, { message: 'must be an IPv4 or IPv6 address' });
const bindAddress = z
  .string()
  .refine((s) => isIP(s) !== 0, { message: "must be an IPv4 or IPv6 address ('::' = all, dual-stack; '0.0.0.0' = all IPv4)" });
/** An IPv6 prefix of one of RFC 6052's lengths (Nat64Prefixes says which is wrong). */
const nat64Prefix = z.string().superRefine((s, ctx) => {
  try {
    new Nat64Prefixes([s]);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
  }
});

const cidr = z.string().refine((s) => parseCidr(s) !== undefined, {
  message: 'must be a CIDR (192.0.2.0/24, 2001:db8::/32) or a single address',
});
const port = z.number().int().min(0, { message: 'must be >= 0 (0 disables)' }).max(65535, { message: 'must be <= 65535' });
const positiveInt = z.number().int().min(1);
const nonNegativeInt = z.number().int().min(0);

/** Default UDP socket receive buffer: 8 MiB (the kernel caps it at net.core.rmem_max). */
export const DEFAULT_RECEIVE_BUFFER_BYTES = 8 * 1024 * 1024;
/** firefly: the SciTags firefly port (UDP, and TCP syslog on the same number; ../shared/SCITAGS.md). */
export const DEFAULT_PORTS = { ipfix: 4739, netflow: 2055, sflow: 6343, firefly: 10514 } as const;
export type ListenerProtocol = keyof typeof DEFAULT_PORTS;

/** One decode worker per core (os.availableParallelism, Node >= 18.14). */
export const DEFAULT_WORKERS = Math.max(1, Math.min(64, availableParallelism()));

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export const LOG_FORMATS = ['json', 'pretty'] as const;

/** The default data directory of `npm start` (the systemd unit and the image set their own). */
export const DEFAULT_DATA_DIR = './data';
/** The embedded store's file, in the data directory. */
export const DEFAULT_SQLITE_PATH = 'scitags.sqlite';

const listenerItem = (defaultPort: number) =>
  z.strictObject({
    /** UDP port; 0 disables this listener. */
    port: port.default(defaultPort),
    /** '::' is dual-stack (IPv4 and IPv6), '0.0.0.0' IPv4 only, or one local address. */
    bind: bindAddress.default('::'),
    /** SO_RCVBUF in bytes; 0 keeps the operating system's default. */
    receiveBufferBytes: z
      .number()
      .int()
      .min(0)
      .max(2 ** 31 - 1)
      .default(DEFAULT_RECEIVE_BUFFER_BYTES),
  });

function listeners(proto: ListenerProtocol, name: string) {
  const def = [{ port: DEFAULT_PORTS[proto], bind: '::', receiveBufferBytes: DEFAULT_RECEIVE_BUFFER_BYTES }];
  return opt(z.array(listenerItem(DEFAULT_PORTS[proto])), def, {
    help: `${name} listeners: list of {port (0 disables), bind ('::' dual-stack), receiveBufferBytes}; the flag and variable set ports, comma-separated`,
    value: 'ports',
    arg: 'PORTS',
    env: `SCITAGS_${proto.toUpperCase()}_PORT`,
    flag: `${proto}-port`,
    defaultText: String(DEFAULT_PORTS[proto]),
  });
}

const samplingEntry = z.strictObject({
  /** Exporter address (no port) or a CIDR of exporters. */
  exporter: cidr,
  /** Observation domain / source id / sub-agent the entry is limited to; all when absent. */
  domain: z.number().int().min(0).max(0xffffffff).optional(),
  rate: positiveInt,
  /** 'default': when the exporter says nothing about sampling; 'override': replaces it. */
  mode: z.enum(['default', 'override']).default('default'),
});

const pairSelector = z.strictObject({
  community: z.number().int().min(0).max(511),
  /** All activities of the community when absent. */
  activity: z.number().int().min(0).max(63).optional(),
});

const linkItem = z.strictObject({
  exporter: ipAddress,
  ifIndex: z.number().int().min(0).max(0xffffffff),
  name: z
    .string()
    .min(1)
    .max(200)
    .refine((s) => !s.includes(','), { message: 'must not contain a comma (API filters are comma-separated)' }),
  capacityBps: z.number().positive().optional(),
});

const retention = (example: string) => z.string().regex(/^(\d+[hdw]|INF)$/, `must look like ${example}, 12w, 48h or INF`);
const httpUrl = z.url({ protocol: /^https?$/, error: 'must be an http(s) URL such as http://localhost:8086' });

const dataPath = (def: string, help: string) =>
  opt(z.string(), def, {
    help: `${help}; relative paths are in dataDir`,
    value: 'dataPath',
    arg: 'PATH',
    defaultText: `${def || "''"} (in dataDir)`,
  });

// ---------------------------------------------------------------------------------------
// Store variants
// ---------------------------------------------------------------------------------------

export const SQLITE_OPTIONS = {
  path: opt(z.string().min(1), DEFAULT_SQLITE_PATH, {
    help: "embedded SQLite file ('scitags.sqlite' in dataDir by default; ':memory:' keeps nothing)",
    value: 'dataPath',
    arg: 'PATH',
    defaultText: `${DEFAULT_SQLITE_PATH} (in dataDir)`,
  }),
  retentionDays: opt(z.number().min(0), 30, { help: 'rows older than this are deleted; 0 keeps everything', value: 'number', arg: 'DAYS' }),
} as const satisfies Section;

export const INFLUX_OPTIONS = {
  url: opt(httpUrl, 'http://localhost:8086', { help: 'InfluxDB 1.x (or the v1 API of 2.x/3.x) base URL', value: 'string', arg: 'URL' }),
  database: opt(z.string().min(1), 'scitags', { help: 'database', value: 'string', arg: 'NAME' }),
  retentionPolicy: opt(z.string(), '', {
    help: "retention policy written to; '' = the database's default (raw)",
    value: 'string',
    arg: 'NAME',
  }),
  username: opt(z.string(), '', { help: 'user name', value: 'string', arg: 'NAME' }),
  password: opt(z.string(), '', {
    help: 'password (keep it out of files and ps: set SCITAGS_INFLUX_PASSWORD)',
    value: 'string',
    arg: 'PASSWORD',
    env: 'SCITAGS_INFLUX_PASSWORD',
  }),
  // Trimmed: a token pasted from a file or $(cat ...) often brings a newline.
  token: opt(z.string().trim(), '', {
    help: 'InfluxDB 2.x/3.x API token, sent as Authorization: Token on writes and queries; replaces user/password (keep it out of files and ps: set SCITAGS_INFLUX_TOKEN)',
    value: 'string',
    arg: 'TOKEN',
    env: 'SCITAGS_INFLUX_TOKEN',
  }),
  passwordFile: opt(z.string(), '', {
    help: "file holding the password (read at start, trailing newline trimmed); '' = none; not together with store.password",
    value: 'string',
    arg: 'FILE',
    env: 'SCITAGS_INFLUX_PASSWORD_FILE',
  }),
  tokenFile: opt(z.string(), '', {
    help: "file holding the InfluxDB 2.x/3.x token (read at start, surrounding whitespace trimmed); '' = none; not together with store.token",
    value: 'string',
    arg: 'FILE',
    env: 'SCITAGS_INFLUX_TOKEN_FILE',
  }),
  tls: {
    rejectUnauthorized: opt(z.boolean(), true, { help: 'verify the server certificate (https only)', value: 'boolean', arg: 'BOOL' }),
    caFile: opt(z.string(), '', { help: "PEM file with the CA(s) to trust; '' = the system CAs", value: 'string', arg: 'FILE' }),
  },
  timeoutMs: int(positiveInt, 10000, 'MS', 'HTTP request timeout'),
  batchSize: int(positiveInt, 5000, 'N', 'points per write request'),
  spoolDir: dataPath('influx-spool', 'batches InfluxDB did not accept wait here (one fsynced file each) and are replayed in order'),
  spoolMaxBytes: int(positiveInt, 1024 * 1024 * 1024, 'BYTES', 'cap on the spool; beyond it batches are refused and counted'),
  createDatabase: opt(z.boolean(), true, {
    help: 'on start create the database, retention policies raw and rollup_1h and the 1-hour rollup queries (needs admin rights; off for InfluxDB 2.x/3.x, which manage buckets and DBRP mappings themselves)',
    value: 'boolean',
    arg: 'BOOL',
  }),
  rawRetention: opt(retention('30d'), '30d', { help: 'duration of the raw retention policy', value: 'string', arg: 'DURATION' }),
  rollupRetention: opt(retention('400d'), '400d', { help: 'duration of the rollup_1h retention policy', value: 'string', arg: 'DURATION' }),
  continuousQueries: opt(z.boolean(), true, {
    help: 'create the continuous queries rolling 1-minute buckets up to 1 hour',
    value: 'boolean',
    arg: 'BOOL',
  }),
  statsIntervalSeconds: int(positiveInt, 60, 'SECONDS', "seconds between collector_stats points (the collector's own counters)"),
  probeIntervalSeconds: int(
    nonNegativeInt,
    5,
    'SECONDS',
    'seconds between liveness probes (GET /ping, timeout min(timeoutMs, 2000)) while no write succeeds; a failed one shows as store_unreachable in /health (store_auth when answered 401 / 403); 0 = off',
  ),
} as const satisfies Section;

export const sqliteStoreSchema = z.strictObject({ type: z.literal('sqlite'), ...shapeOf(SQLITE_OPTIONS) });
export const influxStoreSchema = z.strictObject({ type: z.literal('influx'), ...shapeOf(INFLUX_OPTIONS) });

const storeSchema = z
  .preprocess(
    // `type` may be left out: a store section without it is the embedded SQLite store.
    (v) => (v !== null && typeof v === 'object' && !Array.isArray(v) && !('type' in v) ? { type: 'sqlite', ...v } : v),
    z.discriminatedUnion('type', [sqliteStoreSchema, influxStoreSchema]),
  )
  .prefault({ type: 'sqlite' });

const store: Variants<typeof storeSchema> = {
  kind: 'variants',
  schema: storeSchema,
  self: {
    kind: 'option',
    schema: storeSchema,
    default: { type: 'sqlite' },
    help: "the store: 'type: sqlite' (embedded, the default) or 'type: influx'; the flag and variable take a spec",
    value: 'store',
    arg: 'SPEC',
    flag: 'store',
    env: 'SCITAGS_STORE',
    defaultText: 'sqlite (sqlite:PATH | influx://[user:pass@]host:8086/db)',
  },
  variants: { sqlite: SQLITE_OPTIONS, influx: INFLUX_OPTIONS },
  // The production stacks (compose file, systemd unit) run on InfluxDB.
  sampleVariant: 'influx',
};

// ---------------------------------------------------------------------------------------
// The table
// ---------------------------------------------------------------------------------------

export const OPTIONS = {
  dataDir: opt(z.string().min(1), DEFAULT_DATA_DIR, {
    help: 'directory of the files the collector writes (store, decoder state, spool, registry cache, crash fixtures)',
    value: 'string',
    arg: 'DIR',
    // Where it is deployed, the unit and the image set it (SCITAGS_DATA_DIR).
    sampleCommented: true,
  }),
  listeners: {
    ipfix: listeners('ipfix', 'IPFIX'),
    netflow: listeners('netflow', 'NetFlow v5/v9'),
    sflow: listeners('sflow', 'sFlow v5'),
    firefly: listeners('firefly', 'SciTags firefly (UDP, and TCP syslog on the same port)'),
  },
  inputs: {
    streams: opt(z.array(z.string().regex(/^goflow2:.+$/, { message: "must be goflow2:PATH (a file, a FIFO, or '-' for stdin)" })), [], {
      help: "streams read besides the UDP listeners: goflow2:PATH reads goflow2's binary output (goflow2 -format=bin) from a file, a FIFO (opened again after each writer) or '-' stdin; comma-separated",
      value: 'list',
      arg: 'goflow2:PATH',
      env: 'SCITAGS_INPUT',
      flag: 'input',
      sample: ['goflow2:/run/scitags/goflow2.fifo'],
      sampleCommented: true,
    }),
    goflow2MaxMessageBytes: int(
      positiveInt.max(16 * 1024 * 1024),
      DEFAULT_GOFLOW2_MAX_MESSAGE_BYTES,
      'BYTES',
      'longest goflow2 FlowMessage read; a longer length prefix is counted and the rest of that stream discarded (a FIFO: until its writer closes)',
    ),
    goflow2Separator: opt(z.enum(GOFLOW2_SEPARATORS), DEFAULT_GOFLOW2_SEPARATOR, {
      help: "what follows each message in goflow2 streams: 'newline' (goflow2's file transport default, -transport.file.sep) or 'none' (-transport.file.sep=); checked after every message",
      value: 'enum',
      arg: 'newline|none',
    }),
  },
  queue: {
    size: int(
      positiveInt.max(16 * 1024 * 1024),
      65536,
      'N',
      'datagrams waiting for decoding (all workers together); overflow is dropped and counted per exporter',
    ),
  },
  exporters: {
    allow: opt(z.array(cidr), [], {
      help: 'exporters allowed to send (CIDRs, IPv4 and IPv6, comma-separated); empty allows all (a warning at start when a listener binds every interface): list your routers',
      value: 'list',
      arg: 'CIDRS',
      sample: ['192.0.2.0/24', '2001:db8:100::/48'],
      sampleCommented: true,
    }),
    defaultSamplingRate: int(
      positiveInt,
      1,
      'N',
      'sampling rate assumed when neither the exporter nor a sampling rule says (1 = unsampled)',
    ),
    sampling: opt(z.array(samplingEntry), [], {
      help: 'per-exporter sampling rules: list of {exporter (address or CIDR), domain?, rate, mode: default (when the exporter says nothing) | override}',
      value: 'yaml',
      arg: 'YAML',
      sample: [{ exporter: '192.0.2.1', rate: 1000, mode: 'default' }],
    }),
    outerFlowLabel: opt(z.array(cidr), [], {
      help: "exporters (CIDRs) whose templates carrying IE 31 twice (an outer and an inner header: Cisco IOS XR SRv6) count the outer header (its flow label, addresses and ports); by default the innermost header, the host's, is counted",
      value: 'list',
      arg: 'CIDRS',
      sample: ['192.0.2.1/32'],
      sampleCommented: true,
    }),
  },
  syslog: {
    maxConnections: int(
      positiveInt.max(65535),
      DEFAULT_SYSLOG_MAX_CONNECTIONS,
      'N',
      'TCP syslog connections (relays sending fireflies, RFC 6587) open at once per firefly listener; more are refused and counted',
    ),
    idleTimeoutSeconds: int(
      positiveInt,
      DEFAULT_SYSLOG_IDLE_SECONDS,
      'SECONDS',
      'a TCP syslog connection that sends nothing for this long is closed (counted)',
    ),
  },
  forward: {
    fireflies: opt(
      z.array(z.string().refine((s) => parseHostPort(s) !== undefined, { message: 'must be host:port ([v6]:port for IPv6)' })),
      [],
      {
        help: 'upstream collectors (host:port, comma-separated) that every accepted firefly is sent to over UDP, unchanged; empty forwards nothing',
        value: 'list',
        arg: 'HOST:PORTS',
        sample: ['collector.example.net:10514'],
        sampleCommented: true,
      },
    ),
    maxPerSecond: int(
      nonNegativeInt,
      DEFAULT_FORWARD_MAX_PER_SECOND,
      'N',
      'fireflies per second sent to each forward destination (token bucket); beyond it they are counted as rate-limited; 0 is unlimited',
    ),
  },
  decoder: {
    maxTemplatesPerSession: int(
      positiveInt.max(65535),
      DEFAULT_LIMITS.maxTemplatesPerSession,
      'N',
      'IPFIX / NetFlow v9 templates kept per exporter session',
    ),
    maxSessions: int(
      positiveInt,
      DEFAULT_LIMITS.maxSessions,
      'N',
      'exporter sessions with template state at once (the least recently seen is forgotten)',
    ),
    maxBufferedBytesPerSession: int(
      nonNegativeInt,
      DEFAULT_LIMITS.maxPendingBytes,
      'BYTES',
      'bytes of data sets held per session while their template is missing',
    ),
    stateBudgetBytes: int(
      positiveInt,
      DEFAULT_LIMITS.stateBudgetBytes,
      'BYTES',
      'memory budget of all IPFIX / NetFlow decoder state (templates, held data, sampling), split between decode workers',
    ),
    maxDatagramsPerSecondPerExporter: int(
      nonNegativeInt,
      0,
      'N',
      'datagrams per second accepted from one exporter address before decoding (token bucket); 0 is unlimited',
    ),
    maxNewSessionsPerSecondPerExporter: int(
      nonNegativeInt,
      DEFAULT_NEW_SESSIONS_PER_SECOND,
      'N',
      'new IPFIX / NetFlow transport sessions (source ports) per second from one exporter address; 0 is unlimited',
    ),
    templateTimeoutSeconds: int(
      nonNegativeInt,
      DEFAULT_LIMITS.templateLifetimeMs / 1000,
      'SECONDS',
      "templates not refreshed for this long are forgotten (RFC 7011 8.4); 0 keeps them; else >= 3x the exporters' refresh",
    ),
    stateFile: dataPath('decoder-state.json', "templates and held data saved every minute and at shutdown, loaded at start; '' disables"),
    workers: opt(positiveInt.max(64), DEFAULT_WORKERS, {
      help: 'decode threads, exporters sharded by address; 1 decodes on the main thread',
      value: 'int',
      arg: 'N',
      env: 'SCITAGS_WORKERS',
      flag: 'workers',
      defaultText: 'one per core',
      sample: 4,
      sampleCommented: true,
    }),
    crashDir: dataPath(
      'crashes',
      "datagrams that made a decoder throw are kept here as fixtures (100 files, 16 MiB at most); '' keeps none",
    ),
  },
  aggregation: {
    bucketSeconds: opt(positiveInt.max(86400), DEFAULT_AGGREGATOR_CONFIG.bucketSeconds, {
      help: "bucket width in seconds (flag and variable: 60, 60s, 5m, 1h); Grafana's timeInterval must equal it",
      value: 'duration',
      arg: 'DURATION',
      env: 'SCITAGS_BUCKET',
      flag: 'bucket',
    }),
    graceSeconds: int(
      nonNegativeInt,
      DEFAULT_AGGREGATOR_CONFIG.graceSeconds,
      'SECONDS',
      'a bucket is written this long after it closes (late datagrams in flight)',
    ),
    lateWindowSeconds: int(
      nonNegativeInt,
      DEFAULT_AGGREGATOR_CONFIG.lateWindowSeconds,
      'SECONDS',
      'records up to this late rewrite their (already written) bucket; later ones are counted',
    ),
    maxLiveKeys: int(
      positiveInt,
      DEFAULT_AGGREGATOR_CONFIG.maxLiveKeys,
      'N',
      'cap on live aggregation keys; overflow is folded and counted',
    ),
    keepUnregistered: opt(z.array(pairSelector), [], {
      help: 'unregistered pairs kept as their own series instead of folded: list of {community, activity? (all when absent)}',
      value: 'yaml',
      arg: 'YAML',
    }),
  },
  links: opt(z.array(linkItem), [], {
    help: 'link names (tags in_link / out_link) and capacities in bit/s: list of {exporter, ifIndex, name, capacityBps?}',
    value: 'yaml',
    arg: 'YAML',
    sample: [
      { exporter: '192.0.2.1', ifIndex: 1, name: 'geant-lon', capacityBps: 100000000000 },
      { exporter: '192.0.2.1', ifIndex: 2, name: 'lhcopn-cern', capacityBps: 100000000000 },
      { exporter: '2001:db8:100::1', ifIndex: 10, name: 'esnet-chi', capacityBps: 400000000000 },
    ],
  }),
  store,
  registry: {
    url: opt(
      z.union([z.literal(''), z.url({ protocol: /^https?$/, error: "must be an http(s) URL, or '' to disable downloads" })]),
      DEFAULT_REGISTRY_URL,
      {
        help: "SciTags registry, refreshed on a timer; '' (variable and flag: off) never downloads",
        value: 'string',
        arg: 'URL',
        fromText: (t) => (t.trim() === 'off' ? '' : t.trim()),
      },
    ),
    refreshSeconds: int(positiveInt, 3600, 'SECONDS', 'seconds between registry downloads'),
    cacheFile: dataPath('registry-cache.json', "last good download, used at start and while the registry is unreachable; '' disables"),
    timeoutMs: int(positiveInt, 10000, 'MS', 'total download timeout: connect, headers and the whole body'),
    maxBytes: int(
      positiveInt,
      DEFAULT_REGISTRY_MAX_BYTES,
      'BYTES',
      'largest registry document accepted, counted while it streams (the published one is ~7 KB); a larger answer is refused',
    ),
  },
  sites: {
    prefixes: opt(
      z.record(
        z.string().refine(validSiteName, {
          message: "site names are 1-100 printable characters without spaces or commas, not 'unknown' or 'other'",
        }),
        z.array(cidr),
      ),
      {},
      {
        help: 'site prefixes: map of site name -> list of CIDRs (IPv4 and IPv6); longest prefix wins, and any configured prefix wins over CRIC',
        value: 'yaml',
        arg: 'YAML',
        sample: { 'MY-SITE': ['192.0.2.0/24', '2001:db8:100::/48'] },
        sampleCommented: true,
      },
    ),
    cric: {
      source: opt(z.string(), '', {
        help: "WLCG-CRIC rcsite document (https://wlcg-cric.cern.ch/api/core/rcsite/query/?json): an http(s) URL or a file path, reloaded every refreshSeconds; '' = none",
        value: 'string',
        arg: 'URL|PATH',
        sample: 'https://wlcg-cric.cern.ch/api/core/rcsite/query/?json',
        sampleCommented: true,
      }),
      refreshSeconds: int(positiveInt, 21600, 'SECONDS', 'seconds between CRIC reloads'),
      cacheFile: dataPath('cric-cache.json', "last good CRIC download, used at start and while CRIC is unreachable; '' disables"),
      timeoutMs: int(positiveInt, 30000, 'MS', 'total CRIC download timeout: connect, headers and the whole body'),
      maxBytes: int(
        positiveInt,
        DEFAULT_CRIC_MAX_BYTES,
        'BYTES',
        'largest CRIC document accepted (counted while it streams); a larger one is refused',
      ),
    },
    maxPrefixes: int(
      positiveInt.max(10_000_000),
      DEFAULT_MAX_SITE_PREFIXES,
      'N',
      'prefixes held, configured and CRIC together (about 200 bytes each); further CRIC prefixes are refused and counted',
    ),
    maxSites: int(
      positiveInt.max(100_000),
      DEFAULT_MAX_SITES,
      'N',
      "distinct site names used as tags; addresses of further sites count as site 'other' (counted)",
    ),
  },
  transition: {
    nat64Prefixes: opt(z.array(nat64Prefix), [WELL_KNOWN_NAT64_PREFIX], {
      help: 'NAT64 / 464XLAT prefixes (RFC 6052; lengths 32, 40, 48, 56, 64 or 96): IPv6 traffic to or from them is counted as NAT64 in the IPv6 transition view (it still needs IPv4 behind the translator); add local ones such as 64:ff9b:1::/48 (RFC 8215)',
      value: 'list',
      arg: 'CIDRS',
    }),
    nat64TopN: int(
      nonNegativeInt.max(10_000),
      100,
      'N',
      'IPv4 destinations behind NAT64 listed per bucket (a Space-Saving top N of the IPv4 addresses embedded in NAT64 traffic, by bytes: the services that still need dual-stacking; GET /api/v1/transition/nat64-destinations); 0 turns it off',
    ),
  },
  fireflies: {
    maxFlows: int(
      positiveInt.max(10_000_000),
      DEFAULT_FLOW_TABLE_CONFIG.maxFlows,
      'N',
      `live firefly flows tracked (about ${FLOW_ENTRY_BYTES + ENDED_ENTRY_BYTES} bytes each with its remembered end); when full, the least recently updated flow of the exporter holding the most is evicted (counted)`,
    ),
    flowTimeoutSeconds: int(
      positiveInt,
      DEFAULT_FLOW_TABLE_CONFIG.flowTimeoutSeconds,
      'SECONDS',
      'a flow with no firefly for this long is counted expired (its end never came)',
    ),
    duplicateWindowSeconds: int(
      nonNegativeInt,
      DEFAULT_FLOW_TABLE_CONFIG.duplicateWindowSeconds,
      'SECONDS',
      "an ended flow's 5-tuple is remembered this long, so the other end's copies count as duplicates, not as a new flow",
    ),
    // Firefly rows are keyed by ids and sites, not by exporter like traffic: without a tag of
    // their own, two instances writing the same key and bucket would overwrite each other.
    instance: opt(z.string().trim().max(200), '', {
      help: "this collector's name in the scitags_firefly 'instance' tag, so several instances' firefly points stay disjoint in one InfluxDB (docs/scale-out.md); '' = the hostname",
      value: 'string',
      arg: 'NAME',
      defaultText: "'' (the hostname)",
    }),
  },
  api: {
    port: opt(port, 8080, { help: 'HTTP port of the REST API, /metrics and /health; 0 disables', value: 'port', arg: 'PORT' }),
    bind: opt(bindAddress, '127.0.0.1', {
      // Exposing the API is a deliberate choice: set tokens (tokensFile / SCITAGS_API_TOKENS) first.
      help: "API bind address; loopback by default: '::' or '0.0.0.0' exposes it (set api.tokensFile or SCITAGS_API_TOKENS first)",
      value: 'string',
      arg: 'ADDRESS',
    }),
    tokensFile: opt(z.string(), '', {
      help: "file of bearer tokens (one per line, 16+ characters; # comments) required on every route but /health, with those of SCITAGS_API_TOKENS (comma-separated); '' and no variable: no authentication",
      value: 'string',
      arg: 'PATH',
      sample: '/etc/scitags-collector/api-tokens',
      sampleCommented: true,
    }),
    allowedHosts: opt(z.array(z.string().min(1).max(255)), [], {
      help: "Host header names answered (no port; IPv6 in brackets; '*' any); others get 421 (DNS rebinding). Empty: the bind address, localhost, 127.0.0.1, [::1], the hostname, and on '::' / '0.0.0.0' the interface addresses",
      value: 'list',
      arg: 'NAMES',
      sample: ['collector.example.org', 'localhost', '127.0.0.1'],
      sampleCommented: true,
    }),
    corsOrigins: opt(z.array(z.string().min(1).max(255)), [], {
      help: "origins allowed to read the API from a browser (CORS), e.g. https://grafana.example.org; '*' any; empty: CORS off",
      value: 'list',
      arg: 'ORIGINS',
    }),
    rateLimitPerMinute: int(
      nonNegativeInt,
      DEFAULT_API_RATE_LIMIT_PER_MINUTE,
      'N',
      'requests per minute per client address (not /health); more are answered 429; 0: no limit',
    ),
    maxInFlight: int(
      nonNegativeInt,
      DEFAULT_API_MAX_IN_FLIGHT,
      'N',
      'requests answered at once (not /health); more are answered 503 at once; 0: no limit',
    ),
    maxPoints: int(
      positiveInt.max(1_000_000),
      DEFAULT_API_LIMITS.maxPoints,
      'N',
      'largest number of points (range / step) one series may have',
    ),
    maxGroups: int(
      positiveInt.max(100_000),
      DEFAULT_API_LIMITS.maxGroups,
      'N',
      'largest number of series in one answer; the rest are reported as omitted',
    ),
  },
  health: {
    strict: opt(z.boolean(), false, {
      help: '/health answers 503 (not 200) while degraded; ?strict=1 asks for this per request',
      value: 'boolean',
      arg: 'BOOL',
    }),
    maxDropFraction: opt(z.number().min(0).max(1), 0.001, {
      help: 'degraded when kernel socket drops or queue drops over the last minute exceed this fraction of the datagrams offered',
      value: 'number',
      arg: 'FRACTION',
    }),
    maxSpoolBatches: int(positiveInt, 100, 'N', 'degraded when more InfluxDB write batches than this wait in the spool'),
    workerRestartMinutes: int(
      positiveInt,
      10,
      'MINUTES',
      'degraded for this long after a decode worker restarted, and after an unclean shutdown was found',
    ),
  },
  metrics: {
    maxExporterLabels: int(
      positiveInt,
      200,
      'N',
      "distinct exporter label values per metric; further exporters count as 'other' until a labelled one has been idle for exporterLabelIdleSeconds",
    ),
    exporterLabelIdleSeconds: int(
      positiveInt,
      DEFAULT_EXPORTER_LABEL_IDLE_SECONDS,
      'SECONDS',
      'an exporter label without traffic this long gives its slot (and its series) to an active exporter',
    ),
    maxTrafficSeries: int(
      nonNegativeInt,
      DEFAULT_MAX_TRAFFIC_SERIES,
      'N',
      "label sets of scitags_traffic_bytes_total / _packets_total; further traffic counts under one 'other' set per direction (0: totals only)",
    ),
    trafficSeriesIdleSeconds: int(
      positiveInt,
      DEFAULT_TRAFFIC_SERIES_IDLE_SECONDS,
      'SECONDS',
      'with maxTrafficSeries sets taken, a traffic label set that has not grown this long is removed to give its slot to a new one (counted)',
    ),
  },
  log: {
    level: opt(z.enum(LOG_LEVELS), 'info', { help: LOG_LEVELS.join(' | '), value: 'enum', arg: 'LEVEL' }),
    format: opt(z.enum(LOG_FORMATS), 'json', {
      help: 'structured JSON logs (pino) or pretty for a terminal',
      value: 'enum',
      arg: 'FORMAT',
    }),
    accessLog: opt(z.boolean(), false, {
      help: 'log every HTTP request',
      value: 'boolean',
      arg: 'BOOL',
      flag: 'access-log',
      env: 'SCITAGS_ACCESS_LOG',
    }),
  },
} as const satisfies Section;

// ---------------------------------------------------------------------------------------
// Walking the table
// ---------------------------------------------------------------------------------------

export interface OptionEntry {
  /** Dotted key path, e.g. "aggregation.bucketSeconds" ("store.url" for store variants). */
  path: string;
  option: Option;
  env: string;
  flag: string;
  /** The store type the option belongs to (store variants only). */
  variant?: string;
}

const words = (path: string): string[] =>
  path
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .split(/[.\s]/)
    .map((w) => w.toLowerCase());

/** SCITAGS_AGGREGATION_GRACE_SECONDS for aggregation.graceSeconds, unless the option names its own. */
export const envNameOf = (path: string): string => `SCITAGS_${words(path).join('_').toUpperCase()}`;
/** --aggregation-grace-seconds for aggregation.graceSeconds, unless the option names its own. */
export const flagNameOf = (path: string): string => words(path).join('-');

function walk(section: Section, prefix: string, variant: string | undefined, out: OptionEntry[]): void {
  for (const [key, node] of Object.entries(section)) {
    const path = prefix ? `${prefix}.${key}` : key;
    if (isOption(node)) {
      out.push({
        path,
        option: node,
        env: node.env ?? envNameOf(path),
        flag: node.flag ?? flagNameOf(path),
        ...(variant ? { variant } : {}),
      });
    } else if (isVariants(node)) {
      out.push({ path, option: node.self, env: node.self.env ?? envNameOf(path), flag: node.self.flag ?? flagNameOf(path) });
      for (const [name, sub] of Object.entries(node.variants)) walk(sub, path, name, out);
    } else {
      walk(node, path, variant, out);
    }
  }
}

/** Every option of the table in table order (the order environment and flags are applied). */
export const OPTION_ENTRIES: readonly OptionEntry[] = (() => {
  const out: OptionEntry[] = [];
  walk(OPTIONS, '', undefined, out);
  return out;
})();

/** The store section's node (its variants are walked by the sample and the help). */
export const STORE_VARIANTS = store;
