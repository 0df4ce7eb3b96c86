/** Public input and output types of decodeFlowDatagram (see index.ts). */
import type { TemplateEvent } from '../decoder.js';
import type { DecodeError } from '../errors.js';
import type { FlowRecord } from '../record.js';
import type { SamplingConfig } from './sampling.js';

/** Where and when a datagram was received; the clock is the caller's (capture time in replays). */
export interface FlowDecodeContext {
  exporterAddr: string;
  exporterPort: number;
  receivedMs: number;
}

export interface FlowDecodeOptions extends SamplingConfig {
  /** Fill FlowRecord.fields with every field by IANA name (the `decode` CLI). Default false. */
  withFields?: boolean;
  /** Format srcAddr / dstAddr. Default true; aggregation alone does not need them. */
  withAddresses?: boolean;
  /**
   * Streaming sink: when given, every data record (replayed held ones included, in the
   * order the array would have had) is passed to `onRecord` instead of being pushed to
   * `result.records`, which then stays empty; `result.stats.records` counts them.
   *
   * The record object is REUSED: the decoder refills the same object for the records that
   * follow (one object per data set), so it is valid only during the call. A caller that keeps a record (or anything it
   * must not see change) copies it (`{ ...rec }`) inside the call. Every field is written
   * for every record, so nothing leaks from one record to the next, and a sink may modify
   * the record it is given. With `withFields` each record is a fresh object (the debug
   * path keeps allocating). A set the decoder rejects emits nothing, as in array mode.
   *
   * The sink must not throw (an exception escapes decodeFlowDatagram, and the rest of the
   * datagram is not decoded) and must not call decodeFlowDatagram itself (the decoder's
   * scratch state is not re-entrant; such a call throws).
   */
  onRecord?: (rec: FlowRecord) => void;
  /**
   * Read templates that describe an outer and an inner packet header (IE 31 twice: Cisco IOS
   * XR SRv6) the outer way: first occurrence of every element, the outer header's flow label.
   * Default false: the innermost header's elements win (see plan.ts compilePlan).
   */
  outerFlowLabel?: boolean;
  /** Template learnt / changed / withdrawn / expired (see TemplateEvent); for debug logs. */
  onTemplate?: ((e: TemplateEvent) => void) | undefined;
}

/** Per-datagram counters; the caller sums them per exporter. */
export interface FlowDecodeStats {
  /** 5, 9 or 10; 0 when the version could not be read. */
  version: number;
  sets: number;
  /** Template and options template records defined (including redefinitions). */
  templates: number;
  /** Withdrawal records (a withdraw-all counts once). */
  withdrawals: number;
  optionsRecords: number;
  /** Data records decoded from this datagram's own sets (replayed ones are in `replayed`). */
  dataRecords: number;
  /**
   * Records emitted: pushed to `records`, or passed to `onRecord` when a sink is given.
   * The data records of this datagram plus replayed held data records; without a sink it
   * equals `records.length`.
   */
  records: number;
  /** Data sets whose template was unknown (held for later, or dropped when the buffer is full). */
  templateMisses: number;
  /** Templates that expired (not refreshed within the configured lifetime) in this datagram. */
  templatesExpired: number;
  /** Data sets dropped because their template had been withdrawn. */
  withdrawnDrops: number;
  /** Data sets held waiting for their template. */
  buffered: number;
  /** Records decoded from held sets because their template arrived in this datagram. */
  replayed: number;
  /** Held sets evicted (too old, or no room) while handling this datagram. */
  evicted: number;
  /** Sequence gaps seen, and what they say was lost: records (IPFIX, v5) or datagrams (v9). */
  sequenceGaps: number;
  lostRecords: number;
  lostDatagrams: number;
  /** Units handed back by a late (reordered) datagram inside an earlier gap. */
  lateRecords: number;
  lateDatagrams: number;
  sequenceResets: number;
  /** Records whose sampling rate nobody stated (the default was used). */
  unknownSampling: number;
  /**
   * Data records not emitted because their template carries no volume (no counter of the
   * order of preference in plan.ts chooseVolume, no frame): the `no-volume` count.
   */
  noVolume: number;
  /**
   * Zero octets after the last set (v9) or after the last set / the message (IPFIX): exporter
   * padding, skipped without an error (Cisco ACI, PAN-OS 8.1 pad their datagrams).
   */
  paddingOctets: number;
}

export interface FlowDecodeResult {
  /** The decoded records, in datagram order; empty when a sink (onRecord) was given. */
  records: FlowRecord[];
  stats: FlowDecodeStats;
  /**
   * Problems found, in order. The last one ends decoding of the datagram when `stopped` is
   * true; 'template-withdrawn' and 'bad-set-id' (a reserved set skipped by its length) and
   * a v9 short record count are reported without stopping.
   */
  errors: DecodeError[];
  stopped: boolean;
}

export function newResult(): FlowDecodeResult {
  return { records: [], stats: newStats(), errors: [], stopped: false };
}

export function newStats(): FlowDecodeStats {
  // A literal (not resetStats({})): every counter in-object, one shape for all results.
  return {
    version: 0,
    sets: 0,
    templates: 0,
    withdrawals: 0,
    optionsRecords: 0,
    dataRecords: 0,
    records: 0,
    templateMisses: 0,
    templatesExpired: 0,
    withdrawnDrops: 0,
    buffered: 0,
    replayed: 0,
    evicted: 0,
    sequenceGaps: 0,
    lostRecords: 0,
    lostDatagrams: 0,
    lateRecords: 0,
    lateDatagrams: 0,
    sequenceResets: 0,
    unknownSampling: 0,
    noVolume: 0,
    paddingOctets: 0,
  };
}

/** Zeroes every counter of `s` in place (a reused result: no allocation per datagram). */
export function resetStats(s: FlowDecodeStats): void {
  s.version = 0;
  s.sets = 0;
  s.templates = 0;
  s.withdrawals = 0;
  s.optionsRecords = 0;
  s.dataRecords = 0;
  s.records = 0;
  s.templateMisses = 0;
  s.templatesExpired = 0;
  s.withdrawnDrops = 0;
  s.buffered = 0;
  s.replayed = 0;
  s.evicted = 0;
  s.sequenceGaps = 0;
  s.lostRecords = 0;
  s.lostDatagrams = 0;
  s.lateRecords = 0;
  s.lateDatagrams = 0;
  s.sequenceResets = 0;
  s.unknownSampling = 0;
  s.noVolume = 0;
  s.paddingOctets = 0;
}
