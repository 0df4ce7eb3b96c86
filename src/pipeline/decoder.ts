import { type DatagramOutcome, type DecodeOptions, emptyOutcome, type ExporterContext, type RecordSink } from '../../decoders/decoder.js';
import { DecodeError } from '../../decoders/errors.js';
import type { FireflyMessage } from '../../decoders/firefly/decoder.js';
import type { Firefly } from '../../decoders/firefly/types.js';
import type { FlowDecoderLimits, FlowDecoderState } from '../../decoders/ipfix/index.js';
import { type FlowRecord, sessionKey } from '../../decoders/record.js';
import type { SflowState } from '../../decoders/sflow/index.js';
import { CidrSet } from '../../collectors/allowlist.js';
import { SamplingRules, type SamplingRule } from '../enrich/sampling.js';
import { CrashFixtures } from './crash-fixtures.js';
import { countError, countProtocol, countSampling, type ExporterCounters, ExporterTable } from './exporter-stats.js';
import { type ListenerKind, protocolTable, type ProtocolEntry } from './protocols.js';
import { newBucket, type RateLimits, takeToken } from './rate-limit.js';

export interface DatagramDecoderOptions extends DecodeOptions {
  /** Operator rules by exporter CIDR and domain (config `exporters.sampling`). */
  samplingRules: readonly SamplingRule[];
  flowLimits: Partial<FlowDecoderLimits>;
  /** Where datagrams that crashed a decoder are kept as fixtures; empty keeps none. */
  crashDir: string;
  /** Per-exporter rate limits (serve); absent: none (ingest replays captures at any speed). */
  rateLimits?: RateLimits;
  /**
   * Exporters (addresses or CIDRs, config `exporters.outerFlowLabel`) whose templates with an
   * outer and an inner header (IE 31 twice) are read the outer way; absent or empty: none.
   */
  outerFlowLabelExporters?: readonly string[];
}

/**
 * Where decodeInto hands each record (the Aggregator in the daemon), with its datagram's
 * receive time and exporter address. An object with a method rather than a closure: the
 * decoder's sink then makes one monomorphic call the JIT can inline, not a chain of them.
 */
export interface RecordAggregator {
  add(rec: FlowRecord, receivedMs: number, exporterAddr: string): void;
}

/**
 * Where accepted fireflies go (the collector: its firefly sink and the forwarder), with the
 * message's unchanged bytes (valid during the call only), receive time and exporter address.
 */
export interface FireflyTarget {
  accept(f: Firefly, receivedMs: number, exporterAddr: string, payload: Uint8Array): void;
}

/** The target between datagrams (a record outside decodeInto would be a bug; it goes nowhere). */
const discard: RecordAggregator = { add: () => {} };

/** Zeroed decoding totals (a decoder's, or an empty snapshot's). */
export function newDecodeTotals() {
  return {
    datagrams: 0,
    records: 0,
    decodeErrors: 0,
    templateMisses: 0,
    unknownProtocol: 0,
    decoderCrashes: 0,
    rateLimitedDatagrams: 0,
    rateLimitedSessions: 0,
  };
}

export const DEFAULT_DECODER_OPTIONS: DatagramDecoderOptions = {
  withFields: false,
  withAddresses: false,
  defaultSamplingRate: 1,
  samplingRules: [],
  flowLimits: {},
  innerHeaders: false,
  crashDir: '',
};

/** A crash inside a decoder, as the caller logs it. */
export interface DecoderCrash {
  decoder: string;
  exporter: string;
  port: number;
  error: unknown;
  fixture: string | undefined;
}

export interface DecodedDatagram {
  records: FlowRecord[];
  errors: DecodeError[];
  outcome: DatagramOutcome;
}

/**
 * One decoding context: the protocol table with each decoder's state, the per-exporter
 * counters, the operator's sampling rules and crash isolation. Everything a datagram can do
 * to it is bounded by the decoders' own limits. The daemon has one per decode worker
 * (exporters sharded between them); `ingest` and `decode` one each.
 */
export class DatagramDecoder {
  readonly exporters = new ExporterTable();
  readonly totals = newDecodeTotals();
  readonly crashFixtures: CrashFixtures;
  private readonly table: ProtocolEntry[];
  private readonly states: unknown[];
  private readonly samplingRules: SamplingRules;
  /** Per-datagram values the record sink needs; set before each decode, so the sink is one closure. */
  private current = { exporterAddr: '', receivedMs: 0, records: 0, unknownSampling: 0, ex: undefined as ExporterCounters | undefined };
  private downstream: RecordAggregator = discard;
  /** Reused per datagram: decoders read it during the call only. */
  private readonly ctx: ExporterContext = { exporterAddr: '', exporterPort: 0, receivedMs: 0 };
  private lastExporter: ExporterCounters | undefined;
  private lastExporterAddr = '';
  private lastPort = -1;
  private lastIndex = -1;
  private lastListener: ListenerKind | '' = '';
  private readonly enrichingSink: RecordSink;
  /** The options handed to decoders: `opts` with the current exporter's outerFlowLabel. */
  private readonly decodeOpts: DecodeOptions;
  /** Exporters read the outer way (exporters.outerFlowLabel); undefined when none. */
  private readonly outerLabel: CidrSet | undefined;
  /** The firefly entry's sink: counts the firefly as the datagram's record and hands it on. */
  private readonly fireflySink: (m: FireflyMessage) => void;
  /** Where accepted fireflies go; by default nowhere (they are still counted per exporter). */
  fireflies: FireflyTarget = { accept: () => {} };
  /** Called (after counting) whenever a decoder throws something that is not a DecodeError. */
  onCrash: ((crash: DecoderCrash) => void) | undefined;
  /**
   * Called when a datagram comes from an exporter this decoder has not counted before
   * (`address` is 'other' once the exporter table is full).
   */
  onNewExporter: ((address: string, port: number, listener: ListenerKind) => void) | undefined;

