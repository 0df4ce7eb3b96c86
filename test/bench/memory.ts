/**
 * Memory at the stated scale: "RSS under 300 MB with 1,000 exporters, 10,000 templates and
 * 100,000 live aggregation keys".
 *
 * For each worker count (default 1 and 2) a real `scitags-collector serve` (the built CLI,
 * its own process, SQLite store in a temp dir, `--bucket 1h` so every key stays live in one
 * open bucket) receives real IPFIX over loopback:
 *
 * - 1,000 exporters, each its own source address 127.1.X.Y (every 127/8 address is local on
 *   Linux) and its own socket (one IPFIX session), closed after use;
 * - each exporter defines 10 data templates (ids 256..265): a common core (octet and packet
 *   counts, ingress / egress ifIndex, IP version, IPv6 flow label and addresses) plus the
 *   first k (k = 0..9) of a list of extra fields, so the 10 layouts really differ;
 * - each template's data set carries 10 records; record r of template t has
 *   ingressInterface 1 + t, egressInterface 101 + r and one of 10 registered SciTags pairs
 *   (chosen by (t + r) % 10), so every exporter makes 100 distinct keys
 *   (bucket, exporter, inIf, outIf, class, community, activity): 100,000 keys in all;
 * - the data sets are sent `rounds` times (default 2) on the same socket, so keys also take
 *   updates, not only inserts. Sending is paced (datagrams/s) so nothing is dropped; the
 *   daemon's kernel and queue drop counters are read back and reported.
 *
 * Once the daemon's CPU goes quiet after the last send, RSS (VmRSS, RssAnon, RssFile) is read
 * from /proc/PID/status before any API call; then the API is polled until it shows every
 * record and template, /metrics gives scitags_live_keys and the drop counters, and RSS and
 * peak (VmHWM) are read again; then SIGTERM, timed (the shutdown writes the 100,000 rows and
 * the decoder state file), with VmHWM polled until the process is gone. RSS of a V8 process
 * depends on GC timing: expect +-20 MB between runs.
 *
 * Runnable alone after `npm run build`:
 *   node -e "import('./dist/test/bench/memory.js').then(m => m.benchMemory()).then(r => console.log(JSON.stringify(r, null, 1)))"
 */
import { createSocket, type Socket } from 'node:dgram';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeFlowLabel } from '../../decoders/scitags/flowlabel.js';
import { f, type Field, ipfixDataSet, ipfixMessage, ipfixTemplateSet, type TemplateDef } from '../builders/ipfix.js';
import { freePorts, getJson, startDaemon, type Daemon } from '../support/daemon.js';

export interface MemoryOptions {
  /** Worker counts to measure, one fresh daemon each (default [1, 2]). */
  workers?: number[];
  /** Exporters (default 1,000; at most 64,000). */
  exporters?: number;
  /** Times each exporter sends its 10 data sets (default 2). */
  rounds?: number;
  /** Datagrams per second over all exporters (default 5,000). */
  rate?: number;
  /** Options for node itself in the daemon (e.g. --inspect=127.0.0.1:0 for a probe). */
  nodeArgs?: string[];
  /**
   * Called once everything is decoded and measured, before the stop (profiling: heap
   * snapshots, smaps); what it returns is added to the results as `wN: probe`.
   */
  probe?: (daemon: { pid: number; apiUrl: string; output: () => string; workers: number }) => Promise<unknown>;
}

export interface MemoryRun {
  workers: number;
  /** RSS of the idle daemon right after start, MB (MiB). */
  rssIdleMB: number;
  /** VmRSS once everything is decoded and the daemon is idle, before any API call, MB (MiB). */
  rssMB: number;
  rssAnonMB: number;
  rssFileMB: number;
  /** VmRSS after the checks through the API (/api/v1/exporters polled, /metrics scraped). */
  rssAfterApiMB: number;
  /** VmHWM (peak RSS over the daemon's life) once everything is decoded, MB (MiB). */
  peakMB: number;
  /** VmHWM last seen while the daemon shut down (writing the rows), MB (MiB). */
  peakStopMB: number;
  liveKeys: number;
  expectedKeys: number;
  cardinalityFolds: number;
  templates: number;
  exporters: number;
  /** Exporters that do not show 10 live templates. */
  exportersShort: number;
  records: number;
  expectedRecords: number;
  datagramsSent: number;
  sendErrors: number;
  kernelDrops: number;
  queueDrops: number;
  templateMisses: number;
  sendSeconds: number;
  /** From the last send until the daemon's CPU goes quiet (everything decoded). */
  settleSeconds: number;
  stopSeconds: number;
  stopExitCode: number | null;
  probe?: unknown;
}

