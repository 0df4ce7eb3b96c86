import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, isAbsolute, join, posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { DATA_PATHS, DEFAULT_PORTS, defaultConfig, loadConfig, resolveDataPaths, type Config } from '../../src/config/index.js';

/**
 * The deployment files cannot be run here (no Docker engine, no systemd), so they are
 * checked for consistency: every path they reference exists, published ports are the
 * collector's, volumes are declared, health checks exist, the sample configuration loads
 * with the real loader (with the environment the compose file sets), and the container
 * stack points collector and Grafana at the same InfluxDB database.
 */

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const read = (p: string) => readFileSync(join(root, p), 'utf8');

// ---------------------------------------------------------------------------------------
// Dockerfile: a small line parser (continuations joined, comments dropped)
// ---------------------------------------------------------------------------------------

interface Instruction {
  stage: number;
  op: string;
  args: string;
}

function parseDockerfile(text: string): { stages: { base: string; name?: string }[]; instructions: Instruction[] } {
  const logical: string[] = [];
  let current = '';
  for (const raw of text.split('\n')) {
    const line = raw.trimEnd();
    if (current === '' && (line.trim() === '' || line.trim().startsWith('#'))) continue;
    if (current !== '' && line.trim().startsWith('#')) continue;
    if (line.endsWith('\\')) {
      current += `${line.slice(0, -1)} `;
      continue;
    }
    logical.push((current + line).trim());
    current = '';
  }
  if (current) logical.push(current.trim());
  const stages: { base: string; name?: string }[] = [];
  const instructions: Instruction[] = [];
  // ARGs before the first FROM, with their defaults: what `${NAME}` in a FROM line means.
  const globalArgs = new Map<string, string>();
  for (const l of logical) {
    const m = /^(\w+)\s+(.*)$/s.exec(l);
    if (!m) throw new Error(`Dockerfile: cannot parse ${JSON.stringify(l)}`);
    const op = m[1]!.toUpperCase();
    const args = m[2]!.replace(/\s+/g, ' ').trim();
    if (op === 'ARG' && stages.length === 0) {
      const a = /^(\w+)=(\S+)$/.exec(args);
      if (a) globalArgs.set(a[1]!, a[2]!);
    }
    if (op === 'FROM') {
      const f = /^(?:--platform=\S+ )?(\S+)(?: AS (\S+))?$/i.exec(args);
      if (!f) throw new Error(`Dockerfile: bad FROM ${args}`);
      const base = f[1]!.replace(/\$\{(\w+)\}/g, (_, name: string) => globalArgs.get(name) ?? `\${${name}}`);
      stages.push({ base, ...(f[2] ? { name: f[2] } : {}) });
    }
    instructions.push({ stage: stages.length - 1, op, args });
  }
  return { stages, instructions };
}

const dockerfile = parseDockerfile(read('Dockerfile'));
const finalStage = dockerfile.stages.length - 1;
const finalOps = (op: string) => dockerfile.instructions.filter((i) => i.stage === finalStage && i.op === op);

/** A JSON-array (exec form) argument list. */
const execForm = (args: string): string[] => JSON.parse(args) as string[];

// ---------------------------------------------------------------------------------------
// .dockerignore (the subset of its syntax used: plain names and globs with *)
// ---------------------------------------------------------------------------------------

const ignorePatterns = read('.dockerignore')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith('#'));

