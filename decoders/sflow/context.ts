/**
 * Per-datagram context handed to the sample decoders, so they share one set of resolved
 * options and write into one result without a long parameter list.
 */
import type { WalkOptions } from '../packet/walker.js';
import type { FlowRecord } from '../record.js';
import type { SflowAgentEntry, SflowState } from './state.js';
import type { SflowDecodeResult } from './types.js';

export interface DatagramContext {
  readonly state: SflowState;
  readonly agentEntry: SflowAgentEntry;
  /** FlowRecord.exporter for every record of the datagram (see decodeSflow). */
  readonly exporter: string;
  readonly agent: string;
  readonly subAgent: number;
  readonly maxRecords: number;
  readonly walkOptions: WalkOptions | undefined;
  readonly withFields: boolean;
  readonly withAddresses: boolean;
  /** The caller's sink (SflowOptions.onRecord), or undefined: records go to result.records. */
  readonly sink: ((rec: FlowRecord) => void) | undefined;
  /** The record refilled for every sample of the datagram when there is a sink, else undefined. */
  readonly shared: FlowRecord | undefined;
  readonly result: SflowDecodeResult;
}

/**
 * Where the next XDR item starts: variable-length opaque data is padded to a multiple of 4
 * octets (RFC 4506 section 4.10), but never past its container.
 */
export function xdrNext(start: number, len: number, containerEnd: number): number {
  const next = start + ((len + 3) & ~3);
  return next > containerEnd ? containerEnd : next;
}
