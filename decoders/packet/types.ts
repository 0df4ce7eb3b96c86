/**
 * What the raw-header walker (decoders/packet/walker.ts) reports about one frame or IP
 * packet. Shared by sFlow raw packet headers (sFlow v5 flow record 1) and IPFIX IE 315
 * (dataLinkFrameSection). Fields past the point where the header was cut are `undefined`
 * ("unavailable"), never guessed and never read from beyond the given length.
 */
export type HeaderStart = 'ethernet' | 'ipv4' | 'ipv6';

export interface PacketInfo {
  /**
   * 4 or 6 once an IP header was reached (by EtherType, the caller's start, or the first
   * nibble after MPLS), even when the header is cut before its first octet; 0 when no IP
   * header was reached or its version nibble contradicts the EtherType / start.
   */
  ipVersion: 0 | 4 | 6;
  /** 20-bit flow label; set whenever the first 4 octets of the IPv6 header are present. */
  flowLabel: number | undefined;
  trafficClass: number | undefined;
  /** Total IP length from the header: IPv4 total length, IPv6 payload length + 40. */
  ipLength: number | undefined;
  srcAddr: string | undefined;
  dstAddr: string | undefined;
  /**
   * Where the addresses of the same header as srcAddr / dstAddr sit in the walked bytes (the
   * `bytes` given to walkHeader, absolute offsets), set whether or not they are formatted:
   * `addrLen` 4 or 16 once the source address is inside the header (0 before: then
   * `srcAddrAt` is -1), `dstAddrAt` -1 while the destination address is not.
   */
  addrLen: 0 | 4 | 16;
  srcAddrAt: number;
  dstAddrAt: number;
  /** Final upper-layer protocol after walking IPv6 extension headers. */
  ipProtocol: number | undefined;
  srcPort: number | undefined;
  dstPort: number | undefined;
  /** ICMP / ICMPv6 type and code, when the upper layer is ICMP. */
  icmpType: number | undefined;
  icmpCode: number | undefined;
  /** VLAN ids from outermost to innermost (802.1Q / 802.1ad / 0x9100 tags). */
  vlans: number[];
  /** MPLS labels from top of stack down, when the frame carried MPLS. */
  mplsLabels: number[];
  /** True when the packet is a non-first fragment (no L4 header in it). */
  fragment: boolean;
  /** True when the walk stopped because the header ended before a field it needed. */
  truncated: boolean;
  /**
   * The packet inside a tunnel (GRE, IP-in-IP, VXLAN), walked only when the caller asks
   * (WalkOptions.inner). The outer fields above stay the ones used for accounting; this
   * exposes the inner flow label. Its own `inner` is never set (one level only).
   */
  inner?: PacketInfo | undefined;
}
