/**
 * IE 315 dataLinkFrameSection (PSAMP, RFC 5477): the record carries (the start of) one
 * sampled frame instead of flow fields. The shared packet walker reads the frame; the record
 * then stands for one packet whose size is the IP length in its header (the frame section
 * may be cut short or zero-padded by the exporter, so its own length says nothing).
 */
import { newPacketInfo, walkHeader, type WalkOptions } from '../packet/walker.js';
import type { FlowRecord } from '../record.js';

/** The walker's output, reused for every frame (decoding is synchronous: nothing else holds it). */
const info = newPacketInfo();
/** Walk options by (withAddresses, outer): index 2a + o. */
const OPTIONS: readonly WalkOptions[] = [
  { addresses: false, outer: false },
  { addresses: false, outer: true },
  { addresses: true, outer: false },
  { addresses: true, outer: true },
];

/**
 * Fills `rec` from the frame at `b[off..off+len)`. Fields the record's template already
 * supplied win over what the frame says; counts come from the frame only when the template
 * has none (a PSAMP packet report has no packetDeltaCount / octetDeltaCount).
 *
 * Addresses, each side separately as for the strings: the record's own field (at
 * `srcAt` / `dstAt` of `b`, `srcLen` / `dstLen` octets; -1 when the template has none) wins,
 * else the frame's header. The bytes (FlowRecord.addrBytes) are set when both sides are then
 * known with one length, else addrLen is 0; `b` is what every offset refers to.
 */
export function walkFrame(
  b: Uint8Array,
  off: number,
  len: number,
  rec: FlowRecord,
  hasCounts: boolean,
  withAddresses: boolean,
  outer: boolean,
  srcAt: number,
  srcLen: number,
  dstAt: number,
  dstLen: number,
): void {
  walkHeader(b, off, len, 'ethernet', info, OPTIONS[(withAddresses ? 2 : 0) + (outer ? 1 : 0)]);
  if (!hasCounts) {
    rec.packets = 1;
    rec.bytes = info.ipLength ?? 0;
  }
  if (rec.ipVersion === 0) rec.ipVersion = info.ipVersion;
  if (rec.flowLabel === undefined) rec.flowLabel = info.flowLabel;
  if (rec.trafficClass === undefined) rec.trafficClass = info.trafficClass;
  if (rec.ipProtocol === undefined) rec.ipProtocol = info.ipProtocol;
  if (rec.srcPort === undefined) rec.srcPort = info.srcPort;
  if (rec.dstPort === undefined) rec.dstPort = info.dstPort;
  if (rec.vlan === undefined) rec.vlan = info.vlans[0];
  if (withAddresses) {
    if (rec.srcAddr === undefined) rec.srcAddr = info.srcAddr;
    if (rec.dstAddr === undefined) rec.dstAddr = info.dstAddr;
  }
  if (srcAt < 0) {
    srcAt = info.srcAddrAt;
    srcLen = info.addrLen;
  }
  if (dstAt < 0) {
    dstAt = info.dstAddrAt;
    dstLen = info.addrLen;
  }
  if (srcAt >= 0 && dstAt >= 0 && srcLen === dstLen && srcLen !== 0) {
    rec.addrBytes = b;
    rec.addrLen = srcLen as 4 | 16;
    rec.srcAddrAt = srcAt;
    rec.dstAddrAt = dstAt;
  } else {
    rec.addrBytes = undefined;
    rec.addrLen = 0;
    rec.srcAddrAt = 0;
    rec.dstAddrAt = 0;
  }
}
