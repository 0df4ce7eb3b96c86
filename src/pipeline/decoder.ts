import { DecodeError } from '../../decoders/errors.js';
import { createFlowDecoderState, decodeFlowDatagram, type FlowDecoderLimits, type FlowDecoderState } from '../../decoders/ipfix/index.js';
import type { FlowProtocol, FlowRecord } from '../../decoders/record.js';
import { createSflowState, decodeSflow, type SflowState } from '../../decoders/sflow/index.js';
import { detectProtocol } from './detect.js';
import { countError, countSampling, ExporterTable } from './exporter-stats.js';
import { SamplingRules, type SamplingRule } from './sampling-rules.js';

export interface DatagramDecoderOptions {
  /** Fill FlowRecord.fields (the `decode` CLI); costs an object per record. */
  withFields: boolean;
  /** Format addresses into records (the `decode` CLI); aggregation does not need them. */
  withAddresses: boolean;
  /** Rate used when the exporter states none (1 unless configured). */
  defaultSamplingRate: number;
  /** Operator rules by exporter CIDR and domain (config `exporters.sampling`). */
  samplingRules: readonly SamplingRule[];
  flowLimits: Partial<FlowDecoderLimits>;
  /** Walk tunnels in sFlow raw headers (inner label exposed, outer one counted). */
  innerHeaders: boolean;
}

export const DEFAULT_DECODER_OPTIONS: DatagramDecoderOptions = {
  withFields: false,
  withAddresses: false,
  defaultSamplingRate: 1,
  samplingRules: [],
  flowLimits: {},
  innerHeaders: false,
};

export interface DecodedDatagram {
  records: FlowRecord[];
  errors: DecodeError[];
  protocol: 'sflow' | 'flow' | 'unknown';
}

/**
 * One decoding context: the IPFIX/NetFlow template and sampling state, the sFlow sequence
 * state, and per-exporter counters. Everything a datagram can do to it is bounded by the
 * decoders' own limits. One instance per worker (sharded by exporter) later; today one.
 */
export class DatagramDecoder {
  readonly flowState: FlowDecoderState;
  readonly sflowState: SflowState;
  readonly exporters = new ExporterTable();
  readonly totals = { datagrams: 0, records: 0, decodeErrors: 0, templateMisses: 0, unknownProtocol: 0 };
  private readonly samplingRules: SamplingRules;

  /** `flowState`: a state restored from disk (templates survive restarts); empty otherwise. */
  constructor(
    private readonly opts: DatagramDecoderOptions = DEFAULT_DECODER_OPTIONS,
    flowState?: FlowDecoderState,
  ) {
    this.flowState = flowState ?? createFlowDecoderState(opts.flowLimits);
    this.sflowState = createSflowState();
    this.samplingRules = new SamplingRules(opts.samplingRules);
  }

  decode(payload: Uint8Array, srcAddr: string, srcPort: number, receivedMs: number): DecodedDatagram {
    const ex = this.exporters.get(srcAddr, receivedMs);
    ex.lastSeenMs = receivedMs;
    if (ex.sessions.size < 64) ex.sessions.add(srcPort);
    ex.datagrams++;
    this.totals.datagrams++;
    const protocol = detectProtocol(payload);
    let records: FlowRecord[] = [];
    let errors: DecodeError[] = [];
    let wireProtocol: FlowProtocol | undefined;
    if (protocol === 'flow') {
      const r = decodeFlowDatagram(payload, { exporterAddr: srcAddr, exporterPort: srcPort, receivedMs }, this.flowState, {
        defaultSamplingRate: this.opts.defaultSamplingRate,
        withFields: this.opts.withFields,
        withAddresses: this.opts.withAddresses,
      });
      records = r.records;
      errors = r.errors;
      ex.templateMisses += r.stats.templateMisses;
      ex.sequenceGaps += r.stats.sequenceGaps;
      this.totals.templateMisses += r.stats.templateMisses;
      ex.lostRecords += r.stats.lostRecords;
      ex.lostDatagrams += r.stats.lostDatagrams;
      ex.unknownSampling += r.stats.unknownSampling;
      wireProtocol = r.stats.version === 10 ? 'ipfix' : r.stats.version === 9 ? 'netflow9' : r.stats.version === 5 ? 'netflow5' : undefined;
      if (wireProtocol) ex.protocols.add(wireProtocol);
    } else if (protocol === 'sflow') {
      wireProtocol = 'sflow';
      ex.protocols.add('sflow');
      try {
        const r = decodeSflow(payload, srcAddr, srcPort, this.sflowState, {
          withFields: this.opts.withFields,
          innerHeaders: this.opts.innerHeaders,
        });
        records = r.records;
        errors = r.errors;
        ex.lostDatagrams += r.stats.lostDatagrams;
        ex.lostSamples += r.stats.lostSamples;
        if (r.stats.lostDatagrams > 0 || r.stats.lostSamples > 0) ex.sequenceGaps++;
      } catch (err) {
        if (!(err instanceof DecodeError)) throw err;
        errors = [err];
      }
    } else {
      this.totals.unknownProtocol++;
      errors = [new DecodeError('bad-version', `payload starts with neither sFlow v5 nor NetFlow v5/v9/IPFIX version`, 0)];
    }
    if (errors.length > 0) {
      ex.badDatagrams++;
      for (const e of errors) countError(ex, e.code);
      this.totals.decodeErrors += errors.length;
    }
    ex.records += records.length;
    if (wireProtocol && records.length > 0) ex.recordsByProtocol.set(wireProtocol, (ex.recordsByProtocol.get(wireProtocol) ?? 0) + records.length);
    this.totals.records += records.length;
    if (!this.samplingRules.empty) for (const rec of records) this.samplingRules.apply(rec, srcAddr);
    for (const rec of records) countSampling(ex, rec, receivedMs);
    return { records, errors, protocol };
  }
}
