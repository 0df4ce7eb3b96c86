/**
 * `npm run bench:peers`: CPU per record of this collector next to the C collectors that read
 * the same protocols, on the same datagrams, at the same offered rate.
 *
 *   npm run bench:peers -- [--rate 100000] [--seconds 5] [--runs 3]
 *                          [--only ipfix|netflow9|sflow[,...]] [--ours-args "--workers 1"]
 *
 * - Datagrams: pmacct's captures in test/fixtures (IPFIX, NetFlow v9, sFlow v5), UDP payloads
 *   read with collectors/pcap.ts, template datagrams first, written to a file that
 *   test/bench/sendmmsg.c (compiled here with `cc -O2`) sends round-robin to 127.0.0.1:PORT
 *   with sendmmsg() in batches of 16, paced to --rate datagrams/s for --seconds. Sequence
 *   numbers are rewritten by the sender so that every cycle continues the stream.
 * - Collectors, one at a time, each on a fresh free loopback port with a 4 MiB receive buffer,
 *   pinned to CPU 1 (`taskset -c 1`; the sender on CPU 0):
 *     pmacct   nfacctd (IPFIX, v9) / sfacctd (sFlow), print plugin to a CSV file, aggregate
 *              src_host, dst_host, src_port, dst_port, proto, flows (FLOWS = records counted);
 *     nfdump   nfcapd (IPFIX, v9) / sfcapd (sFlow) writing to a temp dir, counted with
 *              `nfdump -R DIR -I` after it stopped;
 *     ours     `node dist/src/cli.js serve -c CONFIG` (only the protocol's listener, API on a
 *              free 127.0.0.1 port, SQLite in a temp dir), counted from /api/v1/exporters.
 * - CPU: utime + stime (+ cutime + cstime, the reaped children) from /proc/PID/stat of the
 *   collector and every live descendant, from just before the first datagram until the
 *   collector has drained (socket queue empty, CPU idle). For pmacct this is the
 *   core process plus its plugin process (and the plugin's short-lived writers); the split is
 *   printed under the table. /proc/PID/stat covers every thread of a process (node's too).
 * - Kernel drops: the drops column of /proc/net/udp (and udp6) for the port.
 * Set SCITAGS_PEERS_DEBUG=1 to print a collector's output when its run fails.
 * The capture, sender, /proc and cleanup machinery is shared with `npm run bench -- e2e`
 * (test/bench/loopback.ts).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, release } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { CLI, freeUdpPort } from '../support/daemon.js';
import { cpuModel, median } from './common.js';
import {
  asRoot,
  type Capture,
  compileSender,
  descendants,
  drain,
  ensureRmemMax,
  firstLine,
  installCleanup,
  killAll,
  loadCapture,
  PROTOS,
  type Proto,
  RCVBUF,
  receiveBuffer,
  recordsIn,
  removeTemp,
  removeTempDir,
  type Running,
  runSender,
  sleep,
  spawnPinned,
  startOurs,
  stopChild,
  tempDir,
  treeCpu,
  udpSocket,
  waitUntil,
  which,
  writeDatagramFile,
} from './loopback.js';

// ---------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------

type CollectorKind = 'pmacct' | 'nfdump' | 'ours';

interface Options {
  rate: number;
  seconds: number;
  runs: number;
  only: Proto[];
  oursArgs: string[];
  batch: number;
  /** Seconds of unmeasured traffic at WARMUP_RATE before the measured send (0 = none). */
  warmup: number;
}

/**
 * Every collector gets the same unmeasured warm-up before the measured window: a steady
 * state is compared, not start-up. (The JIT compiles the newly hot decode path on a
 * background thread, which the single-core pinning puts on the collector's own core: without
 * a warm-up this collector dropped 300-4,000 datagrams in the first 50 ms at 100k/s with a
 * 4 MiB buffer; the C collectors have nothing to compile.)
 */
