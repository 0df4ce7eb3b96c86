import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readCaptureFile } from '../../collectors/pcap.js';
import { DecodeError } from '../../decoders/errors.js';
import { emptyRecord, type FlowRecord } from '../../decoders/record.js';
import {
  createSflowState,
  decodeSflow,
  effectiveSamplingRate,
  type SflowDecodeResult,
  type SflowOptions,
} from '../../decoders/sflow/index.js';
import {
  buildFrame,
  buildIpv6,
  buildSflowDatagram,
  type DatagramSpec,
  type ExtHeaderSpec,
  type FlowRecordSpec,
  type FlowSampleSpec,
  type FrameSpec,
  type Ipv6Spec,
  type SampleSpec,
} from '../builders/sflow.js';

const EXPORTER = '192.0.2.100';
const PORT = 50123;

function decode(spec: DatagramSpec, opts?: SflowOptions, state = createSflowState()): SflowDecodeResult {
  return decodeSflow(buildSflowDatagram(spec), EXPORTER, PORT, state, opts);
}

function one(samples: SampleSpec[], opts?: SflowOptions): SflowDecodeResult {
  return decode({ agent: '192.0.2.1', subAgent: 3, samples }, opts);
}

/**
 * A FlowRecord as decodeSflow makes it, with the fields given overriding the defaults. With
 * both addresses, their bytes are somewhere in the datagram (exact offsets: test/unit/address-bytes.test.ts).
 */
function rec(fields: Partial<FlowRecord>): FlowRecord {
  const bytes: Partial<FlowRecord> =
    fields.srcAddr !== undefined && fields.dstAddr !== undefined
      ? {
          addrBytes: expect.any(Uint8Array) as Uint8Array,
          addrLen: fields.srcAddr.includes(':') ? 16 : 4,
          srcAddrAt: expect.any(Number) as number,
          dstAddrAt: expect.any(Number) as number,
        }
      : {};
  return {
    ...emptyRecord('sflow', `${EXPORTER}:${PORT}`, 3),
    ...bytes,
    packets: 1,
    samplingRate: 1,
    samplingSource: 'header',
    inIf: 1,
    outIf: 2,
    ...fields,
  };
}

const V6: Ipv6Spec = {
  version: 6,
  trafficClass: 0,
  flowLabel: 0x20818, // SciTags 65 / 6
  src: '2001:db8:10::3',
  dst: '2001:db8:20::14',
  l4: { proto: 'tcp', srcPort: 1094, dstPort: 50010, payload: 1000 },
};
const V6_REC: Partial<FlowRecord> = {
  ipVersion: 6,
  flowLabel: 0x20818,
  trafficClass: 0,
  srcAddr: '2001:db8:10::3',
  dstAddr: '2001:db8:20::14',
  ipProtocol: 6,
  srcPort: 1094,
  dstPort: 50010,
  bytes: 14 + 40 + 20 + 1000 + 4,
};

function flow(records: FlowRecordSpec[], extra: Partial<FlowSampleSpec> = {}): FlowSampleSpec {
  return { kind: 'flow', records, ...extra };
}
function header(frame: FrameSpec | Uint8Array, extra: Partial<Extract<FlowRecordSpec, { kind: 'header' }>> = {}): FlowRecordSpec {
  return { kind: 'header', frame: frame instanceof Uint8Array ? frame : buildFrame(frame), ...extra };
}

const NO_SKIPS = { samples: 0, flowRecords: 0, counterRecords: 0, headerProtocols: 0 };

