/**
 * Loopback bench machinery shared by `npm run bench:peers` (peers.ts) and the end-to-end
 * bench (e2e.ts): pmacct's captures turned into a datagram file for test/bench/sendmmsg.c (a
 * paced C sendmmsg sender, compiled here with `cc -O2`), collectors spawned pinned to CPUs
 * with taskset, CPU of a process tree and UDP socket state (queue, kernel drops) from /proc,
 * peak RSS (VmHWM), and a cleanup that kills every child and removes every temp dir, also on
 * Ctrl-C and errors (installCleanup()).
 *
 * Records are counted here, independently of our decoders: IPFIX / NetFlow v9 data records
 * (options data records apart) and sFlow flow samples (counter samples apart).
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readCaptureFile } from '../../collectors/pcap.js';
import { CLI, getJson } from '../support/daemon.js';
import { freeTcpPort } from '../support/influxd.js';
import { repoRoot } from './common.js';

export type Proto = 'ipfix' | 'netflow9' | 'sflow';
export const PROTOS: readonly Proto[] = ['ipfix', 'netflow9', 'sflow'];

// ---------------------------------------------------------------------------------------
// Cleanup: every child and temp dir goes, also on Ctrl-C and errors
// ---------------------------------------------------------------------------------------

const children = new Set<ChildProcess>();
const tempDirs = new Set<string>();

export function killAll(): void {
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null) {
      // pmacct's plugins are their own processes: kill the descendants too.
      if (c.pid !== undefined) for (const pid of descendants(c.pid)) tryKill(pid, 'SIGKILL');
      c.kill('SIGKILL');
    }
  }
  children.clear();
}

export function removeTemp(): void {
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
  tempDirs.clear();
}

export function tryKill(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

export function track(c: ChildProcess): ChildProcess {
  children.add(c);
  c.once('exit', () => children.delete(c));
  return c;
}

export function tempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.add(d);
  return d;
}

/** Removes a temp dir made by tempDir() now. */
export function removeTempDir(d: string): void {
  rmSync(d, { recursive: true, force: true });
  tempDirs.delete(d);
}

let cleanupInstalled = false;

/** Kills every tracked child and removes every temp dir at exit, on SIGINT/SIGTERM/SIGHUP. */
export function installCleanup(): void {
  if (cleanupInstalled) return;
  cleanupInstalled = true;
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
}

// ---------------------------------------------------------------------------------------
// Machine set-up: rmem_max, sender
// ---------------------------------------------------------------------------------------