const TEMPLATES_PER_EXPORTER = 10;
const RECORDS_PER_SET = 10;
const KEYS_PER_EXPORTER = TEMPLATES_PER_EXPORTER * RECORDS_PER_SET;
const MB = 1024 * 1024;

/** Ten registered pairs of data/registry-snapshot.json (unregistered ones would be folded). */
const PAIRS: readonly [number, number][] = [
  [2, 1], // atlas default
  [2, 2], // atlas perfSONAR
  [2, 3], // atlas Data Brokering
  [3, 1], // cms default
  [3, 5], // cms
  [4, 1], // lhcb default
  [5, 8], // alice
  [6, 10], // belleii
  [7, 2], // ska perfSONAR
  [8, 3], // dune
];

const CORE: Field[] = [
  f('octetDeltaCount', 8),
  f('packetDeltaCount', 8),
  f('ingressInterface', 4),
  f('egressInterface', 4),
  f('ipVersion', 1),
  f('flowLabelIPv6', 4),
  f('sourceIPv6Address', 16),
  f('destinationIPv6Address', 16),
];

/** Template t adds the first t of these (no timestamps: every record falls in the receive bucket). */
const EXTRAS: { field: Field; value: (t: number, r: number) => number | string }[] = [
  { field: f('sourceTransportPort', 2), value: (t, r) => 40000 + t * 10 + r },
  { field: f('destinationTransportPort', 2), value: () => 1094 },
  { field: f('protocolIdentifier', 1), value: () => 6 },
  { field: f('ipClassOfService', 1), value: () => 0 },
  { field: f('tcpControlBits', 2), value: () => 0x18 },
  { field: f('bgpSourceAsNumber', 4), value: () => 513 },
  { field: f('bgpDestinationAsNumber', 4), value: () => 1103 },
  { field: f('vlanId', 2), value: () => 100 },
  { field: f('ipNextHopIPv6Address', 16), value: () => '2001:db8:ff::1' },
];

function templates(): TemplateDef[] {
  return Array.from({ length: TEMPLATES_PER_EXPORTER }, (_, t) => ({
    id: 256 + t,
    fields: [...CORE, ...EXTRAS.slice(0, t).map((e) => e.field)],
  }));
}

/** Data records of template t for exporter e (100 distinct keys per exporter over t and r). */
function records(e: number, t: number): (number | string)[][] {
  return Array.from({ length: RECORDS_PER_SET }, (_, r) => {
    const [community, activity] = PAIRS[(t + r) % PAIRS.length]!;
    return [
      1000 + 100 * r, // octets
      1 + r, // packets
      1 + t, // ingressInterface
      101 + r, // egressInterface
      6,
      encodeFlowLabel(community, activity, (e + r) & 31),
      `2001:db8:${(e >> 8).toString(16)}:${(e & 0xff).toString(16)}::${(r + 1).toString(16)}`,
      `2001:db8:ffff::${(t + 1).toString(16)}`,
      ...EXTRAS.slice(0, t).map((x) => x.value(t, r)),
    ];
  });
}

function exporterAddress(e: number): string {
  return `127.1.${Math.floor(e / 250)}.${(e % 250) + 1}`;
}

/** The datagrams of exporter e: templates first, then its 10 data sets `rounds` times. */
function exporterDatagrams(e: number, rounds: number, tpls: readonly TemplateDef[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  const exportSecs = Math.floor(Date.now() / 1000);
  let seq = 0;
  out.push(ipfixMessage({ domain: 1, seq, exportSecs }, [ipfixTemplateSet(tpls)]));
  for (let round = 0; round < rounds; round++) {
    for (const t of tpls) {
      const recs = records(e, t.id - 256);
      out.push(ipfixMessage({ domain: 1, seq, exportSecs }, [ipfixDataSet(t.id, t.fields, recs)]));
      seq += recs.length;
    }
  }
  return out;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function sendAll(
  port: number,
  exporters: number,
  rounds: number,
  rate: number,
): Promise<{ sent: number; errors: number; seconds: number; lastSendMs: number }> {
  const tpls = templates();
  let sent = 0;
  let errors = 0;
  const t0 = performance.now();
  for (let e = 0; e < exporters; e++) {
    const datagrams = exporterDatagrams(e, rounds, tpls);
    const s: Socket = createSocket('udp4');
    s.on('error', () => errors++);
    await new Promise<void>((resolve) => s.bind({ address: exporterAddress(e), port: 0 }, () => resolve()));
    for (const d of datagrams) {
      await new Promise<void>((resolve) =>
        s.send(d, port, '127.0.0.1', (err) => {
          if (err) errors++;
          resolve();
        }),
      );
      sent++;
    }
    await new Promise<void>((resolve) => s.close(() => resolve()));
    // Pace: never ahead of `rate` datagrams/s over the whole run.
    const due = (sent / rate) * 1000 - (performance.now() - t0);
    if (due > 1) await sleep(due);
  }
  const t1 = performance.now();
  return { sent, errors, seconds: (t1 - t0) / 1000, lastSendMs: Date.now() };
}

interface ProcMem {
  rss: number;
  hwm: number;
  anon: number;
  file: number;
}

function procMem(pid: number): ProcMem {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name: string): number => {
    const m = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status);
    return m ? Number(m[1]) * 1024 : NaN;
  };
  return { rss: kb('VmRSS'), hwm: kb('VmHWM'), anon: kb('RssAnon'), file: kb('RssFile') };
}