describe('decodeSflow: datagram header', () => {
  it('reports an IPv4 agent header and keys the exporter by the UDP source', () => {
    const res = decode({ agent: '198.51.100.7', subAgent: 9, sequence: 42, uptimeMs: 123456, samples: [] });
    expect(res).toEqual({
      agent: '198.51.100.7',
      subAgent: 9,
      sequence: 42,
      uptimeMs: 123456,
      records: [],
      counters: [],
      stats: { samples: 0, flowSamples: 0, counterSamples: 0, skipped: NO_SKIPS, lostDatagrams: 0, lostSamples: 0 },
      errors: [],
    });
  });

  it('decodes an IPv6 agent, and brackets an IPv6 UDP source in the exporter key', () => {
    const bytes = buildSflowDatagram({ agent: '2001:db8::1', subAgent: 1, samples: [flow([header({ ip: V6 })])] });
    const res = decodeSflow(bytes, '2001:db8::99', 6343, createSflowState());
    expect(res.agent).toBe('2001:db8::1');
    expect(res.records).toEqual([{ ...rec(V6_REC), exporter: '[2001:db8::99]:6343', domain: 1 }]);
  });

  it('decodes a datagram that is a view into a larger buffer (as UDP sockets hand them out)', () => {
    const bytes = buildSflowDatagram({ agent: '192.0.2.1', subAgent: 3, samples: [flow([header({ vlans: [{ vid: 9 }], ip: V6 })])] });
    const pool = new Uint8Array(bytes.length + 301).fill(0xaa);
    pool.set(bytes, 301);
    const res = decodeSflow(pool.subarray(301), EXPORTER, PORT, createSflowState());
    expect(res.errors).toEqual([]);
    expect(res.records).toEqual([rec({ ...V6_REC, bytes: V6_REC.bytes! + 4, vlan: 9 })]);
  });

  it('throws DecodeError for a header it cannot read', () => {
    const state = createSflowState();
    const bad =
      (spec: Partial<DatagramSpec>): (() => void) =>
      () =>
        decodeSflow(buildSflowDatagram({ agent: '192.0.2.1', samples: [], ...spec }), EXPORTER, PORT, state);
    expect(bad({ version: 4 })).toThrow(expect.objectContaining({ code: 'bad-version' }));
    expect(bad({ addressType: 3 })).toThrow(expect.objectContaining({ code: 'bad-address-type' }));
    expect(bad({ addressType: 0 })).toThrow(expect.objectContaining({ code: 'bad-address-type' }));
    const ok = buildSflowDatagram({ agent: '192.0.2.1', samples: [] });
    for (let n = 0; n < ok.length; n++) {
      expect(() => decodeSflow(ok.subarray(0, n), EXPORTER, PORT, state)).toThrow(DecodeError);
    }
    expect(() => decodeSflow(new Uint8Array(0), EXPORTER, PORT, state)).toThrow(expect.objectContaining({ code: 'truncated' }));
  });
});

