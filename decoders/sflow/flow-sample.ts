/**
 * Flow samples (sFlow v5 section 5, struct flow_sample, format 1, and struct
 * flow_sample_expanded, format 3) and the flow records inside them: raw packet header (1),
 * sampled IPv4 (3), sampled IPv6 (4), extended switch (1001). Each flow sample becomes one
 * FlowRecord: packets 1, bytes = frame_length, samplingRate = sampling_rate; the aggregator
 * scales both (the convention of sFlow-RT, nfdump and goflow2).
 */
import { DecodeError } from '../errors.js';
import type { Reader } from '../reader.js';
import { emptyRecord, type FlowRecord } from '../record.js';
import { ipv4String, ipv6String } from '../packet/addr.js';
import type { HeaderStart } from '../packet/types.js';
import { newPacketInfo, walkHeader } from '../packet/walker.js';
import {
  ETHERTYPE_IPV4,
  ETHERTYPE_IPV6,
  EXPANDED_FLOW_SAMPLE_FIXED_LEN,
  EXTENDED_SWITCH_LEN,
  FLOW_SAMPLE_FIXED_LEN,
  FLOW_EXTENDED_SWITCH,
  FLOW_RAW_HEADER,
  FLOW_SAMPLED_ETHERNET,
  FLOW_SAMPLED_IPV4,
  FLOW_SAMPLED_IPV6,
  FORMAT_BITS,
  FORMAT_MASK,
  HEADER_ETHERNET,
  HEADER_IPV4,
  HEADER_IPV6,
  INTERFACE_FORMAT_IFINDEX,
  INTERFACE_FORMAT_SHIFT,
  INTERFACE_NONE,
  INTERFACE_VALUE_MASK,
  MAX_VLAN_ID,
  RAW_HEADER_FIXED_LEN,
  SAMPLED_ETHERNET_LEN,
  SAMPLED_IPV4_LEN,
  SAMPLED_IPV6_LEN,
  SOURCE_INDEX_MASK,
  SOURCE_TYPE_SHIFT,
} from './constants.js';
import { xdrNext, type DatagramContext } from './context.js';
import { recordFlowSample, sourceEntry } from './state.js';

/** IP protocols whose sampled_ipv4/ipv6 src_port/dst_port fields are real ports. */
const PROTO_TCP = 6;
const PROTO_UDP = 17;
const PROTO_SCTP = 132;

/**
 * What one flow sample said, gathered while its records are read and turned into a
 * FlowRecord at the end (records may come in any order). One module-level instance is
 * reused: decoding is synchronous and never re-entered, and reuse keeps the hot path free of
 * per-sample allocations other than the FlowRecord itself.
 */
interface FlowSampleScratch {
  sequence: number;
  sourceIdType: number;
  sourceIdIndex: number;
  samplingRate: number;
  samplePool: number;
  drops: number;
  inputFormat: number;
  inputValue: number;
  outputFormat: number;
  outputValue: number;
  /** header_protocol of the first raw header record, -1 when there was none. */
  headerProtocol: number;
  frameLength: number;
  stripped: number;
  headerLength: number;
  /** True when the first raw header was walked (its result is in `pkt`). */
  walked: boolean;
  /** sampled_ethernet: the frame length (-1 when the record was absent) and its EtherType. */
  ethernetLength: number;
  ethernetType: number;
  /** 4 / 6 when a sampled_ipv4 / sampled_ipv6 record was present, else 0. */
  sampledVersion: 0 | 4 | 6;
  sampledLength: number;
  sampledProtocol: number;
  sampledSrc: string | undefined;
  sampledDst: string | undefined;
  /** Offset of the sampled_ipv4 / sampled_ipv6 src_ip in the datagram (dst_ip follows it). */
  sampledSrcAt: number;
  sampledSrcPort: number;
  sampledDstPort: number;
  sampledPriority: number;
  /** extended_switch fields, srcVlan -1 when the record was absent. */
  srcVlan: number;
  srcPriority: number;
  dstVlan: number;
  dstPriority: number;
}

const s: FlowSampleScratch = {
  sequence: 0,
  sourceIdType: 0,
  sourceIdIndex: 0,
  samplingRate: 0,
  samplePool: 0,
  drops: 0,
  inputFormat: 0,
  inputValue: 0,
  outputFormat: 0,
  outputValue: 0,
  headerProtocol: -1,
  frameLength: 0,
  stripped: 0,
  headerLength: 0,
  walked: false,
  ethernetLength: -1,
  ethernetType: 0,
  sampledVersion: 0,
  sampledLength: 0,
  sampledProtocol: 0,
  sampledSrc: undefined,
  sampledDst: undefined,
  sampledSrcAt: 0,
  sampledSrcPort: 0,
  sampledDstPort: 0,
  sampledPriority: 0,
  srcVlan: -1,
  srcPriority: 0,
  dstVlan: -1,
  dstPriority: 0,
};