function ignored(path: string): boolean {
  const clean = posix.normalize(path).replace(/^\.\//, '').replace(/\/$/, '');
  return ignorePatterns.some((pattern) => {
    if (pattern.startsWith('!')) throw new Error('negated .dockerignore patterns are not handled by this test');
    const re = new RegExp(`^${pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*')}(/.*)?$`);
    return re.test(clean);
  });
}

// ---------------------------------------------------------------------------------------
// docker-compose.yml
// ---------------------------------------------------------------------------------------

interface ComposeService {
  build?: { context: string; dockerfile: string } | string;
  image?: string;
  entrypoint?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  ports?: string[];
  depends_on?: Record<string, { condition: string }> | string[];
  healthcheck?: { test: string[] };
}
const compose = parse(read('docker-compose.yml')) as { services: Record<string, ComposeService>; volumes?: Record<string, unknown> };
const svc = (name: string): ComposeService => {
  const s = compose.services[name];
  if (!s) throw new Error(`docker-compose.yml has no service ${name}`);
  return s;
};

/** "[ip:]host:container[/proto]" -> parts */
function parsePort(spec: string): { hostIp?: string; host: number; container: number; proto: 'tcp' | 'udp' } {
  const [addr, proto = 'tcp'] = spec.split('/');
  const parts = addr!.split(':');
  const container = Number(parts.pop());
  const host = Number(parts.pop());
  const hostIp = parts.length ? parts.join(':') : undefined;
  if (!Number.isInteger(container) || !Number.isInteger(host)) throw new Error(`unparsed port ${spec}`);
  return { ...(hostIp ? { hostIp } : {}), host, container, proto: proto as 'tcp' | 'udp' };
}

/** "source:target[:mode]" -> parts (bind mounts have a path source) */
function parseVolume(spec: string): { source: string; target: string; mode?: string; bind: boolean } {
  const [source, target, mode] = spec.split(':');
  if (!source || !target) throw new Error(`unparsed volume ${spec}`);
  const bind = source.startsWith('.') || source.startsWith('/');
  return { source, target, ...(mode ? { mode } : {}), bind };
}

/** The image's environment: the final stage's ENV NAME=VALUE instructions. */
function imageEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const i of finalOps('ENV')) {
    for (const m of i.args.matchAll(/(\w+)=(\S+)/g)) env[m[1]!] = m[2]!;
  }
  return env;
}

/** The value of a dotted key path in a configuration, as a string. */
const valueAt = (config: Config, path: string): unknown =>
  path.split('.').reduce<unknown>((node, k) => (node as Record<string, unknown> | undefined)?.[k], config);

/** The collector configuration the container runs with: its CMD + the image's and the compose environment. */
function containerConfig(): Config {
  const cmd = execForm(finalOps('CMD')[0]!.args);
  expect(cmd[0]).toBe('serve');
  const configPath = cmd[cmd.indexOf('--config') + 1]!;
  const mount = (svc('collector').volumes ?? []).map(parseVolume).find((v) => v.target === configPath);
  expect(mount, `the config file ${configPath} is mounted`).toBeDefined();
  const loaded = loadConfig({
    argv: cmd.slice(1),
    env: { ...imageEnv(), ...(svc('collector').environment ?? {}) },
    readFile: (p) => {
      expect(p).toBe(configPath);
      return read(mount!.source);
    },
  });
  expect(loaded.warnings).toEqual([]);
  return loaded.config;
}

const udpPortsOf = (config: Config) =>
  (['ipfix', 'netflow', 'sflow', 'firefly'] as const)
    .flatMap((p) => config.listeners[p].map((l) => l.port))
    .filter((p) => p !== 0)
    .sort((a, b) => a - b);

// ---------------------------------------------------------------------------------------