describe('decodeSflow: flow samples', () => {
  it('turns a compact flow sample into one exact FlowRecord', () => {
    const res = one([
      flow([header({ vlans: [{ vid: 100 }], ip: V6 }), { kind: 'switch', srcVlan: 100, dstVlan: 0 }], {
        sequence: 17,
        samplingRate: 512,
        samplePool: 9000,
        input: 5,
        output: 0x3fffffff,
      }),
    ]);
    expect(res.errors).toEqual([]);
    expect(res.records).toEqual([rec({ ...V6_REC, bytes: V6_REC.bytes! + 4, vlan: 100, inIf: 5, outIf: undefined, samplingRate: 512 })]);
    // 0x3FFFFFFF is "no interface" (the device itself): not a link, but the dump keeps the raw value.
    expect(res.stats).toEqual({ samples: 1, flowSamples: 1, counterSamples: 0, skipped: NO_SKIPS, lostDatagrams: 0, lostSamples: 0 });
    // Same shape as every other decoder's records (no extra keys unless fields are asked for).
    expect(Object.keys(res.records[0]!)).toEqual(Object.keys(emptyRecord('sflow', '', 0)));
  });

  it('decodes expanded flow samples: 32-bit ifIndex and separate source id fields', () => {
    const res = one(
      [
        flow([header({ ip: V6 })], {
          expanded: true,
          sourceIdType: 0,
          sourceIdIndex: 0x1000005,
          input: 0x80000001,
          output: 0x40000002,
          samplingRate: 1000,
        }),
      ],
      { withFields: true },
    );
    expect(res.records).toEqual([
      rec({
        ...V6_REC,
        inIf: 0x80000001,
        outIf: 0x40000002,
        samplingRate: 1000,
        fields: expect.objectContaining({
          source_id_type: 0,
          source_id_index: 0x1000005,
          input_format: 0,
          input_value: 0x80000001,
        }) as unknown,
      } as Partial<FlowRecord>),
    ]);
  });

  it('gives no interface for the discard (1) and multiple-output (2) formats', () => {
    const res = one([
      flow([header({ ip: V6 })], { outputFormat: 1, output: 259, inputFormat: 0, input: 7 }),
      flow([header({ ip: V6 })], { outputFormat: 2, output: 4, input: 7, sequence: 2 }),
      flow([header({ ip: V6 })], { expanded: true, outputFormat: 1, output: 1, input: 7, sequence: 3 }),
    ]);
    expect(res.records.map((r) => [r.inIf, r.outIf])).toEqual([
      [7, undefined],
      [7, undefined],
      [7, undefined],
    ]);
  });

  it('gives no interface for 0x3FFFFFFF ("the device itself", format 0) on either side, compact or expanded', () => {
    const res = one(
      [
        flow([header({ ip: V6 })], { input: 0x3fffffff, output: 9 }),
        flow([header({ ip: V6 })], { input: 9, output: 0x3fffffff, sequence: 2 }),
        flow([header({ ip: V6 })], { expanded: true, input: 0x3fffffff, output: 0x3fffffff, sequence: 3 }),
        // One below is an ordinary ifIndex.
        flow([header({ ip: V6 })], { input: 0x3ffffffe, output: 1, sequence: 4 }),
      ],
      { withFields: true },
    );
    expect(res.records.map((r) => [r.inIf, r.outIf])).toEqual([
      [undefined, 9],
      [9, undefined],
      [undefined, undefined],
      [0x3ffffffe, 1],
    ]);
    // The dump still says what the agent sent.
    expect(res.records[1]!.fields).toMatchObject({ output_format: 0, output_value: 0x3fffffff });
  });

  it('keeps sampling_rate 0 out of the record (rate 1, source unknown)', () => {
    const [r] = one([flow([header({ ip: V6 })], { samplingRate: 0 })]).records;
    expect(r).toEqual(rec({ ...V6_REC, samplingRate: 1, samplingSource: 'unknown' }));
  });

  it('skips unknown enterprise and standard records before the raw header, and counts them', () => {
    const res = one([
      flow([
        { kind: 'raw', enterprise: 9, format: 5, data: new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]) },
        { kind: 'raw', enterprise: 0, format: 1010, data: new Uint8Array(12) }, // extended_mpls_FTN: known to the spec, not to us
        { kind: 'raw', enterprise: 4413, format: 1, data: new Uint8Array(5) }, // unaligned length, padded
        header({ ip: V6 }),
      ]),
    ]);
    expect(res.errors).toEqual([]);
    expect(res.records).toEqual([rec(V6_REC)]);
    expect(res.stats.skipped).toEqual({ ...NO_SKIPS, flowRecords: 3 });
  });

  it('skips unknown sample formats by length and decodes what follows', () => {
    const res = one([
      { kind: 'raw', enterprise: 4300, format: 1002, data: new Uint8Array(20).fill(0xff) },
      { kind: 'raw', enterprise: 0, format: 5, data: new Uint8Array(36) }, // discarded_packet (a later extension)
      flow([header({ ip: V6 })]),
    ]);
    expect(res.errors).toEqual([]);
    expect(res.records).toEqual([rec(V6_REC)]);
    expect(res.stats).toMatchObject({ samples: 3, flowSamples: 1, skipped: { ...NO_SKIPS, samples: 2 } });
  });

  it('counts raw headers of other protocols without walking them', () => {
    const res = one([flow([header({ ip: V6 }, { protocol: 2 })])]); // 802.4 token bus
    expect(res.records).toEqual([rec({ bytes: V6_REC.bytes! })]);
    expect(res.stats.skipped).toEqual({ ...NO_SKIPS, headerProtocols: 1 });
  });

  const stackings: [string, FrameSpec, Partial<FlowRecord>][] = [
    ['802.1Q', { vlans: [{ vid: 100 }], ip: V6 }, { vlan: 100 }],
    ['QinQ 802.1ad + 802.1Q', { vlans: [{ vid: 20, tpid: 0x88a8 }, { vid: 200 }], ip: V6 }, { vlan: 20 }],
    ['QinQ 0x9100 + 802.1Q', { vlans: [{ vid: 21, tpid: 0x9100 }, { vid: 201 }], ip: V6 }, { vlan: 21 }],
    ['priority tag only', { vlans: [{ vid: 0, pcp: 5 }], ip: V6 }, {}],
    ['MPLS', { mpls: [100, 200], ip: V6 }, {}],
    ['802.1Q + MPLS', { vlans: [{ vid: 300 }], mpls: [16], ip: V6 }, { vlan: 300 }],
  ];
  for (const [name, frame, extra] of stackings) {
    it(`reads the label through ${name}; VLAN from the header without extended_switch`, () => {
      const built = buildFrame(frame);
      const [r] = one([flow([header(built)])]).records;
      expect(r).toEqual(rec({ ...V6_REC, bytes: built.length + 4, ...extra }));
    });
  }

  it('prefers extended_switch src_vlan over the header tag, but not VLAN 0', () => {
    const tagged = header({ vlans: [{ vid: 100 }], ip: V6 });
    expect(one([flow([tagged, { kind: 'switch', srcVlan: 555 }])]).records[0]!.vlan).toBe(555);
    expect(one([flow([{ kind: 'switch', srcVlan: 0 }, tagged])]).records[0]!.vlan).toBe(100);
    expect(one([flow([{ kind: 'switch', srcVlan: 0 }, header({ ip: V6 })])]).records[0]!.vlan).toBeUndefined();
    expect(one([flow([{ kind: 'switch', srcVlan: 4095 }, header({ ip: V6 })])]).records[0]!.vlan).toBeUndefined();
  });

  const chains: [string, ExtHeaderSpec[]][] = [
    ['hop-by-hop', [{ type: 'hop' }]],
    ['routing', [{ type: 'routing', len: 2 }]],
    ['destination options', [{ type: 'dest', len: 1 }]],
    ['first fragment', [{ type: 'fragment', offset: 0, more: true }]],
    ['AH', [{ type: 'ah' }]],
    [
      'hop-by-hop + destination + routing + fragment + AH + destination',
      [
        { type: 'hop' },
        { type: 'dest' },
        { type: 'routing' },
        { type: 'fragment', offset: 0, more: true },
        { type: 'ah' },
        { type: 'dest' },
      ],
    ],
  ];
  for (const [name, ext] of chains) {
    it(`walks ${name} to the ports`, () => {
      const built = buildFrame({ ip: { ...V6, ext } });
      expect(one([flow([header(built)])]).records).toEqual([rec({ ...V6_REC, bytes: built.length + 4 })]);
    });
  }

  it('keeps the label but no ports for a non-first fragment', () => {
    const built = buildFrame({ ip: { ...V6, ext: [{ type: 'hop' }, { type: 'fragment', offset: 100 }] } });
    expect(one([flow([header(built)])]).records).toEqual([
      rec({ ...V6_REC, bytes: built.length + 4, srcPort: undefined, dstPort: undefined }),
    ]);
  });

  it('takes the label iff >= 4 octets of the IPv6 header survive, at every cut of the first 60 octets', () => {
    const frame = buildFrame({ ip: V6 });
    for (let n = 0; n <= 60; n++) {
      const [r] = one([flow([header(frame, { headerLength: n })])]).records;
      const k = n - 14;
      const want: Partial<FlowRecord> = { bytes: V6_REC.bytes! };
      if (k >= 0) want.ipVersion = 6;
      if (k >= 4) {
        want.flowLabel = V6_REC.flowLabel;
        want.trafficClass = 0;
      }
      if (k >= 24) want.srcAddr = V6_REC.srcAddr;
      if (k >= 40) {
        want.dstAddr = V6_REC.dstAddr;
        want.ipProtocol = 6;
      }
      if (k >= 42) want.srcPort = V6_REC.srcPort;
      if (k >= 44) want.dstPort = V6_REC.dstPort;
      expect({ n, r }).toEqual({ n, r: rec(want) });
    }
  });

  it('counts header_length 0 by header_protocol: Ethernet unknown version, IPv4 / IPv6 by protocol', () => {
    const eth = one([flow([header({ ip: V6 }, { headerLength: 0, frameLength: 1500 })])]).records;
    expect(eth).toEqual([rec({ bytes: 1500 })]);
    const v6 = one([flow([header(buildIpv6(V6), { protocol: 12, headerLength: 0, frameLength: 1400 })])]).records;
    expect(v6).toEqual([rec({ ipVersion: 6, bytes: 1400 })]);
    const v4 = one([flow([header(new Uint8Array(0), { protocol: 11, headerLength: 0, frameLength: 60 })])]).records;
    expect(v4).toEqual([rec({ ipVersion: 4, bytes: 60 })]);
  });

  it('walks bare IPv6 headers (header_protocol 12)', () => {
    const ip = buildIpv6(V6);
    expect(one([flow([header(ip, { protocol: 12, frameLength: ip.length })])]).records).toEqual([rec({ ...V6_REC, bytes: ip.length })]);
  });

  it('counts a jumbo frame by frame_length from its 128-octet header', () => {
    const jumbo = buildFrame({ vlans: [{ vid: 42 }], ip: { ...V6, l4: { proto: 'tcp', srcPort: 2811, dstPort: 20000, payload: 8940 } } });
    expect(jumbo.length).toBe(9018);
    const res = one([flow([header(jumbo, { headerLength: 128 })])], { withFields: true });
    expect(res.records).toEqual([
      rec({
        ...V6_REC,
        srcPort: 2811,
        dstPort: 20000,
        vlan: 42,
        bytes: 9022,
        fields: expect.objectContaining({ header_length: 128, frame_length: 9022, ip_length: 9000, truncated: false }) as unknown,
      } as Partial<FlowRecord>),
    ]);
  });

  it('counts sampled_ipv6-only samples as unlabelled IPv6 of their length', () => {
    const res = one([
      flow([
        { kind: 'ipv6', length: 1280, protocol: 17, src: '2001:db8::1', dst: '2001:db8::2', srcPort: 500, dstPort: 4500, priority: 0x2e },
      ]),
      flow([{ kind: 'ipv6', length: 80, protocol: 58, src: '2001:db8::1', dst: '2001:db8::2', srcPort: 0, dstPort: 0 }], { sequence: 2 }),
    ]);
    expect(res.records).toEqual([
      rec({
        ipVersion: 6,
        flowLabel: undefined,
        bytes: 1280,
        srcAddr: '2001:db8::1',
        dstAddr: '2001:db8::2',
        ipProtocol: 17,
        srcPort: 500,
        dstPort: 4500,
        trafficClass: 0x2e,
      }),
      rec({ ipVersion: 6, bytes: 80, srcAddr: '2001:db8::1', dstAddr: '2001:db8::2', ipProtocol: 58, trafficClass: 0 }),
    ]);
  });

  it('counts sampled_ipv4-only samples as IPv4 of their length', () => {
    const res = one([flow([{ kind: 'ipv4', length: 40, protocol: 6, src: '10.0.0.1', dst: '10.0.0.2', srcPort: 1, dstPort: 2, tos: 4 }])]);
    expect(res.records).toEqual([
      rec({ ipVersion: 4, bytes: 40, srcAddr: '10.0.0.1', dstAddr: '10.0.0.2', ipProtocol: 6, srcPort: 1, dstPort: 2 }),
    ]);
  });

  it('counts sampled_ethernet (format 2) by its frame length, before sampled_ipv4 / sampled_ipv6 lengths', () => {
    const eth6: FlowRecordSpec = { kind: 'ethernet', length: 1518, type: 0x86dd };
    // Alone: the frame length, and the EtherType's IP version (unlabelled: no header to read).
    expect(one([flow([eth6])]).records).toEqual([rec({ ipVersion: 6, bytes: 1518 })]);
    expect(one([flow([{ kind: 'ethernet', length: 64, type: 0x0806 }])]).records).toEqual([rec({ ipVersion: 0, bytes: 64 })]);
    // With sampled_ipv4 (IP length 1500): the addresses from the IP record, the frame's length.
    const v4: FlowRecordSpec = { kind: 'ipv4', length: 1500, protocol: 17, src: '10.0.0.1', dst: '10.0.0.2', srcPort: 5, dstPort: 6 };
    const both = one([flow([{ kind: 'ethernet', length: 1518, type: 0x0800 }, v4])]).records;
    expect(both).toEqual([
      rec({ ipVersion: 4, bytes: 1518, srcAddr: '10.0.0.1', dstAddr: '10.0.0.2', ipProtocol: 17, srcPort: 5, dstPort: 6 }),
    ]);
    // A raw header's frame_length still comes first.
    expect(one([flow([eth6, header({ ip: V6 })])]).records).toEqual([rec(V6_REC)]);
    // Fields for `decode`.
    const f = one([flow([eth6])], { withFields: true }).records[0]!.fields;
    expect(f).toMatchObject({ ethernet_length: 1518, ethernet_type: 0x86dd });
    // A record shorter than its 24 octets is malformed.
    const short = one([flow([{ kind: 'raw', enterprise: 0, format: 2, data: new Uint8Array(20) }])]);
    expect(short.records).toEqual([]);
    expect(short.errors.map((e) => e.message)).toEqual([expect.stringContaining('bad-length: sampled_ethernet length 20')]);
  });

  it('prefers the raw header over sampled_ipv6 (the header has the label)', () => {
    const res = one([flow([{ kind: 'ipv6', length: 99, protocol: 17, src: '2001:db8::1', dst: '2001:db8::2' }, header({ ip: V6 })])]);
    expect(res.records).toEqual([rec(V6_REC)]);
  });

  it('exposes the inner label of a tunnel in fields when innerHeaders is on', () => {
    const inner = buildIpv6({ ...V6, flowLabel: 0x3fefc });
    const frame = buildFrame({ ip: { version: 4, src: '10.0.0.1', dst: '10.0.0.2', l4: { proto: 41, body: inner } } });
    const off = one([flow([header(frame, { headerLength: 128 })])]).records[0]!;
    expect(off.fields).toBeUndefined();
    const on = one([flow([header(frame, { headerLength: 128 })])], { innerHeaders: true }).records[0]!;
    expect(on).toMatchObject({ ipVersion: 4, ipProtocol: 41, flowLabel: undefined });
    expect(on.fields).toMatchObject({ inner_ip_version: 6, inner_flow_label: 0x3fefc, inner_src_port: 1094 });
  });
});

