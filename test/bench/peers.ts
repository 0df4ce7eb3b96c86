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
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { readCaptureFile } from '../../collectors/pcap.js';
import { CLI, freeUdpPort, getJson } from '../support/daemon.js';
import { freeTcpPort } from '../support/influxd.js';
import { median, repoRoot } from './common.js';

// ---------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------

type Proto = 'ipfix' | 'netflow9' | 'sflow';
const PROTOS: readonly Proto[] = ['ipfix', 'netflow9', 'sflow'];
type CollectorKind = 'pmacct' | 'nfdump' | 'ours';

interface Options {
  rate: number;
  seconds: number;
  runs: number;
  only: Proto[];
  oursArgs: string[];
  batch: number;
}

const USAGE = `usage: npm run bench:peers -- [--rate DG_PER_S] [--seconds S] [--runs N] [--only ipfix|netflow9|sflow[,...]] [--ours-args "ARGS"]
  --rate       offered datagrams/s, the same for every collector   (default 100000)
  --seconds    seconds of sending per run                           (default 5)
  --runs       runs per collector and protocol (medians are shown)  (default 3)
  --only       protocols to run, comma-separated or repeated        (default all three)
  --ours-args  extra arguments for \`scitags-collector serve\`, split on spaces
  --batch      datagrams per sendmmsg() call                        (default 16)`;

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
    if (!Number.isFinite(v) || v < min || v > max) throw new Error(`--${name} must be a number in ${min}..${max}, got ${JSON.stringify(raw)}\n${USAGE}`);
    return v;
  };
  const only = (values.only ?? []).flatMap((s) => s.split(',')).map((s) => s.trim()).filter((s) => s !== '');
  for (const p of only) if (!PROTOS.includes(p as Proto)) throw new Error(`--only: unknown protocol ${JSON.stringify(p)} (ipfix, netflow9, sflow)\n${USAGE}`);
  return {
    rate: num('rate', values.rate, 100_000, 1, 10_000_000),
    seconds: num('seconds', values.seconds, 5, 0.1, 600),
    runs: Math.round(num('runs', values.runs, 3, 1, 100)),
    only: only.length > 0 ? PROTOS.filter((p) => only.includes(p)) : [...PROTOS],
    oursArgs: (values['ours-args'] ?? '').split(/\s+/).filter((s) => s !== ''),
    batch: Math.round(num('batch', values.batch, 16, 1, 64)),
  };
}

// ---------------------------------------------------------------------------------------
// Cleanup: every child and temp dir goes, also on Ctrl-C and errors
// ---------------------------------------------------------------------------------------

const children = new Set<ChildProcess>();
const tempDirs = new Set<string>();

function killAll(): void {
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null) {
      // pmacct's plugins are their own processes: kill the descendants too.
      if (c.pid !== undefined) for (const pid of descendants(c.pid)) tryKill(pid, 'SIGKILL');
      c.kill('SIGKILL');
    }
  }
  children.clear();
}

function removeTemp(): void {
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
  tempDirs.clear();
}

function tryKill(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

function track(c: ChildProcess): ChildProcess {
  children.add(c);
  c.once('exit', () => children.delete(c));
  return c;
}

function tempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.add(d);
  return d;
}

process.on('exit', () => {
  killAll();
  removeTemp();
});
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    console.error(`\n${sig}: stopping the collectors and removing the temp dirs`);
    killAll();
    removeTemp();
    process.exit(130);
  });
}

// ---------------------------------------------------------------------------------------
// Machine set-up: packages, rmem_max, sender
// ---------------------------------------------------------------------------------------

const BINARIES = ['nfacctd', 'sfacctd', 'nfcapd', 'sfcapd', 'nfdump', 'taskset', 'cc'];

