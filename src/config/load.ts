import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { type Document, isMap, isScalar, isSeq, LineCounter, parseDocument } from 'yaml';
import type { z } from 'zod';
import {
  type Config,
  configSchema,
  defaultConfig,
  DEFAULT_PORTS,
  DEFAULT_SQLITE_PATH,
  influxStoreSchema,
  type ListenerConfig,
  type ListenerProtocol,
  LOG_FORMATS,
  LOG_LEVELS,
  type StoreConfig,
} from './schema.js';

/** Where a configuration value came from, lowest precedence first. */
export type ConfigSource = 'default' | 'file' | 'env' | 'flag';

/** A configuration problem: names the key path and the source (file with line, variable, flag). */
export class ConfigError extends Error {
  constructor(
    message: string,
    readonly source: ConfigSource,
    /** Dotted key path, e.g. "listeners.ipfix.0.port"; '' for the whole document. */
    readonly path: string,
    /** 1-based line in the config file, when the source is a file and the key is in it. */
    readonly line?: number,
  ) {
    super(message);
    this.name = 'ConfigError';
  }
}

export interface LoadConfigOptions {
  /** Arguments after the command name (e.g. what follows `serve`). */
  argv: readonly string[];
  /** Environment (process.env); only SCITAGS_* variables are read. */
  env?: Readonly<Record<string, string | undefined>>;
  /** Reads the config file as UTF-8 text (injected for tests). */
  readFile?: (path: string) => string;
}

export interface LoadedConfig {
  config: Config;
  /** `--dump-config`: print formatConfig(config) and exit. */
  dumpConfig: boolean;
  /** `--help` / `--version` were given (config is then the defaults: nothing else was read). */
  help: boolean;
  version: boolean;
  /** The config file read (from --config or SCITAGS_CONFIG), if any. */
  configFile: string | undefined;
  /** Key paths set by the environment or flags, and by which (for logs and diagnostics). */
  overrides: Record<string, Exclude<ConfigSource, 'default' | 'file'>>;
  /** Non-fatal remarks, e.g. unknown SCITAGS_* variables. */
  warnings: string[];
}

// ---------------------------------------------------------------------------------------
// Value parsers shared by environment variables and flags
// ---------------------------------------------------------------------------------------

type Setter = (cfg: Config, raw: string) => { path: string; problem?: string };

function parsePortList(raw: string): number[] | undefined {
  if (!/^\s*\d{1,5}(\s*,\s*\d{1,5})*\s*$/.test(raw)) return undefined;
  const ports = raw.split(',').map((s) => Number(s.trim()));
  return ports.every((p) => p <= 65535) ? ports : undefined;
}

/** "60", "60s", "5m", "1h", "1d" -> seconds; undefined when malformed. */
export function parseDurationSeconds(raw: string): number | undefined {
  const m = /^\s*(\d{1,9})\s*(s|m|h|d)?\s*$/.exec(raw);
  if (!m) return undefined;
  const unit = { s: 1, m: 60, h: 3600, d: 86400 }[(m[2] ?? 's') as 's' | 'm' | 'h' | 'd'];
  return Number(m[1]) * unit;
}

function listenerSetter(proto: ListenerProtocol): Setter {
  return (cfg, raw) => {
    const path = `listeners.${proto}`;
    const ports = parsePortList(raw);
    if (!ports) return { path, problem: `must be a port 0..65535 (0 disables) or a comma-separated list of ports, got ${JSON.stringify(raw)}` };
    const template: ListenerConfig = cfg.listeners[proto][0] ?? defaultConfig().listeners[proto][0]!;
    cfg.listeners[proto] = ports.map((port) => ({ ...template, port }));
    return { path };
  };
}

const apiPortSetter: Setter = (cfg, raw) => {
  const ports = parsePortList(raw);
  if (!ports || ports.length !== 1) return { path: 'api.port', problem: `must be a port 0..65535 (0 disables), got ${JSON.stringify(raw)}` };
  cfg.api.port = ports[0]!;
  return { path: 'api.port' };
};

