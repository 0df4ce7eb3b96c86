/**
 * The firefly entry of the protocol table (src/pipeline/protocols.ts): parseFirefly behind the
 * one Decoder interface, so fireflies go through the same decode stage, per-exporter
 * counters, rate limits and crash isolation as flow datagrams. It emits FireflyMessages (the
 * parsed firefly with its unchanged bytes, for forwarding) instead of FlowRecords.
 */
import { type DatagramOutcome, type Decoder, emptyOutcome } from '../decoder.js';
import { DecodeError } from '../errors.js';
import { parseFirefly } from './parse.js';
import type { Firefly } from './types.js';

/** One accepted firefly and the message it came in (valid during the sink call only). */
export interface FireflyMessage {
  firefly: Firefly;
  payload: Uint8Array;
}

export function createFireflyDecoder(): Decoder<undefined, FireflyMessage> {
  return {
    name: 'firefly',
    createState: () => undefined,
    decode(payload, _ctx, _state, _opts, sink): DatagramOutcome {
      const out = emptyOutcome();
      out.protocol = 'firefly';
      const r = parseFirefly(payload);
      if (!r.ok) {
        out.errors.push(new DecodeError(r.error.reason, `firefly refused: ${r.error.detail}`));
        return out;
      }
      out.records = 1;
      sink({ firefly: r.firefly, payload });
      return out;
    },
  };
}
