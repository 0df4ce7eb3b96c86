/**
 * NetFlow v5 (Cisco's fixed format; no RFC): a 24-octet header and `count` 48-octet IPv4
 * flow records. No templates; the only state is the flow sequence number.
 *
 * Containment: a datagram shorter than its header's count says is rejected whole (no
 * record is half-read, and a cut datagram is reported, not silently shortened).
 */
import { DecodeError } from '../errors.js';
import { ipv4String } from '../packet/addr.js';
import { u16, u32 } from '../reader.js';
import { emptyRecord } from '../record.js';
import { countSequence } from './sequence.js';
import { getSession, markActive, type FlowDecoderState } from './state.js';
import { getDomain } from './templates.js';
import type { FlowDecodeContext, FlowDecodeOptions, FlowDecodeResult } from './types.js';

export const NETFLOW5_VERSION = 5;
export const NETFLOW5_HEADER_LENGTH = 24;
export const NETFLOW5_RECORD_LENGTH = 48;
/** Cisco documents at most 30 records per v5 datagram; larger counts are corrupt headers. */
export const NETFLOW5_MAX_COUNT = 30;

export function decodeNetflow5(
  b: Uint8Array,
  ctx: FlowDecodeContext,
  state: FlowDecoderState,
  opts: FlowDecodeOptions,
  result: FlowDecodeResult,
): void {
  result.stats.version = NETFLOW5_VERSION;
  if (b.length < NETFLOW5_HEADER_LENGTH) {
    throw new DecodeError('truncated', `NetFlow v5 header needs ${NETFLOW5_HEADER_LENGTH} octets, got ${b.length}`, 0);
  }
  const count = u16(b, 2);
  if (count === 0 || count > NETFLOW5_MAX_COUNT) throw new DecodeError('bad-length', `record count ${count}`, 2);
  const need = NETFLOW5_HEADER_LENGTH + count * NETFLOW5_RECORD_LENGTH;
  if (b.length < need) throw new DecodeError('truncated', `${count} records need ${need} octets, got ${b.length}`, 2);
  const sysUptimeMs = u32(b, 4);
  const unixSecs = u32(b, 8);
  const unixNsecs = u32(b, 12);
  const flowSequence = u32(b, 16);
  const engineType = b[20]!;
  const engineId = b[21]!;
  // Top 2 bits: sampling mode (1 = deterministic/"packet interval"); low 14: the interval.
  const samplingField = u16(b, 22);
  const headerInterval = samplingField & 0x3fff;

  const session = getSession(state, ctx.exporterAddr, ctx.exporterPort, ctx.receivedMs);
  const key = session.key;
  // The sequence is per engine (type, id): one export process per engine.
  const d = getDomain(state, session, (engineType << 8) | engineId, ctx.receivedMs);

  // Rate: the header's, else the global default ('unknown'). Operator defaults and overrides
  // per exporter are applied after decoding (src/enrich/sampling.ts).
  let rate = 1;
  let source: 'header' | 'unknown' = 'unknown';
  if (headerInterval > 0) {
    rate = headerInterval;
    source = 'header';
  } else if (opts.defaultSamplingRate !== undefined && opts.defaultSamplingRate >= 1) {
    rate = opts.defaultSamplingRate;
  }
  if (source === 'unknown') {
    result.stats.unknownSampling += count;
    state.totals.unknownSamplingRecords += count;
  }

  const exportMs = unixSecs * 1000 + Math.floor(unixNsecs / 1e6);
  const withAddresses = opts.withAddresses !== false;
  const withFields = opts.withFields === true;
  const sink = opts.onRecord;
  // With a sink, one record object refilled for every record of the datagram (see
  // FlowDecodeOptions.onRecord and decodeDataSet in data.ts); every field is written below,
  // so nothing carries over.
  const shared = sink !== undefined && !withFields ? emptyRecord('netflow5', key, 0) : undefined;
  for (let i = 0; i < count; i++) {
    const o = NETFLOW5_HEADER_LENGTH + i * NETFLOW5_RECORD_LENGTH;
    const rec = shared ?? emptyRecord('netflow5', key, 0);
    rec.protocol = 'netflow5';
    rec.exporter = key;
    rec.domain = 0;
    rec.templateId = 0;
    rec.ipVersion = 4;
    rec.flowLabel = undefined;
    rec.exportMs = exportMs;
    rec.samplingRate = rate;
    rec.samplingSource = source;
    rec.srcAddr = withAddresses ? ipv4String(b, o) : undefined;
    rec.dstAddr = withAddresses ? ipv4String(b, o + 4) : undefined;
    rec.addrBytes = b;
    rec.addrLen = 4;
    rec.srcAddrAt = o;
    rec.dstAddrAt = o + 4;
    rec.inIf = u16(b, o + 12);
    rec.outIf = u16(b, o + 14);
    rec.packets = u32(b, o + 16);
    rec.bytes = u32(b, o + 20);
    // first/last are sysUptime at the flow's first/last packet; signed difference
    // tolerates the 32-bit uptime wrap.
    rec.startMs = exportMs - ((sysUptimeMs - u32(b, o + 24)) | 0);
    rec.endMs = exportMs - ((sysUptimeMs - u32(b, o + 28)) | 0);
    rec.srcPort = u16(b, o + 32);
    rec.dstPort = u16(b, o + 34);
    rec.ipProtocol = b[o + 38]!;
    rec.trafficClass = b[o + 39]!;
    rec.direction = undefined;
    rec.vlan = undefined;
    if (withFields) {
      rec.fields = {
        sourceIPv4Address: ipv4String(b, o),
        destinationIPv4Address: ipv4String(b, o + 4),
        ipNextHopIPv4Address: ipv4String(b, o + 8),
        ingressInterface: rec.inIf,
        egressInterface: rec.outIf,
        packetDeltaCount: rec.packets,
        octetDeltaCount: rec.bytes,
        flowStartSysUpTime: u32(b, o + 24),
        flowEndSysUpTime: u32(b, o + 28),
        sourceTransportPort: rec.srcPort,
        destinationTransportPort: rec.dstPort,
        tcpControlBits: b[o + 37]!,
        protocolIdentifier: rec.ipProtocol,
        ipClassOfService: rec.trafficClass,
        bgpSourceAsNumber: u16(b, o + 40),
        bgpDestinationAsNumber: u16(b, o + 42),
        sourceIPv4PrefixLength: b[o + 44]!,
        destinationIPv4PrefixLength: b[o + 45]!,
        engineType,
        engineId,
        samplingInterval: headerInterval,
        samplingAlgorithm: samplingField >>> 14,
      };
    }
    if (sink !== undefined) sink(rec);
    else result.records.push(rec);
  }
  result.stats.dataRecords += count;
  result.stats.records += count;
  if (count > 0) markActive(state, session, ctx.receivedMs);

  // v5's flow_sequence counts flows (records) seen before this datagram.
  countSequence(d.sequence, flowSequence, count, 'records', result.stats);
}