const bucketSetter: Setter = (cfg, raw) => {
  const seconds = parseDurationSeconds(raw);
  if (seconds === undefined || seconds < 1) {
    return { path: 'aggregation.bucketSeconds', problem: `must be a duration such as 60, 60s, 5m or 1h, got ${JSON.stringify(raw)}` };
  }
  cfg.aggregation.bucketSeconds = seconds;
  return { path: 'aggregation.bucketSeconds' };
};

const storeSetter: Setter = (cfg, raw) => {
  try {
    cfg.store = parseStoreSpec(raw, cfg.store);
    return { path: 'store' };
  } catch (err) {
    return { path: 'store', problem: (err as Error).message };
  }
};

function stringSetter(path: string, set: (cfg: Config, v: string) => void): Setter {
  return (cfg, raw) => {
    set(cfg, raw);
    return { path };
  };
}

const queueSetter: Setter = (cfg, raw) => {
  if (!/^\s*\d{1,9}\s*$/.test(raw)) return { path: 'queue.size', problem: `must be a positive integer, got ${JSON.stringify(raw)}` };
  cfg.queue.size = Number(raw);
  return { path: 'queue.size' };
};

const workersSetter: Setter = (cfg, raw) => {
  if (!/^\s*\d{1,2}\s*$/.test(raw) || Number(raw) < 1 || Number(raw) > 64) {
    return { path: 'decoder.workers', problem: `must be an integer from 1 to 64, got ${JSON.stringify(raw)}` };
  }
  cfg.decoder.workers = Number(raw);
  return { path: 'decoder.workers' };
};

const logLevelSetter: Setter = (cfg, raw) => {
  const level = raw.trim().toLowerCase();
  if (!(LOG_LEVELS as readonly string[]).includes(level)) {
    return { path: 'log.level', problem: `must be one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(raw)}` };
  }
  cfg.log.level = level as Config['log']['level'];
  return { path: 'log.level' };
};

const logFormatSetter: Setter = (cfg, raw) => {
  const format = raw.trim().toLowerCase();
  if (!(LOG_FORMATS as readonly string[]).includes(format)) {
    return { path: 'log.format', problem: `must be one of ${LOG_FORMATS.join(', ')}, got ${JSON.stringify(raw)}` };
  }
  cfg.log.format = format as Config['log']['format'];
  return { path: 'log.format' };
};

const influxPasswordSetter: Setter = (cfg, raw) => {
  if (cfg.store.type !== 'influx') return { path: 'store.password', problem: 'is only meaningful with an influx store (set SCITAGS_STORE or store.type)' };
  cfg.store.password = raw;
  return { path: 'store.password' };
};

/**
 * --store / SCITAGS_STORE:
 *  - `sqlite`, `sqlite:PATH`, `sqlite://PATH` (`sqlite:///abs/path` is absolute)
 *  - `influx://[user[:password]@]host[:port]/database[?rp=POLICY]` (http),
 *    `influxs://...` or `influx+https://...` (https); port defaults to 8086.
 * Settings the spec cannot express (retention, TLS, batch size) are kept from the store
 * configured so far when it is of the same type, and so are credentials when the URL has none.
 */
export function parseStoreSpec(spec: string, current?: StoreConfig): StoreConfig {
  const s = spec.trim();
  if (s === 'sqlite' || s.startsWith('sqlite:')) {
    let path = s.slice('sqlite'.length);
    if (path.startsWith(':')) path = path.slice(1);
    if (path.startsWith('//')) path = path.slice(2);
    const retentionDays = current?.type === 'sqlite' ? current.retentionDays : 30;
    return { type: 'sqlite', path: path || DEFAULT_SQLITE_PATH, retentionDays };
  }
  const m = /^(influx|influxs|influx\+https|influx\+http):\/\//.exec(s);
  if (m) {
    let url: URL;
    try {
      url = new URL(`http://${s.slice(m[0].length)}`);
    } catch {
      throw new Error(`cannot parse ${JSON.stringify(redactSpec(s))} as influx://[user[:password]@]host[:port]/database`);
    }
    const database = decodeURIComponent(url.pathname.replace(/^\/+/, '').replace(/\/+$/, ''));
    if (!database || database.includes('/')) {
      throw new Error(`influx store needs one database name in the path: influx://host:8086/DATABASE, got ${JSON.stringify(redactSpec(s))}`);
    }
    for (const key of url.searchParams.keys()) {
      if (key !== 'rp') throw new Error(`unknown influx store option ?${key}= (only ?rp=RETENTION_POLICY)`);
    }
    const https = m[1] === 'influxs' || m[1] === 'influx+https';
    const prev = current?.type === 'influx' ? current : undefined;
    const username = url.username ? decodeURIComponent(url.username) : (prev?.username ?? '');
    const password = url.password ? decodeURIComponent(url.password) : url.username ? '' : (prev?.password ?? '');
    // Everything the URL does not say comes from earlier layers, else the schema defaults.
    return {
      ...(prev ?? influxStoreSchema.parse({ type: 'influx' })),
      type: 'influx',
      url: `${https ? 'https' : 'http'}://${url.hostname}:${url.port || '8086'}`,
      database,
      retentionPolicy: url.searchParams.get('rp') ?? prev?.retentionPolicy ?? '',
      username,
      password,
    };
  }
  throw new Error(
    `unknown store ${JSON.stringify(redactSpec(s))}: expected sqlite:PATH or influx://[user:password@]host:8086/database`,
  );
}

