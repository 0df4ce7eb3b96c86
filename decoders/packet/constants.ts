/**
 * Protocol numbers the raw-header walker dispatches on. Each constant cites where it is
 * defined, so a reader can check a value without trusting this file.
 */

// EtherTypes (IEEE 802 registry; IANA "IEEE 802 Numbers").
export const ETHERTYPE_IPV4 = 0x0800; // RFC 894
export const ETHERTYPE_IPV6 = 0x86dd; // RFC 2464 section 3
export const ETHERTYPE_VLAN = 0x8100; // IEEE 802.1Q customer tag (C-tag)
export const ETHERTYPE_QINQ = 0x88a8; // IEEE 802.1ad service tag (S-tag)
export const ETHERTYPE_QINQ_LEGACY = 0x9100; // pre-802.1ad vendor QinQ tag, same 4-octet layout
export const ETHERTYPE_MPLS_UNICAST = 0x8847; // RFC 5332 section 3
export const ETHERTYPE_MPLS_MULTICAST = 0x8848; // RFC 5332 section 3
export const ETHERTYPE_TEB = 0x6558; // Transparent Ethernet Bridging: Ethernet inside GRE (RFC 1701)
/** EtherType values below this are IEEE 802.3 length fields, not types (IEEE 802.3 clause 3.2.6). */
export const ETHERTYPE_MIN = 0x0600;

// IP protocol / IPv6 next-header numbers (IANA "Assigned Internet Protocol Numbers").
export const IPPROTO_HOPOPTS = 0; // RFC 8200 section 4.3
export const IPPROTO_ICMP = 1; // RFC 792
export const IPPROTO_IPIP = 4; // IPv4 in IP, RFC 2003
export const IPPROTO_TCP = 6; // RFC 9293
export const IPPROTO_UDP = 17; // RFC 768
export const IPPROTO_DCCP = 33; // RFC 4340 (ports in the same place as TCP/UDP)
export const IPPROTO_IPV6 = 41; // IPv6 in IP, RFC 2473 / RFC 4213
export const IPPROTO_ROUTING = 43; // RFC 8200 section 4.4
export const IPPROTO_FRAGMENT = 44; // RFC 8200 section 4.5
export const IPPROTO_GRE = 47; // RFC 2784
export const IPPROTO_ESP = 50; // RFC 4303: payload encrypted, nothing further to read
export const IPPROTO_AH = 51; // RFC 4302
export const IPPROTO_ICMPV6 = 58; // RFC 4443
export const IPPROTO_NONE = 59; // RFC 8200 section 4.7: no next header
export const IPPROTO_DSTOPTS = 60; // RFC 8200 section 4.6
export const IPPROTO_MOBILITY = 135; // RFC 6275 section 6.1 (generic extension-header layout)
export const IPPROTO_HIP = 139; // RFC 7401 section 5.1 (generic extension-header layout)
export const IPPROTO_SHIM6 = 140; // RFC 5533 section 5 (generic extension-header layout)
export const IPPROTO_SCTP = 132; // RFC 9260 section 3.1
export const IPPROTO_UDPLITE = 136; // RFC 3828

/** VXLAN's IANA-assigned UDP destination port (RFC 7348 section 5). */
export const UDP_PORT_VXLAN = 4789;

/** Fixed header sizes. */
export const ETHERNET_HEADER_LEN = 14; // dst MAC, src MAC, EtherType
export const VLAN_TAG_LEN = 4; // TCI + inner EtherType (IEEE 802.1Q clause 9)
export const MPLS_ENTRY_LEN = 4; // RFC 3032 section 2.1
export const PW_CONTROL_WORD_LEN = 4; // RFC 4385 section 3 (generic PW MPLS control word), RFC 4448 section 4.6
export const IPV6_HEADER_LEN = 40; // RFC 8200 section 3
export const IPV4_MIN_HEADER_LEN = 20; // RFC 791 section 3.1 (IHL >= 5)
export const FRAGMENT_HEADER_LEN = 8; // RFC 8200 section 4.5
export const UDP_HEADER_LEN = 8; // RFC 768
export const VXLAN_HEADER_LEN = 8; // RFC 7348 section 5
