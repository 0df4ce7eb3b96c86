/**
 * A mutation fuzzer for the daemon's decode path (DatagramDecoder: protocol table, IPFIX,
 * NetFlow v5/v9 and sFlow decoders, enrichment sink). Seeds are every datagram of every
 * fixture capture; mutants (bit flips, byte inserts and deletes, length-field edits, splices
 * between datagrams, truncations) go through two decoders:
 *  - a fresh one per execution, primed with its capture's template datagrams (so data sets
 *    meet their templates), which makes every outcome reproducible from the input alone;
 *  - one long-lived decoder shared by the whole run, whose state every mutant changes.
 * Oracle: decodeInto never throws; every error is a DecodeError with a catalogue code and
 * never `decoder-crash`; outcome counters and records' packets/bytes are finite and
 * non-negative. An input whose fresh outcome has a signature (protocol, error codes,
 * which counters moved) not seen before is "interesting" and may be kept in the corpus.
 */
import { createHash } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { readCaptureFile } from '../../collectors/pcap.js';
import { type DatagramOutcome, emptyOutcome } from '../../decoders/decoder.js';
import { DecodeError, DecodeErrorCodes } from '../../decoders/errors.js';
import {
  type DatagramDecoderOptions,
  DatagramDecoder,
  DEFAULT_DECODER_OPTIONS,
  type RecordAggregator,
} from '../../src/pipeline/decoder.js';
import { repoRoot } from '../support/root.js';

/** Mutants are kept below this (a jumbo-sized datagram; corpus files stay small). */
/**
 * A full garbage collection before each heap reading, so the growth figure is what the
 * decoders keep, not garbage not yet collected. Under vitest there is no --expose-gc: the
 * flag is set at run time and `gc` taken from a fresh context (Node 24's collector leaves far
 * more garbage between readings than Node 20's, measured 150 MB against a 64 MB bound).
 */
