/**
 * The raw-header walker shared by sFlow raw packet headers (sFlow v5 flow record 1) and
 * IPFIX IE 315 (dataLinkFrameSection): from Ethernet (with 802.1Q / 802.1ad / 0x9100 tag
 * stacks and MPLS label stacks) or bare IPv4 / IPv6 down to the IPv6 flow label, the
 * addresses and the upper-layer ports.
 *
 * Contract:
 * - Only bytes[offset, offset + length) are read. Sampled headers are cut at arbitrary
 *   points, so running out of header is normal: the walk stops, sets `truncated`, and leaves
 *   every later field undefined. It never throws for that.
 * - DecodeError is thrown only when offset/length do not describe a range of `bytes` (a
 *   caller bug or a length field the caller did not check).
 * - `out` is reset and refilled; callers on the hot path reuse one PacketInfo (and its vlans
 *   and mplsLabels arrays) so a walk allocates nothing but address strings.
 */
import { DecodeError } from '../errors.js';
import { u16 } from '../reader.js';
import type { HeaderStart, PacketInfo } from './types.js';
import { walkIpv4, walkIpv6, walkMode, type TunnelHook } from './ip.js';
import {
  ETHERNET_HEADER_LEN,
  ETHERTYPE_IPV4,
  ETHERTYPE_IPV6,
  ETHERTYPE_MPLS_MULTICAST,
  ETHERTYPE_MPLS_UNICAST,
  ETHERTYPE_QINQ,
  ETHERTYPE_QINQ_LEGACY,
  ETHERTYPE_TEB,
  ETHERTYPE_VLAN,
  IPPROTO_GRE,
  IPPROTO_IPIP,
  IPPROTO_IPV6,
  IPPROTO_UDP,
  MPLS_ENTRY_LEN,
  PW_CONTROL_WORD_LEN,
  UDP_HEADER_LEN,
  VLAN_TAG_LEN,
  VXLAN_HEADER_LEN,
} from './constants.js';

export interface WalkOptions {
  /**
   * Walk one level of tunnel (GRE, IP-in-IP 4/41, VXLAN on UDP 4789) and report the inner
   * packet in `out.inner`. Off by default: accounting uses the outer label, and the extra
   * walk costs time on every tunnelled sample.
   */
  inner?: boolean;
  /**
   * Format srcAddr / dstAddr (default true). Off, they stay undefined: aggregation does not
   * need them, and formatting is the costliest part of a walk.
   */
  addresses?: boolean;
  /**
   * Keep the outer header of IP-in-IP under IPv6 (exporters.outerFlowLabel). Default false:
   * an IPv6 packet carrying IPv6 (next header 41, RFC 2473; SRv6 encapsulation, RFC 8986) or
   * IPv4 (4, RFC 2003) is reported by its innermost header, the customer packet whose label
   * is the host's marking, as for IPFIX templates with IE 31 twice (plan.ts).
   */
  outer?: boolean;
}

/** More tags than this is not a real frame; stop rather than walk attacker-chosen depth. */
const MAX_VLAN_TAGS = 8;
/** Real MPLS stacks are a few labels deep; same reasoning. */
const MAX_MPLS_LABELS = 16;

export function newPacketInfo(): PacketInfo {
  return {
    ipVersion: 0,
    flowLabel: undefined,
    trafficClass: undefined,
    ipLength: undefined,
    srcAddr: undefined,
    dstAddr: undefined,
    addrLen: 0,
    srcAddrAt: -1,
    dstAddrAt: -1,
    ipProtocol: undefined,
    srcPort: undefined,
    dstPort: undefined,
    icmpType: undefined,
    icmpCode: undefined,
    vlans: [],
    mplsLabels: [],
    fragment: false,
    truncated: false,
    inner: undefined,
  };
}

/** Clears `out` for reuse, keeping its arrays (emptied) so no new ones are allocated. */
export function resetPacketInfo(out: PacketInfo): void {
  out.ipVersion = 0;
  out.flowLabel = undefined;
  out.trafficClass = undefined;
  out.ipLength = undefined;
  out.srcAddr = undefined;
  out.dstAddr = undefined;
  out.addrLen = 0;
  out.srcAddrAt = -1;
  out.dstAddrAt = -1;
  out.ipProtocol = undefined;
  out.srcPort = undefined;
  out.dstPort = undefined;
  out.icmpType = undefined;
  out.icmpCode = undefined;
  // Setting .length is a runtime call in V8 (and may shrink the backing store, so the next
  // push allocates again); pop() is inlined and keeps the capacity. Most frames carry a tag
  // or two and no labels.
  const vlans = out.vlans;
  while (vlans.length !== 0) vlans.pop();
  const labels = out.mplsLabels;
  while (labels.length !== 0) labels.pop();
  out.fragment = false;
  out.truncated = false;
  out.inner = undefined;
}