export function which(bin: string): string | undefined {
  const r = spawnSync('sh', ['-c', `command -v ${bin}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

export function asRoot(cmd: string[]): string[] {
  if (process.getuid?.() === 0) return cmd;
  if (which('sudo')) return ['sudo', '-n', ...cmd];
  return cmd; // will fail with a clear message
}

export const RCVBUF = 4 * 1024 * 1024;

/** Makes sure net.core.rmem_max allows a 4 MiB receive buffer; returns what happened. */
export function ensureRmemMax(): string {
  const read = (): number => Number(readFileSync('/proc/sys/net/core/rmem_max', 'utf8').trim());
  const before = read();
  if (before >= RCVBUF) return `net.core.rmem_max = ${before} (enough for ${RCVBUF}; left as is)`;
  const cmd = asRoot(['sysctl', '-w', `net.core.rmem_max=${RCVBUF}`]);
  const r = spawnSync(cmd[0]!, cmd.slice(1), { encoding: 'utf8' });
  const after = read();
  if (after >= RCVBUF) return `net.core.rmem_max raised from ${before} to ${after} with sysctl`;
  return `net.core.rmem_max = ${after}: could NOT raise it to ${RCVBUF} (${(r.stderr || r.stdout || '').trim() || `exit ${r.status}`}); receive buffers are capped at ${after}`;
}

export function compileSender(dir: string): string {
  const src = join(repoRoot(), 'test', 'bench', 'sendmmsg.c');
  const out = join(dir, 'sendmmsg');
  execFileSync('cc', ['-O2', '-Wall', '-o', out, src], { stdio: 'inherit' });
  return out;
}

export function firstLine(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return (
    `${r.stdout ?? ''}${r.stderr ?? ''}`
      .split('\n')
      .find((l) => l.trim() !== '')
      ?.trim() ?? '?'
  );
}

// ---------------------------------------------------------------------------------------
// Datagrams: counting records independently, and the sender's file
// ---------------------------------------------------------------------------------------

export interface Dg {
  payload: Uint8Array;
  /** Data records (IPFIX / v9 flow records, sFlow flow samples). */
  records: number;
  /** Options data records (IPFIX / v9), counter samples (sFlow). */
  other: number;
  hasTemplates: boolean;
  seqOffset: number | undefined;
  seq: number | undefined;
}

export const be16 = (b: Uint8Array, o: number): number => (b[o]! << 8) | b[o + 1]!;
export const be32 = (b: Uint8Array, o: number): number => ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;

export interface Tmpl {
  /** Field lengths; 65535 = IPFIX variable length. */
  lengths: number[];
  options: boolean;
}

/** Counts records in one IPFIX (v10) or NetFlow v9 message; templates persist in `tmpls`. */
export function countFlowMessage(b: Uint8Array, v9: boolean, tmpls: Map<number, Tmpl>): Dg {
  const hdr = v9 ? 20 : 16;
  const end = v9 ? b.length : Math.min(b.length, be16(b, 2));
  let records = 0;
  let other = 0;
  let hasTemplates = false;
  for (let o = hdr; o + 4 <= end;) {
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

export function countSflow(b: Uint8Array): Dg {
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

export interface Capture {
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

export const CAPTURES: Record<Proto, string> = {
  ipfix: 'ipfix_pmacct_nfprobe_flowlabel.pcap',
  netflow9: 'netflow9_pmacct_flowlabel.pcap',
  sflow: 'sflow_pmacct_sfprobe_rate1.pcap',
};

export function loadCapture(proto: Proto): Capture {
  const file = CAPTURES[proto];
  const payloads = readCaptureFile(join(repoRoot(), 'test', 'fixtures', file)).datagrams.map((d) => d.payload);
  const tmpls = new Map<number, Tmpl>();
  // Count in capture order (templates may come before their data), then put template
  // datagrams first (a stable partition) for sending.
  const counted = payloads.map((p) => (proto === 'sflow' ? countSflow(p) : countFlowMessage(p, proto === 'netflow9', tmpls)));
  let seqMismatches = 0;
  for (let i = 0; i + 1 < counted.length; i++) {
    const a = counted[i]!;
    const step = (counted[i + 1]!.seq! - a.seq!) >>> 0;
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
export function recordsIn(c: Capture, n: number): number {
  const len = c.dgs.length;
  return Math.floor(n / len) * c.recordsPerCycle + c.prefix[n % len]!;
}

/** The sender's file: per datagram u32 length, u32 seq offset, u32 seq advance, payload (big-endian). */
export function writeDatagramFile(c: Capture, path: string): void {
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

let clkTckCached: number | undefined;

/** Clock ticks per second (getconf CLK_TCK; 100 when that fails), the unit of /proc/PID/stat times. */
export function clkTck(): number {
  clkTckCached ??= Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout?.trim()) || 100;
  return clkTckCached;
}

export interface ProcCpu {
  pid: number;
  ppid: number;
  comm: string;
  /** utime + stime + cutime + cstime, in clock ticks. */
  ticks: number;
}

export function readStat(pid: number): ProcCpu | undefined {
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

export function allProcs(): ProcCpu[] {
  const out: ProcCpu[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const p = readStat(Number(name));
    if (p) out.push(p);
  }
  return out;
}

export function descendants(root: number, procs: ProcCpu[] = allProcs()): number[] {
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

export interface TreeCpu {
  /** Seconds, the whole tree. */
  total: number;
  /** Seconds of the root process alone (pmacct: the core process). */
  root: number;
  /** Seconds per process name (pmacct's processes are named by role in cmdline, see below). */
  byRole: Map<string, number>;
}

export function roleOf(pid: number, comm: string): string {
  try {
    // pmacct rewrites its argv: "nfacctd: Core Process [default]", "nfacctd: Print Plugin [p]".
    const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0+$/, '').replace(/\0/g, ' ');
    const m = cmd.match(/^\S+: (.*?)(?: \[.*\])?\s*$/);
    return m ? m[1]! : comm;
  } catch {
    return comm;
  }
}

export function treeCpu(root: number): TreeCpu {
  const procs = allProcs();
  const byPid = new Map(procs.map((p) => [p.pid, p]));
  const pids = [root, ...descendants(root, procs)];
  const byRole = new Map<string, number>();
  let total = 0;
  let rootS = 0;
  for (const pid of pids) {
    const p = byPid.get(pid);
    if (!p) continue;
    const s = p.ticks / clkTck();
    total += s;
    if (pid === root) rootS = s;
    const role = roleOf(pid, p.comm);
    byRole.set(role, (byRole.get(role) ?? 0) + s);
  }
  return { total, root: rootS, byRole };
}

export interface UdpSock {
  found: boolean;
  rxQueue: number;
  drops: number;
}

export function udpSocket(port: number): UdpSock {
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
export function receiveBuffer(port: number): number | undefined {
  const r = spawnSync('ss', ['-u', '-a', '-n', '-m', `sport = :${port}`], { encoding: 'utf8' });
  const m = r.stdout?.match(/rb(\d+)/);
  return m ? Number(m[1]) : undefined;
}

/** Peak resident set size (VmHWM, /proc/PID/status) in MiB; NaN when the process is gone. */
export function peakRssMB(pid: number): number {
  try {
    const kb = readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmHWM:\s*(\d+)\s*kB/m)?.[1];
    return kb === undefined ? NaN : Number(kb) / 1024;
  } catch {
    return NaN;
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------
// Collectors
// ---------------------------------------------------------------------------------------

export interface Counted {
  records: number;
  /** Sequence-number problems the collector itself reported (nfdump, ours). */
  sequence?: string;
}

export interface Running {
  child: ChildProcess;
  exited: Promise<void>;
  pid: number;
  port: number;
  /** Stops the collector (waits for its exit) and returns the records it stored/counted. */
  stopAndCount(): Promise<Counted>;
  output(): string;
}

/** Spawns `cmd` under `taskset -c CPUS` (default CPU 1, the collector's), tracked for cleanup. */
export function spawnPinned(
  cmd: string,
  args: string[],
  cwd: string,
  env: NodeJS.ProcessEnv = process.env,
  cpuList = '1',
): { child: ChildProcess; output: () => string; exited: Promise<void> } {
  const child = track(spawn('taskset', ['-c', cpuList, cmd, ...args], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] }));
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
export async function stopChild(child: ChildProcess, exited: Promise<void>, signal: NodeJS.Signals, timeoutMs = 15_000): Promise<void> {
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

export async function waitUntil(
  what: string,
  cond: () => boolean | Promise<boolean>,
  output: () => string,
  timeoutMs = 20_000,
): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`${what}: not ready after ${timeoutMs} ms\n${output().slice(-3000)}`);
    await sleep(50);
  }
}

export interface ExportersAnswer {
  exporters: { datagrams: number; records: number; sequenceGaps: number; lostRecords: number }[];
}

export interface OursOptions {
  /** taskset CPU list (default '1'). */
  cpuList?: string;
  /** SCITAGS_* variables of this process passed on (default none: nothing may reconfigure it). */
  passEnv?: readonly string[];
  /** Options for node itself (e.g. --cpu-prof). */
  nodeArgs?: readonly string[];
}

export interface OursRunning extends Running {
  /** http://127.0.0.1:PORT of its API. */
  api: string;
  /** Records decoded so far (GET /api/v1/exporters; a request: costs the daemon some CPU). */
  counted(): Promise<Counted>;
}

/**
 * `scitags-collector serve -c CONFIG EXTRA...`: only the protocol's listener (4 MiB receive
 * buffer), the API on a free 127.0.0.1 port, SQLite in `dir`, no registry download, no
 * decoder state file, log level error.
 */
export async function startOurs(proto: Proto, port: number, dir: string, extra: string[], opts: OursOptions = {}): Promise<OursRunning> {
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
      // Off: its default port (10514) would collide with a collector already running here.
      `  firefly: ${listener(0)}`,
      `api: { port: ${api}, bind: 127.0.0.1 }`,
      `store: { type: sqlite, path: ${JSON.stringify(join(dir, 'bench.sqlite'))} }`,
      `registry: { url: '', cacheFile: '' }`,
      `decoder: { stateFile: '' }`,
      'log: { level: error }',
      '',
    ].join('\n'),
  );
  // Nothing from the caller's environment may reconfigure it (but what `passEnv` names).
  const passEnv = opts.passEnv ?? [];
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SCITAGS_') || passEnv.includes(k)));
  const p = spawnPinned(process.execPath, [...(opts.nodeArgs ?? []), CLI, 'serve', '-c', conf, ...extra], dir, env, opts.cpuList ?? '1');
  const base = `http://127.0.0.1:${api}`;
  // Ready when the UDP socket is bound and the API answers: the log runs at level error
  // (its output would cost CPU in the measurement), so the start-up lines are not printed.
  const apiAnswers = async (): Promise<boolean> => {
    try {
      return (await fetch(`${base}/health`)).status < 500;
    } catch {
      return false;
    }
  };
  await waitUntil('scitags-collector serve', async () => udpSocket(port).found && (await apiAnswers()), p.output);
  const counted = async (): Promise<Counted> => {
    const ex = (await getJson<ExportersAnswer>(`${base}/api/v1/exporters`)).exporters;
    const sum = (f: (e: ExportersAnswer['exporters'][number]) => number): number => ex.reduce((s, e) => s + f(e), 0);
    return {
      records: sum((e) => e.records),
      sequence: `${sum((e) => e.sequenceGaps)} sequence gaps (${sum((e) => e.lostRecords)} records lost)`,
    };
  };
  return {
    child: p.child,
    exited: p.exited,
    pid: p.child.pid!,
    port,
    output: p.output,
    api: base,
    counted,
    stopAndCount: async () => {
      const n = await counted();
      await stopChild(p.child, p.exited, 'SIGTERM');
      return n;
    },
  };
}

export interface SendOptions {
  /** Datagrams/s, seconds of sending, datagrams per sendmmsg() call. */
  rate: number;
  seconds: number;
  batch: number;
  /** Exporters played (sockets bound to 127.0.1.1, .2, ...); default 1 (the sender's default socket). */
  sources?: number;
}

export interface SendResult {
  sent: number;
  errors: number;
  /** Datagrams (sent or failed) per source; each source starts the capture's cycle afresh. */
  perSource: number[];
  /** Seconds from the first to the last send. */
  elapsed: number;
}

/** Runs the compiled sendmmsg sender pinned to `cpuList` (default CPU 0). */
export function runSender(sender: string, file: string, port: number, o: SendOptions, cpuList = '0'): Promise<SendResult> {
  return new Promise((resolve, reject) => {
    const c = track(
      spawn(
        'taskset',
        ['-c', cpuList, sender, file, String(port), String(o.rate), String(o.seconds), String(o.batch), String(o.sources ?? 1)],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      ),
    );
    let out = '';
    c.stdout!.on('data', (b: Buffer) => (out += b.toString()));
    c.stderr!.on('data', (b: Buffer) => (out += b.toString()));
    c.once('exit', (code) => {
      const m = out.match(/sent (\d+) errors (\d+) elapsed ([\d.]+)(?: per-source ([\d,]+))?/);
      if (code !== 0 || !m) reject(new Error(`sender exited with ${code}: ${out}`));
      else {
        const sent = Number(m[1]);
        const errors = Number(m[2]);
        resolve({ sent, errors, elapsed: Number(m[3]), perSource: m[4] ? m[4].split(',').map(Number) : [sent + errors] });
      }
    });
  });
}

/**
 * Waits until the collector has worked through what was sent: its socket queue is empty and
 * its CPU stopped moving for 400 ms. Only /proc is polled, never the collector itself (our
 * API would charge the collector CPU the C collectors do not pay); every collector works
 * through its own internal queues while it uses CPU.
 */
export async function drain(r: Running): Promise<void> {
  const end = Date.now() + 60_000;
  let lastCpu = treeCpu(r.pid).total;
  let quiet = 0;
  while (Date.now() < end) {
    await sleep(100);
    const cpu = treeCpu(r.pid).total;
    const sock = udpSocket(r.port);
    // "Idle": at most 2 clock ticks per 100 ms (timers, pmacct's once-a-second dumps).
    const idle = sock.rxQueue === 0 && cpu - lastCpu <= 2.5 / clkTck();
    quiet = idle ? quiet + 1 : 0;
    lastCpu = cpu;
    if (quiet >= 4) return;
  }
  console.warn(`  (${r.port}: still busy after 60 s of draining; counting anyway)`);
}
