/**
 * End to end over loopback (`npm run bench -- e2e`): a real `scitags-collector serve` (the
 * built CLI, its own process, SQLite store in a temp dir) fed pmacct's captures by the paced
 * C sendmmsg sender of `npm run bench:peers` (test/bench/sendmmsg.c, machinery in
 * loopback.ts) at fixed offered rates, for each decode worker count.
 *
 * - Captures: test/fixtures/ipfix_pmacct_nfprobe_flowlabel.pcap (IPFIX; template datagram
 *   first, re-sent once per cycle) and test/fixtures/sflow_pmacct_sfprobe_rate1.pcap (sFlow),
 *   sequence numbers rewritten by the sender so every cycle continues the stream. Records
 *   are counted from the captures independently of our decoders (IPFIX data records, sFlow
 *   flow samples); offered datagrams/s = offered records/s ÷ records per datagram.
 * - Pinning: the sender on CPU 0 (`taskset -c 0`); the daemon on CPU 1 with `--workers 1`,
 *   on every CPU (`taskset -c 0-N`, so sharing CPU 0 with the sender) with more workers.
 *   Receive buffer 4 MiB (net.core.rmem_max raised with sudo sysctl when needed and allowed).
 * - Each run: a fresh daemon; a 0.5 s warm-up at a low rate (JIT, templates, first SQLite
 *   writes), drained; then the measured send (default 4 s). After the daemon has drained
 *   (socket queue empty, CPU idle; polled from /proc only), read:
 *     accepted records/s  records decoded (GET /api/v1/exporters, delta over the measured
 *                         send) ÷ the send's duration;
 *     loss %              1 - accepted ÷ records sent (send errors count as sent and lost);
 *     kernel drops        the drops column of /proc/net/udp for the port (delta);
 *     CPU s per 1M        utime + stime of the daemon (all its threads) from the first
 *                         measured datagram to drained, per million records accepted;
 *     peak RSS            VmHWM from /proc/PID/status (the whole life, warm-up included);
 *     queue drops         scitags_queue_drops_total (delta; shown only when not all zero).
 * - Per worker count: the highest offered rate with loss < 0.1 % (0 = none), per run.
 *
 * Set SCITAGS_BENCH_CPU_PROF=DIR to run the daemon under `node --cpu-prof` and list its
 * hottest functions (self time) in the notes. SCITAGS_NATIVE_RECV is passed on to the
 * daemon (off = node:dgram receive); no other SCITAGS_* variable is.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { CLI, freeUdpPort } from '../support/daemon.js';
import { type BenchOutput, type BenchRow, median } from './common.js';
import {
  type Capture,
  compileSender,
  drain,
  ensureRmemMax,
  installCleanup,
  loadCapture,
  type OursRunning,
  peakRssMB,
  type Proto,
  receiveBuffer,
  recordsIn,
  removeTempDir,
  runSender,
  sleep,
  startOurs,
  stopChild,
  tempDir,
  treeCpu,
  udpSocket,
  which,
  writeDatagramFile,
} from './loopback.js';

export interface E2eOptions {
  /** Runs per (protocol, workers, rate) (default 3; env SCITAGS_BENCH_RUNS in run.ts). */
  runs?: number;
  /** Seconds of measured sending per run (default 4). */
  seconds?: number;
  /** Offered records/s (default 250k, 500k, 1M). */
  rates?: number[];
  /** `--workers` values (default 1 and 2). */
  workers?: number[];
  /** Captures to send (default ipfix, sflow). */
  protocols?: Proto[];
  /** Datagrams per sendmmsg() call (default 16). */
  batch?: number;
  /**
   * Exporters the sender plays (sockets bound to 127.0.1.1..N; default 8), so the daemon's
   * workers really shard: with 2 workers 4 exporters land on each.
   */
  sources?: number;
  /** Warm-up seconds before each measured send (default 0.5; 0 = none). */
  warmupSeconds?: number;
  /** Loss below which a rate counts as sustained (default 0.1 %). */
  lossThresholdPct?: number;
  /** Progress lines (default: stderr). */
  log?: (line: string) => void;
}

export interface E2eRun {
  proto: Proto;
  workers: number;
  run: number;
  offeredRecordsPerSec: number;
  offeredDatagramsPerSec: number;
  sent: number;
  sendErrors: number;
  sendSeconds: number;
  recordsSent: number;
  recordsAccepted: number;
  acceptedRecordsPerSec: number;
  lossPct: number;
  kernelDrops: number;
  queueDrops: number;
  cpuS: number;
  /** Share of the CPU that came after the last send (the drain). */
  drainCpuShare: number;
  cpuSPerMillion: number;
  peakRssMB: number;
  receivePath: string;
  rcvbuf: number | undefined;
}