export function walkHeader(
  bytes: Uint8Array,
  offset: number,
  length: number,
  start: HeaderStart,
  out: PacketInfo,
  opts?: WalkOptions,
): PacketInfo {
  if (!Number.isInteger(offset) || !Number.isInteger(length) || offset < 0 || length < 0 || offset + length > bytes.length) {
    throw new DecodeError('truncated', `header range ${offset}+${length} outside ${bytes.length} bytes`, offset);
  }
  resetPacketInfo(out);
  walkMode.addresses = opts?.addresses !== false;
  // The tunnel hook: one level of tunnel into out.inner (`inner`), and/or IP-in-IP under
  // IPv6 replaced by its inner header (unless `outer`).
  const outer = opts?.outer === true;
  const tunnel = opts?.inner === true ? (outer ? walkTunnel : walkInnermostOrTunnel) : outer ? null : walkInnermost;
  walkFrom(bytes, offset, offset + length, start, out, tunnel);
  return out;
}

function walkFrom(bytes: Uint8Array, p: number, end: number, start: HeaderStart, out: PacketInfo, tunnel: TunnelHook | null): void {
  if (start === 'ethernet') walkEthernet(bytes, p, end, out, tunnel);
  else if (start === 'ipv6') walkIpv6(bytes, p, end, out, tunnel);
  else walkIpv4(bytes, p, end, out, tunnel);
}

/** Ethernet II header (IEEE 802.3 clause 3.2, DIX framing) and any VLAN tags after it. */
function walkEthernet(bytes: Uint8Array, p: number, end: number, out: PacketInfo, tunnel: TunnelHook | null): void {
  if (end - p < ETHERNET_HEADER_LEN) {
    out.truncated = true;
    return;
  }
  let type = u16(bytes, p + 12);
  p += ETHERNET_HEADER_LEN;
  // 802.1Q tag: TCI (PCP 3 bits, DEI 1 bit, VID 12 bits) then the next EtherType
  // (IEEE 802.1Q clause 9.6); 802.1ad and the legacy 0x9100 S-tag use the same layout.
  while (type === ETHERTYPE_VLAN || type === ETHERTYPE_QINQ || type === ETHERTYPE_QINQ_LEGACY) {
    if (out.vlans.length >= MAX_VLAN_TAGS) return;
    if (end - p < VLAN_TAG_LEN) {
      out.truncated = true;
      return;
    }
    out.vlans.push(u16(bytes, p) & 0x0fff);
    type = u16(bytes, p + 2);
    p += VLAN_TAG_LEN;
  }
  walkEthertype(bytes, p, end, type, out, tunnel);
}

/** What follows an EtherType (also used for GRE's protocol type, which shares the registry). */
function walkEthertype(bytes: Uint8Array, p: number, end: number, type: number, out: PacketInfo, tunnel: TunnelHook | null): void {
  switch (type) {
    case ETHERTYPE_IPV6:
      walkIpv6(bytes, p, end, out, tunnel);
      return;
    case ETHERTYPE_IPV4:
      walkIpv4(bytes, p, end, out, tunnel);
      return;
    case ETHERTYPE_MPLS_UNICAST:
    case ETHERTYPE_MPLS_MULTICAST:
      walkMpls(bytes, p, end, out, tunnel);
      return;
    default:
      // ARP, LLDP, 802.3 length fields, ...: not IP, nothing to report, not truncated.
      return;
  }
}

/**
 * MPLS label stack entries (RFC 3032 section 2.1: label 20 bits, TC 3, S 1, TTL 8) down to
 * the bottom-of-stack bit. MPLS has no payload type, so the payload is told by its first
 * nibble (RFC 4928 section 2 describes the same heuristic in LSRs): 4 is IPv4, 6 is IPv6,
 * 0 is the pseudowire control word of RFC 4385 section 3 (first nibble 0000 for PW data),
 * which on an Ethernet pseudowire (EoMPLS, EVPN: RFC 4448 section 4.6, RFC 7432 section 7)
 * is followed by the customer's Ethernet frame, walked like any frame (as akvorado does).
 * Anything else (an ACH, nibble 1; a pseudowire without control word) is left undecoded.
 */
function walkMpls(bytes: Uint8Array, p: number, end: number, out: PacketInfo, tunnel: TunnelHook | null): void {
  for (;;) {
    if (out.mplsLabels.length >= MAX_MPLS_LABELS) return;
    if (end - p < MPLS_ENTRY_LEN) {
      out.truncated = true;
      return;
    }
    const entry = ((bytes[p]! << 24) | (bytes[p + 1]! << 16) | (bytes[p + 2]! << 8) | bytes[p + 3]!) >>> 0;
    out.mplsLabels.push(entry >>> 12);
    p += MPLS_ENTRY_LEN;
    if ((entry & 0x100) !== 0) break;
  }
  if (end - p < 1) {
    out.truncated = true;
    return;
  }
  const nibble = bytes[p]! >>> 4;
  if (nibble === 6) walkIpv6(bytes, p, end, out, tunnel);
  else if (nibble === 4) walkIpv4(bytes, p, end, out, tunnel);
  else if (nibble === 0) {
    if (end - p < PW_CONTROL_WORD_LEN) {
      out.truncated = true;
      return;
    }
    // The inner frame may carry MPLS again; the label cap above (the labels of every level
    // count against it) bounds that recursion.
    walkEthernet(bytes, p + PW_CONTROL_WORD_LEN, end, out, tunnel);
  }
}