function redactSpec(spec: string): string {
  return spec.replace(/(\/\/[^:/@]*:)[^@/]*@/, '$1***@');
}

/** Environment variables, applied in this order (so SCITAGS_STORE precedes the password). */
export const ENV_VARIABLES: readonly { name: string; set: Setter; help: string }[] = [
  { name: 'SCITAGS_IPFIX_PORT', set: listenerSetter('ipfix'), help: 'IPFIX UDP port(s), comma-separated; 0 disables' },
  { name: 'SCITAGS_NETFLOW_PORT', set: listenerSetter('netflow'), help: 'NetFlow v5/v9 UDP port(s); 0 disables' },
  { name: 'SCITAGS_SFLOW_PORT', set: listenerSetter('sflow'), help: 'sFlow UDP port(s); 0 disables' },
  { name: 'SCITAGS_API_PORT', set: apiPortSetter, help: 'REST API port; 0 disables' },
  { name: 'SCITAGS_API_BIND', set: stringSetter('api.bind', (c, v) => (c.api.bind = v.trim())), help: 'REST API bind address' },
  { name: 'SCITAGS_BUCKET', set: bucketSetter, help: 'bucket width (60, 60s, 5m, 1h)' },
  { name: 'SCITAGS_QUEUE_SIZE', set: queueSetter, help: 'datagram queue size' },
  { name: 'SCITAGS_WORKERS', set: workersSetter, help: 'decode worker threads (1 = main thread only)' },
  { name: 'SCITAGS_STORE', set: storeSetter, help: 'sqlite:PATH or influx://user:pass@host:8086/db' },
  { name: 'SCITAGS_INFLUX_PASSWORD', set: influxPasswordSetter, help: 'InfluxDB password (keeps it out of files and ps)' },
  {
    name: 'SCITAGS_REGISTRY_URL',
    set: stringSetter('registry.url', (c, v) => (c.registry.url = v.trim())),
    help: "registry URL; 'off' disables downloads",
  },
  { name: 'SCITAGS_LOG_LEVEL', set: logLevelSetter, help: LOG_LEVELS.join('|') },
  { name: 'SCITAGS_LOG_FORMAT', set: logFormatSetter, help: LOG_FORMATS.join('|') },
];

const FLAGS = {
  config: { type: 'string', short: 'c' },
  'ipfix-port': { type: 'string' },
  'netflow-port': { type: 'string' },
  'sflow-port': { type: 'string' },
  'api-port': { type: 'string' },
  'api-bind': { type: 'string' },
  bucket: { type: 'string' },
  store: { type: 'string' },
  workers: { type: 'string' },
  'log-level': { type: 'string' },
  'log-format': { type: 'string' },
  'access-log': { type: 'boolean' },
  'dump-config': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'V' },
} as const;

const FLAG_SETTERS: readonly [keyof typeof FLAGS, Setter][] = [
  ['ipfix-port', listenerSetter('ipfix')],
  ['netflow-port', listenerSetter('netflow')],
  ['sflow-port', listenerSetter('sflow')],
  ['api-port', apiPortSetter],
  ['api-bind', stringSetter('api.bind', (c, v) => (c.api.bind = v.trim()))],
  ['bucket', bucketSetter],
  ['store', storeSetter],
  ['workers', workersSetter],
  ['log-level', logLevelSetter],
  ['log-format', logFormatSetter],
];

