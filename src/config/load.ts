import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { type Document, isMap, isScalar, isSeq, LineCounter, parse as parseYaml, parseDocument } from 'yaml';
import type { z } from 'zod';
import { type OptionEntry, OPTION_ENTRIES } from './options.js';
import {
  type Config,
  configSchema,
  defaultConfig,
  DEFAULT_SQLITE_PATH,
  influxStoreSchema,
  type ListenerConfig,
  type ListenerProtocol,
  type StoreConfig,
} from './schema.js';

/** Where a configuration value came from, lowest precedence first. */
export type ConfigSource = 'default' | 'file' | 'env' | 'flag';

/** One configuration problem, located: file with line and column, variable, or flag. */
export interface ConfigProblem {
  source: ConfigSource;
  /** Dotted key path, e.g. "listeners.ipfix.0.port"; '' for the whole document or command line. */
  path: string;
  /** 1-based line and column in the config file, when the source is a file and the key is in it. */
  line?: number;
  column?: number;
  /** The whole line as printed, e.g. "c.yaml:12:3: aggregation.bucketSeconds: must be >= 1". */
  text: string;
}

/**
 * Everything wrong with a configuration, reported at once: one problem a line, each naming
 * its file position, environment variable or flag, and the key path.
 */
export class ConfigError extends Error {
  readonly source: ConfigSource;
  readonly path: string;
  readonly line: number | undefined;
  constructor(readonly problems: readonly ConfigProblem[]) {
    super(problems.map((p) => p.text).join('\n'));
    this.name = 'ConfigError';
    const first = problems[0]!;
    this.source = first.source;
    this.path = first.path;
    this.line = first.line;
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
// Text (environment variables, flags) -> values
// ---------------------------------------------------------------------------------------

/** "60", "60s", "5m", "1h", "1d" -> seconds; undefined when malformed. */
export function parseDurationSeconds(raw: string): number | undefined {
  const m = /^\s*(\d{1,9})\s*(s|m|h|d)?\s*$/.exec(raw);
  if (!m) return undefined;
  const unit = { s: 1, m: 60, h: 3600, d: 86400 }[(m[2] ?? 's') as 's' | 'm' | 'h' | 'd'];
  return Number(m[1]) * unit;
}

function parsePortList(raw: string): number[] | undefined {
  if (!/^\s*\d{1,5}(\s*,\s*\d{1,5})*\s*$/.test(raw)) return undefined;
  const ports = raw.split(',').map((s) => Number(s.trim()));
  return ports.every((p) => p <= 65535) ? ports : undefined;
}

type Parsed = { value: unknown; problem?: undefined } | { value?: undefined; problem: string };
type RawConfig = Record<string, unknown>;

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** The value an environment variable or flag gives its option, read from text. */
function valueFromText(entry: OptionEntry, text: string, raw: RawConfig): Parsed {
  const got = `got ${JSON.stringify(text)}`;
  const o = entry.option;
  if (o.fromText) return { value: o.fromText(text) };
  switch (o.value) {
    case 'int':
      return /^\s*-?\d{1,15}\s*$/.test(text) ? { value: Number(text) } : { problem: `must be an integer, ${got}` };
    case 'port': {
      const ports = parsePortList(text);
      return ports?.length === 1 ? { value: ports[0] } : { problem: `must be a port 0..65535 (0 disables), ${got}` };
    }
    case 'number': {
      const n = Number(text);
      return text.trim() !== '' && Number.isFinite(n) ? { value: n } : { problem: `must be a number, ${got}` };
    }
    case 'boolean': {
      const t = text.trim().toLowerCase();
      if (['true', '1', 'yes', 'on'].includes(t)) return { value: true };
      if (['false', '0', 'no', 'off'].includes(t)) return { value: false };
      return { problem: `must be true or false, ${got}` };
    }
    case 'enum':
      return { value: text.trim().toLowerCase() };
    case 'duration': {
      const seconds = parseDurationSeconds(text);
      return seconds === undefined || seconds < 1
        ? { problem: `must be a duration such as 60, 60s, 5m or 1h, ${got}` }
        : { value: seconds };
    }
    case 'list':
      return {
        value: text
          .split(',')
          .map((s) => s.trim())
          .filter((s) => s !== ''),
      };
    case 'yaml':
      try {
        return { value: parseYaml(text) as unknown };
      } catch (err) {
        return { problem: `must be YAML such as [{key: value}]: ${(err as Error).message.split('\n')[0]}` };
      }
    case 'string':
    case 'dataPath':
      return { value: text };
    case 'ports': {
      const ports = parsePortList(text);
      if (!ports) return { problem: `must be a port 0..65535 (0 disables) or a comma-separated list of ports, ${got}` };
      // The listeners keep the first configured listener's bind address and buffer.
      const proto = entry.path.split('.')[1] as ListenerProtocol;
      const current = (raw.listeners as Record<string, unknown> | undefined)?.[proto];
      const first: unknown = Array.isArray(current) ? current[0] : undefined;
      const template: Partial<ListenerConfig> = isObject(first) ? first : {};
      return { value: ports.map((port) => ({ ...template, port })) };
    }
    case 'store': {
      const current = configSchema.shape.store.safeParse(raw.store);
      try {
        return { value: parseStoreSpec(text, isObject(raw.store) && current.success ? current.data : undefined) };
      } catch (err) {
        return { problem: (err as Error).message };
      }
    }
  }
}

/**
 * --store / SCITAGS_STORE:
 *  - `sqlite`, `sqlite:PATH`, `sqlite://PATH` (`sqlite:///abs/path` is absolute)
 *  - `influx://[user[:password]@]host[:port]/database[?rp=POLICY]` (http),
 *    `influxs://...` or `influx+https://...` (https); port defaults to 8086.
 * Settings the spec cannot express (retention, TLS, batch size) are kept from the store
 * configured so far when it is of the same type, and so are credentials when the URL has none
 * (a URL naming only the user keeps the password set so far).
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
      throw new Error(
        `influx store needs one database name in the path: influx://host:8086/DATABASE, got ${JSON.stringify(redactSpec(s))}`,
      );
    }
    for (const key of url.searchParams.keys()) {
      if (key !== 'rp') throw new Error(`unknown influx store option ?${key}= (only ?rp=RETENTION_POLICY)`);
    }
    const https = m[1] === 'influxs' || m[1] === 'influx+https';
    const prev = current?.type === 'influx' ? current : undefined;
    const username = url.username ? decodeURIComponent(url.username) : (prev?.username ?? '');
    // A URL without a password keeps the one set so far (SCITAGS_INFLUX_PASSWORD, store.password),
    // so `influx://user@host/db` never needs the password on the command line.
    const password = url.password ? decodeURIComponent(url.password) : (prev?.password ?? '');
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
  throw new Error(`unknown store ${JSON.stringify(redactSpec(s))}: expected sqlite:PATH or influx://[user:password@]host:8086/database`);
}

function redactSpec(spec: string): string {
  return spec.replace(/(\/\/[^:/@]*:)[^@/]*@/, '$1***@');
}

// ---------------------------------------------------------------------------------------
// Flags and environment variables, from the option table
// ---------------------------------------------------------------------------------------

/** The flags that are not options: they say what to do, not how. */
const COMMAND_FLAGS = {
  config: { type: 'string', short: 'c' },
  'dump-config': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'V' },
} as const;

type FlagSpec = { type: 'string' | 'boolean'; short?: string };

/** parseArgs' option list: every option's flag (booleans also as --no-FLAG) and the command flags. */
const FLAGS: Record<string, FlagSpec> = (() => {
  const flags: Record<string, FlagSpec> = { ...COMMAND_FLAGS };
  for (const e of OPTION_ENTRIES) {
    if (e.option.value === 'boolean') {
      flags[e.flag] = { type: 'boolean' };
      flags[`no-${e.flag}`] = { type: 'boolean' };
    } else {
      flags[e.flag] = { type: 'string' };
    }
  }
  return flags;
})();

/** Environment variables read: the config file's and every option's. */
/** SCITAGS_API_TOKENS is read by serve (api tokens, a secret: no flag, no file key). */
export const ENV_NAMES: readonly string[] = ['SCITAGS_CONFIG', 'SCITAGS_API_TOKENS', ...OPTION_ENTRIES.map((e) => e.env)];

// ---------------------------------------------------------------------------------------
// Zod issues -> messages and file positions
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

type Range = { range?: [number, number, number] } | null;

/**
 * 1-based line and column of the deepest node of `path` present in the YAML document: the
 * key for unknown keys, else the value (a key left out is blamed on its enclosing node).
 */
function positionOf(doc: Document, lines: LineCounter, path: string[], isKey: boolean): { line: number; col: number } | undefined {
  let node: unknown = doc.contents;
  let offset: number | undefined = (node as Range)?.range?.[0];
  for (const [i, seg] of path.entries()) {
    const last = i === path.length - 1;
    if (isMap(node)) {
      const pair = node.items.find((p) => (isScalar(p.key) ? String(p.key.value) : String(p.key)) === seg);
      if (!pair) break;
      const keyRange = (pair.key as Range)?.range;
      const valRange = (pair.value as Range)?.range;
      offset = last && isKey ? keyRange?.[0] : (valRange?.[0] ?? keyRange?.[0]);
      node = pair.value;
    } else if (isSeq(node)) {
      const r = (node.items[Number(seg)] as Range)?.range;
      if (!r) break;
      offset = r[0];
      node = node.items[Number(seg)];
    } else break;
  }
  return offset === undefined ? undefined : lines.linePos(offset);
}

// ---------------------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------------------

interface ParsedFile {
  raw: RawConfig;
  /** Where a key path is in the file, or undefined when it is not. */
  position: (path: string[], isKey: boolean) => { line: number; col: number } | undefined;
}

function fileProblem(file: string, text: string, pos?: { line: number; col: number }): ConfigProblem {
  return {
    source: 'file',
    path: '',
    ...(pos ? { line: pos.line, column: pos.col } : {}),
    text: `${file}${pos ? `:${pos.line}:${pos.col}` : ''}: ${text}`,
  };
}

/** The file's YAML as plain data (not validated yet), or every syntax problem in it. */
function readConfigFile(file: string, readFile: (p: string) => string): ParsedFile | ConfigProblem[] {
  let text: string;
  try {
    text = readFile(file);
  } catch (err) {
    return [{ source: 'file', path: '', text: `cannot read config file ${file}: ${(err as Error).message}` }];
  }
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    return doc.errors.map((e) => {
      const pos = e.linePos?.[0];
      const first = (e.message.split('\n')[0] ?? e.message).replace(/ at line \d+, column \d+:?$/, '');
      return fileProblem(file, `invalid YAML: ${first}`, pos);
    });
  }
  const raw: unknown = doc.toJS() ?? {};
  if (!isObject(raw)) {
    return [fileProblem(file, 'the document must be a mapping of sections (listeners, store, api, ...)', { line: 1, col: 1 })];
  }
  return { raw, position: (path, isKey) => positionOf(doc, lines, path, isKey) };
}

