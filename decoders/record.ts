/**
 * The one record type every decoder produces: an IPFIX / NetFlow data record, a NetFlow v5
 * record, an IPFIX PSAMP packet report (IE 315) or an sFlow flow sample. Everything
 * downstream (enrichment, aggregation, stores, `ingest`) works on this shape only.
 *
 * Counts are as the exporter reported them (unscaled); `samplingRate` is the rate in force
 * for this record, and the aggregator multiplies. Fields an exporter did not send are
 * `undefined`, never 0, so "interface 0" and "no interface" stay distinct.
 */
/**
 * 'firefly': an accepted SciTags firefly counts as one record of its exporter (decoders/firefly/).
 * 'goflow2': a FlowMessage read from goflow2's binary output (decoders/goflow2/).
 */
export type FlowProtocol = 'ipfix' | 'netflow9' | 'netflow5' | 'sflow' | 'firefly' | 'goflow2';

/** Where the sampling rate in force came from (shown by `decode` and the exporters API). */
export type SamplingSource =
  | 'record' // a field of the data record itself (IE 34, 305/306, 309/310)
  | 'options' // an options record joined by scope / samplerId / selectorId
  | 'header' // NetFlow v5 header sampling_interval, sFlow sampling_rate
  | 'config' // per-exporter override or default in the configuration
  | 'unknown'; // nothing said: the configured default (1 unless set) was used

export interface FlowRecord {
  protocol: FlowProtocol;
  /** Transport session of the exporter: "address:port" (IPv6 in brackets). */
  exporter: string;
  /** IPFIX observation domain, NetFlow v9 source id, sFlow sub-agent id, 0 for v5. */
  domain: number;
  /** IPFIX / v9 template id; 0 where the protocol has none (v5, sFlow). */
  templateId: number;
  /** 4 or 6 when known; 0 when the record says nothing about the IP version. */
  ipVersion: 0 | 4 | 6;
  /** 20-bit IPv6 flow label (already masked with 0xFFFFF), undefined when not available. */
  flowLabel: number | undefined;
  /** Packets and octets as reported (not scaled). */
  packets: number;
  bytes: number;
  /** Sampling rate in force for this record (>= 1) and where it came from. */
  samplingRate: number;
  samplingSource: SamplingSource;
  inIf: number | undefined;
  outIf: number | undefined;
  /** flowDirection (IE 61): 0 ingress, 1 egress. */
  direction: number | undefined;
  vlan: number | undefined;
  srcAddr: string | undefined;
  dstAddr: string | undefined;
  /**
   * The addresses as bytes, for enrichment that must not format them (sites, NAT64; the
   * daemon leaves srcAddr / dstAddr unformatted): `addrLen` bytes (4 or 16; 0 when the record
   * carries no addresses) at `srcAddrAt` and `dstAddrAt` of `addrBytes`. The bytes are the
   * datagram's own: valid only during the sink call, like the record.
   */
  addrBytes: Uint8Array | undefined;
  addrLen: 0 | 4 | 16;
  srcAddrAt: number;
  dstAddrAt: number;
  /**
   * Enrichment (src/enrich/enricher.ts), not the decoders: to or from a NAT64 prefix, and
   * the source / destination site ids of the site directory (0: unknown). Decoders leave
   * the defaults; the enricher sets all three for every record before aggregation.
   */
  nat64: boolean;
  srcSite: number;
  dstSite: number;
  srcPort: number | undefined;
  dstPort: number | undefined;
  ipProtocol: number | undefined;
  trafficClass: number | undefined;
  /** Flow start / end in ms since the Unix epoch, in the exporter's clock, when reported. */
  startMs: number | undefined;
  endMs: number | undefined;
  /** Exporter's export time of the datagram (IPFIX/v9/v5 header, ms since epoch), if any. */
  exportMs: number | undefined;
  /** Optional field dump by IANA name, filled only when the caller asks (the `decode` CLI). */
  fields?: Record<string, unknown>;
}

/** A record with every optional field unset; decoders fill in what they know. */
export function emptyRecord(protocol: FlowProtocol, exporter: string, domain: number): FlowRecord {
  return {
    protocol,
    exporter,
    domain,
    templateId: 0,
    ipVersion: 0,
    flowLabel: undefined,
    packets: 0,
    bytes: 0,
    samplingRate: 1,
    samplingSource: 'unknown',
    inIf: undefined,
    outIf: undefined,
    direction: undefined,
    vlan: undefined,
    srcAddr: undefined,
    dstAddr: undefined,
    addrBytes: undefined,
    addrLen: 0,
    srcAddrAt: 0,
    dstAddrAt: 0,
    nat64: false,
    srcSite: 0,
    dstSite: 0,
    srcPort: undefined,
    dstPort: undefined,
    ipProtocol: undefined,
    trafficClass: undefined,
    startMs: undefined,
    endMs: undefined,
    exportMs: undefined,
  };
}

/** "address:port" for an exporter, with IPv6 addresses in brackets (RFC 3986 style). */
export function sessionKey(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}
