/**
 * IPv4 and IPv6 headers, IPv6 extension headers and the first octets of the upper layer
 * (ports, ICMP type/code). Every read is checked against `end`, the exclusive end of the
 * header the caller was given; a missing field sets `out.truncated` and stops the walk, so
 * everything read before the cut is kept and everything after it stays undefined.
 *
 * Positions are plain numbers threaded through the functions (no cursor object) so the walk
 * allocates nothing except the address strings. Where the addresses sit (addrLen, srcAddrAt,
 * dstAddrAt) is recorded whether or not they are formatted.
 */
import { u16 } from '../reader.js';
import type { PacketInfo } from './types.js';
import { ipv4String, ipv6String } from './addr.js';
import {
  FRAGMENT_HEADER_LEN,
  IPPROTO_AH,
  IPPROTO_DCCP,
  IPPROTO_DSTOPTS,
  IPPROTO_ESP,
  IPPROTO_FRAGMENT,
  IPPROTO_GRE,
  IPPROTO_HIP,
  IPPROTO_HOPOPTS,
  IPPROTO_ICMP,
  IPPROTO_ICMPV6,
  IPPROTO_IPIP,
  IPPROTO_IPV6,
  IPPROTO_MOBILITY,
  IPPROTO_NONE,
  IPPROTO_ROUTING,
  IPPROTO_SCTP,
  IPPROTO_SHIM6,
  IPPROTO_TCP,
  IPPROTO_UDP,
  IPPROTO_UDPLITE,
  IPV4_MIN_HEADER_LEN,
  IPV6_HEADER_LEN,
  UDP_PORT_VXLAN,
} from './constants.js';

/**
 * Called when the upper layer is a tunnel (GRE, IP-in-IP, VXLAN) and inner decoding is on.
 * `p` is where the tunnel header (GRE, inner IP, UDP) starts. Passed in rather than imported
 * so this module does not depend on the link-layer module that implements it.
 */
export type TunnelHook = (bytes: Uint8Array, p: number, end: number, proto: number, out: PacketInfo) => void;

/**
 * Whether addresses are formatted into `srcAddr` / `dstAddr`: set by walkHeader from
 * WalkOptions.addresses on every walk (so it never outlives one). Turning it off skips only
 * the text; the truncation checks, and so what counts as truncated, stay the same.
 */
export const walkMode = { addresses: true };

/**
 * A chain longer than this is treated as hostile: real stacks carry at most a handful
 * (RFC 8200 section 4.1 recommends each header at most once, destination options twice).
 */
const MAX_EXTENSION_HEADERS = 16;

/** IPv6 fixed header (RFC 8200 section 3) at `p`; the caller has set nothing yet. */
export function walkIpv6(bytes: Uint8Array, p: number, end: number, out: PacketInfo, tunnel: TunnelHook | null): void {
  out.ipVersion = 6;
  const avail = end - p;
  // The rule: the label is taken whenever the first 4 octets are present.
  if (avail < 4) {
    out.truncated = true;
    return;
  }
  const w0 = ((bytes[p]! << 24) | (bytes[p + 1]! << 16) | (bytes[p + 2]! << 8) | bytes[p + 3]!) >>> 0;
  if (w0 >>> 28 !== 6) {
    // EtherType or header_protocol said IPv6 but the version nibble disagrees: not a packet
    // we can interpret, and guessing a label from it would invent SciTags traffic.
    out.ipVersion = 0;
    return;
  }
  out.trafficClass = (w0 >>> 20) & 0xff;
  out.flowLabel = w0 & 0xfffff;
  if (avail < 6) {
    out.truncated = true;
    return;
  }
  // Payload length excludes the 40-octet fixed header (RFC 8200 section 3).
  out.ipLength = u16(bytes, p + 4) + IPV6_HEADER_LEN;
  if (avail < 7) {
    out.truncated = true;
    return;
  }
  let nh = bytes[p + 6]!;
  if (avail < 24) {
    out.truncated = true;
    return;
  }
  out.addrLen = 16;
  out.srcAddrAt = p + 8;
  if (walkMode.addresses) out.srcAddr = ipv6String(bytes, p + 8);
  if (avail < IPV6_HEADER_LEN) {
    out.truncated = true;
    return;
  }
  out.dstAddrAt = p + 24;
  if (walkMode.addresses) out.dstAddr = ipv6String(bytes, p + 24);
  p += IPV6_HEADER_LEN;

  // Extension headers (RFC 8200 section 4). Once a header's next-header octet is read the
  // protocol after it is known even if the header itself runs past the cut.
  for (let n = 0; ; n++) {
    switch (nh) {
      case IPPROTO_HOPOPTS:
      case IPPROTO_ROUTING:
      case IPPROTO_DSTOPTS:
      case IPPROTO_MOBILITY:
      case IPPROTO_HIP:
      case IPPROTO_SHIM6: {
        if (n >= MAX_EXTENSION_HEADERS) return;
        if (end - p < 2) {
          out.truncated = true;
          return;
        }
        // Hdr Ext Len is in 8-octet units, not counting the first 8 (RFC 8200 sections 4.3-4.6).
        const len = 8 * (bytes[p + 1]! + 1);
        nh = bytes[p]!;
        p += len;
        continue;
      }
      case IPPROTO_FRAGMENT: {
        if (n >= MAX_EXTENSION_HEADERS) return;
        if (end - p < 4) {
          out.truncated = true;
          return;
        }
        nh = bytes[p]!;
        // Fragment Offset is the top 13 bits of octets 2-3 (RFC 8200 section 4.5); only the
        // fragment at offset 0 holds the upper-layer header.
        const fragOffset = u16(bytes, p + 2) >>> 3;
        p += FRAGMENT_HEADER_LEN;
        if (fragOffset !== 0) {
          out.fragment = true;
          out.ipProtocol = nh;
          return;
        }
        continue;
      }
      case IPPROTO_AH: {
        if (n >= MAX_EXTENSION_HEADERS) return;
        if (end - p < 2) {
          out.truncated = true;
          return;
        }
        // AH Payload Len is in 4-octet units minus 2 (RFC 4302 section 2.2).
        const len = 4 * (bytes[p + 1]! + 2);
        nh = bytes[p]!;
        p += len;
        continue;
      }
      default:
        out.ipProtocol = nh;
        // ESP (RFC 4303) encrypts what follows; No Next Header (59) has nothing after it.
        if (nh === IPPROTO_ESP || nh === IPPROTO_NONE) return;
        walkUpperLayer(bytes, p, end, nh, out, tunnel);
        return;
    }
  }
}