/** Sets `value` at the dotted `path` of the raw configuration, creating sections on the way. */
function setPath(raw: RawConfig, path: string, value: unknown): boolean {
  const keys = path.split('.');
  const last = keys.pop()!;
  let node = raw;
  for (const k of keys) {
    if (node[k] === undefined) node[k] = {};
    const next = node[k];
    // A section the file made something else: the file's problem is reported, not hidden.
    if (!isObject(next)) return false;
    node = next;
  }
  node[last] = value;
  return true;
}

/**
 * Resolves the configuration: defaults <- YAML file (--config / SCITAGS_CONFIG) <- SCITAGS_*
 * environment variables <- flags. Every problem of every layer is collected and thrown at
 * once as a ConfigError naming, per problem, the file position, variable or flag and the key
 * path. `--help` / `--version` short-circuit: nothing else is read or validated.
 */
export function loadConfig(options: LoadConfigOptions): LoadedConfig {
  const env = options.env ?? {};
  const readFile = options.readFile ?? ((p: string) => readFileSync(p, 'utf8'));

  let flags: Record<string, string | boolean | undefined>;
  try {
    flags = parseArgs({ args: [...options.argv], options: FLAGS, strict: true, allowPositionals: false }).values as typeof flags;
  } catch (err) {
    const msg = (err as Error).message.replace(/\. To specify a positional argument.*$/s, '');
    throw new ConfigError([{ source: 'flag', path: '', text: `${msg} (see --help)` }]);
  }
  const help = flags.help === true;
  const version = flags.version === true;
  const dumpConfig = flags['dump-config'] === true;
  const warnings: string[] = [];
  const base = { dumpConfig, help, version, warnings };
  if (help || version) return { ...base, config: defaultConfig(), configFile: undefined, overrides: {} };

  const envValue = (name: string): string | undefined => {
    const v = env[name];
    return v === undefined || v.trim() === '' ? undefined : v;
  };

  const problems: ConfigProblem[] = [];
  const configFile = (flags.config as string | undefined) ?? envValue('SCITAGS_CONFIG');
  let file: ParsedFile | undefined;
  if (configFile !== undefined) {
    const read = readConfigFile(configFile, readFile);
    // Syntax errors: what the file means is unknown, so nothing else is checked.
    if (Array.isArray(read)) throw new ConfigError(read);
    file = read;
  }
  const raw: RawConfig = structuredClone(file?.raw ?? {});

  const known = new Set(ENV_NAMES);
  for (const name of Object.keys(env).sort()) {
    if (name.startsWith('SCITAGS_') && !known.has(name)) warnings.push(`ignoring unknown environment variable ${name}`);
  }

  // Key path -> the variable or flag that set it last (validation problems are blamed on it).
  const owners = new Map<string, { source: 'env' | 'flag'; name: string }>();
  // The store type a --store flag will choose: SCITAGS_INFLUX_PASSWORD (or any influx
  // variable) with `--store influx://user@host/db` waits for that flag instead of being
  // refused as meaningless for the SQLite store set so far.
  const flagStore = typeof flags.store === 'string' ? flags.store.trim() : '';
  const flagStoreType = flagStore.startsWith('sqlite') ? 'sqlite' : /^influx/.test(flagStore) ? 'influx' : undefined;
  const deferred: { name: string; entry: OptionEntry; text: string }[] = [];
  const apply = (source: 'env' | 'flag', name: string, entry: OptionEntry, text: string) => {
    const where = source === 'env' ? `environment variable ${name}` : `flag ${name}`;
    const fail = (message: string): void => void problems.push({ source, path: entry.path, text: `${where}: ${entry.path}: ${message}` });
    if (entry.variant !== undefined) {
      const store = raw.store;
      const type = isObject(store) && typeof store.type === 'string' ? store.type : 'sqlite';
      if (type !== entry.variant && source === 'env' && flagStoreType === entry.variant) {
        deferred.push({ name, entry, text });
        return;
      }
      if (type !== entry.variant) {
        fail(
          `is only meaningful with ${entry.variant === 'influx' ? 'an' : 'a'} ${entry.variant} store (set SCITAGS_STORE, --store or store.type)`,
        );
        return;
      }
    }
    const parsed = valueFromText(entry, text, raw);
    if (parsed.problem !== undefined) {
      fail(parsed.problem);
      return;
    }
    if (setPath(raw, entry.path, parsed.value)) owners.set(entry.path, { source, name });
  };
  for (const entry of OPTION_ENTRIES) {
    const text = envValue(entry.env);
    if (text !== undefined) apply('env', entry.env, entry, text);
  }
  for (const entry of OPTION_ENTRIES) {
    const value = flags[entry.flag];
    if (entry.path === 'store' && deferred.length > 0 && typeof value === 'string') {
      // The variables waiting for --store become the store the flag's spec builds on: what
      // the spec says (a password in the URL) wins, what it leaves out comes from them.
      raw.store = { type: flagStoreType };
      for (const d of deferred) apply('env', d.name, d.entry, d.text);
    }
    if (typeof value === 'string') apply('flag', `--${entry.flag}`, entry, value);
    else if (value === true) apply('flag', `--${entry.flag}`, entry, 'true');
    if (flags[`no-${entry.flag}`] === true) apply('flag', `--no-${entry.flag}`, entry, 'false');
  }

  // Validate the merged result; a problem is blamed on the latest source that set its key.
  const result = configSchema.safeParse(raw);
  if (!result.success) {
    for (const issue of result.error.issues) {
      for (const segs of issuePaths(issue)) {
        const path = pathString(segs);
        const owner = [...owners.keys()]
          .filter((p) => path === p || path.startsWith(`${p}.`) || p.startsWith(`${path}.`))
          .sort((a, b) => b.length - a.length)[0];
        const message = `${path || '(top level)'}: ${describeIssue(issue)}`;
        if (owner !== undefined) {
          const { source, name } = owners.get(owner)!;
          problems.push({ source, path, text: `${source === 'env' ? 'environment variable' : 'flag'} ${name}: ${message}` });
        } else if (file !== undefined && configFile !== undefined) {
          const pos = file.position(segs, issue.code === 'unrecognized_keys');
          problems.push({ ...fileProblem(configFile, message, pos), path });
        } else {
          problems.push({ source: 'default', path, text: `defaults: ${message}` });
        }
      }
    }
  }
  if (problems.length > 0) throw new ConfigError(sortProblems(problems));
  const overrides: LoadedConfig['overrides'] = {};
  for (const [path, { source }] of owners) overrides[path] = source;
  return { ...base, config: result.data!, configFile, overrides };
}

const SOURCE_ORDER: Record<ConfigSource, number> = { file: 0, env: 1, flag: 2, default: 3 };

/** File problems by position, then variables, then flags (each in the order found). */
function sortProblems(problems: ConfigProblem[]): ConfigProblem[] {
  return problems
    .map((p, i) => ({ p, i }))
    .sort(
      (a, b) =>
        SOURCE_ORDER[a.p.source] - SOURCE_ORDER[b.p.source] ||
        (a.p.line ?? 0) - (b.p.line ?? 0) ||
        (a.p.column ?? 0) - (b.p.column ?? 0) ||
        a.i - b.i,
    )
    .map(({ p }) => p);
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
  for (const protocol of ['ipfix', 'netflow', 'sflow', 'firefly'] as const) {
    for (const [i, l] of config.listeners[protocol].entries()) {
      if (l.port !== 0) out.push({ ...l, protocol, name: i === 0 ? protocol : `${protocol}-${i}` });
    }
  }
  return out;
}