/** A run counts as at its offered rate when the sender reached this share of it. */
const ACHIEVED = 0.97;
const achieved = (r: E2eRun): boolean => r.sent / r.sendSeconds >= ACHIEVED * r.offeredDatagramsPerSec;

const LABEL: Record<Proto, string> = { ipfix: 'IPFIX', netflow9: 'NetFlow v9', sflow: 'sFlow' };

function sumMetric(text: string, name: string): number {
  let total = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(name) && (line[name.length] === '{' || line[name.length] === ' '))
      total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}

/** The receive path the daemon reports for the port (scitags_receive_path_info), or '?'. */
function receivePathOf(metrics: string, port: number): string {
  for (const line of metrics.split('\n')) {
    if (line.startsWith('scitags_receive_path_info{') && line.includes(`port="${port}"`)) return line.match(/path="([^"]*)"/)?.[1] ?? '?';
  }
  return '?';
}

async function metricsText(r: OursRunning): Promise<string> {
  try {
    const res = await fetch(`${r.api}/metrics`);
    return res.ok ? await res.text() : '';
  } catch {
    return '';
  }
}

/** `k`/`M` shorthand for rates: 250000 -> 250k, 1000000 -> 1M. */
export function shortRate(n: number): string {
  if (n >= 1e6 && n % 1e5 === 0) return `${n / 1e6}M`;
  if (n >= 1e3 && n % 100 === 0) return `${n / 1e3}k`;
  return String(n);
}

function daemonCpus(workers: number): string {
  return workers <= 1 ? '1' : `0-${Math.max(1, cpus().length - 1)}`;
}

interface Ctx {
  sender: string;
  files: Map<Proto, { cap: Capture; file: string }>;
  o: Required<Omit<E2eOptions, 'log'>>;
  cpuProfDir: string | undefined;
}