function which(bin: string): string | undefined {
  const r = spawnSync('sh', ['-c', `command -v ${bin}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

function asRoot(cmd: string[]): string[] {
  if (process.getuid?.() === 0) return cmd;
  if (which('sudo')) return ['sudo', '-n', ...cmd];
  return cmd; // will fail with a clear message
}

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

const RCVBUF = 4 * 1024 * 1024;

/** Makes sure net.core.rmem_max allows a 4 MiB receive buffer; returns what happened. */
function ensureRmemMax(): string {
  const read = (): number => Number(readFileSync('/proc/sys/net/core/rmem_max', 'utf8').trim());
  const before = read();
  if (before >= RCVBUF) return `net.core.rmem_max = ${before} (enough for ${RCVBUF}; left as is)`;
  const cmd = asRoot(['sysctl', '-w', `net.core.rmem_max=${RCVBUF}`]);
  const r = spawnSync(cmd[0]!, cmd.slice(1), { encoding: 'utf8' });
  const after = read();
  if (after >= RCVBUF) return `net.core.rmem_max raised from ${before} to ${after} with sysctl`;
  return `net.core.rmem_max = ${after}: could NOT raise it to ${RCVBUF} (${(r.stderr || r.stdout || '').trim() || `exit ${r.status}`}); receive buffers are capped at ${after}`;
}

function compileSender(dir: string): string {
  const src = join(repoRoot(), 'test', 'bench', 'sendmmsg.c');
  const out = join(dir, 'sendmmsg');
  execFileSync('cc', ['-O2', '-Wall', '-o', out, src], { stdio: 'inherit' });
  return out;
}

function firstLine(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return `${r.stdout ?? ''}${r.stderr ?? ''}`.split('\n').find((l) => l.trim() !== '')?.trim() ?? '?';
}

function machine(): string[] {
  const model = readFileSync('/proc/cpuinfo', 'utf8').match(/^model name\s*:\s*(.*)$/m)?.[1] ?? cpus()[0]?.model ?? '?';
  return [
    `CPU: ${model}, ${cpus().length} cores (collector pinned to CPU 1, sender to CPU 0)`,
    `kernel: ${release()}; Node ${process.version}`,
    `pmacct: ${firstLine('nfacctd', ['-V'])}; ${firstLine('sfacctd', ['-V'])}`,
    `nfdump: ${firstLine('nfcapd', ['-V'])}; ${firstLine('sfcapd', ['-V'])}; ${firstLine('nfdump', ['-V'])}`,
  ];
}

// ---------------------------------------------------------------------------------------
// Datagrams: counting records independently, and the sender's file
// ---------------------------------------------------------------------------------------

interface Dg {
  payload: Uint8Array;
  /** Data records (IPFIX / v9 flow records, sFlow flow samples). */
  records: number;
  /** Options data records (IPFIX / v9), counter samples (sFlow). */
  other: number;
  hasTemplates: boolean;
  seqOffset: number | undefined;
  seq: number | undefined;
}

const be16 = (b: Uint8Array, o: number): number => (b[o]! << 8) | b[o + 1]!;
const be32 = (b: Uint8Array, o: number): number => ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;

interface Tmpl {
  /** Field lengths; 65535 = IPFIX variable length. */
  lengths: number[];
  options: boolean;
}

/** Counts records in one IPFIX (v10) or NetFlow v9 message; templates persist in `tmpls`. */
function countFlowMessage(b: Uint8Array, v9: boolean, tmpls: Map<number, Tmpl>): Dg {
  const hdr = v9 ? 20 : 16;
  const end = v9 ? b.length : Math.min(b.length, be16(b, 2));
  let records = 0;
  let other = 0;
  let hasTemplates = false;
  for (let o = hdr; o + 4 <= end; ) {
    const id = be16(b, o);
    const len = be16(b, o + 2);
    if (len < 4 || o + len > end) break;
    const setEnd = o + len;
    let p = o + 4;
    const tmplSet = v9 ? id === 0 : id === 2;
    const optSet = v9 ? id === 1 : id === 3;
    if (tmplSet || optSet) {
      hasTemplates = true;
      while (p + 4 <= setEnd) {
        const tid = be16(b, p);
        let count: number;
        if (v9 && optSet) {
          // v9 options template: id, scope length (bytes), option length (bytes)
          if (p + 6 > setEnd) break;
          count = (be16(b, p + 2) + be16(b, p + 4)) / 4;
          p += 6;
        } else {
          count = be16(b, p + 2);
          p += optSet ? 6 : 4; // IPFIX options: + scope field count
        }
        if (tid < 256) break; // padding
        const lengths: number[] = [];
        for (let i = 0; i < count && p + 4 <= setEnd; i++) {
          const fid = be16(b, p);
          lengths.push(be16(b, p + 2));
          p += !v9 && fid & 0x8000 ? 8 : 4;
        }
        tmpls.set(tid, { lengths, options: optSet });
      }
    } else if (id >= 256) {
      const t = tmpls.get(id);
      if (t) {
        const fixed = t.lengths.every((l) => l !== 65535);
        const minLen = t.lengths.reduce((s, l) => s + (l === 65535 ? 1 : l), 0);
        while (minLen > 0 && p + minLen <= setEnd) {
          if (fixed) p += minLen;
          else {
            for (const l of t.lengths) {
              if (l !== 65535) p += l;
              else {
                let vl = b[p]!;
                p++;
                if (vl === 255) {
                  vl = be16(b, p);
                  p += 2;
                }
                p += vl;
              }
            }
            if (p > setEnd) break;
          }
          if (t.options) other++;
          else records++;
        }
      }
    }
    o = setEnd;
  }
  return { payload: b, records, other, hasTemplates, seqOffset: v9 ? 12 : 8, seq: be32(b, v9 ? 12 : 8) };
}

function countSflow(b: Uint8Array): Dg {
  const addrType = be32(b, 4);
  let o = 8 + (addrType === 2 ? 16 : 4);
  const seqOffset = o + 4;
  const n = be32(b, o + 12);
  o += 16;
  let records = 0;
  let other = 0;
  for (let i = 0; i < n && o + 8 <= b.length; i++) {
    const format = be32(b, o) & 0xfff;
    const enterprise = be32(b, o) >>> 12;
    if (enterprise === 0 && (format === 1 || format === 3)) records++;
    else other++;
    o += 8 + be32(b, o + 4);
  }
  return { payload: b, records, other, hasTemplates: false, seqOffset, seq: be32(b, seqOffset) };
}

interface Capture {
  proto: Proto;
  file: string;
  /** Sending order: template datagrams first. */
  dgs: Dg[];
  recordsPerCycle: number;
  otherPerCycle: number;
  /** records[i] = data records in the first i datagrams of a cycle. */
  prefix: number[];
  /** Sequence check: how many datagram-to-datagram steps in the capture disagree with our count. */
  seqMismatches: number;
}

const CAPTURES: Record<Proto, string> = {
  ipfix: 'ipfix_pmacct_nfprobe_flowlabel.pcap',
  netflow9: 'netflow9_pmacct_flowlabel.pcap',
  sflow: 'sflow_pmacct_sfprobe_rate1.pcap',
};

function loadCapture(proto: Proto): Capture {
  const file = CAPTURES[proto];
  const payloads = readCaptureFile(join(repoRoot(), 'test', 'fixtures', file)).datagrams.map((d) => d.payload);
  const tmpls = new Map<number, Tmpl>();
  // Count in capture order (templates may come before their data), then put template
  // datagrams first (a stable partition) for sending.
  const counted = payloads.map((p) => (proto === 'sflow' ? countSflow(p) : countFlowMessage(p, proto === 'netflow9', tmpls)));
  let seqMismatches = 0;
  for (let i = 0; i + 1 < counted.length; i++) {
    const a = counted[i]!;
    const step = ((counted[i + 1]!.seq! - a.seq!) >>> 0);
    const expect = proto === 'ipfix' ? a.records + a.other : 1;
    if (step !== expect) seqMismatches++;
  }
  const dgs = [...counted.filter((d) => d.hasTemplates), ...counted.filter((d) => !d.hasTemplates)];
  const prefix = [0];
  for (const d of dgs) prefix.push(prefix[prefix.length - 1]! + d.records);
  return {
    proto,
    file,
    dgs,
    recordsPerCycle: prefix[prefix.length - 1]!,
    otherPerCycle: dgs.reduce((s, d) => s + d.other, 0),
    prefix,
    seqMismatches,
  };
}

/** Data records in the first `n` datagrams sent (round-robin over the capture). */
function recordsIn(c: Capture, n: number): number {
  const len = c.dgs.length;
  return Math.floor(n / len) * c.recordsPerCycle + c.prefix[n % len]!;
}

/** The sender's file: per datagram u32 length, u32 seq offset, u32 seq advance, payload (big-endian). */
function writeDatagramFile(c: Capture, path: string): void {
  const parts: Buffer[] = [];
  for (const d of c.dgs) {
    const h = Buffer.alloc(12);
    h.writeUInt32BE(d.payload.length, 0);
    h.writeUInt32BE(d.seqOffset ?? 0xffffffff, 4);
    h.writeUInt32BE(c.proto === 'ipfix' ? d.records + d.other : 1, 8);
    parts.push(h, Buffer.from(d.payload.buffer, d.payload.byteOffset, d.payload.byteLength));
  }
  writeFileSync(path, Buffer.concat(parts));
}

// ---------------------------------------------------------------------------------------
// /proc: CPU of a process tree, UDP socket state
// ---------------------------------------------------------------------------------------

let clkTck = 100;

interface ProcCpu {
  pid: number;
  ppid: number;
  comm: string;
  /** utime + stime + cutime + cstime, in clock ticks. */
  ticks: number;
}

function readStat(pid: number): ProcCpu | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const close = s.lastIndexOf(')');
    const comm = s.slice(s.indexOf('(') + 1, close);
    const f = s.slice(close + 2).split(' ');
    // f[0] = state (field 3); f[1] = ppid; f[11..14] = utime, stime, cutime, cstime
    return { pid, ppid: Number(f[1]), comm, ticks: Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]) };
  } catch {
    return undefined;
  }
}

function allProcs(): ProcCpu[] {
  const out: ProcCpu[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const p = readStat(Number(name));
    if (p) out.push(p);
  }
  return out;
}

function descendants(root: number, procs: ProcCpu[] = allProcs()): number[] {
  const byParent = new Map<number, number[]>();
  for (const p of procs) byParent.set(p.ppid, [...(byParent.get(p.ppid) ?? []), p.pid]);
  const out: number[] = [];
  const stack = [...(byParent.get(root) ?? [])];
  while (stack.length > 0) {
    const pid = stack.pop()!;
    out.push(pid);
    stack.push(...(byParent.get(pid) ?? []));
  }
  return out;
}

interface TreeCpu {
  /** Seconds, the whole tree. */
  total: number;
  /** Seconds of the root process alone (pmacct: the core process). */
  root: number;
  /** Seconds per process name (pmacct's processes are named by role in cmdline, see below). */
  byRole: Map<string, number>;
}

function roleOf(pid: number, comm: string): string {
  try {
    // pmacct rewrites its argv: "nfacctd: Core Process [default]", "nfacctd: Print Plugin [p]".
    const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0+$/, '').replace(/\0/g, ' ');
    const m = cmd.match(/^\S+: (.*?)(?: \[.*\])?\s*$/);
    return m ? m[1]! : comm;
  } catch {
    return comm;
  }
}

function treeCpu(root: number): TreeCpu {
  const procs = allProcs();
  const byPid = new Map(procs.map((p) => [p.pid, p]));
  const pids = [root, ...descendants(root, procs)];
  const byRole = new Map<string, number>();
  let total = 0;
  let rootS = 0;
  for (const pid of pids) {
    const p = byPid.get(pid);
    if (!p) continue;
    const s = p.ticks / clkTck;
    total += s;
    if (pid === root) rootS = s;
    const role = roleOf(pid, p.comm);
    byRole.set(role, (byRole.get(role) ?? 0) + s);
  }
  return { total, root: rootS, byRole };
}

interface UdpSock {
  found: boolean;
  rxQueue: number;
  drops: number;
}

function udpSocket(port: number): UdpSock {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  const out: UdpSock = { found: false, rxQueue: 0, drops: 0 };
  for (const file of ['/proc/net/udp', '/proc/net/udp6']) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 13 || !f[1]!.endsWith(`:${hex}`) || f[3] !== '07') continue; // 07 = unconnected (listening)
      out.found = true;
      out.rxQueue += parseInt(f[4]!.split(':')[1]!, 16);
      out.drops += Number(f[f.length - 1]);
    }
  }
  return out;
}

/** The socket's receive buffer as the kernel has it (ss: skmem rb), for the report. */
function receiveBuffer(port: number): number | undefined {
  const r = spawnSync('ss', ['-u', '-a', '-n', '-m', `sport = :${port}`], { encoding: 'utf8' });
  const m = r.stdout?.match(/rb(\d+)/);
  return m ? Number(m[1]) : undefined;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------
// Collectors
// ---------------------------------------------------------------------------------------

interface Counted {
  records: number;
  /** Sequence-number problems the collector itself reported (nfdump, ours). */
  sequence?: string;
}

interface Running {
  child: ChildProcess;
  exited: Promise<void>;
  pid: number;
  port: number;
  /** Stops the collector (waits for its exit) and returns the records it stored/counted. */
  stopAndCount(): Promise<Counted>;
  output(): string;
}

function spawnPinned(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env): { child: ChildProcess; output: () => string; exited: Promise<void> } {
  const child = track(spawn('taskset', ['-c', '1', cmd, ...args], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] }));
  let out = '';
  const add = (b: Buffer): void => {
    out += b.toString();
    if (out.length > 200_000) out = out.slice(-100_000);
  };
  child.stdout!.on('data', add);
  child.stderr!.on('data', add);
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  return { child, output: () => out, exited };
}

/**
 * Sends `signal`, waits for the exit (SIGKILL after `timeoutMs`), then gives descendants that
 * outlived it (pmacct's plugins finishing their last dump) 5 s before killing them too.
 */
async function stopChild(child: ChildProcess, exited: Promise<void>, signal: NodeJS.Signals, timeoutMs = 15_000): Promise<void> {
  const pid = child.pid!;
  const kids = descendants(pid);
  child.kill(signal);
  const timer = setTimeout(() => {
    for (const k of descendants(pid)) tryKill(k, 'SIGKILL');
    child.kill('SIGKILL');
  }, timeoutMs);
  await exited;
  clearTimeout(timer);
  const alive = (k: number): boolean => {
    try {
      const s = readFileSync(`/proc/${k}/stat`, 'utf8');
      return s[s.lastIndexOf(')') + 2] !== 'Z';
    } catch {
      return false;
    }
  };
  for (let i = 0; i < 50 && kids.some(alive); i++) await sleep(100);
  for (const k of kids) if (alive(k)) tryKill(k, 'SIGKILL');
}

async function waitUntil(what: string, cond: () => boolean | Promise<boolean>, output: () => string, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`${what}: not ready after ${timeoutMs} ms\n${output().slice(-3000)}`);
    await sleep(50);
  }
}

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

interface ExportersAnswer {
  exporters: { datagrams: number; records: number; sequenceGaps: number; lostRecords: number }[];
}

async function startOurs(proto: Proto, port: number, dir: string, extra: string[]): Promise<Running> {
  const api = await freeTcpPort();
  const listener = (p: number): string => `[{ port: ${p}, bind: 127.0.0.1, receiveBufferBytes: ${RCVBUF} }]`;
  const conf = join(dir, 'scitags.yaml');
  writeFileSync(
    conf,
    [
      'listeners:',
      `  ipfix: ${listener(proto === 'ipfix' ? port : 0)}`,
      `  netflow: ${listener(proto === 'netflow9' ? port : 0)}`,
      `  sflow: ${listener(proto === 'sflow' ? port : 0)}`,
      `api: { port: ${api}, bind: 127.0.0.1 }`,
      `store: { type: sqlite, path: ${JSON.stringify(join(dir, 'bench.sqlite'))} }`,
      `registry: { url: '', cacheFile: '' }`,
      `decoder: { stateFile: '' }`,
      'log: { level: error }',
      '',
    ].join('\n'),
  );
  // Nothing from the caller's environment may reconfigure it.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SCITAGS_')));
  const p = spawnPinned(process.execPath, [CLI, 'serve', '-c', conf, ...extra], dir, env);
  const base = `http://127.0.0.1:${api}`;
  await waitUntil('scitags-collector serve', () => p.output().includes('API: http') && udpSocket(port).found, p.output);
  const counted = async (): Promise<Counted> => {
    const ex = (await getJson<ExportersAnswer>(`${base}/api/v1/exporters`)).exporters;
    const sum = (f: (e: ExportersAnswer['exporters'][number]) => number): number => ex.reduce((s, e) => s + f(e), 0);
    return { records: sum((e) => e.records), sequence: `${sum((e) => e.sequenceGaps)} sequence gaps (${sum((e) => e.lostRecords)} records lost)` };
  };
  return {
    child: p.child,
    exited: p.exited,
    pid: p.child.pid!,
    port,
    output: p.output,
    stopAndCount: async () => {
      const n = await counted();
      await stopChild(p.child, p.exited, 'SIGTERM');
      return n;
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

function runSender(sender: string, file: string, port: number, o: Options): Promise<{ sent: number; errors: number; elapsed: number }> {
  return new Promise((resolve, reject) => {
    const c = track(spawn('taskset', ['-c', '0', sender, file, String(port), String(o.rate), String(o.seconds), String(o.batch)], { stdio: ['ignore', 'pipe', 'pipe'] }));
    let out = '';
    c.stdout!.on('data', (b: Buffer) => (out += b.toString()));
    c.stderr!.on('data', (b: Buffer) => (out += b.toString()));
    c.once('exit', (code) => {
      const m = out.match(/sent (\d+) errors (\d+) elapsed ([\d.]+)/);
      if (code !== 0 || !m) reject(new Error(`sender exited with ${code}: ${out}`));
      else resolve({ sent: Number(m[1]), errors: Number(m[2]), elapsed: Number(m[3]) });
    });
  });
}

/**
 * Waits until the collector has worked through what was sent: its socket queue is empty and
 * its CPU stopped moving for 400 ms. Only /proc is polled, never the collector itself (our
 * API would charge the collector CPU the C collectors do not pay); every collector works
 * through its own internal queues while it uses CPU.
 */
async function drain(r: Running): Promise<void> {
  const end = Date.now() + 60_000;
  let lastCpu = treeCpu(r.pid).total;
  let quiet = 0;
  while (Date.now() < end) {
    await sleep(100);
    const cpu = treeCpu(r.pid).total;
    const sock = udpSocket(r.port);
    // "Idle": at most 2 clock ticks per 100 ms (timers, pmacct's once-a-second dumps).
    const idle = sock.rxQueue === 0 && cpu - lastCpu <= 2.5 / clkTck;
    quiet = idle ? quiet + 1 : 0;
    lastCpu = cpu;
    if (quiet >= 4) return;
  }
  console.warn(`  (${r.port}: still busy after 60 s of draining; counting anyway)`);
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
    const cpu0 = treeCpu(r.pid);
    const s = await runSender(sender, dgFile, port, o);
    const cpuSent = treeCpu(r.pid);
    await drain(r);
    const cpu1 = treeCpu(r.pid);
    const drops = udpSocket(port).drops;
    const running = r;
    r = undefined;
    const { records: received, sequence } = await running.stopAndCount();
    const recordsSent = recordsIn(cap, s.sent + s.errors);
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
      lossPct: (100 * (1 - received / recordsSent)),
      kernelDrops: drops,
      cpuS,
      cpuByRole,
      cpuAtSendEndS: cpuSent.total - cpu0.total,
      recordsPerCpuS: received / cpuS,
      rcvbuf,
      sequence,
    };
  } finally {
    // Only set when something failed before the collector was stopped.
    if (r) {
      if (process.env.SCITAGS_PEERS_DEBUG) console.error(r.output());
      await stopChild(r.child, r.exited, 'SIGKILL');
    }
    rmSync(dir, { recursive: true, force: true });
    tempDirs.delete(dir);
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
  const bestC = Math.max(...(['pmacct', 'nfdump'] as const).map((k) => median((results.get(k) ?? []).map((r) => r.recordsPerCpuS))).filter((x) => Number.isFinite(x)));
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
  const args = process.argv.slice(2).map((a) => (/[\s"']/.test(a) ? JSON.stringify(a) : a)).join(' ');
  const command = process.env.npm_lifecycle_event === 'bench:peers' ? `npm run bench:peers${args ? ` -- ${args}` : ''}` : `node dist/test/bench/peers.js ${args}`.trim();
  ensurePackages();
  const rmem = ensureRmemMax();
  clkTck = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build first`);
  const work = tempDir('scitags-peers-');
  const sender = compileSender(work);

  const header = [
    `# bench:peers — ${new Date().toISOString()}`,
    `command: ${command}`,
    ...machine(),
    rmem,
    `offered: ${int(o.rate)} datagrams/s for ${o.seconds} s per run, sendmmsg batches of ${o.batch}; ${o.runs} run(s) per collector; medians (min–max)`,
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
    const block = [
      '',
      title,
      '',
      ...table(o, results),
      '',
      ...notes(results),
    ];
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
    console.error(err instanceof Error ? err.stack ?? err.message : err);
    killAll();
    removeTemp();
    process.exit(1);
  });