/** Usage text of the configuration options (the CLI puts it under `serve`). */
export const CONFIG_USAGE = `Options (each overrides the config file and the environment):
  -c, --config FILE        YAML configuration file (env SCITAGS_CONFIG); defaults need none
      --ipfix-port PORTS   IPFIX UDP port(s), comma-separated, 0 disables     (default ${DEFAULT_PORTS.ipfix})
      --netflow-port PORTS NetFlow v5/v9 UDP port(s)                         (default ${DEFAULT_PORTS.netflow})
      --sflow-port PORTS   sFlow v5 UDP port(s)                              (default ${DEFAULT_PORTS.sflow})
      --api-port PORT      REST API / metrics port, 0 disables               (default 8080)
      --api-bind ADDRESS   REST API bind address                             (default 127.0.0.1)
      --bucket DURATION    aggregation bucket width: 60, 60s, 5m, 1h         (default 60s)
      --store SPEC         sqlite:PATH | influx://[user:pass@]host:8086/db   (default sqlite:${DEFAULT_SQLITE_PATH})
      --workers N          decode threads, exporters sharded by address; 1 = main thread (default: cores)
      --log-level LEVEL    ${LOG_LEVELS.join('|')}  (default info)
      --log-format FORMAT  ${LOG_FORMATS.join('|')}: JSON lines, or human lines for a terminal (default json)
      --access-log         log one line per API request                      (default off)
      --dump-config        print the resolved configuration as YAML (secrets masked) and exit
  -h, --help               this text
  -V, --version            print the version
Environment: ${ENV_VARIABLES.map((v) => v.name).join(', ')}, SCITAGS_CONFIG.
`;

// ---------------------------------------------------------------------------------------
// Zod issues -> messages
// ---------------------------------------------------------------------------------------

type Issue = z.core.$ZodIssue;

function pathString(path: readonly PropertyKey[]): string {
  return path.map(String).join('.');
}

function describeIssue(issue: Issue): string {
  switch (issue.code) {
    case 'unrecognized_keys':
      return 'unknown key';
    case 'too_big':
    case 'too_small': {
      if (issue.message && !/^Too (big|small)/.test(issue.message)) return issue.message;
      const op = issue.code === 'too_big' ? (issue.inclusive ? '<=' : '<') : issue.inclusive ? '>=' : '>';
      const bound = issue.code === 'too_big' ? issue.maximum : issue.minimum;
      if (issue.origin === 'string') return `must have ${issue.code === 'too_big' ? 'at most' : 'at least'} ${String(bound)} characters`;
      if (issue.origin === 'array') return `must have ${issue.code === 'too_big' ? 'at most' : 'at least'} ${String(bound)} items`;
      return `must be ${op} ${String(bound)}`;
    }
    case 'invalid_type': {
      const names: Record<string, string> = { object: 'a mapping', array: 'a list', int: 'an integer', number: 'a number' };
      return `must be ${names[issue.expected] ?? `a ${issue.expected}`}`;
    }
    case 'invalid_value':
      return issue.values.length > 2
        ? `must be one of ${issue.values.map((v) => String(v)).join(', ')}`
        : `must be ${issue.values.map((v) => JSON.stringify(v)).join(' or ')}`;
    case 'invalid_union':
      if (issue.errors.length === 0) return 'must be "sqlite" or "influx"';
      return issue.message;
    default:
      return issue.message.replace(/^Invalid input: /, '');
  }
}

/** Key paths of one issue: an unknown-keys issue names each unknown key. */
function issuePaths(issue: Issue): string[][] {
  const base = issue.path.map(String);
  if (issue.code === 'unrecognized_keys') return issue.keys.map((k) => [...base, k]);
  return [base];
}