describe('decodeSflow: counter samples', () => {
  it('decodes generic interface counters mixed with flow samples, in order', () => {
    const res = one([
      {
        kind: 'counters',
        sequence: 10,
        sourceIdIndex: 5,
        records: [
          { kind: 'raw', enterprise: 0, format: 2, data: new Uint8Array(52) }, // ethernet counters: skipped
          {
            kind: 'if',
            ifIndex: 5,
            ifSpeed: 100_000_000_000,
            inOctets: 2 ** 40 + 7,
            inUcast: 1000,
            inMulticast: 20,
            inBroadcast: 3,
            inDiscards: 4,
            inErrors: 5,
            outOctets: 123456789,
            outUcast: 900,
            outMulticast: 9,
            outBroadcast: 1,
            outDiscards: 6,
            outErrors: 7,
          },
        ],
      },
      flow([header({ ip: V6 })]),
      {
        kind: 'counters',
        expanded: true,
        sequence: 11,
        sourceIdType: 0,
        sourceIdIndex: 0x2000000,
        records: [{ kind: 'if', ifIndex: 0x2000000, ifStatus: 1 }],
      },
      flow([header({ ip: V6 })], { sequence: 2 }),
      { kind: 'counters', sequence: 3, records: [{ kind: 'raw', enterprise: 0, format: 1001, data: new Uint8Array(28) }] },
    ]);
    expect(res.errors).toEqual([]);
    expect(res.records).toEqual([rec(V6_REC), rec(V6_REC)]);
    const common = { exporter: `${EXPORTER}:${PORT}`, agent: '192.0.2.1', subAgent: 3, sourceIdType: 0 };
    expect(res.counters).toEqual([
      {
        ...common,
        sequence: 10,
        sourceIdIndex: 5,
        ifIndex: 5,
        ifType: 6,
        ifSpeed: 100_000_000_000,
        ifDirection: 1,
        ifStatus: 3,
        inOctets: 2 ** 40 + 7,
        inPackets: 1023,
        inDiscards: 4,
        inErrors: 5,
        outOctets: 123456789,
        outPackets: 910,
        outDiscards: 6,
        outErrors: 7,
      },
      {
        ...common,
        sequence: 11,
        sourceIdIndex: 0x2000000,
        ifIndex: 0x2000000,
        ifType: 6,
        ifSpeed: 10_000_000_000,
        ifDirection: 1,
        ifStatus: 1,
        inOctets: 0,
        inPackets: 0,
        inDiscards: 0,
        inErrors: 0,
        outOctets: 0,
        outPackets: 0,
        outDiscards: 0,
        outErrors: 0,
      },
    ]);
    expect(res.stats).toEqual({
      samples: 5,
      flowSamples: 2,
      counterSamples: 3,
      skipped: { ...NO_SKIPS, counterRecords: 2 },
      lostDatagrams: 0,
      lostSamples: 0,
    });
  });

  it('rejects an if_counters record shorter than the structure', () => {
    const res = one([
      { kind: 'counters', records: [{ kind: 'raw', enterprise: 0, format: 1, data: new Uint8Array(84) }] },
      flow([header({ ip: V6 })]),
    ]);
    expect(res.errors.map((e) => e.code)).toEqual(['bad-length']);
    expect(res.counters).toEqual([]);
    expect(res.records).toEqual([rec(V6_REC)]);
  });
});

