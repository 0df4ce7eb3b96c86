import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { DEFAULT_LIMITS } from '../../decoders/ipfix/state.js';
import { ingestDecoderOptions } from '../../src/commands/ingest.js';
import {
  CONFIG_USAGE,
  type Config,
  ConfigError,
  defaultConfig,
  flowLimitsOf,
  formatConfig,
  loadConfig,
  OPTION_ENTRIES,
  resolveDataPaths,
} from '../../src/config/index.js';
import { renderSampleConfig } from '../../src/config/sample.js';
import { DatagramDecoder } from '../../src/pipeline/decoder.js';
import { CLI, freePorts, startDaemon } from '../support/daemon.js';
import { repoRoot } from '../support/root.js';

const root = repoRoot();
const valueAt = (config: unknown, path: string): unknown =>
  path.split('.').reduce<unknown>((node, k) => (node as Record<string, unknown> | undefined)?.[k], config);
const INFLUX = 'influx://localhost:8086/scitags';

/**
 * Per option: its variable, its flag, a text for both and the value that text must give.
 * Every option of the table must be here (the first test), so a new option cannot miss a name.
 */
const NAMES: [path: string, env: string, flag: string, text: string, value: unknown][] = [
  ['dataDir', 'SCITAGS_DATA_DIR', '--data-dir', '/srv/scitags', '/srv/scitags'],
  [
    'listeners.ipfix',
    'SCITAGS_IPFIX_PORT',
    '--ipfix-port',
    '4739,4740',
    [4739, 4740].map((port) => ({ port, bind: '::', receiveBufferBytes: 8388608 })),
  ],
  ['listeners.netflow', 'SCITAGS_NETFLOW_PORT', '--netflow-port', '0', [{ port: 0, bind: '::', receiveBufferBytes: 8388608 }]],
  ['listeners.sflow', 'SCITAGS_SFLOW_PORT', '--sflow-port', '6344', [{ port: 6344, bind: '::', receiveBufferBytes: 8388608 }]],
  ['listeners.firefly', 'SCITAGS_FIREFLY_PORT', '--firefly-port', '0', [{ port: 0, bind: '::', receiveBufferBytes: 8388608 }]],
  ['inputs.streams', 'SCITAGS_INPUT', '--input', 'goflow2:/run/a.fifo, goflow2:-', ['goflow2:/run/a.fifo', 'goflow2:-']],
  ['inputs.goflow2MaxMessageBytes', 'SCITAGS_INPUTS_GOFLOW2_MAX_MESSAGE_BYTES', '--inputs-goflow2-max-message-bytes', '4096', 4096],
  ['inputs.goflow2Separator', 'SCITAGS_INPUTS_GOFLOW2_SEPARATOR', '--inputs-goflow2-separator', 'none', 'none'],
  ['queue.size', 'SCITAGS_QUEUE_SIZE', '--queue-size', '1024', 1024],
  ['exporters.allow', 'SCITAGS_EXPORTERS_ALLOW', '--exporters-allow', '192.0.2.0/24, 2001:db8::/32', ['192.0.2.0/24', '2001:db8::/32']],
  ['exporters.defaultSamplingRate', 'SCITAGS_EXPORTERS_DEFAULT_SAMPLING_RATE', '--exporters-default-sampling-rate', '100', 100],
  [
    'exporters.sampling',
    'SCITAGS_EXPORTERS_SAMPLING',
    '--exporters-sampling',
    '[{exporter: 192.0.2.1, rate: 10}]',
    [{ exporter: '192.0.2.1', rate: 10, mode: 'default' }],
  ],
  ['exporters.outerFlowLabel', 'SCITAGS_EXPORTERS_OUTER_FLOW_LABEL', '--exporters-outer-flow-label', '192.0.2.1/32', ['192.0.2.1/32']],
  ['syslog.maxConnections', 'SCITAGS_SYSLOG_MAX_CONNECTIONS', '--syslog-max-connections', '8', 8],
  ['syslog.idleTimeoutSeconds', 'SCITAGS_SYSLOG_IDLE_TIMEOUT_SECONDS', '--syslog-idle-timeout-seconds', '60', 60],
  [
    'forward.fireflies',
    'SCITAGS_FORWARD_FIREFLIES',
    '--forward-fireflies',
    'collector.example.net:10514, [2001:db8::1]:514',
    ['collector.example.net:10514', '[2001:db8::1]:514'],
  ],
  ['forward.maxPerSecond', 'SCITAGS_FORWARD_MAX_PER_SECOND', '--forward-max-per-second', '50', 50],
  ['decoder.maxTemplatesPerSession', 'SCITAGS_DECODER_MAX_TEMPLATES_PER_SESSION', '--decoder-max-templates-per-session', '64', 64],
  ['decoder.maxSessions', 'SCITAGS_DECODER_MAX_SESSIONS', '--decoder-max-sessions', '50', 50],
  [
    'decoder.maxBufferedBytesPerSession',
    'SCITAGS_DECODER_MAX_BUFFERED_BYTES_PER_SESSION',
    '--decoder-max-buffered-bytes-per-session',
    '0',
    0,
  ],
  ['decoder.stateBudgetBytes', 'SCITAGS_DECODER_STATE_BUDGET_BYTES', '--decoder-state-budget-bytes', '1048576', 1048576],
  [
    'decoder.maxDatagramsPerSecondPerExporter',
    'SCITAGS_DECODER_MAX_DATAGRAMS_PER_SECOND_PER_EXPORTER',
    '--decoder-max-datagrams-per-second-per-exporter',
    '20000',
    20000,
  ],
  [
    'decoder.maxNewSessionsPerSecondPerExporter',
    'SCITAGS_DECODER_MAX_NEW_SESSIONS_PER_SECOND_PER_EXPORTER',
    '--decoder-max-new-sessions-per-second-per-exporter',
    '0',
    0,
  ],
  ['decoder.templateTimeoutSeconds', 'SCITAGS_DECODER_TEMPLATE_TIMEOUT_SECONDS', '--decoder-template-timeout-seconds', '1800', 1800],
  ['decoder.stateFile', 'SCITAGS_DECODER_STATE_FILE', '--decoder-state-file', 'state/d.json', 'state/d.json'],
  ['decoder.workers', 'SCITAGS_WORKERS', '--workers', '3', 3],
  ['decoder.crashDir', 'SCITAGS_DECODER_CRASH_DIR', '--decoder-crash-dir', '/tmp/crashes', '/tmp/crashes'],
  ['aggregation.bucketSeconds', 'SCITAGS_BUCKET', '--bucket', '5m', 300],
  ['aggregation.graceSeconds', 'SCITAGS_AGGREGATION_GRACE_SECONDS', '--aggregation-grace-seconds', '20', 20],
  ['aggregation.lateWindowSeconds', 'SCITAGS_AGGREGATION_LATE_WINDOW_SECONDS', '--aggregation-late-window-seconds', '600', 600],
  ['aggregation.maxLiveKeys', 'SCITAGS_AGGREGATION_MAX_LIVE_KEYS', '--aggregation-max-live-keys', '10', 10],
  [
    'aggregation.keepUnregistered',
    'SCITAGS_AGGREGATION_KEEP_UNREGISTERED',
    '--aggregation-keep-unregistered',
    '[{community: 7}]',
    [{ community: 7 }],
  ],
  ['links', 'SCITAGS_LINKS', '--links', '[{exporter: 192.0.2.1, ifIndex: 3, name: x}]', [{ exporter: '192.0.2.1', ifIndex: 3, name: 'x' }]],
  ['store', 'SCITAGS_STORE', '--store', 'sqlite:/srv/s.db', { type: 'sqlite', path: '/srv/s.db', retentionDays: 30 }],
  ['store.path', 'SCITAGS_STORE_PATH', '--store-path', 'db/s.sqlite', 'db/s.sqlite'],
  ['store.retentionDays', 'SCITAGS_STORE_RETENTION_DAYS', '--store-retention-days', '7.5', 7.5],
  ['store.url', 'SCITAGS_STORE_URL', '--store-url', 'https://influx.example:8086', 'https://influx.example:8086'],
  ['store.database', 'SCITAGS_STORE_DATABASE', '--store-database', 'flows', 'flows'],
  ['store.retentionPolicy', 'SCITAGS_STORE_RETENTION_POLICY', '--store-retention-policy', 'raw', 'raw'],
  ['store.username', 'SCITAGS_STORE_USERNAME', '--store-username', 'writer', 'writer'],
  ['store.password', 'SCITAGS_INFLUX_PASSWORD', '--store-password', 'hunter2', 'hunter2'],
  ['store.token', 'SCITAGS_INFLUX_TOKEN', '--store-token', 'tok', 'tok'],
  ['store.passwordFile', 'SCITAGS_INFLUX_PASSWORD_FILE', '--store-password-file', '/run/secrets/pw', '/run/secrets/pw'],
  ['store.tokenFile', 'SCITAGS_INFLUX_TOKEN_FILE', '--store-token-file', '/run/secrets/tok', '/run/secrets/tok'],
  ['store.tls.rejectUnauthorized', 'SCITAGS_STORE_TLS_REJECT_UNAUTHORIZED', '--store-tls-reject-unauthorized', 'false', false],
  ['store.tls.caFile', 'SCITAGS_STORE_TLS_CA_FILE', '--store-tls-ca-file', '/etc/ca.pem', '/etc/ca.pem'],
  ['store.timeoutMs', 'SCITAGS_STORE_TIMEOUT_MS', '--store-timeout-ms', '500', 500],
  ['store.batchSize', 'SCITAGS_STORE_BATCH_SIZE', '--store-batch-size', '100', 100],
  ['store.spoolDir', 'SCITAGS_STORE_SPOOL_DIR', '--store-spool-dir', 'spool', 'spool'],
  ['store.spoolMaxBytes', 'SCITAGS_STORE_SPOOL_MAX_BYTES', '--store-spool-max-bytes', '1000', 1000],
  ['store.createDatabase', 'SCITAGS_STORE_CREATE_DATABASE', '--store-create-database', 'no', false],
  ['store.rawRetention', 'SCITAGS_STORE_RAW_RETENTION', '--store-raw-retention', '12w', '12w'],
  ['store.rollupRetention', 'SCITAGS_STORE_ROLLUP_RETENTION', '--store-rollup-retention', 'INF', 'INF'],
  ['store.continuousQueries', 'SCITAGS_STORE_CONTINUOUS_QUERIES', '--store-continuous-queries', 'off', false],
  ['store.statsIntervalSeconds', 'SCITAGS_STORE_STATS_INTERVAL_SECONDS', '--store-stats-interval-seconds', '30', 30],
  ['store.probeIntervalSeconds', 'SCITAGS_STORE_PROBE_INTERVAL_SECONDS', '--store-probe-interval-seconds', '0', 0],
  ['registry.url', 'SCITAGS_REGISTRY_URL', '--registry-url', 'off', ''],
  ['registry.refreshSeconds', 'SCITAGS_REGISTRY_REFRESH_SECONDS', '--registry-refresh-seconds', '60', 60],
  ['registry.cacheFile', 'SCITAGS_REGISTRY_CACHE_FILE', '--registry-cache-file', 'r.json', 'r.json'],
  ['registry.timeoutMs', 'SCITAGS_REGISTRY_TIMEOUT_MS', '--registry-timeout-ms', '2000', 2000],
  ['registry.maxBytes', 'SCITAGS_REGISTRY_MAX_BYTES', '--registry-max-bytes', '65536', 65536],
  [
    'sites.prefixes',
    'SCITAGS_SITES_PREFIXES',
    '--sites-prefixes',
    '{A: [192.0.2.0/24, "2001:db8::/32"]}',
    { A: ['192.0.2.0/24', '2001:db8::/32'] },
  ],
  ['sites.cric.source', 'SCITAGS_SITES_CRIC_SOURCE', '--sites-cric-source', '/etc/cric.json', '/etc/cric.json'],
  ['sites.cric.refreshSeconds', 'SCITAGS_SITES_CRIC_REFRESH_SECONDS', '--sites-cric-refresh-seconds', '600', 600],
  ['sites.cric.cacheFile', 'SCITAGS_SITES_CRIC_CACHE_FILE', '--sites-cric-cache-file', 'c.json', 'c.json'],
  ['sites.cric.timeoutMs', 'SCITAGS_SITES_CRIC_TIMEOUT_MS', '--sites-cric-timeout-ms', '5000', 5000],
  ['sites.cric.maxBytes', 'SCITAGS_SITES_CRIC_MAX_BYTES', '--sites-cric-max-bytes', '1048576', 1048576],
  ['sites.maxPrefixes', 'SCITAGS_SITES_MAX_PREFIXES', '--sites-max-prefixes', '500', 500],
  ['sites.maxSites', 'SCITAGS_SITES_MAX_SITES', '--sites-max-sites', '50', 50],
  [
    'transition.nat64Prefixes',
    'SCITAGS_TRANSITION_NAT64_PREFIXES',
    '--transition-nat64-prefixes',
    '64:ff9b::/96,64:ff9b:1::/48',
    ['64:ff9b::/96', '64:ff9b:1::/48'],
  ],
  ['transition.nat64TopN', 'SCITAGS_TRANSITION_NAT64_TOP_N', '--transition-nat64-top-n', '20', 20],
  ['fireflies.maxFlows', 'SCITAGS_FIREFLIES_MAX_FLOWS', '--fireflies-max-flows', '2000', 2000],
  ['fireflies.flowTimeoutSeconds', 'SCITAGS_FIREFLIES_FLOW_TIMEOUT_SECONDS', '--fireflies-flow-timeout-seconds', '3600', 3600],
  ['fireflies.duplicateWindowSeconds', 'SCITAGS_FIREFLIES_DUPLICATE_WINDOW_SECONDS', '--fireflies-duplicate-window-seconds', '0', 0],
  ['fireflies.instance', 'SCITAGS_FIREFLIES_INSTANCE', '--fireflies-instance', ' collector-a ', 'collector-a'],
  ['api.port', 'SCITAGS_API_PORT', '--api-port', '9000', 9000],
  ['api.bind', 'SCITAGS_API_BIND', '--api-bind', '::', '::'],
  ['api.tokensFile', 'SCITAGS_API_TOKENS_FILE', '--api-tokens-file', '/etc/t', '/etc/t'],
  ['api.allowedHosts', 'SCITAGS_API_ALLOWED_HOSTS', '--api-allowed-hosts', 'a.example, [::1]', ['a.example', '[::1]']],
  ['api.corsOrigins', 'SCITAGS_API_CORS_ORIGINS', '--api-cors-origins', 'https://g.example', ['https://g.example']],
  ['api.rateLimitPerMinute', 'SCITAGS_API_RATE_LIMIT_PER_MINUTE', '--api-rate-limit-per-minute', '0', 0],
  ['api.maxInFlight', 'SCITAGS_API_MAX_IN_FLIGHT', '--api-max-in-flight', '8', 8],
  ['api.maxPoints', 'SCITAGS_API_MAX_POINTS', '--api-max-points', '100', 100],
  ['api.maxGroups', 'SCITAGS_API_MAX_GROUPS', '--api-max-groups', '5', 5],
  ['health.strict', 'SCITAGS_HEALTH_STRICT', '--health-strict', 'true', true],
  ['health.maxDropFraction', 'SCITAGS_HEALTH_MAX_DROP_FRACTION', '--health-max-drop-fraction', '0.01', 0.01],
  ['health.maxSpoolBatches', 'SCITAGS_HEALTH_MAX_SPOOL_BATCHES', '--health-max-spool-batches', '7', 7],
  ['health.workerRestartMinutes', 'SCITAGS_HEALTH_WORKER_RESTART_MINUTES', '--health-worker-restart-minutes', '3', 3],
  ['metrics.maxExporterLabels', 'SCITAGS_METRICS_MAX_EXPORTER_LABELS', '--metrics-max-exporter-labels', '20', 20],
  ['metrics.exporterLabelIdleSeconds', 'SCITAGS_METRICS_EXPORTER_LABEL_IDLE_SECONDS', '--metrics-exporter-label-idle-seconds', '60', 60],
  ['metrics.maxTrafficSeries', 'SCITAGS_METRICS_MAX_TRAFFIC_SERIES', '--metrics-max-traffic-series', '500', 500],
  ['metrics.trafficSeriesIdleSeconds', 'SCITAGS_METRICS_TRAFFIC_SERIES_IDLE_SECONDS', '--metrics-traffic-series-idle-seconds', '120', 120],
  ['log.level', 'SCITAGS_LOG_LEVEL', '--log-level', 'DEBUG', 'debug'],
  ['log.format', 'SCITAGS_LOG_FORMAT', '--log-format', 'pretty', 'pretty'],
  ['log.accessLog', 'SCITAGS_ACCESS_LOG', '--access-log', 'true', true],
];