function collectGarbage(): void {
  if (typeof global.gc === 'function') {
    global.gc();
    return;
  }
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

export const MAX_INPUT_BYTES = 2048;
const RECEIVED_MS = Date.UTC(2025, 8, 4, 12, 0, 0);
/** The options the daemon's decode stage uses (src/pipeline/stage.ts). */
const OPTIONS: DatagramDecoderOptions = { ...DEFAULT_DECODER_OPTIONS, crashDir: '' };
const KNOWN_CODES = new Set<string>(DecodeErrorCodes);
/** The outcome's counters, in the order a finding names them (records last: nearly every input moves it). */
const OUTCOME_COUNTERS = [
  'templateMisses',
  'sequenceGaps',
  'lostRecords',
  'lostDatagrams',
  'lostSamples',
  'unknownSampling',
  'noVolume',
  'records',
] as const;

export interface Seed {
  capture: string;
  payload: Uint8Array;
  srcAddr: string;
  srcPort: number;
}

export interface Capture {
  name: string;
  seeds: Seed[];
  /** Datagrams carrying IPFIX / NetFlow v9 templates, deduplicated: replayed into each fresh decoder. */
  primers: Seed[];
}

/** Does an IPFIX (set id 2, 3) or NetFlow v9 (flowset id 0, 1) datagram carry a template? */
function carriesTemplates(p: Uint8Array): boolean {
  if (p.length < 20) return false;
  const v = new DataView(p.buffer, p.byteOffset, p.byteLength);
  const version = v.getUint16(0);
  let off = version === 10 ? 16 : version === 9 ? 20 : -1;
  if (off < 0) return false;
  while (off + 4 <= p.length) {
    const id = v.getUint16(off);
    const len = v.getUint16(off + 2);
    if (version === 10 ? id === 2 || id === 3 : id === 0 || id === 1) return true;
    if (len < 4) return false;
    off += len;
  }
  return false;
}

/** Every fixture capture (test/fixtures/*.pcap) with its datagrams as seeds. */
export function loadCaptures(): Capture[] {
  // From test/ under vitest and from dist/test/ (npm run fuzz) alike.
  const dir = join(repoRoot(), 'test', 'fixtures');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.pcap'))
    .sort()
    .map((file) => {
      const name = file.replace(/\.pcap$/, '');
      const seeds = readCaptureFile(join(dir, file)).datagrams.map((d) => ({
        capture: name,
        payload: Uint8Array.from(d.payload),
        srcAddr: d.srcAddr,
        srcPort: d.srcPort,
      }));
      const seen = new Set<string>();
      const primers = seeds.filter((s) => {
        if (!carriesTemplates(s.payload)) return false;
        const key = `${s.srcAddr}|${s.srcPort}|${Buffer.from(s.payload).toString('hex')}`;
        if (seen.has(key)) return false;
        seen.add(key);
        return true;
      });
      return { name, seeds, primers };
    });
}

/** mulberry32: a small seeded generator, so a run is reproducible from its seed. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const INTERESTING_16 = [0, 1, 2, 3, 4, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0xfffe, 0xffff];
const INTERESTING_32 = [0, 1, 0x7fffffff, 0x80000000, 0xffffffff, 0x10000];

export type MutationKind = 'bitflip' | 'insert' | 'delete' | 'length' | 'splice' | 'truncate' | 'duplicate';
export const MUTATIONS: readonly MutationKind[] = ['bitflip', 'insert', 'delete', 'length', 'splice', 'truncate', 'duplicate'];

/** One mutation of `input`; `other` is the splice partner. Never longer than MAX_INPUT_BYTES. */
export function mutate(input: Uint8Array, kind: MutationKind, other: Uint8Array, r: () => number): Uint8Array {
  const n = input.length;
  const at = (limit: number): number => Math.floor(r() * Math.max(1, limit));
  let out: Uint8Array;
  switch (kind) {
    case 'bitflip': {
      out = Uint8Array.from(input);
      const flips = 1 + at(8);
      for (let i = 0; i < flips && n > 0; i++) out[at(n)]! ^= 1 << at(8);
      break;
    }
    case 'insert': {
      const pos = at(n + 1);
      const add = Uint8Array.from({ length: 1 + at(16) }, () => at(256));
      out = new Uint8Array(n + add.length);
      out.set(input.subarray(0, pos));
      out.set(add, pos);
      out.set(input.subarray(pos), pos + add.length);
      break;
    }
    case 'delete': {
      const pos = at(n);
      const len = Math.min(n - pos, 1 + at(16));
      out = new Uint8Array(n - len);
      out.set(input.subarray(0, pos));
      out.set(input.subarray(pos + len), pos);
      break;
    }
    case 'length': {
      // A 16- or 32-bit field at an even offset set to an edge value or near the real length.
      out = Uint8Array.from(input);
      if (n < 4) break;
      const v = new DataView(out.buffer);
      const wide = r() < 0.3;
      const pos = at(n - (wide ? 4 : 2)) & ~1;
      const near = (v.getUint16(pos) + at(9) - 4) & 0xffff;
      if (wide) v.setUint32(pos, INTERESTING_32[at(INTERESTING_32.length)]!);
      else v.setUint16(pos, r() < 0.5 ? near : INTERESTING_16[at(INTERESTING_16.length)]!);
      break;
    }
    case 'splice': {
      const cut = at(n + 1);
      const from = at(other.length + 1);
      out = new Uint8Array(cut + other.length - from);
      out.set(input.subarray(0, cut));
      out.set(other.subarray(from), cut);
      break;
    }
    case 'truncate':
      out = input.slice(0, at(n));
      break;
    case 'duplicate': {
      const pos = at(n);
      const chunk = input.subarray(pos, pos + 1 + at(64));
      out = new Uint8Array(n + chunk.length);
      out.set(input.subarray(0, pos + chunk.length));
      out.set(chunk, pos + chunk.length);
      out.set(input.subarray(pos + chunk.length), pos + 2 * chunk.length);
      break;
    }
  }
  return out.length > MAX_INPUT_BYTES ? out.subarray(0, MAX_INPUT_BYTES) : out;
}

/** What an input did: the basis of "interesting" and of the corpus' exact expectations. */
export interface Observation {
  signature: string;
  errorCodes: string[];
  outcome: DatagramOutcome;
}

export function signatureOf(out: DatagramOutcome): string {
  const codes = [...new Set(out.errors.map((e) => e.code))].sort();
  const moved = (
    ['records', 'templateMisses', 'sequenceGaps', 'lostRecords', 'lostDatagrams', 'lostSamples', 'unknownSampling', 'noVolume'] as const
  )
    .filter((k) => out[k] > 0)
    .join(',');
  return `${out.protocol ?? 'none'}|${codes.join(',')}|${moved}`;
}

/** An oracle violation: the input and what went wrong. */
export interface Violation {
  input: Uint8Array;
  seed: Seed;
  problem: string;
}

/** Checks one decode; returns the problem, or undefined when the oracle holds. */
function check(decoder: DatagramDecoder, input: Uint8Array, seed: Seed, sink: CheckingSink): { out?: DatagramOutcome; problem?: string } {
  const crashesBefore = decoder.totals.decoderCrashes;
  sink.problem = undefined;
  let out: DatagramOutcome;
  try {
    out = decoder.decodeInto(input, seed.srcAddr, seed.srcPort, RECEIVED_MS, 'any', sink);
  } catch (err) {
    return { problem: `decodeInto threw: ${err instanceof Error ? err.stack : String(err)}` };
  }
  if (decoder.totals.decoderCrashes !== crashesBefore)
    return { out, problem: `decoder-crash: ${out.errors.map((e) => e.message).join('; ')}` };
  for (const e of out.errors) {
    if (!(e instanceof DecodeError)) return { out, problem: `not a DecodeError: ${String(e)}` };
    if (!KNOWN_CODES.has(e.code) || e.code === 'decoder-crash') return { out, problem: `error code ${e.code}` };
  }
  for (const k of OUTCOME_COUNTERS) {
    const v = out[k];
    if (!Number.isFinite(v) || v < 0) return { out, problem: `outcome.${k} = ${v}` };
  }
  if (out.records !== sink.count) return { out, problem: `outcome.records ${out.records} but ${sink.count} records handed on` };
  if (sink.problem) return { out, problem: sink.problem };
  return { out };
}

/** The record sink of a checked decode: counts records and checks their counts. */
class CheckingSink implements RecordAggregator {
  count = 0;
  problem: string | undefined;
  add(rec: { packets: number; bytes: number; samplingRate: number }): void {
    this.count++;
    for (const k of ['packets', 'bytes', 'samplingRate'] as const) {
      const v = rec[k];
      if (!Number.isFinite(v) || v < 0) this.problem ??= `record.${k} = ${v}`;
    }
  }
  reset(): this {
    this.count = 0;
    this.problem = undefined;
    return this;
  }
}

/** A fresh decoder primed with the capture's templates (the deterministic path). */
export function primedDecoder(capture: Capture | undefined): DatagramDecoder {
  const d = new DatagramDecoder(OPTIONS);
  const sink = new CheckingSink();
  for (const p of capture?.primers ?? []) d.decodeInto(p.payload, p.srcAddr, p.srcPort, RECEIVED_MS, 'any', sink.reset());
  return d;
}

/** Decodes `input` as `seed`'s exporter in a fresh primed decoder: what the corpus replays. */
export function observeFresh(capture: Capture | undefined, seed: Seed, input: Uint8Array): Observation & { problem?: string } {
  const d = primedDecoder(capture);
  const r = check(d, input, seed, new CheckingSink());
  const out = r.out ?? emptyOutcome();
  return {
    signature: signatureOf(out),
    errorCodes: out.errors.map((e) => e.code),
    outcome: out,
    ...(r.problem ? { problem: r.problem } : {}),
  };
}

export interface Finding {
  input: Uint8Array;
  seed: Seed;
  signature: string;
  /** The exporter counter this input must move when replayed (e.g. errorsByCode.bad-length). */
  counter: string;
}

export interface FuzzReport {
  executions: number;
  seconds: number;
  seeds: number;
  captures: number;
  /** Distinct fresh-path signatures, seeds included. */
  signatures: number;
  findings: Finding[];
  violations: Violation[];
  byMutation: Record<MutationKind, number>;
  heapGrowthBytes: number;
  sharedExporters: number;
}

/** The counter a finding names: its rarest error code, else the first outcome counter that moved. */
function counterOf(out: DatagramOutcome, codeCounts: Map<string, number>): string {
  const codes = [...new Set(out.errors.map((e) => e.code))];
  if (codes.length > 0) {
    codes.sort((a, b) => (codeCounts.get(a) ?? 0) - (codeCounts.get(b) ?? 0) || a.localeCompare(b));
    return `errorsByCode.${codes[0]}`;
  }
  for (const k of OUTCOME_COUNTERS) {
    if (out[k] > 0) return k;
  }
  return 'datagrams';
}

/** Reads the named counter from a decoder's exporter table. */
export function counterValue(decoder: DatagramDecoder, exporter: string, counter: string): number {
  const e = decoder.exporters.get(exporter, RECEIVED_MS);
  if (counter.startsWith('errorsByCode.')) return e.errorsByCode.get(counter.slice('errorsByCode.'.length) as never) ?? 0;
  const v = (e as unknown as Record<string, unknown>)[counter];
  return typeof v === 'number' ? v : NaN;
}

export function fileNameOf(input: Uint8Array): string {
  return `${createHash('sha256').update(input).digest('hex').slice(0, 16)}.bin`;
}

/**
 * Runs mutants for `seconds` (wall clock). `known`: signatures already in the corpus (not
 * reported again). Stops early after `maxExecutions` when given.
 */
export function fuzz(opts: {
  seconds: number;
  seed?: number;
  known?: Iterable<string>;
  maxFindings?: number;
  maxExecutions?: number;
}): FuzzReport {
  const r = rng(opts.seed ?? 1);
  const captures = loadCaptures();
  const byName = new Map(captures.map((c) => [c.name, c]));
  const seeds = captures.flatMap((c) => c.seeds);
  const seen = new Set<string>(opts.known ?? []);
  const codeCounts = new Map<string, number>();
  for (const s of seeds) {
    const o = observeFresh(byName.get(s.capture), s, s.payload);
    seen.add(o.signature);
    for (const c of o.errorCodes) codeCounts.set(c, (codeCounts.get(c) ?? 0) + 1);
  }
  // The long-lived decoder starts with every capture's templates and keeps whatever mutants leave.
  const shared = new DatagramDecoder(OPTIONS);
  const sharedSink = new CheckingSink();
  for (const s of seeds) shared.decodeInto(s.payload, s.srcAddr, s.srcPort, RECEIVED_MS, 'any', sharedSink.reset());
  collectGarbage();
  const heapBefore = process.memoryUsage().heapUsed;
  const findings: Finding[] = [];
  const violations: Violation[] = [];
  const byMutation = Object.fromEntries(MUTATIONS.map((m) => [m, 0])) as Record<MutationKind, number>;
  const started = process.hrtime.bigint();
  const budgetNs = BigInt(Math.round(opts.seconds * 1e9));
  let executions = 0;
  while (process.hrtime.bigint() - started < budgetNs && (opts.maxExecutions === undefined || executions < opts.maxExecutions)) {
    const seed = seeds[Math.floor(r() * seeds.length)]!;
    const capture = byName.get(seed.capture);
    let input = seed.payload;
    const stacked = 1 + Math.floor(r() * 4);
    for (let i = 0; i < stacked; i++) {
      const kind = MUTATIONS[Math.floor(r() * MUTATIONS.length)]!;
      byMutation[kind]++;
      input = mutate(input, kind, seeds[Math.floor(r() * seeds.length)]!.payload, r);
    }
    executions++;
    const fresh = observeFresh(capture, seed, input);
    if (fresh.problem) violations.push({ input, seed, problem: fresh.problem });
    const s = check(shared, input, seed, sharedSink.reset());
    if (s.problem) violations.push({ input, seed, problem: `shared state: ${s.problem}` });
    if (!seen.has(fresh.signature)) {
      seen.add(fresh.signature);
      if (findings.length < (opts.maxFindings ?? 500)) {
        findings.push({ input, seed, signature: fresh.signature, counter: counterOf(fresh.outcome, codeCounts) });
      }
      for (const c of fresh.errorCodes) codeCounts.set(c, (codeCounts.get(c) ?? 0) + 1);
    }
    if (violations.length >= 20) break;
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  collectGarbage();
  return {
    executions,
    seconds,
    seeds: seeds.length,
    captures: captures.length,
    signatures: seen.size,
    findings,
    violations,
    byMutation,
    heapGrowthBytes: process.memoryUsage().heapUsed - heapBefore,
    sharedExporters: shared.exporters.size,
  };
}
