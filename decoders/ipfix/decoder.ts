/** IPFIX / NetFlow v9 / NetFlow v5 behind the one decoder interface (decoders/decoder.ts). */
import { type Decoder, emptyOutcome } from '../decoder.js';
import type { FlowProtocol } from '../record.js';
import { createFlowDecoderState, type FlowDecoderLimits, type FlowDecoderState } from './state.js';
import { decodeFlowDatagram, type FlowDecodeOptions, newResult } from './index.js';

/** The 16-bit version of RFC 7011 3.1 / RFC 3954 5.1 / NetFlow v5, as the wire protocol. */
function protocolOfVersion(version: number): FlowProtocol | undefined {
  return version === 10 ? 'ipfix' : version === 9 ? 'netflow9' : version === 5 ? 'netflow5' : undefined;
}

export function createFlowDecoder(limits: Partial<FlowDecoderLimits> = {}): Decoder<FlowDecoderState> {
  // Reused per datagram (the decoder reads it during the call only).
  const flowOpts: FlowDecodeOptions = {
    defaultSamplingRate: 1,
    withFields: false,
    withAddresses: false,
    onRecord: () => {},
    onTemplate: undefined,
    outerFlowLabel: false,
  };
  // Decoded into per datagram; everything in it is copied to the outcome before decode returns.
  const result = newResult();
  return {
    name: 'flow',
    createState: () => createFlowDecoderState(limits),
    decode(payload, ctx, state, opts, sink) {
      flowOpts.defaultSamplingRate = opts.defaultSamplingRate;
      flowOpts.withFields = opts.withFields;
      flowOpts.withAddresses = opts.withAddresses;
      flowOpts.onRecord = sink;
      flowOpts.onTemplate = opts.onTemplate;
      flowOpts.outerFlowLabel = opts.outerFlowLabel === true;
      const r = decodeFlowDatagram(payload, ctx, state, flowOpts, result);
      const out = emptyOutcome();
      out.protocol = protocolOfVersion(r.stats.version);
      out.records = r.stats.records;
      // Its own (empty) array when clean: the reused result's empty one gets the next datagram's errors.
      if (r.errors.length > 0) out.errors = r.errors;
      out.templateMisses = r.stats.templateMisses;
      out.sequenceGaps = r.stats.sequenceGaps;
      out.lostRecords = r.stats.lostRecords;
      out.lostDatagrams = r.stats.lostDatagrams;
      out.unknownSampling = r.stats.unknownSampling;
      out.noVolume = r.stats.noVolume;
      out.paddingOctets = r.stats.paddingOctets;
      return out;
    },
  };
}