/** The walker's output, reused across samples for the same reason as `s`. */
const pkt = newPacketInfo();

/**
 * Decodes the flow sample whose body spans r.pos..r.end and appends its FlowRecord to
 * ctx.result.records. Throws DecodeError when the sample is malformed; the caller confines
 * that to this sample.
 */
export function decodeFlowSample(r: Reader, expanded: boolean, ctx: DatagramContext): void {
  // The fixed part is read with one bounds check and direct DataView reads: this runs once
  // per sample, and per-field checks were a measurable share of decode time.
  const p = r.pos;
  const v = r.view;
  // DataView offsets are r.base + position (Reader.view spans the whole buffer).
  const q = r.base + p;
  let count: number;
  if (expanded) {
    // flow_sample_expanded: sflow_data_source_expanded and interface_expanded carry type /
    // format and index / value as separate words, so ifIndex may use all 32 bits.
    r.need(EXPANDED_FLOW_SAMPLE_FIXED_LEN, 'flow_sample_expanded');
    s.sequence = v.getUint32(q);
    s.sourceIdType = v.getUint32(q + 4);
    s.sourceIdIndex = v.getUint32(q + 8);
    s.samplingRate = v.getUint32(q + 12);
    s.samplePool = v.getUint32(q + 16);
    s.drops = v.getUint32(q + 20);
    s.inputFormat = v.getUint32(q + 24);
    s.inputValue = v.getUint32(q + 28);
    s.outputFormat = v.getUint32(q + 32);
    s.outputValue = v.getUint32(q + 36);
    count = v.getUint32(q + 40);
    r.pos = p + EXPANDED_FLOW_SAMPLE_FIXED_LEN;
  } else {
    r.need(FLOW_SAMPLE_FIXED_LEN, 'flow_sample');
    s.sequence = v.getUint32(q);
    const sid = v.getUint32(q + 4);
    s.sourceIdType = sid >>> SOURCE_TYPE_SHIFT;
    s.sourceIdIndex = sid & SOURCE_INDEX_MASK;
    s.samplingRate = v.getUint32(q + 8);
    s.samplePool = v.getUint32(q + 12);
    s.drops = v.getUint32(q + 16);
    const input = v.getUint32(q + 20);
    const output = v.getUint32(q + 24);
    s.inputFormat = input >>> INTERFACE_FORMAT_SHIFT;
    s.inputValue = input & INTERFACE_VALUE_MASK;
    s.outputFormat = output >>> INTERFACE_FORMAT_SHIFT;
    s.outputValue = output & INTERFACE_VALUE_MASK;
    count = v.getUint32(q + 28);
    r.pos = p + FLOW_SAMPLE_FIXED_LEN;
  }
  if (count > ctx.maxRecords) {
    throw new DecodeError('limit-exceeded', `flow sample has ${count} records, cap ${ctx.maxRecords}`, r.pos - 4);
  }

  s.headerProtocol = -1;
  s.walked = false;
  s.ethernetLength = -1;
  s.ethernetType = 0;
  s.sampledVersion = 0;
  s.srcVlan = -1;
  s.dstVlan = -1;
  const sampleEnd = r.end;
  for (let i = 0; i < count; i++) {
    // Bounds checked inline; r.need only builds the error (a call per check was ~5% of
    // sFlow decode time when V8 did not inline it).
    if (sampleEnd - r.pos < 8) r.need(8, 'flow record header');
    const format = v.getUint32(r.base + r.pos);
    const len = v.getUint32(r.base + r.pos + 4);
    r.pos += 8;
    if (len > sampleEnd - r.pos) r.need(len, 'flow record data');
    const start = r.pos;
    r.end = start + len;
    if (format >>> FORMAT_BITS === 0) readFlowRecord(r, format & FORMAT_MASK, len, ctx);
    else ctx.result.stats.skipped.flowRecords++;
    r.end = sampleEnd;
    r.pos = xdrNext(start, len, sampleEnd);
  }

  // Sequence and pool bookkeeping only for samples that decoded completely.
  const src = sourceEntry(ctx.state, ctx.agentEntry, 'flow', s.sourceIdType, s.sourceIdIndex);
  ctx.result.stats.lostSamples += recordFlowSample(src, s.sequence, s.samplingRate, s.samplePool, s.drops);

  // A record with a field dump (withFields, or an inner header) is the caller's to keep.
  const inner = s.walked && pkt.inner !== undefined;
  const rec = ctx.shared !== undefined && !inner ? ctx.shared : emptyRecord('sflow', ctx.exporter, ctx.subAgent);
  fillRecord(rec, ctx, r.bytes);
  if (ctx.withFields) rec.fields = sampleFields(ctx);
  else if (inner) rec.fields = innerFields();
  const stats = ctx.result.stats;
  if (ctx.sink !== undefined) {
    stats.records = (stats.records ?? 0) + 1;
    ctx.sink(rec);
  } else ctx.result.records.push(rec);
}