describe('decodeSflow: error containment', () => {
  const good = flow([header({ ip: V6 })]);

  it('keeps earlier samples when a sample length overruns the datagram, and stops there', () => {
    const res = one([good, { kind: 'raw', enterprise: 0, format: 1, data: new Uint8Array(8), length: 4000 }, good]);
    expect(res.records).toEqual([rec(V6_REC)]);
    expect(res.errors.map((e) => e.code)).toEqual(['truncated']);
    expect(res.stats.samples).toBe(1);
  });

  it('drops only the malformed sample when its own length is intact', () => {
    const broken = flow([{ kind: 'raw', enterprise: 0, format: 1, data: new Uint8Array(8), length: 400 }]); // record overruns its sample
    const shortIpv6 = flow([{ kind: 'raw', enterprise: 0, format: 4, data: new Uint8Array(52) }]); // sampled_ipv6 needs 56
    const shortHeader = flow([
      { kind: 'raw', enterprise: 0, format: 1, data: new Uint8Array([0, 0, 0, 1, 0, 0, 0, 64, 0, 0, 0, 4, 0, 0, 0, 200]) },
    ]);
    const res = one([good, broken, shortIpv6, shortHeader, { ...good, sequence: 5 }]);
    expect(res.errors.map((e) => e.code)).toEqual(['truncated', 'bad-length', 'truncated']);
    expect(res.errors.every((e) => e instanceof DecodeError)).toBe(true);
    expect(res.records).toEqual([rec(V6_REC), rec(V6_REC)]);
    expect(res.stats).toMatchObject({ samples: 5, flowSamples: 5 });
  });

  it('reports a datagram holding fewer samples than its header says', () => {
    const res = decode({ agent: '192.0.2.1', subAgent: 3, samples: [good, good], sampleCount: 3 });
    expect(res.records).toHaveLength(2);
    expect(res.errors.map((e) => e.code)).toEqual(['truncated']);
  });

  it('caps records per sample and samples per datagram', () => {
    const many = flow(Array.from({ length: 5 }, () => ({ kind: 'switch' as const, srcVlan: 1 })).concat([]) as FlowRecordSpec[]);
    const res = one([many, good], { maxRecordsPerSample: 4 });
    expect(res.errors.map((e) => e.code)).toEqual(['limit-exceeded']);
    expect(res.records).toEqual([rec(V6_REC)]);
    const lying = one([flow([header({ ip: V6 })], { recordCount: 0xffffffff }), good]);
    expect(lying.errors.map((e) => e.code)).toEqual(['limit-exceeded']);
    expect(lying.records).toHaveLength(1);
    const capped = one([good, good, good], { maxSamplesPerDatagram: 2 });
    expect(capped.records).toHaveLength(2);
    expect(capped.errors.map((e) => e.code)).toEqual(['limit-exceeded']);
    const huge = decode({ agent: '192.0.2.1', samples: [good], sampleCount: 0xffffffff });
    expect(huge.records).toHaveLength(1);
    expect(huge.errors.map((e) => e.code)).toEqual(['truncated']);
  });

  it('reports every truncation of a valid datagram (thrown or in errors), never a silent partial decode', () => {
    const bytes = buildSflowDatagram({
      agent: '192.0.2.1',
      samples: [good, { kind: 'counters', records: [{ kind: 'if', ifIndex: 1 }] }, good],
    });
    for (let n = 0; n < bytes.length; n++) {
      let reported: boolean;
      try {
        reported = decodeSflow(bytes.subarray(0, n), EXPORTER, PORT, createSflowState()).errors.length > 0;
      } catch (err) {
        expect(err).toBeInstanceOf(DecodeError);
        reported = true;
      }
      expect({ n, reported }).toEqual({ n, reported: true });
    }
  });
});

