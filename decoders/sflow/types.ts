/**
 * What decodeSflow returns. FlowRecords are the collector-wide record type; everything
 * sFlow-specific (counter samples, per-datagram stats) is described here.
 */
import type { DecodeError } from '../errors.js';
import type { FlowRecord } from '../record.js';

export interface SflowOptions {
  /** Hard cap on samples in one datagram (default 512; a 64 KiB datagram holds ~8k minimal ones). */
  maxSamplesPerDatagram?: number;
  /** Hard cap on flow or counter records in one sample (default 64; agents send a handful). */
  maxRecordsPerSample?: number;
  /** Walk one level of tunnel in raw headers and expose the inner label (WalkOptions.inner). */
  innerHeaders?: boolean;
  /**
   * Keep the outer header of IP-in-IP under IPv6 (exporters.outerFlowLabel); default false:
   * the innermost header (the customer packet's) is the one counted (WalkOptions.outer).
   */
  outerHeaders?: boolean;
  /**
   * Fill FlowRecord.fields with the sample's sFlow fields by their XDR names (sequence_number,
   * source_id_type, sample_pool, header_protocol, stripped, ...). Costs an object per
   * sample, so only the `decode` CLI and tests ask for it.
   */
  withFields?: boolean;
  /**
   * Format srcAddr / dstAddr (default true). Aggregation does not need them, and leaving
   * them out saves most of a raw-header walk.
   */
  withAddresses?: boolean;
  /**
   * Streaming sink: when given, each flow sample's FlowRecord is passed to `onRecord`
   * instead of being pushed to `result.records` (which then stays empty), and
   * `result.stats.records` counts them.
   *
   * The record object is REUSED: the decoder refills the same object for the samples that
   * follow (one object per datagram), so it is valid only during the call. A caller that keeps it copies it (`{ ...rec }`)
   * inside the call. Every field is written for every sample, so nothing leaks from one
   * record to the next, and a sink may modify the record it is given. Records that carry a
   * `fields` dump (`withFields`, or the inner header with `innerHeaders`) are fresh objects.
   * A sample the decoder rejects emits nothing, as in array mode.
   *
   * The sink must not throw (the exception escapes decodeSflow and the rest of the datagram
   * is not decoded) and must not call decodeSflow itself (the decoder's scratch state is
   * not re-entrant; such a call throws).
   */
  onRecord?: (rec: FlowRecord) => void;
}

export const DEFAULT_MAX_SAMPLES_PER_DATAGRAM = 512;
export const DEFAULT_MAX_RECORDS_PER_SAMPLE = 64;

/** Generic interface counters (sFlow v5 section 5, struct if_counters) of one counter sample. */
export interface SflowInterfaceCounters {
  exporter: string;
  agent: string;
  subAgent: number;
  /** Counter sample sequence number and data source. */
  sequence: number;
  sourceIdType: number;
  sourceIdIndex: number;
  ifIndex: number;
  ifType: number;
  /** Bits per second (64-bit on the wire, exact as a double up to 2^53). */
  ifSpeed: number;
  /** 0 unknown, 1 full duplex, 2 half duplex, 3 in, 4 out. */
  ifDirection: number;
  /** Bit 0 admin up, bit 1 oper up. */
  ifStatus: number;
  inOctets: number;
  /** ifInUcastPkts + ifInMulticastPkts + ifInBroadcastPkts. */
  inPackets: number;
  inDiscards: number;
  inErrors: number;
  outOctets: number;
  /** ifOutUcastPkts + ifOutMulticastPkts + ifOutBroadcastPkts. */
  outPackets: number;
  outDiscards: number;
  outErrors: number;
}

/** Structures skipped by their length because we do not decode them, by kind. */
export interface SflowSkipped {
  /** Sample formats other than enterprise 0 formats 1-4 (vendor samples, discarded-packet samples...). */
  samples: number;
  /** Flow records other than raw header, sampled IPv4/IPv6 and extended switch, plus extra raw headers. */
  flowRecords: number;
  /** Counter records other than generic interface counters. */
  counterRecords: number;
  /** Raw headers whose header_protocol is not Ethernet, IPv4 or IPv6 (counted, not walked). */
  headerProtocols: number;
}

export interface SflowDatagramStats {
  /** Samples whose sample header was read (decoded, skipped or failed). */
  samples: number;
  flowSamples: number;
  counterSamples: number;
  skipped: SflowSkipped;
  /** Datagrams missing between the previous datagram of this agent/sub-agent and this one. */
  lostDatagrams: number;
  /** Samples missing according to the sample sequence numbers in this datagram. */
  lostSamples: number;
  /**
   * FlowRecords passed to `onRecord`; present only when a sink was given (without one,
   * `records.length` says it, and the stats keep the shape they always had).
   */
  records?: number;
}

export interface SflowDecodeResult {
  /** Agent address from the datagram header, and the rest of the header. */
  agent: string;
  subAgent: number;
  sequence: number;
  uptimeMs: number;
  /** One FlowRecord per decoded flow sample, in datagram order; empty with a sink (onRecord). */
  records: FlowRecord[];
  /** One entry per generic interface counters record, in datagram order. */
  counters: SflowInterfaceCounters[];
  stats: SflowDatagramStats;
  /**
   * Problems confined to part of the datagram. Samples before the problem are kept in
   * `records` / `counters`; see decodeSflow for what each kind of problem discards.
   */
  errors: DecodeError[];
}