function sumMetric(text: string, name: string): number {
  let total = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(name) && (line[name.length] === '{' || line[name.length] === ' '))
      total += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return total;
}

function procCpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[11] = utime, fields[12] = stime (clock ticks; 100 Hz on Linux)
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
}

/** Waits (at most 20 s) until the process used under 5% of a core over the last second. */
async function quiet(pid: number): Promise<void> {
  const end = Date.now() + 20_000;
  let prev = procCpuMs(pid);
  while (Date.now() < end) {
    await sleep(1000);
    const now = procCpuMs(pid);
    if (now - prev < 50) return;
    prev = now;
  }
}

interface ExporterRow {
  address: string;
  records: number;
  datagrams: number;
  liveTemplates: number;
}

/**
 * With a 1-hour bucket the run must not straddle an hour boundary (the keys would split over
 * two buckets); if the boundary is near, wait until just after it.
 */
async function clearOfHourBoundary(neededMs: number): Promise<void> {
  const left = 3_600_000 - (Date.now() % 3_600_000);
  if (left < neededMs) await sleep(left + 1000);
}

async function runOnce(workers: number, exporters: number, rounds: number, rate: number, opts: MemoryOptions): Promise<MemoryRun> {
  const dir = mkdtempSync(join(tmpdir(), 'scitags-mem-'));
  const ports = await freePorts();
  const expectedRecords = exporters * KEYS_PER_EXPORTER * rounds;
  const expectedDatagrams = exporters * (1 + TEMPLATES_PER_EXPORTER * rounds);
  await clearOfHourBoundary((expectedDatagrams / rate + 30) * 1000);
  let daemon: Daemon | undefined;
  try {
    daemon = await startDaemon(
      ports,
      [`--store=sqlite:${join(dir, 'bench.sqlite')}`, '--bucket=1h', `--workers=${workers}`, '--log-level=error'],
      { SCITAGS_LOG_LEVEL: 'error' },
      dir,
      opts.nodeArgs ?? [],
    );
    const pid = daemon.child.pid!;
    await sleep(500);
    const idle = procMem(pid);

    const send = await sendAll(ports.ipfix, exporters, rounds, rate);
    // RSS before any API call (in worker mode each /api/v1/exporters or /metrics request
    // makes every worker serialize a snapshot of its exporters): once the daemon's CPU is
    // quiet, everything sent has been decoded (checked through the API just after).
    await quiet(pid);
    const settleSeconds = (Date.now() - send.lastSendMs) / 1000;
    const decoded = procMem(pid);

    // Wait until the API shows every record and template (or the counters stop moving for 5 s).
    let rows: ExporterRow[] = [];
    let lastTotal = -1;
    let lastMove = Date.now();
    for (;;) {
      rows = (await getJson<{ exporters: ExporterRow[] }>(`${daemon.apiUrl}/api/v1/exporters`)).exporters;
      const total = rows.reduce((a, r) => a + r.records, 0) + rows.reduce((a, r) => a + r.liveTemplates, 0);
      if (total >= expectedRecords + exporters * TEMPLATES_PER_EXPORTER) break;
      if (total !== lastTotal) {
        lastTotal = total;
        lastMove = Date.now();
      } else if (Date.now() - lastMove > 5000) break;
      await sleep(100);
    }
    // The aggregator receives worker partial sums on a flush timer; let it settle.
    await sleep(1000);
    rows = (await getJson<{ exporters: ExporterRow[] }>(`${daemon.apiUrl}/api/v1/exporters`)).exporters;
    const metrics = await (await fetch(`${daemon.apiUrl}/metrics`)).text();
    const mem = procMem(pid);
    const probe = opts.probe ? await opts.probe({ pid, apiUrl: daemon.apiUrl, output: daemon.output, workers }) : undefined;

    // Peak while stopping: VmHWM polled until the process is gone.
    let peakStop = mem.hwm;
    const poll = setInterval(() => {
      try {
        const hwm = procMem(pid).hwm;
        if (Number.isFinite(hwm)) peakStop = Math.max(peakStop, hwm);
      } catch {
        // gone
      }
    }, 10);
    const t0 = performance.now();
    const code = await daemon.stop();
    const stopSeconds = (performance.now() - t0) / 1000;
    clearInterval(poll);
    daemon = undefined;

    const ours = rows.filter((r) => r.address.startsWith('127.1.'));
    return {
      workers,
      rssIdleMB: idle.rss / MB,
      rssMB: decoded.rss / MB,
      rssAnonMB: decoded.anon / MB,
      rssFileMB: decoded.file / MB,
      rssAfterApiMB: mem.rss / MB,
      peakMB: mem.hwm / MB,
      peakStopMB: peakStop / MB,
      liveKeys: sumMetric(metrics, 'scitags_live_keys'),
      expectedKeys: rounds > 0 ? exporters * KEYS_PER_EXPORTER : 0,
      cardinalityFolds: sumMetric(metrics, 'scitags_cardinality_folds_total'),
      templates: ours.reduce((a, r) => a + r.liveTemplates, 0),
      exporters: ours.length,
      exportersShort: ours.filter((r) => r.liveTemplates !== TEMPLATES_PER_EXPORTER).length,
      records: ours.reduce((a, r) => a + r.records, 0),
      expectedRecords,
      datagramsSent: send.sent,
      sendErrors: send.errors,
      kernelDrops: sumMetric(metrics, 'scitags_kernel_udp_drops_total'),
      queueDrops: sumMetric(metrics, 'scitags_queue_drops_total'),
      templateMisses: sumMetric(metrics, 'scitags_template_misses_total'),
      sendSeconds: send.seconds,
      settleSeconds,
      stopSeconds,
      stopExitCode: code,
      ...(probe !== undefined ? { probe } : {}),
    };
  } finally {
    if (daemon) await daemon.stop('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

const round1 = (x: number): number => Math.round(x * 10) / 10;

/** One line per worker count: `w1: rss MB`, `w1: peak MB`, ... (see MemoryRun for all fields). */
export async function benchMemory(opts: MemoryOptions = {}): Promise<Record<string, unknown>> {
  const exporters = opts.exporters ?? 1000;
  if (exporters > 64_000) throw new RangeError('at most 64,000 exporters (127.1.X.Y addresses)');
  const rounds = opts.rounds ?? 2;
  const rate = opts.rate ?? 5000;
  const out: Record<string, unknown> = {};
  for (const w of opts.workers ?? [1, 2]) {
    const r = await runOnce(w, exporters, rounds, rate, opts);
    const p = `w${w}`;
    out[`${p}: rss MB`] = round1(r.rssMB);
    out[`${p}: rss after API MB`] = round1(r.rssAfterApiMB);
    out[`${p}: peak MB`] = round1(r.peakMB);
    out[`${p}: peak incl. stop MB`] = round1(r.peakStopMB);
    out[`${p}: idle rss MB`] = round1(r.rssIdleMB);
    out[`${p}: anon/file MB`] = `${round1(r.rssAnonMB)}/${round1(r.rssFileMB)}`;
    out[`${p}: live keys`] = r.liveKeys === r.expectedKeys ? r.liveKeys : `${r.liveKeys} (expected ${r.expectedKeys})`;
    out[`${p}: templates`] = r.templates;
    out[`${p}: exporters`] =
      r.exportersShort === 0 ? r.exporters : `${r.exporters} (${r.exportersShort} without ${TEMPLATES_PER_EXPORTER} templates)`;
    out[`${p}: records`] = r.records === r.expectedRecords ? r.records : `${r.records} (expected ${r.expectedRecords})`;
    out[`${p}: drops kernel/queue`] = `${r.kernelDrops}/${r.queueDrops}`;
    if (r.sendErrors > 0) out[`${p}: send errors`] = r.sendErrors;
    if (r.templateMisses > 0) out[`${p}: template misses`] = r.templateMisses;
    if (r.cardinalityFolds > 0) out[`${p}: cardinality folds`] = r.cardinalityFolds;
    out[`${p}: send s`] = r.sendSeconds.toFixed(1);
    out[`${p}: settle s`] = r.settleSeconds.toFixed(1);
    out[`${p}: stop s`] = r.stopSeconds.toFixed(2);
    if (r.stopExitCode !== 0) out[`${p}: stop exit code`] = r.stopExitCode;
    out[`${p}: under 300 MB`] = Math.max(r.rssMB, r.rssAfterApiMB, r.peakStopMB) < 300;
    if (r.probe !== undefined) out[`${p}: probe`] = r.probe;
  }
  return out;
}