/** IPv4 header (RFC 791 section 3.1) at `p`. */
export function walkIpv4(bytes: Uint8Array, p: number, end: number, out: PacketInfo, tunnel: TunnelHook | null): void {
  out.ipVersion = 4;
  const avail = end - p;
  if (avail < 1) {
    out.truncated = true;
    return;
  }
  const b0 = bytes[p]!;
  if (b0 >>> 4 !== 4) {
    out.ipVersion = 0;
    return;
  }
  const ihl = (b0 & 0x0f) * 4;
  if (avail < 4) {
    out.truncated = true;
    return;
  }
  out.ipLength = u16(bytes, p + 2);
  if (avail < 8) {
    out.truncated = true;
    return;
  }
  // Fragment Offset: low 13 bits of octets 6-7; non-first fragments carry no ports.
  const fragOffset = u16(bytes, p + 6) & 0x1fff;
  if (avail < 10) {
    out.truncated = true;
    return;
  }
  const proto = bytes[p + 9]!;
  out.ipProtocol = proto;
  if (avail < 16) {
    out.truncated = true;
    return;
  }
  out.addrLen = 4;
  out.srcAddrAt = p + 12;
  if (walkMode.addresses) out.srcAddr = ipv4String(bytes, p + 12);
  if (avail < IPV4_MIN_HEADER_LEN) {
    out.truncated = true;
    return;
  }
  out.dstAddrAt = p + 16;
  if (walkMode.addresses) out.dstAddr = ipv4String(bytes, p + 16);
  if (fragOffset !== 0) {
    out.fragment = true;
    return;
  }
  // IHL below 5 is malformed: there is no honest place where the upper layer starts.
  if (ihl < IPV4_MIN_HEADER_LEN) return;
  walkUpperLayer(bytes, p + ihl, end, proto, out, tunnel);
}

/** Ports (TCP, UDP, SCTP, UDP-Lite, DCCP share the layout) or ICMP type/code at `p`. */
function walkUpperLayer(bytes: Uint8Array, p: number, end: number, proto: number, out: PacketInfo, tunnel: TunnelHook | null): void {
  switch (proto) {
    case IPPROTO_TCP:
    case IPPROTO_UDP:
    case IPPROTO_SCTP:
    case IPPROTO_UDPLITE:
    case IPPROTO_DCCP:
      // Source port then destination port in the first 4 octets (RFC 9293 3.1, RFC 768,
      // RFC 9260 3.1, RFC 3828 3.1, RFC 4340 5.1).
      if (end - p < 2) {
        out.truncated = true;
        return;
      }
      out.srcPort = u16(bytes, p);
      if (end - p < 4) {
        out.truncated = true;
        return;
      }
      out.dstPort = u16(bytes, p + 2);
      if (tunnel !== null && proto === IPPROTO_UDP && out.dstPort === UDP_PORT_VXLAN) tunnel(bytes, p, end, proto, out);
      return;
    case IPPROTO_ICMP:
    case IPPROTO_ICMPV6:
      // Type then code (RFC 792, RFC 4443 section 2.1).
      if (end - p < 1) {
        out.truncated = true;
        return;
      }
      out.icmpType = bytes[p]!;
      if (end - p < 2) {
        out.truncated = true;
        return;
      }
      out.icmpCode = bytes[p + 1]!;
      return;
    case IPPROTO_GRE:
    case IPPROTO_IPIP:
    case IPPROTO_IPV6:
      if (tunnel !== null) tunnel(bytes, p, end, proto, out);
      return;
    default:
      return;
  }
}
