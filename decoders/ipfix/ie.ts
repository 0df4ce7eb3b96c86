/**
 * The subset of the IANA "IPFIX Information Elements" registry this collector understands
 * (https://www.iana.org/assignments/ipfix/ipfix.xhtml). Ids 1..127 coincide with the NetFlow
 * v9 field types of RFC 3954 section 8, so one table serves both protocols.
 *
 * The table is used twice: once when a template is compiled (which FlowRecord slot a field
 * feeds, see plan.ts) and once per field when the caller asks for a field dump by IANA name
 * (the `decode` CLI). Elements not listed here are still decoded by length and dumped as
 * `ie<id>` (or `<pen>.<id>` for enterprise-specific ones) in hex.
 */

/** Abstract data types of RFC 7012 section 3.1 that decide how a value is rendered. */
export type IeType =
  | 'unsigned'
  | 'signed'
  | 'float'
  | 'boolean'
  | 'macAddress'
  | 'octetArray'
  | 'string'
  | 'dateTimeSeconds'
  | 'dateTimeMilliseconds'
  | 'dateTimeMicroseconds'
  | 'dateTimeNanoseconds'
  | 'ipv4Address'
  | 'ipv6Address';

export interface IeInfo {
  readonly id: number;
  readonly name: string;
  readonly type: IeType;
}

const u = 'unsigned' as const;

