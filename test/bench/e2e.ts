/**
 * End-to-end throughput (issue 5, "Speed"): datagrams blasted over loopback into a real
 * `scitags-collector serve` (the built CLI, its own process, SQLite store in a temp dir),
 * counted back from the daemon's own API.
 *
 * - Sender: a worker thread (so it runs on the other core, not inside the daemon) with a
 *   few UDP sockets, each its own source port (= its own IPFIX session); a tight loop of
 *   socket.send() without callbacks (Node then tries a synchronous sendto first), yielding
 *   only when libuv's send queue builds up. Unpaced ("blast") or paced at a fixed rate.
 * - Payloads: the pmacct IPFIX capture (every socket sends all 9 datagrams first — templates
 *   and options — then repeats the 8 data-only datagrams) and, on a fresh daemon, the
 *   pmacct sFlow capture (235 datagrams, about 6 flow samples each, repeated).
 * - Counted: datagrams sent (sender), datagrams / records decoded (GET /api/v1/exporters,
 *   deltas around each run), kernel drops (scitags_kernel_udp_drops_total, from
 *   /proc/net/udp) and queue drops (scitags_queue_drops_total). records/s accepted =
 *   records decoded / (first send .. the daemon has caught up: counters stop moving).
 * - Daemon CPU (utime+stime from /proc/PID/stat) per run gives records per daemon
 *   CPU-second, which is steadier than wall-clock on this noisy 2-core machine.
 * - Paced runs step the datagram rate up to find the highest with zero loss.
 *
 * Set SCITAGS_BENCH_CPU_PROF=DIR to run the daemon under `node --cpu-prof` and print its
 * hottest functions (self time) after the runs.
 *
 * Runnable alone after `npm run build`:
 *   node -e "import('./dist/test/bench/e2e.js').then(m => m.benchE2e()).then(r => console.log(JSON.stringify(r, null, 1)))"
 */
import type { ChildProcess } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { readCaptureFile } from '../../collectors/pcap.js';
import { freePorts, getJson, startDaemon, type DaemonPorts } from '../support/daemon.js';
import { median, repoRoot } from './common.js';

// ---------------------------------------------------------------------------------------
// Sender (worker thread)
// ---------------------------------------------------------------------------------------

interface SenderJob {
  e2eSender: true;
  port: number;
  /** Sent once per socket first (templates), then `repeat` cycled. */
  preamble: Uint8Array[];
  repeat: Uint8Array[];
  sockets: number;
  /** Datagrams to send in total (preamble included). */
  count: number;
  /** Datagrams per second; 0 = as fast as possible. */
  rate: number;
}

interface SenderResult {
  sent: number;
  errors: number;
  /** performance.timeOrigin-based ms of the first and last send. */
  firstSendMs: number;
  lastSendMs: number;
  cpuMs: number;
}

const SEND_QUEUE_HIGH = 256;