/** 1-based line of the deepest node of `path` present in the YAML document (keys for unknown keys). */
function lineOf(doc: Document, lines: LineCounter, path: string[], isKey: boolean): number | undefined {
  let node: unknown = doc.contents;
  let offset: number | undefined = (node as { range?: [number, number, number] } | null)?.range?.[0];
  for (const [i, seg] of path.entries()) {
    const last = i === path.length - 1;
    if (isMap(node)) {
      const pair = node.items.find((p) => (isScalar(p.key) ? String(p.key.value) : String(p.key)) === seg);
      if (!pair) break;
      const keyRange = (pair.key as { range?: [number, number, number] } | null)?.range;
      const valRange = (pair.value as { range?: [number, number, number] } | null)?.range;
      offset = last && isKey ? keyRange?.[0] : (valRange?.[0] ?? keyRange?.[0]);
      node = pair.value;
    } else if (isSeq(node)) {
      const item = node.items[Number(seg)];
      const r = (item as { range?: [number, number, number] } | null)?.range;
      if (!r) break;
      offset = r[0];
      node = item;
    } else break;
  }
  return offset === undefined ? undefined : lines.linePos(offset).line;
}

// ---------------------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------------------

function readConfigFile(file: string, readFile: (p: string) => string): Config {
  let text: string;
  try {
    text = readFile(file);
  } catch (err) {
    throw new ConfigError(`cannot read config file ${file}: ${(err as Error).message}`, 'file', '');
  }
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    const line = e.linePos?.[0].line;
    const first = (e.message.split('\n')[0] ?? e.message).replace(/ at line \d+, column \d+:?$/, '');
    throw new ConfigError(`config file ${file}${line ? `, line ${line}` : ''}: invalid YAML: ${first}`, 'file', '', line);
  }
  const raw: unknown = doc.toJS() ?? {};
  if (typeof raw !== 'object' || Array.isArray(raw) || raw === null) {
    throw new ConfigError(`config file ${file}: the document must be a mapping of sections (listeners, store, api, ...)`, 'file', '', 1);
  }
  const result = configSchema.safeParse(raw);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const path = issuePaths(issue)[0]!;
  const line = lineOf(doc, lines, path, issue.code === 'unrecognized_keys');
  const where = pathString(path) || '(top level)';
  throw new ConfigError(
    `config file ${file}${line ? `, line ${line}` : ''}: ${where}: ${describeIssue(issue)}${moreIssues(result.error.issues.length)}`,
    'file',
    pathString(path),
    line,
  );
}

function moreIssues(n: number): string {
  return n > 1 ? ` (and ${n - 1} more problem${n > 2 ? 's' : ''})` : '';
}

/**
 * Resolves the configuration: defaults <- YAML file (--config / SCITAGS_CONFIG) <- SCITAGS_*
 * environment variables <- flags. Throws ConfigError naming the key path and the source.
 * `--help` / `--version` short-circuit: nothing else is read or validated.
 */