describe('the option table', () => {
  it('names every option once: variable and flag', () => {
    expect(OPTION_ENTRIES.map((e) => [e.path, e.env, `--${e.flag}`])).toEqual(NAMES.map(([p, e, f]) => [p, e, f]));
    expect(new Set(OPTION_ENTRIES.map((e) => e.env)).size).toBe(OPTION_ENTRIES.length);
    expect(new Set(OPTION_ENTRIES.map((e) => e.flag)).size).toBe(OPTION_ENTRIES.length);
  });

  it('every option has a schema with its default, a help line in --help and an entry in the sample', () => {
    const defaults = defaultConfig();
    const influxDefaults = loadConfig({ argv: ['--store', INFLUX], env: {} }).config;
    const sampleText = readFileSync(join(root, 'deploy', 'config.yaml'), 'utf8');
    const sample = parse(sampleText) as unknown;
    for (const e of OPTION_ENTRIES) {
      const configured = e.variant === 'influx' ? influxDefaults : defaults;
      const def = e.path === 'store' ? defaults.store : valueAt(configured, e.path);
      expect(e.option.schema.parse(undefined), e.path).toEqual(def);
      if (e.path !== 'store' && e.path !== 'decoder.workers') expect(def, e.path).toEqual(e.option.default);
      expect(e.option.help.length, e.path).toBeGreaterThan(0);
      expect(CONFIG_USAGE, e.path).toContain(`${e.option.help}\n`);
      expect(CONFIG_USAGE, e.path).toContain(`(${e.path}; default `);
      expect(CONFIG_USAGE, e.path).toContain(`; env ${e.env}`);
      expect(CONFIG_USAGE, e.path).toMatch(new RegExp(`--(\\[no-\\])?${e.flag}\\b`));
      // In the sample: an active key, or a commented-out line for per-host values and the other store type.
      const key = e.path.split('.').at(-1)!;
      if (e.option.sampleCommented || e.variant === 'sqlite') expect(sampleText, e.path).toMatch(new RegExp(`^ *# ${key}:( |$)`, 'm'));
      else expect(valueAt(sample, e.path), e.path).toBeDefined();
    }
  });

  it('every variable and every flag sets its option', () => {
    for (const [path, env, flag, text, value] of NAMES) {
      const store = path.startsWith('store.') && !['store.path', 'store.retentionDays'].includes(path) ? { SCITAGS_STORE: INFLUX } : {};
      const fromEnv = loadConfig({ argv: [], env: { ...store, [env]: text } });
      expect(valueAt(fromEnv.config, path), env).toEqual(value);
      expect(fromEnv.overrides[path], env).toBe('env');
      const argv = typeof value === 'boolean' ? [value ? flag : flag.replace(/^--/, '--no-')] : [`${flag}=${text}`];
      if (flag === '--store-tls-reject-unauthorized' || flag === '--store-create-database' || flag === '--store-continuous-queries') {
        expect(argv).toEqual([flag.replace(/^--/, '--no-')]);
      }
      const fromFlag = loadConfig({ argv, env: store });
      expect(valueAt(fromFlag.config, path), flag).toEqual(value);
    }
  });

  it('deploy/config.yaml is what npm run gen:config writes', () => {
    expect(readFileSync(join(root, 'deploy', 'config.yaml'), 'utf8')).toBe(renderSampleConfig());
  });
});