describe('decodeSflow: sequence and sampling state', () => {
  const sample = (sequence: number, extra: Partial<FlowSampleSpec> = {}): FlowSampleSpec =>
    flow([header({ ip: V6 })], { sequence, samplePool: sequence * 100, ...extra });

  it('counts datagram gaps per agent and sub-agent, and restarts by uptime', () => {
    const state = createSflowState();
    const dg = (agent: string, subAgent: number, sequence: number, uptimeMs: number): number =>
      decode({ agent, subAgent, sequence, uptimeMs, samples: [] }, undefined, state).stats.lostDatagrams;
    expect([dg('192.0.2.1', 0, 1, 10), dg('192.0.2.1', 0, 2, 20), dg('192.0.2.1', 0, 5, 30)]).toEqual([0, 0, 2]);
    expect(dg('192.0.2.1', 1, 100, 30)).toBe(0); // another sub-agent: its own sequence
    expect(dg('192.0.2.1', 0, 1, 5)).toBe(0); // uptime went back: restart, not loss
    expect(dg('192.0.2.1', 0, 1, 6)).toBe(0); // duplicate
    const entry = state.agents.get('192.0.2.1/0')!;
    expect(entry).toMatchObject({ seen: 5, lost: 2, resets: 1, duplicates: 1, last: 1 });
  });

  it('counts sample gaps per source, flow and counter sequences apart, and wraps at 2^32', () => {
    const state = createSflowState();
    const lost = (samples: SampleSpec[]): number => decode({ agent: '192.0.2.1', samples }, undefined, state).stats.lostSamples;
    expect(lost([sample(1), sample(2), sample(4)])).toBe(1);
    expect(lost([sample(1, { sourceIdIndex: 2 }), { kind: 'counters', sequence: 50, records: [] }])).toBe(0);
    expect(lost([{ kind: 'counters', sequence: 53, records: [] }, sample(5)])).toBe(2);
    expect(lost([sample(0xffffffff, { sourceIdIndex: 3 }), sample(0, { sourceIdIndex: 3 }), sample(2, { sourceIdIndex: 3 })])).toBe(1);
  });

  it('tracks sample_pool and drops for the effective rate and agent drops', () => {
    const state = createSflowState();
    decode(
      {
        agent: '192.0.2.1',
        samples: [
          sample(1, { samplingRate: 100, samplePool: 1000, drops: 0 }),
          sample(2, { samplingRate: 100, samplePool: 1100, drops: 5 }),
        ],
      },
      undefined,
      state,
    );
    decode({ agent: '192.0.2.1', samples: [sample(3, { samplingRate: 100, samplePool: 1300, drops: 7 })] }, undefined, state);
    const src = [...state.agents.get('192.0.2.1/0')!.sources.values()][0]!;
    expect(src).toMatchObject({
      kind: 'flow',
      sourceIdType: 0,
      sourceIdIndex: 1,
      samplingRate: 100,
      samplePool: 1300,
      drops: 7,
      pooled: 300,
      sampled: 2,
      dropped: 7,
    });
    expect(effectiveSamplingRate(src)).toBe(150);
  });

  it('bounds agents and sources', () => {
    const state = createSflowState({ maxAgents: 2, maxSources: 3 });
    for (const agent of ['192.0.2.1', '192.0.2.2', '192.0.2.3']) {
      decode({ agent, samples: [1, 2, 3, 4].map((i) => sample(1, { sourceIdIndex: i })) }, undefined, state);
    }
    expect([...state.agents.keys()]).toEqual(['192.0.2.2/0', '192.0.2.3/0']);
    const held = [...state.agents.values()].reduce((n, a) => n + a.sources.size, 0);
    expect(held).toBe(state.sourceCount);
    expect(state.sourceCount).toBeLessThanOrEqual(3);
  });
});

