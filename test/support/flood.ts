/**
 * Issue 11's combined probe: one legitimate exporter and a spoofing flood of new sessions at
 * the same time, against the built daemon over loopback, while the API is polled. Shared by
 * the bench (`npm run bench -- flood`, which prints the figures) and the stress test
 * (`npm run test:stress`, which asserts the counts).
 *
 * - The legitimate exporter (127.0.0.1, one session) is test/bench/sendmmsg.c, paced at
 *   `legitRate` datagrams/s of a template and 10 data records, sequence numbers counting up.
 * - The flood is flood-sender.ts in its own process: every datagram from a fresh socket (a
 *   new transport session) on one of `floodAddresses` 127.1.x.y addresses, as fast as it goes.
 * - Meanwhile GET /api/v1/exporters and GET /api/v1/traffic are requested in turn, one at a
 *   time, and each answer's latency kept.
 *
 * Afterwards, once every offered datagram is accounted for at the socket (received or
 * dropped by the kernel) and every received one by the decode stage (decoded or dropped by
 * the queue), the counts are read from /metrics and /api/v1/exporters, the daemon's peak RSS
 * (VmHWM) from /proc, the daemon is stopped and the legitimate exporter's stored records are
 * read from its SQLite file.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compileSender } from '../bench/loopback.js';
import { exporters, legitDatagram, storedRecords } from './budget-probes.js';
import { freePorts, startDaemon } from './daemon.js';
import { repoRoot } from './root.js';

export interface FloodOptions {
  seconds: number;
  /** Datagrams/s of the legitimate exporter (10 records each). */
  legitRate: number;
  /** Source addresses the flood's new sessions come from. */
  floodAddresses: number;
  /** Bounds the flood (default: as many as the sender manages in `seconds`). */
  maxFloodDatagrams?: number;
  /** Extra daemon arguments. */
  args?: string[];
}

export interface Latency {
  requests: number;
  medianMs: number;
  p99Ms: number;
  maxMs: number;
}

export interface FloodResult {
  /** Datagrams sent without a send error (the sender's own count). */
  offered: { legit: number; flood: number; total: number };
  sendErrors: { legit: number; flood: number };
  /** Datagrams the listener received (scitags_datagrams_received_total, all exporters). */
  received: number;
  /** Datagrams that reached the decode stage (the exporters' `datagrams`, rate-limited ones included). */
  decoded: number;
  /** Decoded and not dropped by a rate limit. */
  accepted: number;
  dropped: { kernel: number; queue: number; rateLimit: number; sessionRateLimit: number };
  /** The rate-limit drops as /api/v1/exporters reports them (summed over exporters). */
  apiRateLimited: { datagrams: number; sessions: number };
  legit: { sent: number; datagrams: number; records: number; stored: number; lossPercent: number };
  api: { exporters: Latency; traffic: Latency };
  peakRssBytes: number;
  exitCode: number | null;
  /** True when every offered datagram was accounted for before the wait ran out. */
  settled: boolean;
}

