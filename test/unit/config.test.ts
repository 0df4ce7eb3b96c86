import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import {
  type Config,
  ConfigError,
  defaultConfig,
  enabledListeners,
  formatConfig,
  loadConfig,
  parseStoreSpec,
} from '../../src/config/index.js';
import { DEFAULT_WORKERS } from '../../src/config/schema.js';

const files = (map: Record<string, string>) => (path: string) => {
  const text = map[path];
  if (text === undefined) throw new Error(`ENOENT: no such file or directory, open '${path}'`);
  return text;
};

function fails(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

const DEFAULTS: Config = {
  dataDir: './data',
  listeners: {
    ipfix: [{ port: 4739, bind: '::', receiveBufferBytes: 8388608 }],
    netflow: [{ port: 2055, bind: '::', receiveBufferBytes: 8388608 }],
    sflow: [{ port: 6343, bind: '::', receiveBufferBytes: 8388608 }],
    firefly: [{ port: 10514, bind: '::', receiveBufferBytes: 8388608 }],
  },
  syslog: { maxConnections: 256, idleTimeoutSeconds: 300 },
  forward: { fireflies: [], maxPerSecond: 1000 },
  inputs: { streams: [], goflow2MaxMessageBytes: 65536, goflow2Separator: 'newline' },
  queue: { size: 65536 },
  exporters: { allow: [], defaultSamplingRate: 1, sampling: [], outerFlowLabel: [] },
  decoder: {
    maxTemplatesPerSession: 1024,
    maxSessions: 10000,
    maxBufferedBytesPerSession: 262144,
    stateBudgetBytes: 268435456,
    maxDatagramsPerSecondPerExporter: 0,
    maxNewSessionsPerSecondPerExporter: 100,
    templateTimeoutSeconds: 0,
    stateFile: 'decoder-state.json',
    workers: DEFAULT_WORKERS,
    crashDir: 'crashes',
  },
  aggregation: { bucketSeconds: 60, graceSeconds: 10, lateWindowSeconds: 300, maxLiveKeys: 100000, keepUnregistered: [] },
  links: [],
  store: { type: 'sqlite', path: 'scitags.sqlite', retentionDays: 30 },
  registry: {
    url: 'https://www.scitags.org/api.json',
    refreshSeconds: 3600,
    cacheFile: 'registry-cache.json',
    timeoutMs: 10000,
    maxBytes: 4194304,
  },
  sites: {
    prefixes: {},
    cric: { source: '', refreshSeconds: 21600, cacheFile: 'cric-cache.json', timeoutMs: 30000, maxBytes: 33554432 },
    maxPrefixes: 100000,
    maxSites: 1000,
  },
  transition: { nat64Prefixes: ['64:ff9b::/96'], nat64TopN: 100 },
  fireflies: { maxFlows: 100000, flowTimeoutSeconds: 86400, duplicateWindowSeconds: 60, instance: '' },
  api: {
    port: 8080,
    bind: '127.0.0.1',
    tokensFile: '',
    allowedHosts: [],
    corsOrigins: [],
    rateLimitPerMinute: 600,
    maxInFlight: 64,
    maxPoints: 10000,
    maxGroups: 500,
  },
  health: { strict: false, maxDropFraction: 0.001, maxSpoolBatches: 100, workerRestartMinutes: 10 },
  metrics: { maxExporterLabels: 200, exporterLabelIdleSeconds: 600, maxTrafficSeries: 10000, trafficSeriesIdleSeconds: 600 },
  log: { level: 'info', format: 'json', accessLog: false },
};

describe('defaults', () => {
  it('need no file, no environment and no flags', () => {
    const r = loadConfig({ argv: [], env: {}, readFile: files({}) });
    expect(r).toEqual({
      config: DEFAULTS,
      dumpConfig: false,
      help: false,
      version: false,
      configFile: undefined,
      overrides: {},
      warnings: [],
    });
    expect(defaultConfig()).toEqual(DEFAULTS);
    expect(enabledListeners(r.config).map((l) => [l.name, l.protocol, l.port, l.bind])).toEqual([
      ['ipfix', 'ipfix', 4739, '::'],
      ['netflow', 'netflow', 2055, '::'],
      ['sflow', 'sflow', 6343, '::'],
      ['firefly', 'firefly', 10514, '::'],
    ]);
  });

  it('fill in every key a file leaves out, and an empty file is the defaults', () => {
    const r = loadConfig({ argv: ['--config', 'c.yaml'], env: {}, readFile: files({ 'c.yaml': 'api:\n  port: 9000\n' }) });
    expect(r.config).toEqual({ ...DEFAULTS, api: { ...DEFAULTS.api, port: 9000 } });
    expect(loadConfig({ argv: ['-c', 'e.yaml'], env: {}, readFile: files({ 'e.yaml': '# nothing\n' }) }).config).toEqual(DEFAULTS);
  });
});

describe('precedence: file < environment < flags', () => {
  const file = `
listeners:
  ipfix:
    - port: 5000
      bind: 192.0.2.10
      receiveBufferBytes: 1048576
api:
  port: 9000
aggregation:
  bucketSeconds: 120
store:
  path: /var/lib/scitags/db.sqlite
  retentionDays: 14
`;
  it('each layer overrides the one below, key by key', () => {
    const r = loadConfig({
      argv: ['--api-port', '9002', '--netflow-port', '2056'],
      env: {
        SCITAGS_CONFIG: 'c.yaml',
        SCITAGS_API_PORT: '9001',
        SCITAGS_BUCKET: '5m',
        SCITAGS_NETFLOW_PORT: '3000',
        SCITAGS_LOG_LEVEL: 'DEBUG',
      },
      readFile: files({ 'c.yaml': file }),
    });
    expect(r.configFile).toBe('c.yaml');
    expect(r.config.listeners.ipfix).toEqual([{ port: 5000, bind: '192.0.2.10', receiveBufferBytes: 1048576 }]); // file
    expect(r.config.aggregation.bucketSeconds).toBe(300); // env over file
    expect(r.config.api.port).toBe(9002); // flag over env over file
    expect(r.config.listeners.netflow).toEqual([{ port: 2056, bind: '::', receiveBufferBytes: 8388608 }]); // flag over env
    expect(r.config.log.level).toBe('debug');
    expect(r.config.store).toEqual({ type: 'sqlite', path: '/var/lib/scitags/db.sqlite', retentionDays: 14 });
    expect(r.overrides).toEqual({
      'api.port': 'flag',
      'aggregation.bucketSeconds': 'env',
      'listeners.netflow': 'flag',
      'log.level': 'env',
    });
  });

  it('--config wins over SCITAGS_CONFIG; empty variables count as unset', () => {
    const r = loadConfig({
      argv: ['--config', 'b.yaml'],
      env: { SCITAGS_CONFIG: 'a.yaml', SCITAGS_API_PORT: '' },
      readFile: files({ 'a.yaml': 'api: {port: 1}\n', 'b.yaml': 'api: {port: 2}\n' }),
    });
    expect([r.configFile, r.config.api.port]).toEqual(['b.yaml', 2]);
  });

  it('a port flag keeps the bind and buffer of the file and may list several ports', () => {
    const r = loadConfig({ argv: ['--ipfix-port', '4739,4740'], env: {}, readFile: files({}) });
    expect(r.config.listeners.ipfix.map((l) => l.port)).toEqual([4739, 4740]);
    const f = loadConfig({ argv: ['-c', 'c.yaml', '--ipfix-port', '6000'], env: {}, readFile: files({ 'c.yaml': file }) });
    expect(f.config.listeners.ipfix).toEqual([{ port: 6000, bind: '192.0.2.10', receiveBufferBytes: 1048576 }]);
    expect(enabledListeners(r.config).map((l) => l.name)).toEqual(['ipfix', 'ipfix-1', 'netflow', 'sflow', 'firefly']);
  });

  it('log.format and log.accessLog: file, SCITAGS_LOG_FORMAT, --log-format and the --access-log switch', () => {
    const fromFile = loadConfig({
      argv: ['-c', 'l.yaml'],
      env: {},
      readFile: files({ 'l.yaml': 'log: {format: pretty, accessLog: true}\n' }),
    });
    expect(fromFile.config.log).toEqual({ level: 'info', format: 'pretty', accessLog: true });
    const r = loadConfig({ argv: ['--access-log'], env: { SCITAGS_LOG_FORMAT: 'Pretty' }, readFile: files({}) });
    expect(r.config.log).toEqual({ level: 'info', format: 'pretty', accessLog: true });
    expect(r.overrides).toEqual({ 'log.format': 'env', 'log.accessLog': 'flag' });
    const flag = loadConfig({ argv: ['--log-format', 'json'], env: { SCITAGS_LOG_FORMAT: 'pretty' }, readFile: files({}) });
    expect(flag.config.log).toEqual({ level: 'info', format: 'json', accessLog: false });
    expect(() => loadConfig({ argv: ['--log-format', 'xml'], env: {}, readFile: files({}) })).toThrow(
      'flag --log-format: log.format: must be "json" or "pretty"',
    );
  });

  it('warns about unknown SCITAGS_ variables', () => {
    const r = loadConfig({ argv: [], env: { SCITAGS_API_PROT: '1', HOME: '/root' } });
    expect(r.warnings).toEqual(['ignoring unknown environment variable SCITAGS_API_PROT']);
  });
});

describe('port 0 disables', () => {
  it('a listener or the API', () => {
    const r = loadConfig({
      argv: ['--sflow-port', '0', '--api-port', '0'],
      env: { SCITAGS_NETFLOW_PORT: '0' },
      readFile: files({}),
    });
    expect(r.config.listeners.sflow).toEqual([{ port: 0, bind: '::', receiveBufferBytes: 8388608 }]);
    expect(r.config.api.port).toBe(0);
    expect(enabledListeners(r.config).map((l) => `${l.protocol}:${l.port}`)).toEqual(['ipfix:4739', 'firefly:10514']);
  });

  it('one listener of several in a file', () => {
    const text = 'listeners:\n  sflow:\n    - port: 6343\n    - port: 0\n    - port: 6344\n      bind: "::1"\n';
    const r = loadConfig({ argv: ['-c', 'c.yaml'], readFile: files({ 'c.yaml': text }) });
    expect(
      enabledListeners(r.config)
        .filter((l) => l.protocol === 'sflow')
        .map((l) => [l.name, l.port, l.bind]),
    ).toEqual([
      ['sflow', 6343, '::'],
      ['sflow-2', 6344, '::1'],
    ]);
  });
});

describe('strict validation names the key path and the source', () => {
  const fromFile = (text: string) => fails(() => loadConfig({ argv: ['-c', 'x.yaml'], env: {}, readFile: files({ 'x.yaml': text }) }));

  it('rejects unknown keys with their path and line', () => {
    const e = fromFile('listeners:\n  ipfix:\n    - port: 4739\n      prot: 1\n');
    expect(e.message).toBe('x.yaml:4:7: listeners.ipfix.0.prot: unknown key');
    expect([e.source, e.path, e.line]).toEqual(['file', 'listeners.ipfix.0.prot', 4]);
    expect(fromFile('api: {port: 1}\nstorage: {}\n').message).toBe('x.yaml:2:1: storage: unknown key');
    expect(fromFile('store:\n  type: influx\n  path: ./x\n').message).toBe('x.yaml:3:3: store.path: unknown key');
  });

  it('rejects bad values in the file with path and line', () => {
    const cases: [string, string][] = [
      ['listeners:\n  ipfix:\n    - port: 70000\n', '3:13: listeners.ipfix.0.port: must be <= 65535'],
      ['api:\n  port: -1\n', '2:9: api.port: must be >= 0 (0 disables)'],
      ['api:\n  port: 1.5\n', '2:9: api.port: must be an integer'],
      ['api:\n  port: "80"\n', '2:9: api.port: must be a number'],
      ['api:\n  bind: localhost\n', "2:9: api.bind: must be an IPv4 or IPv6 address ('::' = all, dual-stack; '0.0.0.0' = all IPv4)"],
      ['aggregation:\n  bucketSeconds: 0\n', '2:18: aggregation.bucketSeconds: must be >= 1'],
      ['store:\n  type: mongo\n', '2:9: store.type: must be "sqlite" or "influx"'],
      ['log:\n  level: loud\n', '2:10: log.level: must be one of fatal, error, warn, info, debug, trace, silent'],
      ['log:\n  format: text\n', '2:11: log.format: must be "json" or "pretty"'],
      [
        'exporters:\n  allow: [192.0.2.0/24, 10.0.0.0/33]\n',
        '2:25: exporters.allow.1: must be a CIDR (192.0.2.0/24, 2001:db8::/32) or a single address',
      ],
      ['registry:\n  url: ftp://example.org/x\n', "2:8: registry.url: must be an http(s) URL, or '' to disable downloads"],
      [
        'links:\n  - {exporter: 192.0.2.1, ifIndex: 1, name: a}\n  - {exporter: 192.0.2.1, ifIndex: 2, name: a}\n',
        '3:45: links.1.name: duplicate link name (also links.0)',
      ],
      [
        'links:\n  - {exporter: 192.0.2.1, ifIndex: 1, name: "a,b"}\n',
        '2:45: links.0.name: must not contain a comma (API filters are comma-separated)',
      ],
      [
        'listeners:\n  ipfix:\n    - port: 4739\n    - port: 4739\n',
        '4:13: listeners.ipfix.1.port: port 4739 on :: is already listeners.ipfix.0',
      ],
      ['queue: 5\n', '1:8: queue: must be a mapping'],
      ['links: {}\n', '1:8: links: must be a list'],
    ];
    for (const [text, message] of cases) expect(fromFile(text).message).toBe(`x.yaml:${message}`);
  });

  it('reports YAML syntax errors with their line, and a file that cannot be read', () => {
    const e = fromFile('api:\n  port: 1\n  port: 2\n');
    expect(e.message).toBe('x.yaml:3:3: invalid YAML: Map keys must be unique');
    expect(e.line).toBe(3);
    expect(fromFile('- 1\n').message).toBe('x.yaml:1:1: the document must be a mapping of sections (listeners, store, api, ...)');
    expect(fails(() => loadConfig({ argv: ['-c', 'missing.yaml'], readFile: files({}) })).message).toBe(
      "cannot read config file missing.yaml: ENOENT: no such file or directory, open 'missing.yaml'",
    );
  });

  it('names the environment variable or flag', () => {
    const env = (e: Record<string, string>) => fails(() => loadConfig({ argv: [], env: e }));
    const flag = (...argv: string[]) => fails(() => loadConfig({ argv, env: {} }));
    let e = env({ SCITAGS_API_PORT: 'http' });
    expect(e.message).toBe('environment variable SCITAGS_API_PORT: api.port: must be a port 0..65535 (0 disables), got "http"');
    expect([e.source, e.path]).toEqual(['env', 'api.port']);
    expect(env({ SCITAGS_IPFIX_PORT: '65536' }).message).toBe(
      'environment variable SCITAGS_IPFIX_PORT: listeners.ipfix: must be a port 0..65535 (0 disables) or a comma-separated list of ports, got "65536"',
    );
    expect(env({ SCITAGS_BUCKET: '1 minute' }).message).toBe(
      'environment variable SCITAGS_BUCKET: aggregation.bucketSeconds: must be a duration such as 60, 60s, 5m or 1h, got "1 minute"',
    );
    e = env({ SCITAGS_API_BIND: 'example.org' });
    expect(e.message).toBe(
      "environment variable SCITAGS_API_BIND: api.bind: must be an IPv4 or IPv6 address ('::' = all, dual-stack; '0.0.0.0' = all IPv4)",
    );
    expect([e.source, e.path]).toEqual(['env', 'api.bind']);
    e = flag('--bucket', '2d');
    expect(e.message).toBe('flag --bucket: aggregation.bucketSeconds: must be <= 86400');
    expect([e.source, e.path]).toEqual(['flag', 'aggregation.bucketSeconds']);
    expect(flag('--log-level', 'loud').message).toBe(
      'flag --log-level: log.level: must be one of fatal, error, warn, info, debug, trace, silent',
    );
    expect(flag('--store', 'mysql://x/y').message).toBe(
      'flag --store: store: unknown store "mysql://x/y": expected sqlite:PATH or influx://[user:password@]host:8086/database',
    );
    e = flag('--ipfix', '1');
    expect(e.message).toBe("Unknown option '--ipfix' (see --help)");
    expect(e.source).toBe('flag');
    expect(flag('serve-now').message).toBe("Unexpected argument 'serve-now'. This command does not take positional arguments (see --help)");
    expect(env({ SCITAGS_INFLUX_PASSWORD: 'x' }).message).toBe(
      'environment variable SCITAGS_INFLUX_PASSWORD: store.password: is only meaningful with an influx store (set SCITAGS_STORE, --store or store.type)',
    );
  });

  it('--help and --version read nothing else', () => {
    const r = loadConfig({ argv: ['--help', '-c', 'missing.yaml'], env: { SCITAGS_API_PORT: 'bad' }, readFile: files({}) });
    expect([r.help, r.version, r.config]).toEqual([true, false, DEFAULTS]);
    expect(loadConfig({ argv: ['-V'], env: {} }).version).toBe(true);
  });
});

describe('--store', () => {
  it('parses sqlite specs', () => {
    expect(parseStoreSpec('sqlite:./x.sqlite')).toEqual({ type: 'sqlite', path: './x.sqlite', retentionDays: 30 });
    expect(parseStoreSpec('sqlite:///var/lib/s.db')).toEqual({ type: 'sqlite', path: '/var/lib/s.db', retentionDays: 30 });
    expect(parseStoreSpec('sqlite')).toEqual({ type: 'sqlite', path: 'scitags.sqlite', retentionDays: 30 });
    expect(parseStoreSpec('sqlite:y.db', { type: 'sqlite', path: 'x', retentionDays: 7 })).toEqual({
      type: 'sqlite',
      path: 'y.db',
      retentionDays: 7,
    });
  });

  it('parses influx URLs with credentials, port, database and retention policy', () => {
    expect(parseStoreSpec('influx://bob:p%40ss@db.example:8087/scitags?rp=one_year')).toEqual({
      type: 'influx',
      url: 'http://db.example:8087',
      database: 'scitags',
      retentionPolicy: 'one_year',
      username: 'bob',
      password: 'p@ss',
      token: '',
      passwordFile: '',
      tokenFile: '',
      tls: { rejectUnauthorized: true, caFile: '' },
      timeoutMs: 10000,
      batchSize: 5000,
      spoolDir: 'influx-spool',
      spoolMaxBytes: 1073741824,
      createDatabase: true,
      rawRetention: '30d',
      rollupRetention: '400d',
      continuousQueries: true,
      statsIntervalSeconds: 60,
      probeIntervalSeconds: 5,
    });
    expect(parseStoreSpec('influxs://[2001:db8::5]/db')).toMatchObject({
      url: 'https://[2001:db8::5]:8086',
      database: 'db',
      username: '',
      password: '',
    });
    expect(() => parseStoreSpec('influx://host:8086/')).toThrow('influx store needs one database name in the path');
    expect(() => parseStoreSpec('influx://host/db?precision=s')).toThrow('unknown influx store option ?precision=');
  });

  it('keeps credentials from earlier layers when the URL has none', () => {
    const r = loadConfig({
      argv: ['--store', 'influx://influx.example:8086/scitags'],
      env: { SCITAGS_STORE: 'influx://reader@old:8086/old', SCITAGS_INFLUX_PASSWORD: 'hunter2' },
    });
    expect(r.config.store).toMatchObject({
      type: 'influx',
      url: 'http://influx.example:8086',
      database: 'scitags',
      username: 'reader',
      password: 'hunter2',
    });
    expect(r.overrides).toEqual({ store: 'flag', 'store.password': 'env' });
  });

  it('SCITAGS_INFLUX_PASSWORD works with --store influx://user@host/db: the password never on the command line', () => {
    const r = loadConfig({ argv: ['--store', 'influx://writer@influx.example/scitags'], env: { SCITAGS_INFLUX_PASSWORD: 'hunter2' } });
    expect(r.config.store).toMatchObject({ type: 'influx', url: 'http://influx.example:8086', username: 'writer', password: 'hunter2' });
    expect(r.overrides).toEqual({ store: 'flag', 'store.password': 'env' });
    // Also through SCITAGS_STORE, and with the user given by its own variable.
    expect(
      loadConfig({ argv: [], env: { SCITAGS_STORE: 'influx://writer@influx.example/scitags', SCITAGS_INFLUX_PASSWORD: 'hunter2' } }).config
        .store,
    ).toMatchObject({ username: 'writer', password: 'hunter2' });
    expect(
      loadConfig({
        argv: ['--store=influx://influx.example/scitags'],
        env: { SCITAGS_STORE_USERNAME: 'w', SCITAGS_INFLUX_PASSWORD_FILE: '/run/pw' },
      }).config.store,
    ).toMatchObject({ username: 'w', password: '', passwordFile: '/run/pw' });
  });

  it('a password in the --store URL wins over SCITAGS_INFLUX_PASSWORD (flags over variables)', () => {
    const r = loadConfig({
      argv: ['--store', 'influx://writer:fromflag@influx.example/scitags'],
      env: { SCITAGS_INFLUX_PASSWORD: 'fromenv' },
    });
    expect(r.config.store).toMatchObject({ username: 'writer', password: 'fromflag' });
  });

  it('an influx variable with a --store sqlite spec is still refused', () => {
    expect(() => loadConfig({ argv: ['--store', 'sqlite:x.db'], env: { SCITAGS_INFLUX_PASSWORD: 'x' } })).toThrow(
      'environment variable SCITAGS_INFLUX_PASSWORD: store.password: is only meaningful with an influx store (set SCITAGS_STORE, --store or store.type)',
    );
  });

  it('takes an InfluxDB 2.x / 3.x token from SCITAGS_INFLUX_TOKEN, kept when SCITAGS_STORE is also set', () => {
    const r = loadConfig({ argv: [], env: { SCITAGS_STORE: 'influx://influx2.example:8086/scitags', SCITAGS_INFLUX_TOKEN: ' t0ken== ' } });
    expect(r.config.store).toMatchObject({ type: 'influx', url: 'http://influx2.example:8086', token: 't0ken==', username: '' });
    expect(r.overrides).toEqual({ store: 'env', 'store.token': 'env' });
    expect(formatConfig(r.config)).not.toContain('t0ken');
  });
});

describe('--dump-config', () => {
  it('prints the resolved configuration as YAML with the password masked, loadable again', () => {
    const r = loadConfig({ argv: ['--dump-config', '--store', 'influx://bob:s3cret@db.example:8087/scitags', '--bucket', '30s'], env: {} });
    expect(r.dumpConfig).toBe(true);
    const text = formatConfig(r.config);
    expect(text).not.toContain('s3cret');
    expect(text).toContain('  password: "********"\n');
    expect(text).toContain('  username: bob\n');
    expect(text).toContain('  bucketSeconds: 30\n');
    expect(
      text.startsWith('dataDir: ./data\nlisteners:\n  ipfix:\n    - port: 4739\n      bind: "::"\n      receiveBufferBytes: 8388608\n'),
    ).toBe(true);
    const again = loadConfig({ argv: ['-c', 'dump.yaml'], env: {}, readFile: files({ 'dump.yaml': text }) });
    expect(again.config).toEqual({ ...r.config, store: { ...r.config.store, password: '********' } });
    expect(parse(formatConfig(defaultConfig()))).toEqual(DEFAULTS);
  });

  it('masks passwords inside URLs too', () => {
    const text = formatConfig({
      ...defaultConfig(),
      registry: { ...defaultConfig().registry, url: 'https://user:tok@reg.example/api.json' },
    });
    expect(text).toContain('url: https://user:********@reg.example/api.json\n');
  });
});
