import { DecodeError } from '../../decoders/errors.js';
import { createFlowDecoderState, decodeFlowDatagram, type FlowDecoderLimits, type FlowDecoderState, type SamplingConfig } from '../../decoders/ipfix/index.js';
import type { FlowRecord } from '../../decoders/record.js';
import { createSflowState, decodeSflow, type SflowState } from '../../decoders/sflow/index.js';
import { detectProtocol } from './detect.js';
import { countError, ExporterTable } from './exporter-stats.js';

export interface DatagramDecoderOptions {
  /** Fill FlowRecord.fields (the `decode` CLI); costs an object per record. */
  withFields: boolean;
  /** Format addresses into records (the `decode` CLI); aggregation does not need them. */
  withAddresses: boolean;
  sampling: SamplingConfig;
  flowLimits: Partial<FlowDecoderLimits>;
  /** Walk tunnels in sFlow raw headers (inner label exposed, outer one counted). */
  innerHeaders: boolean;
}

export const DEFAULT_DECODER_OPTIONS: DatagramDecoderOptions = {
  withFields: false,
  withAddresses: false,
  sampling: {},
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

  constructor(private readonly opts: DatagramDecoderOptions = DEFAULT_DECODER_OPTIONS) {
    this.flowState = createFlowDecoderState(opts.flowLimits);
    this.sflowState = createSflowState();
  }

  decode(payload: Uint8Array, srcAddr: string, srcPort: number, receivedMs: number): DecodedDatagram {
    const ex = this.exporters.get(srcAddr, receivedMs);
    ex.lastSeenMs = receivedMs;
    ex.datagrams++;
    this.totals.datagrams++;
    const protocol = detectProtocol(payload);
    let records: FlowRecord[] = [];
    let errors: DecodeError[] = [];
    if (protocol === 'flow') {
      const r = decodeFlowDatagram(payload, { exporterAddr: srcAddr, exporterPort: srcPort, receivedMs }, this.flowState, {
        ...this.opts.sampling,
        withFields: this.opts.withFields,
        withAddresses: this.opts.withAddresses,
      });
      records = r.records;
      errors = r.errors;
      ex.templateMisses += r.stats.templateMisses;
      this.totals.templateMisses += r.stats.templateMisses;
      ex.lostRecords += r.stats.lostRecords;
      ex.lostDatagrams += r.stats.lostDatagrams;
      ex.unknownSampling += r.stats.unknownSampling;
      if (r.stats.version === 10) ex.protocols.add('ipfix');
      else if (r.stats.version === 9) ex.protocols.add('netflow9');
      else if (r.stats.version === 5) ex.protocols.add('netflow5');
    } else if (protocol === 'sflow') {
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
    this.totals.records += records.length;
    for (const rec of records) {
      // Few distinct rates per exporter in practice; bounded anyway.
      const key = `${rec.samplingRate}/${rec.samplingSource}`;
      const n = ex.samplingRates.get(key);
      if (n !== undefined) ex.samplingRates.set(key, n + 1);
      else if (ex.samplingRates.size < 64) ex.samplingRates.set(key, 1);
    }
    return { records, errors, protocol };
  }
}