describe('one default for the decoders: ingest buffers what serve does', () => {
  it('maxPendingBytes is 256 KiB in the decoders, in serve and in ingest', () => {
    const serve = loadConfig({ argv: [], env: {} }).config;
    expect(DEFAULT_LIMITS.maxPendingBytes).toBe(262144);
    expect(serve.decoder.maxBufferedBytesPerSession).toBe(262144);
    expect(flowLimitsOf(serve.decoder)).toEqual({
      maxSessions: 10000,
      maxTemplatesPerSession: 1024,
      maxPendingBytes: 262144,
      templateLifetimeMs: 0,
      stateBudgetBytes: 268435456,
    });
    const ingest = new DatagramDecoder(ingestDecoderOptions());
    expect(ingest.flowState.limits).toEqual({ ...DEFAULT_LIMITS, ...flowLimitsOf(serve.decoder) });
    expect(ingest.flowState.limits.maxPendingBytes).toBe(262144);
  });
});

describe('dataDir', () => {
  const resolved = (argv: string[], cwd = '/home/op') => resolveDataPaths(loadConfig({ argv, env: {} }).config, cwd);
  const files = (c: Config) => [
    c.store.type === 'sqlite' ? c.store.path : c.store.spoolDir,
    c.decoder.stateFile,
    c.decoder.crashDir,
    c.registry.cacheFile,
  ];

  it('places every file: ./data of the working directory by default, --data-dir elsewhere', () => {
    expect(files(resolved([]))).toEqual([
      '/home/op/data/scitags.sqlite',
      '/home/op/data/decoder-state.json',
      '/home/op/data/crashes',
      '/home/op/data/registry-cache.json',
    ]);
    expect(files(resolved(['--data-dir', '/var/lib/scitags-collector', '--store', INFLUX]))).toEqual([
      '/var/lib/scitags-collector/influx-spool',
      '/var/lib/scitags-collector/decoder-state.json',
      '/var/lib/scitags-collector/crashes',
      '/var/lib/scitags-collector/registry-cache.json',
    ]);
    expect(resolved(['--data-dir', 'state']).dataDir).toBe('/home/op/state');
  });

  it('resolves relative paths set explicitly against it; absolute, empty and :memory: stay', () => {
    const c = resolved([
      '--data-dir=/d',
      '--store=sqlite:db/x.sqlite',
      '--decoder-state-file=/etc/state.json',
      '--decoder-crash-dir=',
      '--registry-cache-file=../cache.json',
    ]);
    expect(files(c)).toEqual(['/d/db/x.sqlite', '/etc/state.json', '', '/cache.json']);
    expect(resolveDataPaths(c, '/elsewhere')).toEqual(c); // idempotent
    expect(files(resolved(['--store', 'sqlite::memory:']))[0]).toBe(':memory:');
  });

  it('serve --data-dir writes the store and the decoder state there, nothing in the working directory', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'scitags-cwd-'));
    const dataDir = join(mkdtempSync(join(tmpdir(), 'scitags-data-')), 'nested');
    const daemon = await startDaemon(await freePorts(), ['--data-dir', dataDir, '--workers', '1'], {}, cwd);
    let code: number | null;
    try {
      expect(daemon.output()).toContain(`"msg":"store: sqlite ${join(dataDir, 'scitags.sqlite')}"`);
    } finally {
      // Stopped whatever the assertion said: a failed test must not leave a daemon running.
      code = await daemon.stop();
    }
    expect(code).toBe(0);
    expect(
      readdirSync(dataDir)
        .filter((f) => !f.startsWith('scitags.sqlite-'))
        .sort(),
    ).toEqual(['decoder-state.json', 'scitags.sqlite']);
    expect(readdirSync(cwd)).toEqual([]);
  });
});

