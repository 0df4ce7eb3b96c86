import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readCaptureFile } from '../../collectors/pcap.js';
import { replayDatagrams } from '../../collectors/replay.js';
import { CORPUS_CAPTURES, fixturePath } from './expected.js';
import { freeTcpPort } from './influxd.js';
import { repoRoot } from './root.js';

/** The built CLI (this file runs from test/ under vitest and from dist/test/ in benches). */
export const CLI = join(repoRoot(), 'dist', 'src', 'cli.js');

export async function freeUdpPort(): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  const port = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

export interface DaemonPorts {
  ipfix: number;
  netflow: number;
  sflow: number;
  api: number;
}

export async function freePorts(): Promise<DaemonPorts> {
  return { ipfix: await freeUdpPort(), netflow: await freeUdpPort(), sflow: await freeUdpPort(), api: await freeTcpPort() };
}

export interface Daemon {
  child: ChildProcess;
  apiUrl: string;
  /** The daemon's working directory (its ./data lives here). */
  cwd: string;
  output: () => string;
  /** SIGTERM and wait for the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * Starts `scitags-collector serve` (the built CLI) and resolves once it logs its API URL.
 * It runs in its own working directory (a fresh temp dir unless `cwd` is given), so the
 * relative defaults under ./data (store, registry cache, decoder state, spool) of daemons
 * in parallel tests never meet; pass the same `cwd` to restart "the same" collector.
 */
export async function startDaemon(
  ports: DaemonPorts,
  extraArgs: string[],
  env: Record<string, string> = {},
  cwd: string = mkdtempSync(join(tmpdir(), 'scitags-daemon-')),
  /** Options for node itself (e.g. --cpu-prof, which NODE_OPTIONS does not accept). */
  nodeArgs: readonly string[] = [],
  /** The CLI script to run (default: this checkout's build; the packed-install test passes the installed one). */
  cli: string = CLI,
): Promise<Daemon> {
  const child = spawn(
    process.execPath,
    [
      ...nodeArgs,
      cli,
      'serve',
      `--ipfix-port=${ports.ipfix}`,
      `--netflow-port=${ports.netflow}`,
      `--sflow-port=${ports.sflow}`,
      // Off unless a test turns it on (a later --firefly-port wins): parallel daemons never meet on 10514.
      '--firefly-port=0',
      `--api-port=${ports.api}`,
      '--api-bind=127.0.0.1',
      ...extraArgs,
    ],
    { cwd, env: { ...process.env, SCITAGS_REGISTRY_URL: 'off', ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`daemon did not start:\n${out}`)), 20_000);
    const check = (): void => {
      if (out.includes('API: http')) {
        clearTimeout(timer);
        resolve();
      }
    };
    // Logs (the API line among them) go to stderr.
    child.stdout!.on('data', check);
    child.stderr!.on('data', check);
    void exited.then((code) => reject(new Error(`daemon exited with ${code}:\n${out}`)));
  });
  return {
    child,
    apiUrl: `http://127.0.0.1:${ports.api}`,
    cwd,
    output: () => out,
    stop: async (signal = 'SIGTERM') => {
      child.kill(signal);
      // A daemon that does not finish its shutdown in time is killed, so a test cannot hang.
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

/** Sends datagrams (or text, such as fireflies) to 127.0.0.1:port, one after the other. */
export async function sendUdp(port: number, payloads: readonly (Uint8Array | string)[]): Promise<void> {
  const tx = createSocket('udp4');
  for (const p of payloads) await new Promise<void>((r) => tx.send(p, port, '127.0.0.1', () => r()));
  await new Promise<void>((r) => tx.close(() => r()));
}

export async function getJson<T>(url: string): Promise<T> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

/** The value of an unlabelled (or first labelled) sample of `name` in a Prometheus text answer; NaN when absent. */
export function metricValue(text: string, name: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return line === undefined ? NaN : Number(line.slice(line.lastIndexOf(' ') + 1));
}

/** GET <apiUrl>/metrics and read one sample (metricValue). */
export async function scrape(apiUrl: string, name: string): Promise<number> {
  return metricValue(await (await fetch(`${apiUrl}/metrics`)).text(), name);
}

export async function waitFor(cond: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Replays the corpus captures to a daemon over loopback and waits until it decoded every datagram. */
export async function replayCorpus(daemon: Pick<Daemon, 'apiUrl'>, ports: DaemonPorts): Promise<void> {
  let datagrams = 0;
  for (const c of CORPUS_CAPTURES) {
    const cap = readCaptureFile(fixturePath(`${c.name}.pcap`));
    datagrams += cap.datagrams.length;
    // Paced so the kernel socket buffer never overflows on a loaded CI machine.
    await replayDatagrams(cap.datagrams, { host: '127.0.0.1', port: ports[c.port], speed: 0, rate: 5000, onlyDstPort: 0 });
  }
  await waitFor(async () => {
    const ex = await getJson<{ exporters: { datagrams: number }[] }>(`${daemon.apiUrl}/api/v1/exporters`);
    return ex.exporters.reduce((n, e) => n + e.datagrams, 0) === datagrams;
  });
}