/** The sum of every sample of `name` (all label sets) whose labels contain `filter`. */
export function sumMetric(page: string, name: string, filter = ''): number {
  let sum = 0;
  for (const line of page.split('\n')) {
    if (!(line.startsWith(`${name}{`) || line.startsWith(`${name} `))) continue;
    if (filter !== '' && !line.includes(filter)) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

function latency(ms: readonly number[]): Latency {
  const s = [...ms].sort((a, b) => a - b);
  const at = (q: number): number => (s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)]!);
  return { requests: s.length, medianMs: at(0.5), p99Ms: at(0.99), maxMs: s[s.length - 1] ?? NaN };
}

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    child.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} exited with ${code}: ${err}`))));
  });
}

/** The sendmmsg datagram file: length, sequence offset (IPFIX header: octet 8), records per datagram, payload. */
function writeLegitFile(path: string): void {
  const payload = legitDatagram(0, 10);
  const head = Buffer.alloc(12);
  head.writeUInt32BE(payload.length, 0);
  head.writeUInt32BE(8, 4);
  head.writeUInt32BE(10, 8);
  writeFileSync(path, Buffer.concat([head, payload]));
}

export async function runFlood(o: FloodOptions): Promise<FloodResult> {
  const dir = mkdtempSync(join(tmpdir(), 'scitags-flood-'));
  try {
    const sender = compileSender(dir);
    const legitFile = join(dir, 'legit.dat');
    writeLegitFile(legitFile);
    const sqlite = join(dir, 's.sqlite');
    const ports = await freePorts();
    // The API is polled back to back to time it under the flood: no per-client rate limit (a
    // 429 would end the run early instead of measuring).
    const daemon = await startDaemon(ports, [`--store=sqlite:${sqlite}`, '--api-rate-limit-per-minute=0', ...(o.args ?? [])]);
    let exitCode: number | null = null;
    let stopped = false;
    try {
      const api = daemon.apiUrl;
      let sending = true;
      const legitRun = run(sender, [legitFile, String(ports.ipfix), String(o.legitRate), String(o.seconds)]);
      const floodRun = run(process.execPath, [
        join(repoRoot(), 'dist', 'test', 'support', 'flood-sender.js'),
        String(ports.ipfix),
        String(o.seconds),
        String(o.floodAddresses),
        String(o.maxFloodDatagrams ?? 0),
      ]);
      const both = Promise.all([legitRun, floodRun]).finally(() => (sending = false));
      const times = { exporters: [] as number[], traffic: [] as number[] };
      const poll = async (): Promise<void> => {
        const traffic = `${api}/api/v1/traffic?from=now-1h&groupBy=exporter,class`;
        while (sending) {
          for (const [key, url] of [
            ['exporters', `${api}/api/v1/exporters`],
            ['traffic', traffic],
          ] as const) {
            const t = performance.now();
            const res = await fetch(url);
            await res.arrayBuffer();
            times[key].push(performance.now() - t);
            if (res.status !== 200) throw new Error(`${url}: HTTP ${res.status}`);
          }
        }
      };
      const [[legitOut, floodOut]] = await Promise.all([both, poll()]);
      const legitSent = /sent (\d+) errors (\d+)/.exec(legitOut);
      const flood = JSON.parse(floodOut) as { sent: number; errors: number };
      const offered = { legit: Number(legitSent?.[1] ?? NaN), flood: flood.sent, total: 0 };
      offered.total = offered.legit + offered.flood;

      // Every offered datagram accounted for: received or dropped by the kernel at the socket,
      // and every received one decoded or dropped by the queue (the snapshot behind the
      // exporters API is published every second).
      let page = '';
      let decoded = 0;
      let settled = false;
      const end = Date.now() + 60_000;
      while (Date.now() < end) {
        page = await (await fetch(`${api}/metrics`)).text();
        const received = sumMetric(page, 'scitags_datagrams_received_total');
        const kernel = sumMetric(page, 'scitags_kernel_udp_drops_total', 'listener="ipfix"');
        const queue = sumMetric(page, 'scitags_queue_drops_total');
        decoded = (await exporters(api)).reduce((n, e) => n + e.datagrams, 0);
        if (received + kernel >= offered.total && decoded + queue >= received) {
          settled = true;
          break;
        }
        await new Promise((r) => setTimeout(r, 300));
      }
      await new Promise((r) => setTimeout(r, 1200));
      page = await (await fetch(`${api}/metrics`)).text();
      const ex = await exporters(api);
      decoded = ex.reduce((n, e) => n + e.datagrams, 0);
      const legit = ex.find((e) => e.address === '127.0.0.1');
      const dropped = {
        kernel: sumMetric(page, 'scitags_kernel_udp_drops_total', 'listener="ipfix"'),
        queue: sumMetric(page, 'scitags_queue_drops_total'),
        rateLimit: sumMetric(page, 'scitags_datagrams_dropped_total', 'reason="rate-limit"'),
        sessionRateLimit: sumMetric(page, 'scitags_datagrams_dropped_total', 'reason="session-rate-limit"'),
      };
      const status = readFileSync(`/proc/${daemon.child.pid}/status`, 'utf8');
      const peakRssBytes = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? NaN) * 1024;
      exitCode = await daemon.stop();
      stopped = true;
      const stored = storedRecords(sqlite, '127.0.0.1');
      return {
        offered,
        sendErrors: { legit: Number(legitSent?.[2] ?? NaN), flood: flood.errors },
        received: sumMetric(page, 'scitags_datagrams_received_total'),
        decoded,
        accepted: decoded - dropped.rateLimit - dropped.sessionRateLimit,
        dropped,
        apiRateLimited: {
          datagrams: ex.reduce((n, e) => n + e.rateLimited.datagrams, 0),
          sessions: ex.reduce((n, e) => n + e.rateLimited.sessions, 0),
        },
        legit: {
          sent: offered.legit,
          datagrams: legit?.datagrams ?? 0,
          records: legit?.records ?? 0,
          stored,
          lossPercent: offered.legit > 0 ? (100 * (offered.legit * 10 - stored)) / (offered.legit * 10) : NaN,
        },
        api: { exporters: latency(times.exporters), traffic: latency(times.traffic) },
        peakRssBytes,
        exitCode,
        settled,
      };
    } finally {
      if (!stopped) await daemon.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