export function loadConfig(options: LoadConfigOptions): LoadedConfig {
  const env = options.env ?? {};
  const readFile = options.readFile ?? ((p: string) => readFileSync(p, 'utf8'));

  let flags: ReturnType<typeof parseArgs<{ options: typeof FLAGS; strict: true; allowPositionals: false }>>['values'];
  try {
    flags = parseArgs({ args: [...options.argv], options: FLAGS, strict: true, allowPositionals: false }).values;
  } catch (err) {
    const msg = (err as Error).message.replace(/\. To specify a positional argument.*$/s, '');
    throw new ConfigError(`${msg} (see --help)`, 'flag', '');
  }
  const help = flags.help === true;
  const version = flags.version === true;
  const dumpConfig = flags['dump-config'] === true;
  const base = { dumpConfig, help, version, overrides: {}, warnings: [] as string[] };
  if (help || version) return { ...base, config: defaultConfig(), configFile: undefined };

  const envValue = (name: string): string | undefined => {
    const v = env[name];
    return v === undefined || v.trim() === '' ? undefined : v;
  };

  const configFile = flags.config ?? envValue('SCITAGS_CONFIG');
  const config: Config = configFile === undefined ? defaultConfig() : readConfigFile(configFile, readFile);

  const overrides: Record<string, 'env' | 'flag'> = {};
  const apply = (source: 'env' | 'flag', name: string, set: Setter, raw: string) => {
    const { path, problem } = set(config, raw);
    if (problem) {
      const what = source === 'env' ? `environment variable ${name}` : `flag ${name}`;
      throw new ConfigError(`${what} (${path}): ${problem}`, source, path);
    }
    overrides[path] = source;
  };

  const known = new Set(['SCITAGS_CONFIG', ...ENV_VARIABLES.map((v) => v.name)]);
  for (const name of Object.keys(env).sort()) {
    if (name.startsWith('SCITAGS_') && !known.has(name)) base.warnings.push(`ignoring unknown environment variable ${name}`);
  }
  for (const v of ENV_VARIABLES) {
    const raw = envValue(v.name);
    if (raw !== undefined) apply('env', v.name, v.set, v.name === 'SCITAGS_REGISTRY_URL' && raw.trim() === 'off' ? '' : raw);
  }
  for (const [flag, set] of FLAG_SETTERS) {
    const raw = flags[flag];
    if (typeof raw === 'string') apply('flag', `--${flag}`, set, raw);
  }
  // A switch, not a value: it only turns the access log on.
  if (flags['access-log'] === true) {
    config.log.accessLog = true;
    overrides['log.accessLog'] = 'flag';
  }

  // Validate the merged result; a problem is blamed on the latest source that set its key.
  const result = configSchema.safeParse(config);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const path = pathString(issuePaths(issue)[0]!);
    const owner = Object.keys(overrides)
      .filter((p) => path === p || path.startsWith(`${p}.`) || p.startsWith(`${path}.`))
      .sort((a, b) => b.length - a.length)[0];
    const source: ConfigSource = owner ? overrides[owner]! : configFile !== undefined ? 'file' : 'default';
    const what =
      source === 'env'
        ? `environment variable ${envNameFor(owner!)}`
        : source === 'flag'
          ? `flag --${flagNameFor(owner!)}`
          : source === 'file'
            ? `config file ${configFile}`
            : 'defaults';
    throw new ConfigError(`${what}: ${path || '(top level)'}: ${describeIssue(issue)}`, source, path);
  }
  return { ...base, config: result.data, configFile, overrides };
}

function envNameFor(path: string): string {
  const names: Record<string, string> = {
    'listeners.ipfix': 'SCITAGS_IPFIX_PORT',
    'listeners.netflow': 'SCITAGS_NETFLOW_PORT',
    'listeners.sflow': 'SCITAGS_SFLOW_PORT',
    'api.port': 'SCITAGS_API_PORT',
    'api.bind': 'SCITAGS_API_BIND',
    'aggregation.bucketSeconds': 'SCITAGS_BUCKET',
    'queue.size': 'SCITAGS_QUEUE_SIZE',
    store: 'SCITAGS_STORE',
    'store.password': 'SCITAGS_INFLUX_PASSWORD',
    'registry.url': 'SCITAGS_REGISTRY_URL',
    'log.level': 'SCITAGS_LOG_LEVEL',
    'log.format': 'SCITAGS_LOG_FORMAT',
  };
  return names[path] ?? path;
}

function flagNameFor(path: string): string {
  const names: Record<string, string> = {
    'listeners.ipfix': 'ipfix-port',
    'listeners.netflow': 'netflow-port',
    'listeners.sflow': 'sflow-port',
    'api.port': 'api-port',
    'api.bind': 'api-bind',
    'aggregation.bucketSeconds': 'bucket',
    store: 'store',
    'log.level': 'log-level',
    'log.format': 'log-format',
    'log.accessLog': 'access-log',
  };
  return names[path] ?? path;
}

/** One enabled UDP listener (port != 0), flattened for the wiring in `serve`. */
export interface EnabledListener extends ListenerConfig {
  protocol: ListenerProtocol;
  /** "ipfix", "ipfix-1", ...: a stable label for logs and metrics. */
  name: string;
}

/** The listeners to open: every configured listener whose port is not 0. */
export function enabledListeners(config: Config): EnabledListener[] {
  const out: EnabledListener[] = [];
  for (const protocol of ['ipfix', 'netflow', 'sflow'] as const) {
    for (const [i, l] of config.listeners[protocol].entries()) {
      if (l.port !== 0) out.push({ ...l, protocol, name: i === 0 ? protocol : `${protocol}-${i}` });
    }
  }
  return out;
}