function readFlowRecord(r: Reader, format: number, len: number, ctx: DatagramContext): void {
  switch (format) {
    case FLOW_RAW_HEADER: {
      // Only the first raw header describes the sample; a second one is unusual and skipped.
      if (s.headerProtocol !== -1) {
        ctx.result.stats.skipped.flowRecords++;
        return;
      }
      if (len < RAW_HEADER_FIXED_LEN) throw new DecodeError('bad-length', `sampled_header length ${len}`, r.pos);
      const p = r.pos;
      const v = r.view;
      const q = r.base + p;
      s.headerProtocol = v.getUint32(q);
      s.frameLength = v.getUint32(q + 4);
      s.stripped = v.getUint32(q + 8);
      s.headerLength = v.getUint32(q + 12);
      r.pos = p + RAW_HEADER_FIXED_LEN;
      if (s.headerLength > r.end - r.pos) r.need(s.headerLength, 'sampled_header header bytes');
      const start = headerStart(s.headerProtocol);
      if (start === undefined) {
        ctx.result.stats.skipped.headerProtocols++;
        return;
      }
      walkHeader(r.bytes, r.pos, s.headerLength, start, pkt, ctx.walkOptions);
      s.walked = true;
      return;
    }
    case FLOW_SAMPLED_ETHERNET: {
      if (len < SAMPLED_ETHERNET_LEN) throw new DecodeError('bad-length', `sampled_ethernet length ${len}`, r.pos);
      // length (the MAC frame, FCS included), src_mac, dst_mac (each padded to 8), type.
      const q = r.base + r.pos;
      s.ethernetLength = r.view.getUint32(q);
      s.ethernetType = r.view.getUint32(q + 20);
      r.pos += SAMPLED_ETHERNET_LEN;
      return;
    }
    case FLOW_SAMPLED_IPV4: {
      if (len < SAMPLED_IPV4_LEN) throw new DecodeError('bad-length', `sampled_ipv4 length ${len}`, r.pos);
      // The record's end is r.end and it holds SAMPLED_IPV4_LEN octets: no further checks.
      const p = r.pos;
      const v = r.view;
      const q = r.base + p;
      s.sampledVersion = 4;
      s.sampledLength = v.getUint32(q);
      s.sampledProtocol = v.getUint32(q + 4);
      s.sampledSrcAt = p + 8;
      s.sampledSrc = ctx.withAddresses ? ipv4String(r.bytes, p + 8) : undefined;
      s.sampledDst = ctx.withAddresses ? ipv4String(r.bytes, p + 12) : undefined;
      s.sampledSrcPort = v.getUint32(q + 16);
      s.sampledDstPort = v.getUint32(q + 20);
      // p + 24: tcp_flags
      s.sampledPriority = v.getUint32(q + 28);
      r.pos = p + SAMPLED_IPV4_LEN;
      return;
    }
    case FLOW_SAMPLED_IPV6: {
      if (len < SAMPLED_IPV6_LEN) throw new DecodeError('bad-length', `sampled_ipv6 length ${len}`, r.pos);
      // The record holds SAMPLED_IPV6_LEN octets (checked above): no further checks.
      const p = r.pos;
      const v = r.view;
      const q = r.base + p;
      s.sampledVersion = 6;
      s.sampledLength = v.getUint32(q);
      s.sampledProtocol = v.getUint32(q + 4);
      s.sampledSrcAt = p + 8;
      s.sampledSrc = ctx.withAddresses ? ipv6String(r.bytes, p + 8) : undefined;
      s.sampledDst = ctx.withAddresses ? ipv6String(r.bytes, p + 24) : undefined;
      s.sampledSrcPort = v.getUint32(q + 40);
      s.sampledDstPort = v.getUint32(q + 44);
      // p + 48: tcp_flags
      s.sampledPriority = v.getUint32(q + 52);
      r.pos = p + SAMPLED_IPV6_LEN;
      return;
    }
    case FLOW_EXTENDED_SWITCH: {
      if (len < EXTENDED_SWITCH_LEN) throw new DecodeError('bad-length', `extended_switch length ${len}`, r.pos);
      // src_vlan, src_priority, dst_vlan, dst_priority: inside the length checked above.
      const p = r.pos;
      const v = r.view;
      const q = r.base + p;
      s.srcVlan = v.getUint32(q);
      s.srcPriority = v.getUint32(q + 4);
      s.dstVlan = v.getUint32(q + 8);
      s.dstPriority = v.getUint32(q + 12);
      r.pos = p + EXTENDED_SWITCH_LEN;
      return;
    }
    default:
      ctx.result.stats.skipped.flowRecords++;
  }
}