  /**
   * `flowState`: a state restored from disk (templates survive restarts); empty otherwise.
   * `table`: the protocol table (tests inject decoders; the daemon uses protocolTable()).
   */
  constructor(
    private readonly opts: DatagramDecoderOptions = DEFAULT_DECODER_OPTIONS,
    flowState?: FlowDecoderState,
    table?: ProtocolEntry[],
  ) {
    this.table = table ?? protocolTable({ flow: opts.flowLimits });
    this.states = this.table.map((e) => (flowState && e.decoder.name === 'flow' ? flowState : e.decoder.createState()));
    this.samplingRules = new SamplingRules(opts.samplingRules);
    const outer = opts.outerFlowLabelExporters ?? [];
    this.outerLabel = outer.length > 0 ? new CidrSet(outer, 'exporters.outerFlowLabel entry') : undefined;
    this.decodeOpts = { ...opts, outerFlowLabel: false };
    this.crashFixtures = new CrashFixtures(opts.crashDir);
    const cur = this.current;
    const rules = this.samplingRules;
    this.enrichingSink = (rec) => {
      cur.records++;
      if (!rules.empty) rules.apply(rec, cur.exporterAddr);
      // After the rules: a configured default makes an unknown rate known.
      if (rec.samplingSource === 'unknown') cur.unknownSampling++;
      countSampling(cur.ex!, rec, cur.receivedMs);
      this.downstream.add(rec, cur.receivedMs, cur.exporterAddr);
    };
    this.fireflySink = (m) => {
      cur.records++;
      this.fireflies.accept(m.firefly, cur.receivedMs, cur.exporterAddr, m.payload);
    };
  }

  /** The IPFIX / NetFlow decoder state (persistence and snapshots only). */
  get flowState(): FlowDecoderState {
    return this.stateOf('flow') as FlowDecoderState;
  }

  /** The sFlow decoder state (snapshots only). */
  get sflowState(): SflowState {
    return this.stateOf('sflow') as SflowState;
  }

  private stateOf(name: string): unknown {
    const i = this.table.findIndex((e) => e.decoder.name === name);
    return this.states[i];
  }

