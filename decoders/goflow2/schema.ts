/**
 * goflow2's FlowMessage (github.com/netsampler/goflow2, pb/flow.proto, the v2 layout with
 * nanosecond times), written here from its field numbers and types: the wire format is the
 * contract, so names and numbers must match and nothing else is taken from it. Field names
 * are kept as goflow2 spells them (its JSON and text output use them too).
 *
 * protobufjs parses this text once at load (no file is read at run time). Decoding with it
 * is wire-compatible with what `goflow2 -format=bin` writes: each message prefixed with its
 * length as a varint (Go's protodelim.MarshalTo, goflow2 producer/proto/messages.go).
 *
 * The fields the collector reads: type, sampling_rate, sampler_address, time_received_ns,
 * time_flow_start_ns, time_flow_end_ns, bytes, packets, src_addr, dst_addr, etype, proto,
 * src_port, dst_port, in_if, out_if, ip_tos, vlan_id, ipv6_flow_label. The others are
 * declared so that their wire types are checked like the rest (decoder.ts).
 */
import protobuf from 'protobufjs';

export const FLOW_PROTO = `
syntax = "proto3";
package flowpb;

message FlowMessage {
  enum FlowType {
    FLOWUNKNOWN = 0;
    SFLOW_5 = 1;
    NETFLOW_V5 = 2;
    NETFLOW_V9 = 3;
    IPFIX = 4;
  }
  enum LayerStack {
    Ethernet = 0;
    IPv4 = 1;
    IPv6 = 2;
    TCP = 3;
    UDP = 4;
    MPLS = 5;
    Dot1Q = 6;
    ICMP = 7;
    ICMPv6 = 8;
    GRE = 9;
    IPv6HeaderRouting = 10;
    IPv6HeaderFragment = 11;
  }

  // Who sent it and how it was sampled
  FlowType type = 1;
  uint64 sampling_rate = 3;
  uint32 sequence_num = 4;
  bytes sampler_address = 11;

  // Addresses, next hop, routing
  bytes src_addr = 6;
  bytes dst_addr = 7;
  bytes next_hop = 12;
  uint32 next_hop_as = 13;
  uint32 src_as = 14;
  uint32 dst_as = 15;
  uint32 src_net = 16;
  uint32 dst_net = 17;

  // Volume (unscaled: multiply by sampling_rate)
  uint64 bytes = 9;
  uint64 packets = 10;

  // Interfaces (SNMP ifIndex)
  uint32 in_if = 18;
  uint32 out_if = 19;

  // Transport and IP header fields
  uint32 proto = 20;
  uint32 src_port = 21;
  uint32 dst_port = 22;
  uint32 ip_tos = 23;
  uint32 forwarding_status = 24;
  uint32 ip_ttl = 25;
  uint32 tcp_flags = 26;
  uint32 icmp_type = 31;
  uint32 icmp_code = 32;
  uint32 fragment_id = 35;
  uint32 fragment_offset = 36;
  uint32 ipv6_flow_label = 37;
  uint32 ip_flags = 38;

  // Layer 2 (EtherType 0x0800 IPv4, 0x86DD IPv6)
  uint64 src_mac = 27;
  uint64 dst_mac = 28;
  uint32 vlan_id = 29;
  uint32 etype = 30;
  uint32 src_vlan = 33;
  uint32 dst_vlan = 34;

  // Observation point (IPFIX)
  uint32 observation_domain_id = 70;
  uint32 observation_point_id = 71;

  // MPLS
  repeated uint32 mpls_ttl = 80;
  repeated uint32 mpls_label = 81;
  repeated bytes mpls_ip = 82;

  // BGP
  bytes bgp_next_hop = 100;
  repeated uint32 bgp_communities = 101;
  repeated uint32 as_path = 102;

  // Encapsulation and SRv6
  repeated LayerStack layer_stack = 103;
  repeated bytes ipv6_routing_header_addresses = 104;
  uint32 ipv6_routing_header_seg_left = 105;

  // Times, ns since the Unix epoch: goflow2's receive time, and the flow's first / last packet
  uint64 time_received_ns = 110;
  uint64 time_flow_start_ns = 111;
  uint64 time_flow_end_ns = 112;
}
`;

/** The parsed schema (snake_case names kept, as goflow2 writes them). */
export const FLOW_ROOT = protobuf.parse(FLOW_PROTO, { keepCase: true }).root;
export const FlowMessageType: protobuf.Type = FLOW_ROOT.lookupType('flowpb.FlowMessage');

/** Field numbers the decoder reads by name (the schema's, looked up once). */
export const FIELD = {
  samplerAddress: 11,
  timeReceivedNs: 110,
} as const;

/**
 * Wire type each field of the schema must arrive with: 0 (varint) for scalars and enums, 2
 * (length-delimited) for bytes; repeated scalars take both (packed, or one varint each).
 * Built from the parsed schema, so it cannot disagree with it.
 */
export const WIRE_TYPES: ReadonlyMap<number, readonly number[]> = (() => {
  const m = new Map<number, readonly number[]>();
  for (const f of FlowMessageType.fieldsArray) {
    f.resolve();
    const isBytes = f.type === 'bytes';
    if (f.repeated && !isBytes) m.set(f.id, [0, 2]);
    else m.set(f.id, isBytes ? [2] : [0]);
  }
  return m;
})();

/** A FlowMessage as protobufjs decodes it (the fields the collector reads). */
export interface DecodedFlowMessage {
  type: number;
  sampling_rate: number | protobuf.Long;
  sampler_address: Uint8Array;
  time_received_ns: number | protobuf.Long;
  time_flow_start_ns: number | protobuf.Long;
  time_flow_end_ns: number | protobuf.Long;
  bytes: number | protobuf.Long;
  packets: number | protobuf.Long;
  src_addr: Uint8Array;
  dst_addr: Uint8Array;
  etype: number;
  proto: number;
  src_port: number;
  dst_port: number;
  in_if: number;
  out_if: number;
  ip_tos: number;
  vlan_id: number;
  ipv6_flow_label: number;
  observation_domain_id: number;
}