/**
 * One level of tunnel, reported in `out.inner` (the outer fields are untouched). The inner
 * walk gets no tunnel hook, so nesting is bounded at one level.
 */
function walkTunnel(bytes: Uint8Array, p: number, end: number, proto: number, out: PacketInfo): void {
  const inner = spareInner(out);
  resetPacketInfo(inner);
  out.inner = inner;
  switch (proto) {
    case IPPROTO_IPIP:
      walkIpv4(bytes, p, end, inner, null);
      return;
    case IPPROTO_IPV6:
      walkIpv6(bytes, p, end, inner, null);
      return;
    case IPPROTO_GRE:
      walkGre(bytes, p, end, inner);
      return;
    case IPPROTO_UDP:
      // VXLAN (RFC 7348 section 5): UDP header, 8-octet VXLAN header, inner Ethernet frame.
      walkEthernetAt(bytes, p + UDP_HEADER_LEN + VXLAN_HEADER_LEN, end, inner);
      return;
    default:
      out.inner = undefined;
  }
}

/**
 * IP-in-IP under an IPv6 outer header: the inner packet's fields replace the outer ones
 * (version, label, traffic class, addresses and their offsets, protocol, ports, ICMP, fragment); the IP length
 * stays the outer one, the size of what the link carried. An inner header cut short leaves
 * its fields unknown rather than the outer's (which are not the host's); one whose version
 * nibble is wrong is not a packet, and the outer header stays. One level only (the inner
 * walk has no hook). Returns false when `proto` under this header is not such a tunnel.
 */
function adoptInner(bytes: Uint8Array, p: number, end: number, proto: number, out: PacketInfo): boolean {
  if ((proto !== IPPROTO_IPV6 && proto !== IPPROTO_IPIP) || out.ipVersion !== 6) return false;
  const inner = spareInner(out);
  resetPacketInfo(inner);
  if (proto === IPPROTO_IPV6) walkIpv6(bytes, p, end, inner, null);
  else walkIpv4(bytes, p, end, inner, null);
  if (inner.ipVersion === 0) return true;
  out.ipVersion = inner.ipVersion;
  out.flowLabel = inner.flowLabel;
  out.trafficClass = inner.trafficClass;
  out.srcAddr = inner.srcAddr;
  out.dstAddr = inner.dstAddr;
  out.addrLen = inner.addrLen;
  out.srcAddrAt = inner.srcAddrAt;
  out.dstAddrAt = inner.dstAddrAt;
  out.ipProtocol = inner.ipProtocol;
  out.srcPort = inner.srcPort;
  out.dstPort = inner.dstPort;
  out.icmpType = inner.icmpType;
  out.icmpCode = inner.icmpCode;
  out.fragment = inner.fragment;
  if (inner.truncated) out.truncated = true;
  return true;
}

function walkInnermost(bytes: Uint8Array, p: number, end: number, proto: number, out: PacketInfo): void {
  adoptInner(bytes, p, end, proto, out);
}

function walkInnermostOrTunnel(bytes: Uint8Array, p: number, end: number, proto: number, out: PacketInfo): void {
  if (!adoptInner(bytes, p, end, proto, out)) walkTunnel(bytes, p, end, proto, out);
}

function walkEthernetAt(bytes: Uint8Array, p: number, end: number, inner: PacketInfo): void {
  if (p > end) {
    inner.truncated = true;
    return;
  }
  walkEthernet(bytes, p, end, inner, null);
}

/**
 * GRE header (RFC 2784 section 2.1, key and sequence from RFC 2890 section 2): 4 octets,
 * plus 4 for each of the checksum (C), key (K) and sequence (S) flags. Version 1 (PPTP's
 * enhanced GRE, RFC 2637) carries PPP, which we do not walk.
 */
function walkGre(bytes: Uint8Array, p: number, end: number, inner: PacketInfo): void {
  if (end - p < 4) {
    inner.truncated = true;
    return;
  }
  const flags = u16(bytes, p);
  if ((flags & 0x7) !== 0) return;
  const type = u16(bytes, p + 2);
  let len = 4;
  if ((flags & 0x8000) !== 0) len += 4; // C: checksum + reserved1
  if ((flags & 0x2000) !== 0) len += 4; // K: key
  if ((flags & 0x1000) !== 0) len += 4; // S: sequence number
  p += len;
  if (p > end) {
    inner.truncated = true;
    return;
  }
  if (type === ETHERTYPE_TEB) walkEthernet(bytes, p, end, inner, null);
  else walkEthertype(bytes, p, end, type, inner, null);
}

/**
 * One reusable inner PacketInfo per outer one, so tunnel decoding does not allocate per
 * packet either. A WeakMap keeps PacketInfo a plain data type.
 */
const spares = new WeakMap<PacketInfo, PacketInfo>();
function spareInner(out: PacketInfo): PacketInfo {
  let inner = spares.get(out);
  if (inner === undefined) {
    inner = newPacketInfo();
    spares.set(out, inner);
  }
  return inner;
}