const WARMUP_RATE = 10_000;

const USAGE = `usage: npm run bench:peers -- [--rate DG_PER_S] [--seconds S] [--runs N] [--only ipfix|netflow9|sflow[,...]] [--ours-args "ARGS"]
  --rate       offered datagrams/s, the same for every collector   (default 100000)
  --seconds    seconds of sending per run                           (default 5)
  --runs       runs per collector and protocol (medians are shown)  (default 3)
  --only       protocols to run, comma-separated or repeated        (default all three)
  --ours-args  extra arguments for \`scitags-collector serve\`, split on spaces
  --batch      datagrams per sendmmsg() call                        (default 16)
  --warmup     seconds of unmeasured traffic at 10k dg/s before each measured send, for
               every collector alike (default 1; 0 = none)`;

function parseOptions(argv: string[]): Options {
  // `--ours-args "--workers 1"`: parseArgs refuses a separate value that starts with a dash.
  const args: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--ours-args' && i + 1 < argv.length) args.push(`--ours-args=${argv[++i]!}`);
    else args.push(argv[i]!);
  }
  const { values } = parseArgs({
    args,
    options: {
      rate: { type: 'string' },
      seconds: { type: 'string' },
      runs: { type: 'string' },
      only: { type: 'string', multiple: true },
      'ours-args': { type: 'string' },
      batch: { type: 'string' },
      warmup: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const num = (name: string, raw: string | undefined, dflt: number, min: number, max: number): number => {
    if (raw === undefined) return dflt;
    const v = Number(raw);
    if (!Number.isFinite(v) || v < min || v > max)
      throw new Error(`--${name} must be a number in ${min}..${max}, got ${JSON.stringify(raw)}\n${USAGE}`);
    return v;
  };
  const only = (values.only ?? [])
    .flatMap((s) => s.split(','))
    .map((s) => s.trim())
    .filter((s) => s !== '');
  for (const p of only)
    if (!PROTOS.includes(p as Proto)) throw new Error(`--only: unknown protocol ${JSON.stringify(p)} (ipfix, netflow9, sflow)\n${USAGE}`);
  return {
    rate: num('rate', values.rate, 100_000, 1, 10_000_000),
    seconds: num('seconds', values.seconds, 5, 0.1, 600),
    runs: Math.round(num('runs', values.runs, 3, 1, 100)),
    only: only.length > 0 ? PROTOS.filter((p) => only.includes(p)) : [...PROTOS],
    oursArgs: (values['ours-args'] ?? '').split(/\s+/).filter((s) => s !== ''),
    batch: Math.round(num('batch', values.batch, 16, 1, 64)),
    warmup: num('warmup', values.warmup, 1, 0, 60),
  };
}

// Every child and temp dir goes, also on Ctrl-C and errors.
installCleanup();

// ---------------------------------------------------------------------------------------
// Machine set-up: packages
// ---------------------------------------------------------------------------------------

const BINARIES = ['nfacctd', 'sfacctd', 'nfcapd', 'sfcapd', 'nfdump', 'taskset', 'cc'];

function ensurePackages(): void {
  const missing = BINARIES.filter((b) => !which(b));
  if (missing.length === 0) return;
  console.log(`missing: ${missing.join(', ')}; installing pmacct nfdump nfdump-sflow`);
  const install = asRoot(['apt-get', 'install', '-y', 'pmacct', 'nfdump', 'nfdump-sflow']);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  let r = spawnSync(install[0]!, install.slice(1), { stdio: 'inherit', env });
  if (r.status !== 0) {
    const update = asRoot(['apt-get', 'update']);
    spawnSync(update[0]!, update.slice(1), { stdio: 'inherit', env });
    r = spawnSync(install[0]!, install.slice(1), { stdio: 'inherit', env });
  }
  const still = BINARIES.filter((b) => !which(b));
  if (still.length > 0) throw new Error(`still missing after apt-get: ${still.join(', ')} (taskset is in util-linux, cc in gcc)`);
}

function machine(): string[] {
  const model = cpuModel();
  return [
    `CPU: ${model}, ${cpus().length} cores (collector pinned to CPU 1, sender to CPU 0)`,
    `kernel: ${release()}; Node ${process.version}`,
    `pmacct: ${firstLine('nfacctd', ['-V'])}; ${firstLine('sfacctd', ['-V'])}`,
    `nfdump: ${firstLine('nfcapd', ['-V'])}; ${firstLine('sfcapd', ['-V'])}; ${firstLine('nfdump', ['-V'])}`,
  ];
}

// ---------------------------------------------------------------------------------------
// Collectors
// ---------------------------------------------------------------------------------------

async function startPmacct(proto: Proto, port: number, dir: string): Promise<Running> {
  const daemon = proto === 'sflow' ? 'sfacctd' : 'nfacctd';
  const pre = proto === 'sflow' ? 'sfacctd' : 'nfacctd';
  const csv = join(dir, 'print.csv');
  const log = join(dir, 'pmacct.log');
  const conf = join(dir, `${daemon}.conf`);
  writeFileSync(
    conf,
    [
      'daemonize: false',
      `pidfile: ${join(dir, 'pmacct.pid')}`,
      `logfile: ${log}`,
      `${pre}_ip: 127.0.0.1`,
      `${pre}_port: ${port}`,
      `${pre}_pipe_size: ${RCVBUF}`,
      // Time bins from arrival time (the captures' flow times are in 2024).
      `${pre}_time_new: true`,
      // Core -> plugin ring: large, so the plugin is never the bottleneck.
      'plugin_pipe_size: 268435456',
      'plugin_buffer_size: 65536',
      'plugins: print[p]',
      // Every record must be decoded down to its 5-tuple; FLOWS counts records / flow samples.
      'aggregate[p]: src_host, dst_host, src_port, dst_port, proto, flows',
      'print_output[p]: csv',
      `print_output_file[p]: ${csv}`,
      'print_output_file_append[p]: true',
      'print_refresh_time[p]: 1',
      '',
    ].join('\n'),
  );
  const p = spawnPinned(daemon, ['-f', conf], dir);
  const logText = (): string => (existsSync(log) ? readFileSync(log, 'utf8') : '');
  const output = (): string => `${p.output()}\n${logText()}`;
  await waitUntil(daemon, () => udpSocket(port).found && logText().includes('waiting for') && descendants(p.child.pid!).length > 0, output);
  return {
    child: p.child,
    exited: p.exited,
    pid: p.child.pid!,
    port,
    output,
    // SIGINT is pmacct's graceful stop: the plugin purges its cache to the file.
    stopAndCount: async () => {
      await stopChild(p.child, p.exited, 'SIGINT');
      return { records: sumFlows(csv) };
    },
  };
}

/** Sums the FLOWS column over every dump the print plugin appended. */
function sumFlows(csv: string): number {
  if (!existsSync(csv)) return 0;
  let col = -1;
  let total = 0;
  for (const line of readFileSync(csv, 'utf8').split('\n')) {
    if (line.startsWith('SRC_IP') || line.includes('FLOWS')) {
      col = line.split(',').indexOf('FLOWS');
      continue;
    }
    if (col < 0 || line.trim() === '') continue;
    const v = Number(line.split(',')[col]);
    if (Number.isFinite(v)) total += v;
  }
  return total;
}

async function startNfdump(proto: Proto, port: number, dir: string): Promise<Running> {
  const daemon = proto === 'sflow' ? 'sfcapd' : 'nfcapd';
  const flows = join(dir, 'flows');
  mkdirSync(flows);
  const p = spawnPinned(daemon, ['-b', '127.0.0.1', '-4', '-p', String(port), '-w', flows, '-B', String(RCVBUF), '-t', '3600'], dir);
  await waitUntil(daemon, () => udpSocket(port).found && p.output().includes('Startup'), p.output);
  return {
    child: p.child,
    exited: p.exited,
    pid: p.child.pid!,
    port,
    output: p.output,
    stopAndCount: async () => {
      await stopChild(p.child, p.exited, 'SIGTERM');
      const r = spawnSync('nfdump', ['-R', flows, '-I'], { encoding: 'utf8' });
      const m = r.stdout.match(/^Flows:\s*(\d+)/m);
      const seq = r.stdout.match(/^Sequence failures:\s*(\d+)/m);
      if (!m) throw new Error(`nfdump -R ${flows} -I gave no Flows line:\n${r.stdout}${r.stderr}\n${p.output()}`);
      return { records: Number(m[1]), ...(seq ? { sequence: `${seq[1]} sequence failures` } : {}) };
    },
  };
}

// ---------------------------------------------------------------------------------------
// One run
// ---------------------------------------------------------------------------------------

interface RunResult {
  collector: string;
  sent: number;
  sendErrors: number;
  sendSeconds: number;
  recordsSent: number;
  recordsReceived: number;
  lossPct: number;
  kernelDrops: number;
  cpuS: number;
  /** CPU seconds by process role (pmacct: Core Process, Print Plugin, ...). */
  cpuByRole: Map<string, number>;
  /** CPU seconds by the end of sending (the rest is the drain). */
  cpuAtSendEndS: number;
  recordsPerCpuS: number;
  rcvbuf: number | undefined;
  sequence: string | undefined;
}

function collectorName(kind: CollectorKind, proto: Proto): string {
  if (kind === 'pmacct') return proto === 'sflow' ? 'sfacctd (pmacct)' : 'nfacctd (pmacct)';
  if (kind === 'nfdump') return proto === 'sflow' ? 'sfcapd (nfdump)' : 'nfcapd (nfdump)';
  return 'scitags-collector';
}

async function oneRun(kind: CollectorKind, cap: Capture, sender: string, dgFile: string, o: Options): Promise<RunResult> {
  const dir = tempDir(`scitags-peers-${kind}-`);
  const port = await freeUdpPort();
  let r: Running | undefined;
  try {
    r =
      kind === 'pmacct'
        ? await startPmacct(cap.proto, port, dir)
        : kind === 'nfdump'
          ? await startNfdump(cap.proto, port, dir)
          : await startOurs(cap.proto, port, dir, o.oursArgs);
    await sleep(300);
    const rcvbuf = receiveBuffer(port);
    let warm = { sent: 0, errors: 0 };
    if (o.warmup > 0) {
      warm = await runSender(sender, dgFile, port, { ...o, rate: WARMUP_RATE, seconds: o.warmup });
      await drain(r);
    }
    const cpu0 = treeCpu(r.pid);
    const s = await runSender(sender, dgFile, port, o);
    const cpuSent = treeCpu(r.pid);
    await drain(r);
    const cpu1 = treeCpu(r.pid);
    const drops = udpSocket(port).drops;
    const running = r;
    r = undefined;
    const { records: receivedAll, sequence } = await running.stopAndCount();
    // Each sender run starts the capture's cycle afresh; warm-up records are counted by every
    // collector too, so loss is over both and the rate over the measured window only.
    const warmRecords = recordsIn(cap, warm.sent + warm.errors);
    const recordsSent = warmRecords + recordsIn(cap, s.sent + s.errors);
    const received = receivedAll;
    const cpuS = cpu1.total - cpu0.total;
    const cpuByRole = new Map<string, number>();
    for (const [role, v] of cpu1.byRole) cpuByRole.set(role, v - (cpu0.byRole.get(role) ?? 0));
    return {
      collector: collectorName(kind, cap.proto),
      sent: s.sent,
      sendErrors: s.errors,
      sendSeconds: s.elapsed,
      recordsSent,
      recordsReceived: received,
      lossPct: 100 * (1 - received / recordsSent),
      kernelDrops: drops,
      cpuS,
      cpuByRole,
      cpuAtSendEndS: cpuSent.total - cpu0.total,
      recordsPerCpuS: (received - warmRecords) / cpuS,
      rcvbuf,
      sequence,
    };
  } finally {
    // Only set when something failed before the collector was stopped.
    if (r) {
      if (process.env.SCITAGS_PEERS_DEBUG) console.error(r.output());
      await stopChild(r.child, r.exited, 'SIGKILL');
    }
    removeTempDir(dir);
  }
}

// ---------------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------------

const int = (n: number): string => Math.round(n).toLocaleString('en-US');
const fix = (n: number, d: number): string => n.toFixed(d);

function spread(xs: number[], fmt: (n: number) => string): string {
  const m = fmt(median(xs));
  if (xs.length < 2) return m;
  return `${m} (${fmt(Math.min(...xs))}–${fmt(Math.max(...xs))})`;
}

function table(o: Options, results: Map<CollectorKind, RunResult[]>): string[] {
  const kinds: CollectorKind[] = ['pmacct', 'nfdump', 'ours'];
  const bestC = Math.max(
    ...(['pmacct', 'nfdump'] as const)
      .map((k) => median((results.get(k) ?? []).map((r) => r.recordsPerCpuS)))
      .filter((x) => Number.isFinite(x)),
  );
  const lines = [
    '| collector | offered dg/s | sent dg | records sent | records received | loss % | kernel drops | CPU s | records per CPU-second | ratio to best C |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const k of kinds) {
    const rs = results.get(k);
    if (!rs || rs.length === 0) continue;
    const rpc = median(rs.map((r) => r.recordsPerCpuS));
    lines.push(
      `| ${rs[0]!.collector} | ${int(o.rate)} | ${int(median(rs.map((r) => r.sent)))} | ${int(median(rs.map((r) => r.recordsSent)))} | ${int(median(rs.map((r) => r.recordsReceived)))} | ${spread(
        rs.map((r) => r.lossPct),
        (n) => fix(n, 2),
      )} | ${int(median(rs.map((r) => r.kernelDrops)))} | ${spread(
        rs.map((r) => r.cpuS),
        (n) => fix(n, 2),
      )} | ${spread(
        rs.map((r) => r.recordsPerCpuS),
        int,
      )} | ${fix(rpc / bestC, 2)} |`,
    );
  }
  return lines;
}

function notes(results: Map<CollectorKind, RunResult[]>): string[] {
  const out: string[] = [];
  for (const [k, rs] of results) {
    if (rs.length === 0) continue;
    const roles = new Map<string, number[]>();
    for (const r of rs) for (const [role, v] of r.cpuByRole) roles.set(role, [...(roles.get(role) ?? []), v]);
    const split = [...roles].map(([role, vs]) => `${role} ${fix(median(vs), 2)} s`).join(', ');
    const drainShare = median(rs.map((r) => (r.cpuS - r.cpuAtSendEndS) / r.cpuS));
    const rb = [...new Set(rs.map((r) => r.rcvbuf))].map((b) => (b === undefined ? '?' : `${b}`)).join('/');
    const sendRate = median(rs.map((r) => r.sent / r.sendSeconds));
    const errs = rs.reduce((s, r) => s + r.sendErrors, 0);
    const seq = rs.map((r) => r.sequence).filter((x) => x !== undefined);
    out.push(
      `- ${rs[0]!.collector}: CPU by process: ${split}${k === 'pmacct' ? ' (table: all of them)' : ''}; ${fix(100 * drainShare, 0)} % of the CPU after the last send (drain); socket rb ${rb} bytes (ss: the kernel doubles SO_RCVBUF); sender achieved ${int(sendRate)} dg/s${errs ? `, ${errs} send errors` : ''}${seq.length ? `; reported per run: ${seq.join(', ')}` : ''}`,
    );
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const o = parseOptions(process.argv.slice(2));
  const args = process.argv
    .slice(2)
    .map((a) => (/[\s"']/.test(a) ? JSON.stringify(a) : a))
    .join(' ');
  const command =
    process.env.npm_lifecycle_event === 'bench:peers'
      ? `npm run bench:peers${args ? ` -- ${args}` : ''}`
      : `node dist/test/bench/peers.js ${args}`.trim();
  ensurePackages();
  const rmem = ensureRmemMax();
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build first`);
  const work = tempDir('scitags-peers-');
  const sender = compileSender(work);

  const header = [
    `# bench:peers — ${new Date().toISOString()}`,
    `command: ${command}`,
    ...machine(),
    rmem,
    `offered: ${int(o.rate)} datagrams/s for ${o.seconds} s per run, sendmmsg batches of ${o.batch}; ${o.runs} run(s) per collector; medians (min–max)`,
    o.warmup > 0
      ? `warm-up: ${o.warmup} s at ${int(WARMUP_RATE)} datagrams/s before each measured send, every collector alike; CPU and records per CPU-second cover the measured send only, loss covers both`
      : 'warm-up: none',
    `ours: serve ${o.oursArgs.join(' ') || '(no extra args)'}`,
  ];
  console.log(header.join('\n'));
  const caps = o.only.map(loadCapture);
  for (const c of caps) {
    console.log(
      `${c.proto}: ${c.file}: ${c.dgs.length} datagrams, ${c.recordsPerCycle} ${c.proto === 'sflow' ? 'flow samples' : 'flow records'}` +
        ` (+${c.otherPerCycle} ${c.proto === 'sflow' ? 'counter samples' : 'options records'}) = ${fix(c.recordsPerCycle / c.dgs.length, 3)} records per datagram;` +
        ` template datagrams first: ${c.dgs.filter((d) => d.hasTemplates).length}; capture sequence numbers consistent with the count: ${c.seqMismatches === 0 ? 'yes' : `no (${c.seqMismatches} steps differ)`}`,
    );
  }
  const report: string[] = [];
  for (const cap of caps) {
    const dgFile = join(work, `${cap.proto}.dg`);
    writeDatagramFile(cap, dgFile);
    const results = new Map<CollectorKind, RunResult[]>();
    for (let run = 1; run <= o.runs; run++) {
      for (const kind of ['pmacct', 'nfdump', 'ours'] as const) {
        const r = await oneRun(kind, cap, sender, dgFile, o);
        (results.get(kind) ?? results.set(kind, []).get(kind)!).push(r);
        console.log(
          `  ${cap.proto} run ${run} ${r.collector}: sent ${int(r.sent)} dg in ${fix(r.sendSeconds, 2)} s, records ${int(r.recordsReceived)}/${int(r.recordsSent)} (loss ${fix(r.lossPct, 2)} %), kernel drops ${int(r.kernelDrops)}, CPU ${fix(r.cpuS, 2)} s, ${int(r.recordsPerCpuS)} records/CPU-s`,
        );
      }
    }
    const title = `## ${cap.proto === 'ipfix' ? 'IPFIX' : cap.proto === 'netflow9' ? 'NetFlow v9' : 'sFlow v5'} (${cap.file}, ${fix(cap.recordsPerCycle / cap.dgs.length, 2)} records per datagram)`;
    const block = ['', title, '', ...table(o, results), '', ...notes(results)];
    console.log(block.join('\n'));
    report.push(...block);
  }
  console.log(['', '# Summary', ...header.slice(1), ...report].join('\n'));
}

main()
  .then(() => {
    killAll();
    removeTemp();
  })
  .catch((err: unknown) => {
    console.error(err instanceof Error ? (err.stack ?? err.message) : err);
    killAll();
    removeTemp();
    process.exit(1);
  });