describe('the command line', () => {
  const run = (args: string[], env: Record<string, string> = {}) => {
    const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SCITAGS_')));
    return spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...clean, ...env }, cwd: tmpdir() });
  };

  it('--dump-config and the other serve flags work without the word serve', () => {
    const r = run(['--dump-config', '--workers', '2', '--bucket', '5m']);
    expect([r.status, r.stderr]).toEqual([0, '']);
    const expected = defaultConfig();
    expected.decoder.workers = 2;
    expected.aggregation.bucketSeconds = 300;
    expect(r.stdout).toBe(formatConfig(expected));
    expect(run(['serve', '--dump-config', '--workers', '2', '--bucket', '5m']).stdout).toBe(r.stdout);
  });

  it('unknown flags and commands still fail, naming them', () => {
    const flag = run(['--bogus']);
    expect([flag.status, flag.stdout, flag.stderr]).toEqual([2, '', "scitags-collector: Unknown option '--bogus' (see --help)\n"]);
    const command = run(['bogus']);
    expect(command.status).toBe(2);
    expect(command.stderr.startsWith('unknown command "bogus"\n')).toBe(true);
  });
});

describe('a configuration with several problems', () => {
  const text = [
    'listeners:', //                                  1
    '  ipfix:', //                                    2
    '    - port: 70000', //                           3
    '      bind: localhost', //                       4
    'aggregation:', //                                5
    '  bucketSeconds: 0', //                          6
    '  graceSecond: 5', //                            7
    'store:', //                                      8
    '  type: influx', //                              9
    '  url: ftp://db', //                            10
    'links:', //                                     11
    '  - {exporter: 192.0.2.1, ifIndex: 1}', //      12
    'log:', //                                       13
    '  format: text', //                             14
    '',
  ].join('\n');

  it('reports all of them at once: file:line:col, variable or flag, and the key path', () => {
    let err: unknown;
    try {
      loadConfig({
        argv: ['--config', 'deploy/bad.yaml', '--api-port', 'http', '--queue-size', '0'],
        env: { SCITAGS_WORKERS: '100', SCITAGS_ACCESS_LOG: 'maybe' },
        readFile: () => text,
      });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).message.split('\n')).toEqual([
      'deploy/bad.yaml:3:13: listeners.ipfix.0.port: must be <= 65535',
      "deploy/bad.yaml:4:13: listeners.ipfix.0.bind: must be an IPv4 or IPv6 address ('::' = all, dual-stack; '0.0.0.0' = all IPv4)",
      'deploy/bad.yaml:6:18: aggregation.bucketSeconds: must be >= 1',
      'deploy/bad.yaml:7:3: aggregation.graceSecond: unknown key',
      'deploy/bad.yaml:10:8: store.url: must be an http(s) URL such as http://localhost:8086',
      'deploy/bad.yaml:12:5: links.0.name: must be a string',
      'deploy/bad.yaml:14:11: log.format: must be "json" or "pretty"',
      'environment variable SCITAGS_ACCESS_LOG: log.accessLog: must be true or false, got "maybe"',
      'environment variable SCITAGS_WORKERS: decoder.workers: must be <= 64',
      'flag --api-port: api.port: must be a port 0..65535 (0 disables), got "http"',
      'flag --queue-size: queue.size: must be >= 1',
    ]);
    expect((err as ConfigError).problems.map((p) => [p.source, p.path, p.line ?? null, p.column ?? null])).toEqual([
      ['file', 'listeners.ipfix.0.port', 3, 13],
      ['file', 'listeners.ipfix.0.bind', 4, 13],
      ['file', 'aggregation.bucketSeconds', 6, 18],
      ['file', 'aggregation.graceSecond', 7, 3],
      ['file', 'store.url', 10, 8],
      ['file', 'links.0.name', 12, 5],
      ['file', 'log.format', 14, 11],
      ['env', 'log.accessLog', null, null],
      ['env', 'decoder.workers', null, null],
      ['flag', 'api.port', null, null],
      ['flag', 'queue.size', null, null],
    ]);
  });

  it('serve prints each problem on its own line and exits 2', () => {
    const dir = mkdtempSync(join(tmpdir(), 'scitags-bad-'));
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'api:\n  port: -1\n  bind: x\nqueue: {size: 0}\n');
    const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SCITAGS_')));
    const r = spawnSync(process.execPath, [CLI, '--config', file], { encoding: 'utf8', env: clean });
    expect([r.status, r.stdout]).toEqual([2, '']);
    expect(r.stderr).toBe(
      [
        `scitags-collector: ${file}:2:9: api.port: must be >= 0 (0 disables)`,
        `scitags-collector: ${file}:3:9: api.bind: must be an IPv4 or IPv6 address ('::' = all, dual-stack; '0.0.0.0' = all IPv4)`,
        `scitags-collector: ${file}:4:15: queue.size: must be >= 1`,
        '',
      ].join('\n'),
    );
  });
});
