import type { DecodeErrorCode } from '../../decoders/errors.js';
import type { FlowProtocol, FlowRecord, SamplingSource } from '../../decoders/record.js';
import type { TokenBucket } from './rate-limit.js';

export interface SamplingSeen {
  domain: number;
  rate: number;
  source: SamplingSource;
  records: number;
  lastSeenMs: number;
}

/** Records of one wire protocol; `protocols` names every protocol seen. */
export interface ProtocolCount {
  protocol: FlowProtocol;
  records: number;
}

/** What the collector knows about one exporter (router / agent address), for API and metrics. */
export interface ExporterCounters {
  address: string;
  protocols: Set<FlowProtocol>;
  firstSeenMs: number;
  lastSeenMs: number;
  datagrams: number;
  records: number;
  /** Records per protocol (an exporter may send IPFIX and sFlow at once). */
  recordsByProtocol: Map<FlowProtocol, ProtocolCount>;
  /** The entry of the previous datagram's protocol (countProtocol's fast path). */
  lastProtocol: ProtocolCount | undefined;
  /** Datagrams that produced at least one error. */
  badDatagrams: number;
  errorsByCode: Map<DecodeErrorCode, number>;
  templateMisses: number;
  /** Sequence-number discontinuities seen (any protocol). */
  sequenceGaps: number;
  /** Source ports (transport sessions) seen from this exporter, bounded. */
  sessions: Set<number>;
  /** Lost units by sequence numbers: IPFIX/v5 records, v9 datagrams, sFlow datagrams and samples. */
  lostRecords: number;
  lostDatagrams: number;
  lostSamples: number;
  unknownSampling: number;
  /** Datagrams that ended in zero padding, and the padding octets skipped (not errors). */
  paddedDatagrams: number;
  paddingOctets: number;
  /** Sampling rates seen in this exporter's records per domain and source, with counts (bounded). */
  samplingRates: Map<string, SamplingSeen>;
  /** Datagrams that made a decoder throw (a bug in our code, isolated), per decoder. */
  crashesByDecoder: Map<string, number>;
  /** The entry the previous record counted under: consecutive records nearly always share it. */
  lastSampling: SamplingSeen | undefined;
  /** Datagrams dropped before decoding by decoder.maxDatagramsPerSecondPerExporter. */
  rateLimitedDatagrams: number;
  /** Datagrams dropped because they opened a session beyond decoder.maxNewSessionsPerSecondPerExporter. */
  rateLimitedSessions: number;
  datagramBucket: TokenBucket | undefined;
  sessionBucket: TokenBucket | undefined;
}

/**
 * Bounded table of exporter counters. Beyond `maxExporters` addresses, new exporters are
 * counted under one 'other' entry, so a spoofed-source flood cannot grow memory.
 */
export class ExporterTable {
  private readonly table = new Map<string, ExporterCounters>();

  constructor(private readonly maxExporters = 4096) {}

  get(address: string, nowMs: number): ExporterCounters {
    let e = this.table.get(address);
    if (!e) {
      const key = this.table.size < this.maxExporters ? address : 'other';
      e = this.table.get(key);
      if (!e) {
        e = {
          address: key,
          protocols: new Set(),
          firstSeenMs: nowMs,
          lastSeenMs: nowMs,
          datagrams: 0,
          records: 0,
          recordsByProtocol: new Map(),
          badDatagrams: 0,
          errorsByCode: new Map(),
          templateMisses: 0,
          sequenceGaps: 0,
          sessions: new Set(),
          lostRecords: 0,
          lostDatagrams: 0,
          lostSamples: 0,
          unknownSampling: 0,
          paddedDatagrams: 0,
          paddingOctets: 0,
          samplingRates: new Map(),
          crashesByDecoder: new Map(),
          lastSampling: undefined,
          lastProtocol: undefined,
          rateLimitedDatagrams: 0,
          rateLimitedSessions: 0,
          datagramBucket: undefined,
          sessionBucket: undefined,
        };
        this.table.set(key, e);
      }
    }
    return e;
  }

  /** Entries held ('other' included): grows exactly when get() meets a new exporter. */
  get size(): number {
    return this.table.size;
  }

  all(): ExporterCounters[] {
    return [...this.table.values()];
  }
}

/**
 * Counts a datagram's records under its wire protocol. An exporter nearly always sends one
 * protocol, so the previous datagram's entry is checked before the maps (a Set and a Map
 * update per datagram showed in profiles).
 */
export function countProtocol(e: ExporterCounters, protocol: FlowProtocol, records: number): void {
  let c = e.lastProtocol;
  if (c === undefined || c.protocol !== protocol) {
    c = e.recordsByProtocol.get(protocol);
    if (c === undefined) {
      e.protocols.add(protocol);
      e.recordsByProtocol.set(protocol, (c = { protocol, records: 0 }));
    }
    e.lastProtocol = c;
  }
  c.records += records;
}

export function countError(e: ExporterCounters, code: DecodeErrorCode, n = 1): void {
  e.errorsByCode.set(code, (e.errorsByCode.get(code) ?? 0) + n);
}

/** Counts a record under its (domain, rate, source); builds a key only when that changes. */
export function countSampling(e: ExporterCounters, rec: FlowRecord, nowMs: number): void {
  const last = e.lastSampling;
  if (last && last.domain === rec.domain && last.rate === rec.samplingRate && last.source === rec.samplingSource) {
    last.records++;
    last.lastSeenMs = nowMs;
    return;
  }
  const key = `${rec.domain}/${rec.samplingRate}/${rec.samplingSource}`;
  let seen = e.samplingRates.get(key);
  if (!seen) {
    if (e.samplingRates.size >= 64) return;
    seen = { domain: rec.domain, rate: rec.samplingRate, source: rec.samplingSource, records: 0, lastSeenMs: nowMs };
    e.samplingRates.set(key, seen);
  }
  seen.records++;
  seen.lastSeenMs = nowMs;
  e.lastSampling = seen;
}