  /**
   * Decodes one datagram, handing each record (sampling rules applied) to `target.add`; the
   * record may be reused afterwards. Never throws: a decoder bug becomes a counted
   * `decoder-crash`.
   */
  decodeInto(
    payload: Uint8Array,
    srcAddr: string,
    srcPort: number,
    receivedMs: number,
    listener: ListenerKind,
    target: RecordAggregator,
  ): DatagramOutcome {
    // Consecutive datagrams nearly always come from the same exporter session and protocol:
    // the last ones are checked before any table lookup.
    let ex = this.lastExporter;
    if (ex === undefined || srcAddr !== this.lastExporterAddr) {
      const known = this.exporters.size;
      ex = this.exporters.get(srcAddr, receivedMs);
      if (this.exporters.size !== known) this.onNewExporter?.(ex.address, srcPort, listener);
      this.lastExporter = ex;
      this.lastExporterAddr = srcAddr;
      // Looked up when the exporter changes, not per datagram: consecutive datagrams nearly
      // always come from one exporter.
      if (this.outerLabel !== undefined) this.decodeOpts.outerFlowLabel = this.outerLabel.has(srcAddr);
      this.lastPort = -1;
    }
    ex.lastSeenMs = receivedMs;
    if (srcPort !== this.lastPort) {
      if (ex.sessions.size < 64 && !ex.sessions.has(srcPort)) ex.sessions.add(srcPort);
      this.lastPort = srcPort;
    }
    ex.datagrams++;
    this.totals.datagrams++;
    const limits = this.opts.rateLimits;
    if (limits !== undefined && limits.datagramsPerSecond > 0) {
      const rate = limits.datagramsPerSecond;
      const b = (ex.datagramBucket ??= newBucket(rate, receivedMs));
      if (!takeToken(b, rate, receivedMs)) {
        ex.rateLimitedDatagrams++;
        this.totals.rateLimitedDatagrams++;
        return emptyOutcome();
      }
    }
    let index = -1;
    // Not this.table[-1] before the first match: an out-of-bounds read turns the load site
    // megamorphic for good (a generic keyed load on every datagram after).
    const last = this.lastIndex >= 0 ? this.table[this.lastIndex] : undefined;
    if (last !== undefined && listener === this.lastListener && last.matches(payload)) index = this.lastIndex;
    else {
      for (let i = 0; i < this.table.length; i++) {
        const e = this.table[i]!;
        if (e.listeners.includes(listener) && e.matches(payload)) {
          index = i;
          this.lastIndex = i;
          this.lastListener = listener;
          break;
        }
      }
    }
    let out: DatagramOutcome;
    const cur = this.current;
    cur.exporterAddr = srcAddr;
    cur.receivedMs = receivedMs;
    cur.records = 0;
    cur.unknownSampling = 0;
    cur.ex = ex;
    this.downstream = target;
    if (index < 0) {
      this.totals.unknownProtocol++;
      out = emptyOutcome();
      out.errors = [new DecodeError('bad-version', `payload starts with neither sFlow v5 nor NetFlow v5/v9/IPFIX version`, 0)];
    } else {
      const entry = this.table[index]!;
      if (limits !== undefined && limits.newSessionsPerSecond > 0 && entry.decoder.name === 'flow') {
        if (!this.admitFlowSession(this.states[index] as FlowDecoderState, ex, srcAddr, srcPort, receivedMs, limits.newSessionsPerSecond)) {
          this.downstream = discard;
          return emptyOutcome();
        }
      }
      const ctx = this.ctx;
      ctx.exporterAddr = srcAddr;
      ctx.exporterPort = srcPort;
      ctx.receivedMs = receivedMs;
      try {
        // The firefly entry's decoder is a Decoder<undefined, FireflyMessage> (protocols.ts).
        const sink = entry.emits === 'fireflies' ? (this.fireflySink as unknown as RecordSink) : this.enrichingSink;
        out = entry.decoder.decode(payload, ctx, this.states[index], this.decodeOpts, sink);
      } catch (err) {
        // A bug in our code, not bad input: keep the datagram as a fixture, count it, go on.
        out = emptyOutcome();
        out.records = cur.records;
        out.errors = [
          new DecodeError('decoder-crash', `${entry.decoder.name} decoder failed: ${err instanceof Error ? err.message : String(err)}`),
        ];
        this.totals.decoderCrashes++;
        ex.crashesByDecoder.set(entry.decoder.name, (ex.crashesByDecoder.get(entry.decoder.name) ?? 0) + 1);
        const fixture = this.crashFixtures.record(entry.decoder.name, payload, ctx, err);
        this.onCrash?.({ decoder: entry.decoder.name, exporter: srcAddr, port: srcPort, error: err, fixture });
      }
    }
    this.downstream = discard;
    const wire = out.protocol;
    if (wire !== undefined) countProtocol(ex, wire, cur.records);
    ex.templateMisses += out.templateMisses;
    ex.sequenceGaps += out.sequenceGaps;
    ex.lostRecords += out.lostRecords;
    ex.lostDatagrams += out.lostDatagrams;
    ex.lostSamples += out.lostSamples;
    ex.unknownSampling += cur.unknownSampling;
    // Per record, in the exporter's errors by reason (API errorsByReason, metric
    // scitags_decode_errors_total{reason="no-volume"}), without making the datagram a bad one.
    if (out.noVolume > 0) countError(ex, 'no-volume', out.noVolume);
    // Padding is kept apart from the errors: the datagram was fine, its tail was zeros.
    if (out.paddingOctets > 0) {
      ex.paddedDatagrams++;
      ex.paddingOctets += out.paddingOctets;
    }
    this.totals.templateMisses += out.templateMisses;
    if (out.errors.length > 0) {
      ex.badDatagrams++;
      for (const e of out.errors) countError(ex, e.code);
      this.totals.decodeErrors += out.errors.length;
    }
    const n = cur.records;
    ex.records += n;
    this.totals.records += n;
    return out;
  }

  /**
   * False when the datagram would open an IPFIX / NetFlow session beyond the exporter's
   * new-session rate (counted). Known sessions cost one map lookup, the previous one none.
   */
  private admitFlowSession(st: FlowDecoderState, ex: ExporterCounters, addr: string, port: number, nowMs: number, rate: number): boolean {
    const last = st.last;
    if (last !== undefined && last.port === port && last.address === addr) return true;
    if (st.sessions.has(sessionKey(addr, port))) return true;
    const b = (ex.sessionBucket ??= newBucket(rate, nowMs));
    if (takeToken(b, rate, nowMs)) return true;
    ex.rateLimitedSessions++;
    this.totals.rateLimitedSessions++;
    return false;
  }

  /** decodeInto() collecting copies of the records (the `decode` CLI, `ingest`, tests). */
  decode(payload: Uint8Array, srcAddr: string, srcPort: number, receivedMs: number, listener: ListenerKind = 'any'): DecodedDatagram {
    const records: FlowRecord[] = [];
    const outcome = this.decodeInto(payload, srcAddr, srcPort, receivedMs, listener, { add: (rec) => records.push({ ...rec }) });
    return { records, errors: outcome.errors, outcome };
  }
}
