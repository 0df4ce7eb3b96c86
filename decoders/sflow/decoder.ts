/** sFlow v5 behind the one decoder interface (decoders/decoder.ts). */
import { type Decoder, emptyOutcome } from '../decoder.js';
import { DecodeError } from '../errors.js';
import { decodeSflow } from './datagram.js';
import { createSflowState, type SflowState, type SflowStateLimits } from './state.js';

export function createSflowDecoder(limits: Partial<SflowStateLimits> = {}): Decoder<SflowState> {
  return {
    name: 'sflow',
    createState: () => createSflowState(limits),
    decode(payload, ctx, state, opts, sink) {
      const out = emptyOutcome();
      out.protocol = 'sflow';
      try {
        const r = decodeSflow(payload, ctx.exporterAddr, ctx.exporterPort, state, {
          withFields: opts.withFields,
          innerHeaders: opts.innerHeaders,
          outerHeaders: opts.outerFlowLabel === true,
          withAddresses: opts.withAddresses,
          onRecord: sink,
        });
        out.records = r.stats.records ?? 0;
        out.errors = r.errors;
        out.lostDatagrams = r.stats.lostDatagrams;
        out.lostSamples = r.stats.lostSamples;
        if (r.stats.lostDatagrams > 0 || r.stats.lostSamples > 0) out.sequenceGaps = 1;
      } catch (err) {
        // A malformed structure ends the datagram (samples already handed to the sink stay
        // counted, as IPFIX keeps the records of earlier sets); anything else is a bug for the
        // caller's isolation.
        if (!(err instanceof DecodeError)) throw err;
        out.errors = [err];
      }
      return out;
    },
  };
}