describe('decodeSflow: third-party captures (../shared/external-captures, skipped when absent)', () => {
  const dir = join(import.meta.dirname, '..', '..', '..', 'shared', 'external-captures');
  function replay(name: string): FlowRecord[] | undefined {
    const path = join(dir, name);
    if (!existsSync(path)) {
      console.warn(`skipped: ${path} absent (third-party captures live in ../shared/external-captures)`);
      return undefined;
    }
    const state = createSflowState();
    const out: FlowRecord[] = [];
    for (const d of readCaptureFile(path).datagrams) out.push(...decodeSflow(d.payload, d.srcAddr, d.srcPort, state).records);
    return out;
  }

  it('gopacket_sflow_misc.pcap: the sampled_ethernet-only samples count their frame length', () => {
    const recs = replay('gopacket_sflow_misc.pcap');
    if (recs === undefined) return;
    // tshark -V: frame 10 holds 7 flow samples (seq 125-131), each with one "Ethernet frame
    // data (2)" record, "Length of MAC Packet: 16", "Ethernet Packet Type: 3" (not IP), at
    // "1 out of 1000 packets". Frames 2, 4 and 5 carry only extended / vendor records (0 bytes).
    expect(recs.map((r) => [r.bytes, r.samplingRate, r.ipVersion])).toEqual([
      [0, 256, 0],
      [0, 1, 0],
      [0, 1, 0],
      ...Array.from({ length: 7 }, () => [16, 1000, 0]),
    ]);
  });

  it('akvorado_sflow_ipv4_data.pcap: raw header, sampled_ethernet and sampled_ipv4 agree on 1390', () => {
    const recs = replay('akvorado_sflow_ipv4_data.pcap');
    if (recs === undefined) return;
    // tshark: Frame Length 1390 (raw header), Length of MAC Packet 1390, Length of IP Packet 1344.
    expect(recs.map((r) => [r.bytes, r.samplingRate, r.ipVersion, r.srcAddr])).toEqual([[1390, 256, 4, '50.50.50.50']]);
  });
});