describe('Dockerfile', () => {
  it('is multi-stage on Node 24 pinned by digest: a build stage (npm ci runs the build), a slim runtime', () => {
    expect(dockerfile.stages.length).toBeGreaterThanOrEqual(2);
    const build = dockerfile.stages[0]!;
    const runtime = dockerfile.stages[finalStage]!;
    expect(runtime.base).toMatch(/^node:24-bookworm-slim@sha256:[0-9a-f]{64}$/);
    // the same image in both stages: the native modules built in one run in the other
    expect(build.base).toBe(runtime.base);
    const buildRuns = dockerfile.instructions
      .filter((i) => i.stage === 0 && i.op === 'RUN')
      .map((i) => i.args)
      .join(' && ');
    expect(buildRuns).toMatch(/npm ci\b/);
    expect(JSON.parse(read('package.json')).scripts.prepare).toBe('npm run build'); // so npm ci builds
    expect(buildRuns).toMatch(/npm prune --omit=dev/);
    // the runtime copies from the build stage and never installs dev dependencies
    const runtimeCopies = finalOps('COPY').map((i) => i.args);
    expect(runtimeCopies.some((a) => a.startsWith(`--from=${build.name}`) && a.includes('node_modules'))).toBe(true);
    expect(runtimeCopies.some((a) => a.includes('/app/dist'))).toBe(true);
    expect(
      finalOps('RUN')
        .map((i) => i.args)
        .join(' '),
    ).not.toMatch(/npm (ci|install)/);
  });

  it('copies only paths that exist and that .dockerignore does not exclude', () => {
    const copies = dockerfile.instructions.filter((i) => i.op === 'COPY' && !i.args.startsWith('--from'));
    expect(copies.length).toBeGreaterThan(0);
    for (const c of copies) {
      const words = c.args.split(' ').filter((w) => !w.startsWith('--'));
      for (const src of words.slice(0, -1)) {
        expect(existsSync(join(root, src)), `COPY source ${src} exists`).toBe(true);
        expect(ignored(src), `COPY source ${src} is not excluded by .dockerignore`).toBe(false);
      }
    }
    for (const heavy of ['node_modules', 'dist', '.git', 'test'])
      expect(ignored(heavy), `${heavy} stays out of the build context`).toBe(true);
    // the built CLI the image starts is where the package's bin says
    const entry = execForm(finalOps('ENTRYPOINT')[0]!.args);
    expect(entry).toEqual(['node', '/app/dist/src/cli.js']);
    expect(JSON.parse(read('package.json')).bin['scitags-collector']).toBe('dist/src/cli.js');
    // the registry snapshot is where src/registry/loader.ts looks for it (/app/data)
    expect(finalOps('COPY').some((i) => i.args.endsWith('./data/registry-snapshot.json'))).toBe(true);
  });

  it('runs as a non-root user, exposes the collector ports, has a node health check and the serve CMD', () => {
    const user = finalOps('USER');
    expect(user).toHaveLength(1);
    expect(user[0]!.args).not.toMatch(/^(root|0)(:|$)/);
    const exposed = finalOps('EXPOSE')
      .flatMap((i) => i.args.split(' '))
      .sort();
    const defaults = defaultConfig();
    expect(exposed).toEqual(
      [
        `${DEFAULT_PORTS.ipfix}/udp`,
        `${DEFAULT_PORTS.netflow}/udp`,
        `${DEFAULT_PORTS.sflow}/udp`,
        `${DEFAULT_PORTS.firefly}/udp`,
        `${DEFAULT_PORTS.firefly}/tcp`,
        `${defaults.api.port}/tcp`,
      ].sort(),
    );
    const hc = finalOps('HEALTHCHECK');
    expect(hc).toHaveLength(1);
    const cmd = execForm(hc[0]!.args.slice(hc[0]!.args.indexOf('CMD ') + 4));
    expect(cmd[0]).toBe('node');
    expect(cmd.join(' ')).toContain(`http://127.0.0.1:${defaults.api.port}/health`);
    expect(execForm(finalOps('CMD')[0]!.args)).toEqual(['serve', '--config', '/etc/scitags-collector/config.yaml']);
    // the state directory is a volume, owned by the user, and the working directory
    expect(
      finalOps('VOLUME')
        .map((i) => i.args)
        .join(' '),
    ).toContain('/var/lib/scitags-collector');
    expect(finalOps('WORKDIR').at(-1)!.args).toBe('/var/lib/scitags-collector');
  });

  it('the health check command passes on 200 from /health and fails otherwise (run with node here)', async () => {
    const hc = finalOps('HEALTHCHECK')[0]!;
    const [node, flag, script] = execForm(hc.args.slice(hc.args.indexOf('CMD ') + 4));
    expect([node, flag]).toEqual(['node', '-e']);
    for (const status of [200, 503, null]) {
      const server = createServer((req, res) => {
        res.statusCode = req.url === '/health' && status !== null ? status : 404;
        res.end('{}');
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const port = (server.address() as AddressInfo).port;
      if (status === null) await new Promise<void>((r) => server.close(() => r())); // nothing listening
      const code = await new Promise<number | null>((resolve) => {
        const child = spawn(process.execPath, ['-e', script!.replace('127.0.0.1:8080', `127.0.0.1:${port}`)], { stdio: 'ignore' });
        child.on('exit', (c) => resolve(c));
      });
      if (status !== null) server.close();
      expect(code, `health ${status}`).toBe(status === 200 ? 0 : 1);
    }
  });
});

describe('docker-compose.yml', () => {
  it('has the collector, influxdb:1.8 and grafana services', () => {
    expect(Object.keys(compose.services).sort()).toEqual(['collector', 'grafana', 'influxdb']);
    expect(svc('influxdb').image).toBe('influxdb:1.8');
    expect(svc('grafana').image).toMatch(/^grafana\/grafana(:[\w.-]+)?$/);
    const build = svc('collector').build;
    const b = typeof build === 'string' ? { context: build, dockerfile: 'Dockerfile' } : build!;
    expect(existsSync(join(root, b.context, b.dockerfile))).toBe(true);
  });

  it('references only local paths that exist, declares every named volume, mounts provisioning read-only', () => {
    const declared = Object.keys(compose.volumes ?? {});
    const used = new Set<string>();
    for (const [name, s] of Object.entries(compose.services)) {
      for (const v of (s.volumes ?? []).map(parseVolume)) {
        if (v.bind) {
          expect(isAbsolute(v.source), `${name}: ${v.source} is relative to the compose file`).toBe(false);
          expect(existsSync(join(root, v.source)), `${name}: ${v.source} exists`).toBe(true);
          expect(v.mode, `${name}: ${v.source} is mounted read-only`).toBe('ro');
        } else {
          expect(declared, `${name}: volume ${v.source} is declared`).toContain(v.source);
          used.add(v.source);
        }
      }
    }
    expect([...used].sort()).toEqual(declared.sort());
    const grafanaMounts = Object.fromEntries((svc('grafana').volumes ?? []).map(parseVolume).map((v) => [v.target, v.source]));
    expect(grafanaMounts['/etc/grafana/provisioning/datasources']).toBe('./dashboards/provisioning/datasources');
    expect(grafanaMounts['/etc/grafana/provisioning/dashboards']).toBe('./dashboards/provisioning/dashboards');
    // the provider's path is where the dashboards are mounted
    const provider = parse(read('dashboards/provisioning/dashboards/scitags.yaml')) as { providers: { options: { path: string } }[] };
    expect(grafanaMounts[provider.providers[0]!.options.path]).toBe('./dashboards');
    expect(statSync(join(root, 'dashboards', 'scitags-overview.json')).isFile()).toBe(true);
    const home = svc('grafana').environment?.GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH;
    if (home) expect(existsSync(join(root, 'dashboards', home.slice(provider.providers[0]!.options.path.length)))).toBe(true);
    expect(Object.values(svc('influxdb').volumes ?? []).map((v) => parseVolume(v).target)).toContain('/var/lib/influxdb');
    expect((svc('collector').volumes ?? []).map((v) => parseVolume(v).target)).toContain('/var/lib/scitags-collector');
  });

  it("publishes exactly the collector's configured ports (= the Dockerfile's EXPOSE) and Grafana's", () => {
    const config = containerConfig();
    const ports = (svc('collector').ports ?? []).map(parsePort);
    for (const p of ports) expect(p.host, `${p.container}/${p.proto} published on the same port`).toBe(p.container);
    const udp = ports
      .filter((p) => p.proto === 'udp')
      .map((p) => p.container)
      .sort((a, b) => a - b);
    const tcp = ports.filter((p) => p.proto === 'tcp').map((p) => p.container);
    expect(udp).toEqual(udpPortsOf(config));
    // TCP: the API and the firefly port's TCP syslog (RFC 6587) for relays.
    expect(tcp.sort((a, b) => a - b)).toEqual([config.api.port, ...config.listeners.firefly.map((l) => l.port)].sort((a, b) => a - b));
    const exposed = finalOps('EXPOSE')
      .flatMap((i) => i.args.split(' '))
      .sort();
    expect(ports.map((p) => `${p.container}/${p.proto}`).sort()).toEqual(exposed);
    // every listener binds beyond loopback inside the container, or nothing reaches it
    for (const proto of ['ipfix', 'netflow', 'sflow', 'firefly'] as const)
      for (const l of config.listeners[proto]) expect(['::', '0.0.0.0']).toContain(l.bind);
    expect(['::', '0.0.0.0']).toContain(config.api.bind);
    expect((svc('grafana').ports ?? []).map(parsePort).map((p) => `${p.container}/${p.proto}`)).toEqual(['3000/tcp']);
  });

  it('publishes Grafana on loopback only, with an admin password generated at the first start (never a default)', () => {
    const grafana = svc('grafana');
    expect((grafana.ports ?? []).map(parsePort)).toEqual([{ hostIp: '127.0.0.1', host: 3000, container: 3000, proto: 'tcp' }]);
    const env = grafana.environment ?? {};
    expect(env.GF_SECURITY_ADMIN_PASSWORD, 'a password in the file or from a default').toBeUndefined();
    const file = env.GF_SECURITY_ADMIN_PASSWORD__FILE;
    expect(file).toBe('/var/lib/grafana/admin-password');
    // in the data volume, so it survives restarts and is made once
    expect((grafana.volumes ?? []).map(parseVolume).find((v) => file!.startsWith(`${v.target}/`))?.bind).toBe(false);

    // Run the entrypoint's script (compose's $$ is a literal $) with a scratch file and a stub
    // for Grafana's /run.sh: it makes a 32-character password once and keeps it afterwards.
    const [sh, dashC, script, argv0] = grafana.entrypoint!;
    expect([sh, dashC, argv0]).toEqual(['/bin/sh', '-c', 'grafana']);
    const scratch = mkdtempSync(join(tmpdir(), 'grafana-entry-'));
    try {
      const local = script!
        .replaceAll('$$', '$')
        .replaceAll(file!, join(scratch, 'admin-password'))
        .replace('exec /run.sh', 'exec echo started');
      expect(local).not.toBe(script);
      const run = () => spawnSync('/bin/sh', ['-c', local, 'grafana'], { encoding: 'utf8' });
      const first = run();
      expect(first.status, first.stderr).toBe(0);
      expect(first.stdout).toBe('started\n');
      const password = readFileSync(join(scratch, 'admin-password'), 'utf8');
      expect(password).toMatch(/^[A-Za-z0-9]{32}$/);
      expect(statSync(join(scratch, 'admin-password')).mode & 0o777).toBe(0o600);
      expect(run().status).toBe(0);
      expect(readFileSync(join(scratch, 'admin-password'), 'utf8')).toBe(password);
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  });

  it('health checks: the image has one (inherited by the collector), influxdb has one the collector waits for', () => {
    expect(finalOps('HEALTHCHECK')).toHaveLength(1);
    expect(svc('collector').healthcheck).toBeUndefined(); // not overridden
    expect(svc('influxdb').healthcheck?.test[0]).toBe('CMD');
    const deps = svc('collector').depends_on;
    expect(deps && !Array.isArray(deps) ? deps.influxdb?.condition : undefined).toBe('service_healthy');
  });

  it('points the collector and the Grafana datasource at the same InfluxDB database', () => {
    const config = containerConfig();
    expect(config.store.type).toBe('influx');
    if (config.store.type !== 'influx') return;
    const datasource = (
      parse(read('dashboards/provisioning/datasources/influxdb.yaml')) as { datasources: { url: string; jsonData: { dbName: string } }[] }
    ).datasources[0]!;
    expect(config.store.url).toBe('http://influxdb:8086');
    expect(datasource.url).toBe(config.store.url);
    expect(config.store.database).toBe('scitags');
    expect(datasource.jsonData.dbName).toBe(config.store.database);
    expect(svc('influxdb').environment?.INFLUXDB_DB).toBe(config.store.database);
    // every file the collector writes lives in the state volume, the image's data directory
    expect(config.dataDir).toBe('/var/lib/scitags-collector');
    const resolved = resolveDataPaths(config, '/');
    expect(DATA_PATHS.map((p) => [p, valueAt(resolved, p)]).filter(([, v]) => v !== undefined)).toEqual([
      ['decoder.stateFile', '/var/lib/scitags-collector/decoder-state.json'],
      ['decoder.crashDir', '/var/lib/scitags-collector/crashes'],
      ['store.spoolDir', '/var/lib/scitags-collector/influx-spool'],
      ['registry.cacheFile', '/var/lib/scitags-collector/registry-cache.json'],
      ['sites.cric.cacheFile', '/var/lib/scitags-collector/cric-cache.json'],
    ]);
  });

  it('`docker compose config` accepts it (skipped without the compose plugin)', (ctx) => {
    const probe = spawnSync('docker', ['compose', 'version'], { encoding: 'utf8' });
    if (probe.status !== 0) {
      ctx.skip();
      return;
    }
    const res = spawnSync('docker', ['compose', '-f', join(root, 'docker-compose.yml'), 'config', '--quiet'], {
      encoding: 'utf8',
      cwd: root,
    });
    expect(res.status, res.stderr).toBe(0);
  });
});

describe('deploy/config.yaml', () => {
  it('loads with the real configuration loader and matches the documented defaults', () => {
    const { config, warnings } = loadConfig({ argv: ['--config', join(root, 'deploy', 'config.yaml')], env: {} });
    expect(warnings).toEqual([]);
    expect(udpPortsOf(config)).toEqual(
      [DEFAULT_PORTS.netflow, DEFAULT_PORTS.ipfix, DEFAULT_PORTS.sflow, DEFAULT_PORTS.firefly].sort((a, b) => a - b),
    );
    expect(config.api.port).toBe(defaultConfig().api.port);
    expect(config.api.bind).toBe('127.0.0.1'); // the host sample keeps the unauthenticated API local
    expect(config.store).toMatchObject({ type: 'influx', database: 'scitags' });
    expect(config.links.length).toBeGreaterThan(0);
    expect(config.links.every((l) => l.capacityBps !== undefined)).toBe(true);
    expect(config.aggregation.bucketSeconds).toBe(60); // = the datasource's timeInterval
  });
});

describe('deploy/scitags-collector.service', () => {
  const unit = read('deploy/scitags-collector.service');
  const entries = (section: string): [string, string][] => {
    const body = unit.split(/^\[/m).find((s) => s.startsWith(`${section}]`));
    if (!body) throw new Error(`no [${section}] section`);
    return body
      .split('\n')
      .slice(1)
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#') && !l.startsWith(';'))
      .map((l) => {
        const i = l.indexOf('=');
        return [l.slice(0, i), l.slice(i + 1)] as [string, string];
      });
  };
  const service = Object.fromEntries(entries('Service'));

  it('runs serve with the config file as a dedicated user, restarts on failure', () => {
    expect(service.User).toBeDefined();
    expect(service.User).not.toBe('root');
    expect(service.Type).toBe('simple');
    expect(service.ExecStart).toMatch(/^\/usr\/bin\/node \S+\/dist\/src\/cli\.js serve --config \/etc\/scitags-collector\/config\.yaml$/);
    expect(service.Restart).toBe('on-failure');
    expect(Object.fromEntries(entries('Install')).WantedBy).toBe('multi-user.target');
  });

  it('is hardened, writes only its state directory, and takes no capability (all ports > 1024)', () => {
    expect(service).toMatchObject({
      NoNewPrivileges: 'true',
      ProtectSystem: 'strict',
      ProtectHome: 'true',
      PrivateTmp: 'true',
      CapabilityBoundingSet: '',
    });
    expect(service.AmbientCapabilities).toBeUndefined();
    expect(service.MemoryDenyWriteExecute).toBeUndefined(); // V8's JIT needs W+X pages
    // the unit's Environment= lines (NAME=VALUE each) are the collector's environment
    const env = Object.fromEntries(
      entries('Service')
        .filter(([k]) => k === 'Environment')
        .map(([, v]) => [v.slice(0, v.indexOf('=')), v.slice(v.indexOf('=') + 1)]),
    );
    expect(env.SCITAGS_DATA_DIR).toBe(`/var/lib/${service.StateDirectory}`);
    const { config } = loadConfig({ argv: ['--config', join(root, 'deploy', 'config.yaml')], env });
    expect(Math.min(...udpPortsOf(config), config.api.port)).toBeGreaterThan(1024);
    const writable = service.ReadWritePaths!.split(' ');
    expect(writable).toContain(`/var/lib/${service.StateDirectory}`);
    // every file the collector writes (those of the sample's store type) is in the state directory
    const resolved = resolveDataPaths(config, '/');
    const files = DATA_PATHS.map((p) => valueAt(resolved, p)).filter((v): v is string => typeof v === 'string');
    expect(files).toEqual([
      '/var/lib/scitags-collector/decoder-state.json',
      '/var/lib/scitags-collector/crashes',
      '/var/lib/scitags-collector/influx-spool',
      '/var/lib/scitags-collector/registry-cache.json',
      '/var/lib/scitags-collector/cric-cache.json',
    ]);
    for (const f of files)
      expect(
        writable.some((w) => f.startsWith(`${w}/`)),
        f,
      ).toBe(true);
    expect(service.WorkingDirectory).toBe(writable[0]);
  });

  it('passes systemd-analyze verify where systemd is installed', (ctx) => {
    const probe = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' });
    if (probe.status !== 0) {
      ctx.skip();
      return;
    }
    const res = spawnSync('systemd-analyze', ['verify', join(root, 'deploy', 'scitags-collector.service')], { encoding: 'utf8' });
    // ExecStart's node and the unit's user do not exist on a build machine: only syntax errors count
    const problems = `${res.stderr}`.split('\n').filter((l) => /Unknown (key|section)|Failed to parse|Invalid/.test(l));
    expect(problems).toEqual([]);
  });
});