async function runSender(job: SenderJob): Promise<SenderResult> {
  const sockets: Socket[] = [];
  let errors = 0;
  for (let i = 0; i < job.sockets; i++) {
    const s = createSocket({ type: 'udp4', sendBufferSize: 4 * 1024 * 1024 });
    await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', () => resolve()));
    s.connect(job.port, '127.0.0.1');
    await new Promise<void>((resolve) => s.once('connect', () => resolve()));
    s.on('error', () => errors++);
    sockets.push(s);
  }
  const payloads = job.repeat.map((p) => Buffer.from(p.buffer, p.byteOffset, p.byteLength));
  const preamble = job.preamble.map((p) => Buffer.from(p.buffer, p.byteOffset, p.byteLength));
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let sent = 0;
  for (const s of sockets) for (const p of preamble) {
    s.send(p);
    sent++;
  }
  const yieldNow = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
  const perSocket = new Array<number>(sockets.length).fill(0);
  let k = 0;
  while (sent < job.count) {
    // Budget for this slice: as many as due (paced) or a fixed chunk (blast).
    let budget: number;
    if (job.rate > 0) {
      const due = Math.floor(((performance.now() - t0) / 1000) * job.rate) + preamble.length * sockets.length;
      // Catch-up after a late timer is capped at ~2 ms worth per slice (then a yield), so a
      // descheduled sender does not fire a burst no exporter would.
      budget = Math.min(Math.min(due, job.count) - sent, Math.max(32, Math.ceil(job.rate / 500)));
      if (budget <= 0) {
        // Sleep in ~1 ms steps; short sleeps keep the pacing smooth.
        await new Promise((resolve) => setTimeout(resolve, 1));
        continue;
      }
    } else {
      budget = Math.min(2048, job.count - sent);
    }
    for (let i = 0; i < budget; i++) {
      const si = k++ % sockets.length;
      const s = sockets[si]!;
      const n = perSocket[si]!;
      perSocket[si] = n + 1;
      s.send(payloads[n % payloads.length]!);
      sent++;
    }
    let backlog = 0;
    for (const s of sockets) backlog += s.getSendQueueCount();
    if (backlog > SEND_QUEUE_HIGH || job.rate === 0) await yieldNow();
  }
  // Let queued sends leave before closing.
  for (;;) {
    let backlog = 0;
    for (const s of sockets) backlog += s.getSendQueueCount();
    if (backlog === 0) break;
    await yieldNow();
  }
  const t1 = performance.now();
  const cpu = process.cpuUsage(cpu0);
  await Promise.all(sockets.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  return { sent, errors, firstSendMs: performance.timeOrigin + t0, lastSendMs: performance.timeOrigin + t1, cpuMs: (cpu.user + cpu.system) / 1000 };
}

if (!isMainThread && (workerData as Partial<SenderJob> | null)?.e2eSender) {
  void runSender(workerData as SenderJob).then((r) => parentPort!.postMessage(r));
}

function send(job: Omit<SenderJob, 'e2eSender'>): Promise<SenderResult> {
  return new Promise((resolve, reject) => {
    const w = new Worker(new URL(import.meta.url), { workerData: { e2eSender: true, ...job } });
    w.once('message', (r: SenderResult) => {
      resolve(r);
      void w.terminate();
    });
    w.once('error', reject);
  });
}

// ---------------------------------------------------------------------------------------
// Daemon
// ---------------------------------------------------------------------------------------

interface Serve {
  child: ChildProcess;
  api: string;
  ports: DaemonPorts;
  dir: string;
  stop(): Promise<void>;
}

/** Starts `serve` on free ports with a throw-away store, under `--cpu-prof` when asked. */
async function startServe(cpuProfDir: string | undefined): Promise<Serve> {
  const dir = mkdtempSync(join(tmpdir(), 'scitags-e2e-'));
  const ports = await freePorts();
  const nodeArgs = cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${cpuProfDir}`] : [];
  const daemon = await startDaemon(ports, [`--store=sqlite:${join(dir, 'bench.sqlite')}`], { SCITAGS_LOG_LEVEL: 'error' }, dir, nodeArgs);
  return {
    child: daemon.child,
    api: daemon.apiUrl,
    ports,
    dir,
    stop: async () => {
      await daemon.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

interface Counters {
  datagrams: number;
  records: number;
  kernelDrops: number;
  queueDrops: number;
  /** Daemon CPU (user + system) in ms, from /proc. */
  cpuMs: number;
}

interface ExportersAnswer {
  exporters: { datagrams: number; records: number }[];
}

function procCpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[11] = utime, fields[12] = stime (clock ticks; 100 Hz on Linux)
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
  } catch {
    return NaN;
  }
}

function sumMetric(text: string, name: string): number {
  let total = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(name) && (line[name.length] === '{' || line[name.length] === ' ')) total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}

async function counters(s: Serve): Promise<Counters> {
  const ex = await getJson<ExportersAnswer>(`${s.api}/api/v1/exporters`);
  const metrics = await (await fetch(`${s.api}/metrics`)).text();
  let datagrams = 0;
  let records = 0;
  for (const e of ex.exporters) {
    datagrams += e.datagrams;
    records += e.records;
  }
  return {
    datagrams,
    records,
    kernelDrops: sumMetric(metrics, 'scitags_kernel_udp_drops_total'),
    queueDrops: sumMetric(metrics, 'scitags_queue_drops_total'),
    cpuMs: procCpuMs(s.child.pid!),
  };
}

/** Polls until the decoded count stops moving; returns the counters and when it last moved. */
async function caughtUp(s: Serve, sentTotal: number, base: Counters): Promise<{ c: Counters; atMs: number }> {
  let last = await counters(s);
  let lastMoveMs = Date.now();
  let still = 0;
  for (;;) {
    await new Promise((r) => setTimeout(r, 40));
    const c = await counters(s);
    const accounted = c.datagrams - base.datagrams + (c.kernelDrops - base.kernelDrops) + (c.queueDrops - base.queueDrops);
    if (c.datagrams !== last.datagrams) {
      lastMoveMs = Date.now();
      still = 0;
    } else if (++still >= 8 || (accounted >= sentTotal && still >= 2)) {
      return { c, atMs: lastMoveMs };
    }
    last = c;
  }
}

// ---------------------------------------------------------------------------------------
// Runs
// ---------------------------------------------------------------------------------------

export interface E2eRun {
  /** Requested datagrams/s (0 = unpaced). */
  rate: number;
  sent: number;
  decodedDatagrams: number;
  decodedRecords: number;
  recordsPerSec: number;
  /** Datagrams/s the sender achieved. */
  sendRate: number;
  loss: number;
  kernelDrops: number;
  queueDrops: number;
  /** Records per CPU-second of the daemon. */
  recordsPerDaemonCpuSec: number;
  /** Share of one core the daemon used from first send to caught up. */
  daemonCpuShare: number;
  sendErrors: number;
}

interface Payload {
  name: string;
  preamble: Uint8Array[];
  repeat: Uint8Array[];
  port: (p: DaemonPorts) => number;
}

async function oneRun(s: Serve, p: Payload, count: number, rate: number, sockets: number): Promise<E2eRun> {
  const base = await counters(s);
  const r = await send({ port: p.port(s.ports), preamble: p.preamble, repeat: p.repeat, sockets, count, rate });
  const { c, atMs } = await caughtUp(s, r.sent, base);
  const decodedDatagrams = c.datagrams - base.datagrams;
  const decodedRecords = c.records - base.records;
  const elapsed = (Math.max(atMs, r.lastSendMs) - r.firstSendMs) / 1000;
  const daemonCpu = (c.cpuMs - base.cpuMs) / 1000;
  return {
    rate,
    sent: r.sent,
    decodedDatagrams,
    decodedRecords,
    recordsPerSec: decodedRecords / elapsed,
    sendRate: r.sent / ((r.lastSendMs - r.firstSendMs) / 1000),
    loss: r.sent - decodedDatagrams,
    kernelDrops: c.kernelDrops - base.kernelDrops,
    queueDrops: c.queueDrops - base.queueDrops,
    recordsPerDaemonCpuSec: decodedRecords / daemonCpu,
    daemonCpuShare: daemonCpu / elapsed,
    sendErrors: r.errors,
  };
}


export interface E2ePayloadResult {
  payload: string;
  recordsPerDatagram: number;
  blast: E2eRun[];
  /** Medians of the unpaced runs. */
  blastMedian: { sent: number; decoded: number; recordsPerSec: number; sendRate: number; lossPct: number; kernelDrops: number; queueDrops: number; recordsPerDaemonCpuSec: number };
  paced: E2eRun[];
  /** Highest paced rate (records/s decoded) with zero loss, and the first rate that lost. */
  zeroLossRecordsPerSec: number;
  firstLossyRate: number | undefined;
}

export interface E2eOptions {
  /** Unpaced runs per payload (default 3) and seconds of sending per run (default 3). */
  runs?: number;
  blastSeconds?: number;
  /** Seconds per paced step (default 3). */
  stepSeconds?: number;
  sockets?: number;
  /** Paced steps in records/s (converted to datagrams/s per payload). */
  steps?: number[];
  only?: ('ipfix' | 'sflow')[];
}

async function benchPayload(p: Payload, opts: Required<E2eOptions>, cpuProfDir: string | undefined): Promise<E2ePayloadResult> {
  const s = await startServe(cpuProfDir);
  try {
    // Warm-up: a short paced run (JIT, templates, SQLite first write paths).
    const warm = await oneRun(s, p, 5000, 20_000, opts.sockets);
    const recordsPerDatagram = warm.decodedRecords / Math.max(1, warm.decodedDatagrams);
    const blast: E2eRun[] = [];
    // Blast size: aim at about blastSeconds of sending at ~150k datagrams/s.
    const blastCount = Math.round(opts.blastSeconds * 150_000);
    for (let i = 0; i < opts.runs; i++) blast.push(await oneRun(s, p, blastCount, 0, opts.sockets));
    const paced: E2eRun[] = [];
    let zeroLossRecordsPerSec = 0;
    let firstLossyRate: number | undefined;
    for (const recordsPerSec of opts.steps) {
      const rate = Math.round(recordsPerSec / recordsPerDatagram);
      const run = await oneRun(s, p, Math.round(rate * opts.stepSeconds), rate, opts.sockets);
      paced.push(run);
      if (run.loss === 0) zeroLossRecordsPerSec = Math.max(zeroLossRecordsPerSec, run.recordsPerSec);
      else {
        firstLossyRate = recordsPerSec;
        // One retry at the same rate: a single noisy neighbour burst should not end the search.
        const again = await oneRun(s, p, Math.round(rate * opts.stepSeconds), rate, opts.sockets);
        paced.push(again);
        if (again.loss !== 0) break;
        zeroLossRecordsPerSec = Math.max(zeroLossRecordsPerSec, again.recordsPerSec);
        firstLossyRate = undefined;
      }
    }
    const m = (f: (r: E2eRun) => number): number => median(blast.map(f));
    return {
      payload: p.name,
      recordsPerDatagram,
      blast,
      blastMedian: {
        sent: m((r) => r.sent),
        decoded: m((r) => r.decodedDatagrams),
        recordsPerSec: m((r) => r.recordsPerSec),
        sendRate: m((r) => r.sendRate),
        lossPct: m((r) => (100 * r.loss) / r.sent),
        kernelDrops: m((r) => r.kernelDrops),
        queueDrops: m((r) => r.queueDrops),
        recordsPerDaemonCpuSec: m((r) => r.recordsPerDaemonCpuSec),
      },
      paced,
      zeroLossRecordsPerSec,
      firstLossyRate,
    };
  } finally {
    await s.stop();
  }
}

function payloads(): Payload[] {
  const fixtures = join(repoRoot(), 'test', 'fixtures');
  const ipfix = readCaptureFile(join(fixtures, 'ipfix_pmacct_nfprobe_flowlabel.pcap')).datagrams.map((d) => d.payload);
  const sflow = readCaptureFile(join(fixtures, 'sflow_pmacct_sfprobe_rate1.pcap')).datagrams.map((d) => d.payload);
  return [
    // Datagram 1 carries the templates (and options data); 2..9 are data sets only.
    { name: 'ipfix', preamble: ipfix, repeat: ipfix.slice(1), port: (p) => p.ipfix },
    { name: 'sflow', preamble: [], repeat: sflow, port: (p) => p.sflow },
  ];
}

/** Top functions by self time in the .cpuprofile files of a directory. */
export function summarizeCpuProfiles(dir: string, top = 15): { fn: string; selfPct: number }[] {
  interface Node {
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number };
  }
  const self = new Map<string, number>();
  let total = 0;
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.cpuprofile'))) {
    const prof = JSON.parse(readFileSync(join(dir, f), 'utf8')) as { nodes: Node[]; samples: number[]; timeDeltas: number[] };
    const byId = new Map(prof.nodes.map((n) => [n.id, n]));
    prof.samples.forEach((id, i) => {
      const n = byId.get(id)!;
      const dt = prof.timeDeltas[i] ?? 0;
      const where = n.callFrame.url ? `${n.callFrame.url.replace(/^.*\/(dist|node_modules)\//, '$1/')}:${n.callFrame.lineNumber + 1}` : '';
      const key = `${n.callFrame.functionName || '(anonymous)'} ${where}`.trim();
      self.set(key, (self.get(key) ?? 0) + dt);
      total += dt;
    });
  }
  return [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([fn, t]) => ({ fn, selfPct: Math.round((1000 * t) / total) / 10 }));
}

export interface E2eResult {
  results: E2ePayloadResult[];
  cpuProfile?: { fn: string; selfPct: number }[];
}

export async function benchE2e(options: E2eOptions = {}): Promise<E2eResult> {
  const opts: Required<E2eOptions> = {
    runs: options.runs ?? 3,
    blastSeconds: options.blastSeconds ?? 3,
    stepSeconds: options.stepSeconds ?? 3,
    sockets: options.sockets ?? 4,
    steps: options.steps ?? [50_000, 100_000, 150_000, 200_000, 250_000, 300_000, 350_000, 400_000],
    only: options.only ?? ['ipfix', 'sflow'],
  };
  const cpuProfDir = process.env.SCITAGS_BENCH_CPU_PROF;
  const results: E2ePayloadResult[] = [];
  for (const p of payloads()) {
    if (!opts.only.includes(p.name as 'ipfix' | 'sflow')) continue;
    results.push(await benchPayload(p, opts, cpuProfDir ? join(cpuProfDir, p.name) : undefined));
  }
  const out: E2eResult = { results };
  if (cpuProfDir) out.cpuProfile = summarizeCpuProfiles(join(cpuProfDir, 'ipfix'));
  return out;
}
