/**
 * sFlow version 5 numbers. Section references are to "sFlow Version 5" (sflow.org,
 * Phaal & Lavine, July 2004, https://sflow.org/sflow_version_5.txt); all structures are in
 * section 5 "sFlow Datagram Format" (XDR, RFC 4506: big-endian, 4-octet aligned), cited
 * here by their XDR names.
 */

/** sample_datagram_v5 is introduced by `unsigned int version = 5` (section 5, struct sample_datagram_v5). */
export const SFLOW_VERSION_5 = 5;

/** address_type (section 5, enum address_type). */
export const ADDRESS_IPV4 = 1;
export const ADDRESS_IPV6 = 2;

/**
 * data_format: enterprise in the top 20 bits, format in the low 12 (section 5,
 * typedef data_format). Enterprise 0 is sFlow.org's own structures; everything else is vendor data that
 * a collector skips by its length.
 */
export const FORMAT_BITS = 12;
export const FORMAT_MASK = 0xfff;

/** sample_data formats, enterprise 0 (section 5, sample_data opaque). */
export const SAMPLE_FLOW = 1; // flow_sample
export const SAMPLE_COUNTERS = 2; // counters_sample
export const SAMPLE_FLOW_EXPANDED = 3; // flow_sample_expanded
export const SAMPLE_COUNTERS_EXPANDED = 4; // counters_sample_expanded

/** flow_data formats, enterprise 0 (section 5, flow_data opaque). */
export const FLOW_RAW_HEADER = 1; // sampled_header
export const FLOW_SAMPLED_ETHERNET = 2; // sampled_ethernet
export const FLOW_SAMPLED_IPV4 = 3; // sampled_ipv4
export const FLOW_SAMPLED_IPV6 = 4; // sampled_ipv6
export const FLOW_EXTENDED_SWITCH = 1001; // extended_switch

/** counter_data formats, enterprise 0 (section 5, counter_data opaque). */
export const COUNTERS_GENERIC_INTERFACE = 1; // if_counters

/** header_protocol values we walk (section 5, enum header_protocol). */
export const HEADER_ETHERNET = 1; // ETHERNET-ISO88023
export const HEADER_IPV4 = 11;
export const HEADER_IPV6 = 12;

/**
 * Compact `interface` (section 5, typedef interface): the top 2 bits are the
 * format, the low 30 the value. Format 0 = ifIndex (0x3FFFFFFF: unknown), 1 = packet
 * discarded (value = reason), 2 = multiple output interfaces (value = count, 0 unknown).
 */
export const INTERFACE_FORMAT_SHIFT = 30;
export const INTERFACE_VALUE_MASK = 0x3fffffff;
export const INTERFACE_FORMAT_IFINDEX = 0;
/**
 * Format 0 with the largest value: "no input or output interface" (section 5, flow_sample:
 * traffic that originates or terminates in the device itself). Not an ifIndex.
 */
export const INTERFACE_NONE = 0x3fffffff;

/** Compact sflow_data_source: type in the top 8 bits, index in the low 24 (section 5, typedef sflow_data_source). */
export const SOURCE_TYPE_SHIFT = 24;
export const SOURCE_INDEX_MASK = 0xffffff;

/** Fixed structure sizes in octets (section 5). */
export const FLOW_SAMPLE_FIXED_LEN = 32; // flow_sample up to and including the record count
export const EXPANDED_FLOW_SAMPLE_FIXED_LEN = 44; // flow_sample_expanded, same
export const RAW_HEADER_FIXED_LEN = 16; // protocol, frame_length, stripped, header length
export const SAMPLED_ETHERNET_LEN = 24; // length, src_mac and dst_mac (opaque[6], XDR-padded to 8 each), type
export const SAMPLED_IPV4_LEN = 32; // length, protocol, src, dst, src_port, dst_port, tcp_flags, tos
export const SAMPLED_IPV6_LEN = 56; // length, protocol, src(16), dst(16), ports, tcp_flags, priority
export const EXTENDED_SWITCH_LEN = 16; // src_vlan, src_priority, dst_vlan, dst_priority
export const IF_COUNTERS_LEN = 88; // if_counters

/** EtherTypes of sampled_ethernet's `type` that name an IP version (IEEE 802 numbers: RFC 894, RFC 2464). */
export const ETHERTYPE_IPV4 = 0x0800;
export const ETHERTYPE_IPV6 = 0x86dd;

/** Highest valid 802.1Q VLAN id; 0 means "no VLAN" (priority tag) and 4095 is reserved. */
export const MAX_VLAN_ID = 4094;