function headerStart(protocol: number): HeaderStart | undefined {
  if (protocol === HEADER_ETHERNET) return 'ethernet';
  if (protocol === HEADER_IPV6) return 'ipv6';
  if (protocol === HEADER_IPV4) return 'ipv4';
  return undefined;
}

/**
 * An interface field as FlowRecord.inIf/outIf, which holds interfaces only: the ifIndex for
 * format 0; undefined for format 0 with 0x3FFFFFFF (the device itself, "no interface"), for
 * format 1 (packet discarded: the value is a drop reason) and 2 (multiple outputs: the value
 * is a count). None of those is an interface, and as ifIndexes they would invent links
 * (exporter:1073741823). The `decode` field dump keeps the raw format and value.
 */
function ifIndexOf(format: number, value: number): number | undefined {
  return format === INTERFACE_FORMAT_IFINDEX && value !== INTERFACE_NONE ? value : undefined;
}

/**
 * Writes every field of `rec` from the sample just read (`s`, `pkt`): present or not, so a
 * record reused for the next sample carries nothing over. packets 1, bytes = frame_length.
 * `bytes` is the datagram the sample was read from (what the offsets in `s` and `pkt` refer
 * to): the record's addrBytes.
 */
function fillRecord(rec: FlowRecord, ctx: DatagramContext, bytes: Uint8Array): void {
  rec.protocol = 'sflow';
  rec.exporter = ctx.exporter;
  rec.domain = ctx.subAgent;
  rec.templateId = 0;
  rec.packets = 1;
  if (s.samplingRate > 0) {
    rec.samplingRate = s.samplingRate;
    rec.samplingSource = 'header';
  } else {
    // 0 is not a rate: the default 1 / 'unknown', and configuration decides.
    rec.samplingRate = 1;
    rec.samplingSource = 'unknown';
  }
  rec.inIf = ifIndexOf(s.inputFormat, s.inputValue);
  rec.outIf = ifIndexOf(s.outputFormat, s.outputValue);
  rec.direction = undefined;
  rec.startMs = undefined;
  rec.endMs = undefined;
  rec.exportMs = undefined;
  // The frame length, as the agent reports it: the raw header's frame_length, else
  // sampled_ethernet's length (the same MAC frame, FCS included), else the IP length of
  // sampled_ipv4 / sampled_ipv6 (the only size such a sample has).
  rec.bytes =
    s.headerProtocol !== -1 ? s.frameLength : s.ethernetLength >= 0 ? s.ethernetLength : s.sampledVersion !== 0 ? s.sampledLength : 0;

  if (s.walked && pkt.ipVersion !== 0) {
    rec.ipVersion = pkt.ipVersion;
    rec.flowLabel = pkt.flowLabel;
    rec.trafficClass = pkt.trafficClass;
    rec.srcAddr = pkt.srcAddr;
    rec.dstAddr = pkt.dstAddr;
    // The bytes of the same header as the strings; both addresses, or none (a cut header).
    if (pkt.dstAddrAt >= 0) {
      rec.addrBytes = bytes;
      rec.addrLen = pkt.addrLen;
      rec.srcAddrAt = pkt.srcAddrAt;
      rec.dstAddrAt = pkt.dstAddrAt;
    } else noAddressBytes(rec);
    rec.ipProtocol = pkt.ipProtocol;
    rec.srcPort = pkt.srcPort;
    rec.dstPort = pkt.dstPort;
  } else if (s.sampledVersion !== 0) {
    // sampled_ipv4/ipv6 carry no flow label: the sample counts as unlabelled traffic.
    rec.ipVersion = s.sampledVersion;
    rec.flowLabel = undefined;
    rec.trafficClass = s.sampledVersion === 6 ? s.sampledPriority & 0xff : undefined;
    rec.srcAddr = s.sampledSrc;
    rec.dstAddr = s.sampledDst;
    rec.addrBytes = bytes;
    rec.addrLen = s.sampledVersion === 6 ? 16 : 4;
    rec.srcAddrAt = s.sampledSrcAt;
    rec.dstAddrAt = s.sampledSrcAt + (s.sampledVersion === 6 ? 16 : 4);
    rec.ipProtocol = s.sampledProtocol;
    const ports = s.sampledProtocol === PROTO_TCP || s.sampledProtocol === PROTO_UDP || s.sampledProtocol === PROTO_SCTP;
    rec.srcPort = ports ? s.sampledSrcPort : undefined;
    rec.dstPort = ports ? s.sampledDstPort : undefined;
  } else {
    // A header too short (or malformed) to show more is still traffic of its IP version, and
    // so is a sampled_ethernet frame of an IP EtherType.
    rec.ipVersion =
      s.headerProtocol === HEADER_IPV6 || (s.headerProtocol === -1 && s.ethernetType === ETHERTYPE_IPV6)
        ? 6
        : s.headerProtocol === HEADER_IPV4 || (s.headerProtocol === -1 && s.ethernetType === ETHERTYPE_IPV4)
          ? 4
          : 0;
    rec.flowLabel = undefined;
    rec.trafficClass = undefined;
    rec.srcAddr = undefined;
    rec.dstAddr = undefined;
    noAddressBytes(rec);
    rec.ipProtocol = undefined;
    rec.srcPort = undefined;
    rec.dstPort = undefined;
  }

  // VLAN: extended_switch src_vlan when it names one, else the outermost tag in the header.
  // VID 0 means "no VLAN" (802.1Q priority tag), so it never becomes a VLAN.
  if (s.srcVlan > 0 && s.srcVlan <= MAX_VLAN_ID) rec.vlan = s.srcVlan;
  else if (s.walked && pkt.vlans.length > 0 && pkt.vlans[0]! > 0) rec.vlan = pkt.vlans[0];
  else rec.vlan = undefined;
}

