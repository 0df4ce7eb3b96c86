/**
 * The protocol table: which decoder handles a datagram, from the listener it arrived on and
 * its version field. A new input (fireflies, goflow2 protobuf) is one entry here, not a
 * branch in the pipeline.
 */
import type { Decoder } from '../../decoders/decoder.js';
import { createFireflyDecoder } from '../../decoders/firefly/decoder.js';
import { createGoflow2Decoder } from '../../decoders/goflow2/decoder.js';
import { createFlowDecoder } from '../../decoders/ipfix/decoder.js';
import type { FlowDecoderLimits } from '../../decoders/ipfix/index.js';
import { createSflowDecoder } from '../../decoders/sflow/decoder.js';

/**
 * The kind of listener a datagram arrived on; 'any' is a capture file (`ingest`, `decode`);
 * 'goflow2' one FlowMessage of a goflow2 stream (a file, FIFO or stdin: serve --input, ingest
 * --format goflow2).
 */
export type ListenerKind = 'ipfix' | 'netflow' | 'sflow' | 'firefly' | 'goflow2' | 'any';

export interface ProtocolEntry<State = unknown> {
  /**
   * The decoder; an entry with `emits: 'fireflies'` holds a Decoder<State, FireflyMessage>
   * (typed here as a record decoder so that one table holds both).
   */
  decoder: Decoder<State>;
  /** What the decoder hands its sink: FlowRecords (absent) or FireflyMessages. */
  emits?: 'fireflies';
  /** Listeners whose datagrams this entry may decode. */
  listeners: readonly ListenerKind[];
  /** True when the payload's version field is this protocol's (checked in table order). */
  matches(payload: Uint8Array): boolean;
}

/**
 * sFlow v5 starts with the 32-bit version 5 (sFlow v5 spec section 5, `unsigned int
 * version`). A NetFlow v5 header has a non-zero record count in octets 2-3, so "00 00 00 05"
 * can only be sFlow.
 */
export function isSflow5(p: Uint8Array): boolean {
  return p.length >= 4 && p[0] === 0 && p[1] === 0 && p[2] === 0 && p[3] === 5;
}

/** NetFlow v5 / v9 and IPFIX start with the 16-bit version 5 / 9 / 10 (RFC 3954 5.1, RFC 7011 3.1). */
export function isNetflowOrIpfix(p: Uint8Array): boolean {
  return p.length >= 4 && p[0] === 0 && (p[1] === 5 || p[1] === 9 || p[1] === 10) && !isSflow5(p);
}

/**
 * Flow protocols are told apart by their version field whatever port they arrive on
 * (routers are often pointed at "the collector port"), as `ingest` does for captures.
 */
const FLOW_LISTENERS: readonly ListenerKind[] = ['ipfix', 'netflow', 'sflow', 'any'];

export interface ProtocolLimits {
  flow: Partial<FlowDecoderLimits>;
}

/**
 * The table in force: sFlow first (its version word is also a valid NetFlow v0 prefix).
 * Fireflies are text with no version word: everything on the firefly listener is a firefly
 * (or counted as why not), and nothing else is (a capture file's 'any' never tries them).
 * goflow2 FlowMessages have no version word either: only the goflow2 stream input hands them
 * in, one message each, under the listener kind 'goflow2'.
 */
export function protocolTable(limits: ProtocolLimits): ProtocolEntry[] {
  return [
    { decoder: createSflowDecoder() as Decoder<unknown>, listeners: FLOW_LISTENERS, matches: isSflow5 },
    { decoder: createFlowDecoder(limits.flow) as Decoder<unknown>, listeners: FLOW_LISTENERS, matches: isNetflowOrIpfix },
    { decoder: createFireflyDecoder() as unknown as Decoder<unknown>, emits: 'fireflies', listeners: ['firefly'], matches: () => true },
    { decoder: createGoflow2Decoder() as Decoder<unknown>, listeners: ['goflow2'], matches: () => true },
  ];
}