async function oneRun(ctx: Ctx, proto: Proto, workers: number, offered: number, run: number): Promise<E2eRun> {
  const { cap, file } = ctx.files.get(proto)!;
  const o = ctx.o;
  const rate = Math.max(1, Math.round(offered / (cap.recordsPerCycle / cap.dgs.length)));
  const dir = tempDir('scitags-e2e-');
  const port = await freeUdpPort();
  const nodeArgs = ctx.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${join(ctx.cpuProfDir, `${proto}-w${workers}`)}`] : [];
  let r: OursRunning | undefined;
  try {
    r = await startOurs(proto, port, dir, ['--workers', String(workers)], {
      cpuList: daemonCpus(workers),
      passEnv: ['SCITAGS_NATIVE_RECV'],
      nodeArgs,
    });
    await sleep(300);
    if (o.warmupSeconds > 0) {
      await runSender(ctx.sender, file, port, {
        rate: Math.min(rate, 20_000),
        seconds: o.warmupSeconds,
        batch: o.batch,
        sources: o.sources,
      });
      await drain(r);
    }
    const before = await r.counted();
    const metrics0 = await metricsText(r);
    const drops0 = udpSocket(port).drops;
    const cpu0 = treeCpu(r.pid);
    const s = await runSender(ctx.sender, file, port, { rate, seconds: o.seconds, batch: o.batch, sources: o.sources });
    const cpuSent = treeCpu(r.pid);
    await drain(r);
    const cpu1 = treeCpu(r.pid);
    const drops1 = udpSocket(port).drops;
    const rcvbuf = receiveBuffer(port);
    const peak = peakRssMB(r.pid);
    const after = await r.counted();
    const metrics1 = await metricsText(r);
    const running = r;
    r = undefined;
    await stopChild(running.child, running.exited, 'SIGTERM');
    // Every source cycles through the capture from its start.
    const recordsSent = s.perSource.reduce((n, k) => n + recordsIn(cap, k), 0);
    const accepted = after.records - before.records;
    const cpuS = cpu1.total - cpu0.total;
    return {
      proto,
      workers,
      run,
      offeredRecordsPerSec: offered,
      offeredDatagramsPerSec: rate,
      sent: s.sent,
      sendErrors: s.errors,
      sendSeconds: s.elapsed,
      recordsSent,
      recordsAccepted: accepted,
      acceptedRecordsPerSec: accepted / s.elapsed,
      lossPct: 100 * (1 - accepted / recordsSent),
      kernelDrops: drops1 - drops0,
      queueDrops: sumMetric(metrics1, 'scitags_queue_drops_total') - sumMetric(metrics0, 'scitags_queue_drops_total'),
      cpuS,
      drainCpuShare: cpuS > 0 ? (cpu1.total - cpuSent.total) / cpuS : 0,
      cpuSPerMillion: accepted > 0 ? cpuS / (accepted / 1e6) : NaN,
      peakRssMB: peak,
      receivePath: receivePathOf(metrics1, port),
      rcvbuf,
    };
  } finally {
    // Only set when something failed before the daemon was stopped.
    if (r) {
      if (process.env.SCITAGS_BENCH_DEBUG) console.error(r.output());
      await stopChild(r.child, r.exited, 'SIGKILL');
    }
    removeTempDir(dir);
  }
}

/** Top functions by self time in the .cpuprofile files under a directory (recursively). */
export function summarizeCpuProfiles(dir: string, top = 15): { fn: string; selfPct: number }[] {
  interface Node {
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number };
  }
  const self = new Map<string, number>();
  let total = 0;
  const files = (d: string): string[] =>
    readdirSync(d, { withFileTypes: true }).flatMap((e) =>
      e.isDirectory() ? files(join(d, e.name)) : e.name.endsWith('.cpuprofile') ? [join(d, e.name)] : [],
    );
  for (const f of files(dir)) {
    const prof = JSON.parse(readFileSync(f, 'utf8')) as { nodes: Node[]; samples: number[]; timeDeltas: number[] };
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

export interface E2eResult extends BenchOutput {
  runs: E2eRun[];
}

export async function benchE2e(options: E2eOptions = {}): Promise<E2eResult> {
  const o: Required<Omit<E2eOptions, 'log'>> = {
    runs: options.runs ?? 3,
    seconds: options.seconds ?? 4,
    rates: options.rates ?? [250_000, 500_000, 1_000_000],
    workers: options.workers ?? [1, 2],
    sources: options.sources ?? 8,
    protocols: options.protocols ?? ['ipfix', 'sflow'],
    batch: options.batch ?? 16,
    warmupSeconds: options.warmupSeconds ?? 0.5,
    lossThresholdPct: options.lossThresholdPct ?? 0.1,
  };
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  for (const bin of ['taskset', 'cc']) if (!which(bin)) throw new Error(`e2e needs ${bin} (taskset: util-linux; cc: gcc)`);
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build first`);
  installCleanup();
  const rmem = ensureRmemMax();
  const work = tempDir('scitags-e2e-work-');
  try {
    const sender = compileSender(work);
    const files = new Map<Proto, { cap: Capture; file: string }>();
    for (const proto of o.protocols) {
      const cap = loadCapture(proto);
      const file = join(work, `${proto}.dg`);
      writeDatagramFile(cap, file);
      files.set(proto, { cap, file });
    }
    const cpuProfDir = process.env.SCITAGS_BENCH_CPU_PROF || undefined;
    const ctx: Ctx = { sender, files, o, cpuProfDir };

    // Runs outermost, so a noisy minute on the shared machine hits every configuration once
    // rather than all runs of one.
    const runs: E2eRun[] = [];
    for (let run = 1; run <= o.runs; run++) {
      for (const proto of o.protocols) {
        for (const workers of o.workers) {
          for (const rate of o.rates) {
            const r = await oneRun(ctx, proto, workers, rate, run);
            runs.push(r);
            log(
              `  e2e run ${run}/${o.runs} ${proto} workers=${workers} offered ${shortRate(rate)} rec/s (${Math.round(r.offeredDatagramsPerSec).toLocaleString('en-US')} dg/s): ` +
                `accepted ${Math.round(r.acceptedRecordsPerSec).toLocaleString('en-US')} rec/s, loss ${r.lossPct.toFixed(2)} %, kernel drops ${r.kernelDrops}, ` +
                `queue drops ${r.queueDrops}, CPU ${r.cpuS.toFixed(2)} s (${r.cpuSPerMillion.toFixed(2)} s/M), peak RSS ${r.peakRssMB.toFixed(0)} MB`,
            );
          }
        }
      }
    }
    return { runs, ...report(runs, o, files, rmem, cpuProfDir) };
  } finally {
    removeTempDir(work);
  }
}