const TABLE: ReadonlyArray<readonly [number, string, IeType]> = [
  [1, 'octetDeltaCount', u],
  [2, 'packetDeltaCount', u],
  [3, 'deltaFlowCount', u],
  [4, 'protocolIdentifier', u],
  [5, 'ipClassOfService', u],
  [6, 'tcpControlBits', u],
  [7, 'sourceTransportPort', u],
  [8, 'sourceIPv4Address', 'ipv4Address'],
  [9, 'sourceIPv4PrefixLength', u],
  [10, 'ingressInterface', u],
  [11, 'destinationTransportPort', u],
  [12, 'destinationIPv4Address', 'ipv4Address'],
  [13, 'destinationIPv4PrefixLength', u],
  [14, 'egressInterface', u],
  [15, 'ipNextHopIPv4Address', 'ipv4Address'],
  [16, 'bgpSourceAsNumber', u],
  [17, 'bgpDestinationAsNumber', u],
  [18, 'bgpNextHopIPv4Address', 'ipv4Address'],
  [21, 'flowEndSysUpTime', u],
  [22, 'flowStartSysUpTime', u],
  [23, 'postOctetDeltaCount', u],
  [24, 'postPacketDeltaCount', u],
  [25, 'minimumIpTotalLength', u],
  [26, 'maximumIpTotalLength', u],
  [27, 'sourceIPv6Address', 'ipv6Address'],
  [28, 'destinationIPv6Address', 'ipv6Address'],
  [29, 'sourceIPv6PrefixLength', u],
  [30, 'destinationIPv6PrefixLength', u],
  [31, 'flowLabelIPv6', u],
  [32, 'icmpTypeCodeIPv4', u],
  [33, 'igmpType', u],
  [34, 'samplingInterval', u],
  [35, 'samplingAlgorithm', u],
  [36, 'flowActiveTimeout', u],
  [37, 'flowIdleTimeout', u],
  [38, 'engineType', u],
  [39, 'engineId', u],
  [40, 'exportedOctetTotalCount', u],
  [41, 'exportedMessageTotalCount', u],
  [42, 'exportedFlowRecordTotalCount', u],
  [48, 'samplerId', u],
  [49, 'samplerMode', u],
  [50, 'samplerRandomInterval', u],
  [52, 'minimumTTL', u],
  [53, 'maximumTTL', u],
  [54, 'fragmentIdentification', u],
  [55, 'postIpClassOfService', u],
  [56, 'sourceMacAddress', 'macAddress'],
  [57, 'postDestinationMacAddress', 'macAddress'],
  [58, 'vlanId', u],
  [59, 'postVlanId', u],
  [60, 'ipVersion', u],
  [61, 'flowDirection', u],
  [62, 'ipNextHopIPv6Address', 'ipv6Address'],
  [63, 'bgpNextHopIPv6Address', 'ipv6Address'],
  [64, 'ipv6ExtensionHeaders', u],
  [70, 'mplsTopLabelStackSection', 'octetArray'],
  [80, 'destinationMacAddress', 'macAddress'],
  [81, 'postSourceMacAddress', 'macAddress'],
  [82, 'interfaceName', 'string'],
  [83, 'interfaceDescription', 'string'],
  [85, 'octetTotalCount', u],
  [86, 'packetTotalCount', u],
  [88, 'fragmentOffset', u],
  [89, 'forwardingStatus', u],
  [130, 'exporterIPv4Address', 'ipv4Address'],
  [131, 'exporterIPv6Address', 'ipv6Address'],
  [136, 'flowEndReason', u],
  [137, 'commonPropertiesId', u],
  [138, 'observationPointId', u],
  [139, 'icmpTypeCodeIPv6', u],
  [143, 'meteringProcessId', u],
  [144, 'exportingProcessId', u],
  [148, 'flowId', u],
  [149, 'observationDomainId', u],
  [150, 'flowStartSeconds', 'dateTimeSeconds'],
  [151, 'flowEndSeconds', 'dateTimeSeconds'],
  [152, 'flowStartMilliseconds', 'dateTimeMilliseconds'],
  [153, 'flowEndMilliseconds', 'dateTimeMilliseconds'],
  [154, 'flowStartMicroseconds', 'dateTimeMicroseconds'],
  [155, 'flowEndMicroseconds', 'dateTimeMicroseconds'],
  [156, 'flowStartNanoseconds', 'dateTimeNanoseconds'],
  [157, 'flowEndNanoseconds', 'dateTimeNanoseconds'],
  [160, 'systemInitTimeMilliseconds', 'dateTimeMilliseconds'],
  [161, 'flowDurationMilliseconds', u],
  [176, 'icmpTypeIPv4', u],
  [177, 'icmpCodeIPv4', u],
  [178, 'icmpTypeIPv6', u],
  [179, 'icmpCodeIPv6', u],
  [184, 'tcpSequenceNumber', u],
  [185, 'tcpAcknowledgementNumber', u],
  [186, 'tcpWindowSize', u],
  [192, 'ipTTL', u],
  [210, 'paddingOctets', 'octetArray'],
  [225, 'postNATSourceIPv4Address', 'ipv4Address'],
  [226, 'postNATDestinationIPv4Address', 'ipv4Address'],
  [227, 'postNAPTSourceTransportPort', u],
  [228, 'postNAPTDestinationTransportPort', u],
  [231, 'initiatorOctets', u],
  [232, 'responderOctets', u],
  [243, 'dot1qVlanId', u],
  [244, 'dot1qPriority', u],
  [245, 'dot1qCustomerVlanId', u],
  [254, 'postdot1qVlanId', u],
  [256, 'ethernetType', u],
  [298, 'initiatorPackets', u],
  [299, 'responderPackets', u],
  [300, 'observationDomainName', 'string'],
  [301, 'selectionSequenceId', u],
  [302, 'selectorId', u],
  [303, 'informationElementId', u],
  [304, 'selectorAlgorithm', u],
  [305, 'samplingPacketInterval', u],
  [306, 'samplingPacketSpace', u],
  [307, 'samplingTimeInterval', u],
  [308, 'samplingTimeSpace', u],
  [309, 'samplingSize', u],
  [310, 'samplingPopulation', u],
  [312, 'dataLinkFrameSize', u],
  [313, 'ipHeaderPacketSection', 'octetArray'],
  [314, 'ipPayloadPacketSection', 'octetArray'],
  [315, 'dataLinkFrameSection', 'octetArray'],
  [316, 'mplsLabelStackSection', 'octetArray'],
  [317, 'mplsPayloadPacketSection', 'octetArray'],
  [322, 'observationTimeSeconds', 'dateTimeSeconds'],
  [323, 'observationTimeMilliseconds', 'dateTimeMilliseconds'],
  [324, 'observationTimeMicroseconds', 'dateTimeMicroseconds'],
  [325, 'observationTimeNanoseconds', 'dateTimeNanoseconds'],
  [352, 'layer2OctetDeltaCount', u],
  [410, 'sectionExportedOctets', u],
];

/** Dense lookup by id (ids are < 512 for everything we list; larger ids fall through). */
const BY_ID: Array<IeInfo | undefined> = [];
for (const [id, name, type] of TABLE) BY_ID[id] = { id, name, type };

/** The IANA element with this id, or undefined when it is not in our subset. */
export function ieInfo(id: number): IeInfo | undefined {
  return BY_ID[id];
}

/** Name used in field dumps: IANA name, `ie<id>` when unlisted, `<pen>.<id>` for enterprise. */
export function ieName(id: number, pen: number): string {
  if (pen !== 0) return `${pen}.${id}`;
  return BY_ID[id]?.name ?? `ie${id}`;
}

/**
 * NetFlow v9 options scope field types (RFC 3954 section 6.2): these numbers live in their
 * own space, distinct from the field types of the option fields that follow them.
 */
export const V9_SCOPE_NAMES: Readonly<Record<number, string>> = {
  1: 'scopeSystem',
  2: 'scopeInterface',
  3: 'scopeLineCard',
  4: 'scopeCache',
  5: 'scopeTemplate',
};