/** No address bytes (FlowRecord.addrLen 0), and no reference kept to the datagram. */
function noAddressBytes(rec: FlowRecord): void {
  rec.addrBytes = undefined;
  rec.addrLen = 0;
  rec.srcAddrAt = 0;
  rec.dstAddrAt = 0;
}

function innerFields(): Record<string, unknown> {
  const inner = pkt.inner;
  if (inner === undefined) return {};
  return {
    inner_ip_version: inner.ipVersion,
    inner_flow_label: inner.flowLabel,
    inner_src: inner.srcAddr,
    inner_dst: inner.dstAddr,
    inner_protocol: inner.ipProtocol,
    inner_src_port: inner.srcPort,
    inner_dst_port: inner.dstPort,
  };
}

/** The sample's sFlow fields by their XDR names (sFlow v5 section 5), for `decode` and tests. */
function sampleFields(ctx: DatagramContext): Record<string, unknown> {
  const f: Record<string, unknown> = {
    agent: ctx.agent,
    sub_agent_id: ctx.subAgent,
    sequence_number: s.sequence,
    source_id_type: s.sourceIdType,
    source_id_index: s.sourceIdIndex,
    sampling_rate: s.samplingRate,
    sample_pool: s.samplePool,
    drops: s.drops,
    input_format: s.inputFormat,
    input_value: s.inputValue,
    output_format: s.outputFormat,
    output_value: s.outputValue,
  };
  if (s.headerProtocol !== -1) {
    f['header_protocol'] = s.headerProtocol;
    f['frame_length'] = s.frameLength;
    f['stripped'] = s.stripped;
    f['header_length'] = s.headerLength;
  }
  if (s.walked) {
    f['header_vlans'] = pkt.vlans.slice();
    f['header_mpls_labels'] = pkt.mplsLabels.slice();
    f['ip_length'] = pkt.ipLength;
    f['icmp_type'] = pkt.icmpType;
    f['icmp_code'] = pkt.icmpCode;
    f['fragment'] = pkt.fragment;
    f['truncated'] = pkt.truncated;
    if (pkt.inner !== undefined) Object.assign(f, innerFields());
  }
  if (s.srcVlan !== -1) {
    f['src_vlan'] = s.srcVlan;
    f['src_priority'] = s.srcPriority;
    f['dst_vlan'] = s.dstVlan;
    f['dst_priority'] = s.dstPriority;
  }
  if (s.ethernetLength >= 0) {
    f['ethernet_length'] = s.ethernetLength;
    f['ethernet_type'] = s.ethernetType;
  }
  if (s.sampledVersion !== 0) f['sampled_ip_version'] = s.sampledVersion;
  return f;
}