function report(
  runs: E2eRun[],
  o: Required<Omit<E2eOptions, 'log'>>,
  files: Map<Proto, { cap: Capture; file: string }>,
  rmem: string,
  cpuProfDir: string | undefined,
): BenchOutput {
  const rows: BenchRow[] = [];
  const notes: string[] = [];
  for (const proto of o.protocols) {
    const bench = `e2e: ${LABEL[proto]}`;
    for (const workers of o.workers) {
      const mine = runs.filter((r) => r.proto === proto && r.workers === workers);
      const anyQueueDrops = mine.some((r) => r.queueDrops !== 0);
      for (const rate of o.rates) {
        const rs = mine.filter((r) => r.offeredRecordsPerSec === rate);
        const config = `workers=${workers}, offered ${shortRate(rate)} records/s`;
        const row = (metric: string, unit: string, f: (r: E2eRun) => number): void => {
          rows.push({ bench, config, metric, unit, samples: rs.map(f) });
        };
        row('sent records/s (achieved offer)', 'records/s', (r) => r.recordsSent / r.sendSeconds);
        row('accepted records/s', 'records/s', (r) => r.acceptedRecordsPerSec);
        row('loss', '%', (r) => r.lossPct);
        row('kernel drops', 'datagrams', (r) => r.kernelDrops);
        if (anyQueueDrops) row('queue drops', 'datagrams', (r) => r.queueDrops);
        row('daemon CPU per 1M records', 'CPU-s', (r) => r.cpuSPerMillion);
        row('peak RSS (VmHWM)', 'MB', (r) => r.peakRssMB);
      }
      // Per run: the highest rate the sender kept up with and whose loss stayed under the threshold.
      const best: number[] = [];
      for (let run = 1; run <= o.runs; run++) {
        const ok = mine.filter((r) => r.run === run && r.lossPct < o.lossThresholdPct && achieved(r)).map((r) => r.offeredRecordsPerSec);
        best.push(ok.length > 0 ? Math.max(...ok) : 0);
      }
      rows.push({
        bench,
        config: `workers=${workers}`,
        metric: `highest offered rate with loss < ${o.lossThresholdPct} %`,
        unit: 'records/s',
        samples: best,
      });
    }
  }

  const rateList = o.rates.map(shortRate).join(', ');
  notes.push(
    `e2e: offered ${rateList} records/s for ${o.seconds} s per run (after a ${o.warmupSeconds} s warm-up at ≤ 20k datagrams/s), ${o.runs} run(s) each, a fresh daemon per run; ` +
      `paced C sendmmsg sender (batches of ${o.batch}) pinned to CPU 0; daemon pinned to CPU 1 with --workers 1, to CPUs ${daemonCpus(2)} with more (sharing CPU 0 with the sender); ` +
      `the sender plays ${o.sources} exporters (127.0.1.1..${o.sources}), sharded over the workers; ${rmem}.`,
  );
  notes.push(
    `e2e: "highest offered rate" is the highest rate tried (${rateList}) that the sender achieved (≥ ${100 * ACHIEVED} % of the offered datagrams/s) with loss < ${o.lossThresholdPct} % in that run, ` +
      `0 if none; equal to the top rate means no loss seen up to there. Loss is counted against what was sent ("sent records/s"), not against the offer.`,
  );
  for (const [proto, { cap }] of files) {
    notes.push(
      `e2e: ${LABEL[proto]}: ${cap.file}: ${cap.dgs.length} datagrams per cycle, ${cap.recordsPerCycle} ${proto === 'sflow' ? 'flow samples' : 'data records'} ` +
        `(+${cap.otherPerCycle} ${proto === 'sflow' ? 'counter samples' : 'options records'}), ${(cap.recordsPerCycle / cap.dgs.length).toFixed(3)} records per datagram` +
        `${cap.dgs.some((d) => d.hasTemplates) ? ' (template datagrams re-sent once per cycle)' : ''}.`,
    );
  }
  for (const workers of o.workers) {
    const mine = runs.filter((r) => r.workers === workers);
    const paths = [...new Set(mine.map((r) => r.receivePath))].join('/');
    const rb = [...new Set(mine.map((r) => r.rcvbuf))].map((b) => (b === undefined ? '?' : String(b))).join('/');
    const drain = median(mine.map((r) => r.drainCpuShare));
    notes.push(
      `e2e: workers=${workers}: receive path ${paths}${process.env.SCITAGS_NATIVE_RECV ? ` (SCITAGS_NATIVE_RECV=${process.env.SCITAGS_NATIVE_RECV})` : ''}; socket rb ${rb} bytes (the kernel doubles SO_RCVBUF); ` +
        `median ${(100 * drain).toFixed(0)} % of the daemon CPU came after the last send (the drain).`,
    );
  }
  const behind = runs.filter((r) => !achieved(r) || r.sendErrors > 0);
  for (const r of behind) {
    notes.push(
      `e2e: sender fell short: ${r.proto} workers=${r.workers} ${shortRate(r.offeredRecordsPerSec)} run ${r.run}: ${Math.round(r.sent / r.sendSeconds).toLocaleString('en-US')} of ${r.offeredDatagramsPerSec.toLocaleString('en-US')} datagrams/s, ${r.sendErrors} send errors.`,
    );
  }
  if (cpuProfDir) {
    for (const proto of o.protocols) {
      for (const workers of o.workers) {
        const d = join(cpuProfDir, `${proto}-w${workers}`);
        if (!existsSync(d)) continue;
        notes.push(
          `e2e: daemon hot spots, ${proto} workers=${workers} (self %): ${summarizeCpuProfiles(d)
            .map((f) => `${f.fn} ${f.selfPct}%`)
            .join('; ')}`,
        );
      }
    }
  }
  return { rows, notes };
}
