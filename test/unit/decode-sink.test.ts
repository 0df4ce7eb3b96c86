/**
 * The streaming sink (FlowDecodeOptions.onRecord, SflowOptions.onRecord): the decoders hand
 * each record to the sink in a reused object instead of pushing fresh objects to
 * `result.records`. What the sink sees, copied record by record, must equal what the array
 * mode returns, on every capture in test/fixtures; a reused object must never carry a field
 * over from an earlier record (of another template, another kind of sample, or after the
 * sink changed it).
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readCaptureFile } from '../../collectors/pcap.js';
import { createFlowDecoderState, decodeFlowDatagram, type FlowDecodeOptions } from '../../decoders/ipfix/index.js';
import type { FlowRecord } from '../../decoders/record.js';
import { encodeFlowLabel } from '../../decoders/scitags/flowlabel.js';
import { createSflowState, decodeSflow, type SflowOptions } from '../../decoders/sflow/index.js';
import {
  f,
  ipfixDataSet,
  ipfixMessage,
  ipfixTemplateSet,
  ipv6UdpFrame,
  v5Datagram,
  v9DataFlowset,
  v9Message,
  v9TemplateFlowset,
  VARLEN,
} from '../builders/ipfix.js';
import { buildFrame, buildSflowDatagram } from '../builders/sflow.js';
import { FIXTURES } from '../support/expected.js';

const captures = readdirSync(FIXTURES)
  .filter((n) => n.endsWith('.pcap'))
  .sort();

interface Decoded {
  records: FlowRecord[];
  /** Per datagram: record count the decoder reported, and error codes. */
  counts: number[];
  errors: string[][];
}

/** Decodes a whole capture in array mode, or in sink mode copying each record inside the call. */
function decodeCapture(name: string, sink: boolean, opts: FlowDecodeOptions & SflowOptions): Decoded {
  const out: Decoded = { records: [], counts: [], errors: [] };
  const flowState = createFlowDecoderState();
  const sflowState = createSflowState();
  const onRecord = (rec: FlowRecord): void => {
    out.records.push({ ...rec });
  };
  const o = sink ? { ...opts, onRecord } : opts;
  for (const d of readCaptureFile(join(FIXTURES, name)).datagrams) {
    if (name.startsWith('sflow')) {
      const r = decodeSflow(d.payload, d.srcAddr, d.srcPort, sflowState, o);
      if (sink) expect(r.records).toEqual([]);
      else out.records.push(...r.records);
      out.counts.push(sink ? r.stats.records! : r.records.length);
      out.errors.push(r.errors.map((e) => e.code));
    } else {
      const r = decodeFlowDatagram(d.payload, { exporterAddr: d.srcAddr, exporterPort: d.srcPort, receivedMs: d.timeMs }, flowState, o);
      if (sink) expect(r.records).toEqual([]);
      else {
        expect(r.stats.records).toBe(r.records.length);
        out.records.push(...r.records);
      }
      out.counts.push(r.stats.records);
      out.errors.push(r.errors.map((e) => e.code));
    }
  }
  return out;
}

describe('sink mode equals array mode on every capture', () => {
  it('has captures to compare', () => {
    expect(captures.length).toBeGreaterThanOrEqual(10);
  });

  for (const name of captures) {
    for (const opts of [{}, { withAddresses: false }, { withFields: true }, { innerHeaders: true }] as const) {
      it(`${name} ${JSON.stringify(opts)}`, () => {
        const array = decodeCapture(name, false, opts);
        const sink = decodeCapture(name, true, opts);
        expect(array.records.length).toBeGreaterThan(0);
        expect(sink.counts).toEqual(array.counts);
        expect(sink.errors).toEqual(array.errors);
        expect(sink.records.length).toBe(array.records.length);
        for (let i = 0; i < array.records.length; i++) expect(sink.records[i], `record ${i}`).toEqual(array.records[i]);
      });
    }
  }
});

describe('withAddresses: false', () => {
  for (const name of captures) {
    it(`${name}: changes nothing but srcAddr / dstAddr, which stay undefined`, () => {
      const full = decodeCapture(name, false, {});
      const bare = decodeCapture(name, true, { withAddresses: false });
      expect(bare.records.length).toBe(full.records.length);
      for (let i = 0; i < full.records.length; i++) {
        const r = bare.records[i]!;
        expect(r.srcAddr).toBeUndefined();
        expect(r.dstAddr).toBeUndefined();
        expect(r, `record ${i}`).toEqual({ ...full.records[i], srcAddr: undefined, dstAddr: undefined });
      }
    });
  }
});

/** Every FlowRecord field of `got` equals `want`'s, undefined included (toEqual skips undefined keys). */
function expectExactly(got: FlowRecord, want: FlowRecord): void {
  for (const k of Object.keys(want) as (keyof FlowRecord)[]) expect(got[k], k).toBe(want[k]);
}

describe('a reused record never leaks a field from an earlier record', () => {
  const ADDR = '192.0.2.1';
  const ctx = (ms = 1_000_000) => ({ exporterAddr: ADDR, exporterPort: 4739, receivedMs: ms });
  const label = encodeFlowLabel(2, 1);
  const FULL = [
    f('sourceIPv6Address', 16),
    f('destinationIPv6Address', 16),
    f('octetDeltaCount', 8),
    f('packetDeltaCount', 8),
    f('flowLabelIPv6', 3),
    f('ingressInterface', 4),
    f('egressInterface', 4),
    f('vlanId', 2),
    f('sourceTransportPort', 2),
    f('destinationTransportPort', 2),
    f('protocolIdentifier', 1),
    f('ipClassOfService', 1),
    f('flowDirection', 1),
    f('flowStartMilliseconds', 8),
    f('flowEndMilliseconds', 8),
  ];
  const BARE = [f('octetDeltaCount', 4), f('packetDeltaCount', 4)];
  const full = (n: number) => [
    `2001:db8::${n}`,
    '2001:db8::99',
    1000 + n,
    n,
    label,
    3,
    4,
    100,
    40000 + n,
    2811,
    6,
    0x20,
    1,
    1_700_000_000_000 + n,
    1_700_000_001_000 + n,
  ];

  it('IPFIX: records of a template without IE 31, VLAN, ports, times or addresses after ones with them', () => {
    const msg = ipfixMessage({ domain: 1, exportSecs: 1_700_000_002 }, [
      ipfixTemplateSet([
        { id: 256, fields: FULL },
        { id: 257, fields: BARE },
      ]),
      ipfixDataSet(256, FULL, [full(1), full(2)]),
      ipfixDataSet(257, BARE, [
        [10, 1],
        [20, 2],
      ]),
      ipfixDataSet(256, FULL, [full(3)]),
    ]);
    const array = decodeFlowDatagram(msg, ctx(), createFlowDecoderState()).records;
    const seen: FlowRecord[] = [];
    const objects = new Set<FlowRecord>();
    const r = decodeFlowDatagram(msg, ctx(), createFlowDecoderState(), {
      onRecord: (rec) => {
        objects.add(rec);
        seen.push({ ...rec });
        // A sink may change the record it is given; the next record must not see that.
        rec.flowLabel = 0xfffff;
        rec.vlan = 4000;
        rec.samplingRate = 99;
        rec.srcAddr = 'changed';
      },
    });
    expect(r.errors).toEqual([]);
    expect(r.stats.records).toBe(5);
    expect(seen).toHaveLength(5);
    // Reused within a set, not one object per record.
    expect(objects.size).toBeLessThan(5);
    for (let i = 0; i < 5; i++) expectExactly(seen[i]!, array[i]!);
    const bare = seen[2]!;
    expect(bare).toMatchObject({ templateId: 257, bytes: 10, packets: 1, ipVersion: 0, samplingRate: 1 });
    for (const k of [
      'flowLabel',
      'vlan',
      'srcPort',
      'dstPort',
      'srcAddr',
      'dstAddr',
      'inIf',
      'outIf',
      'direction',
      'startMs',
      'endMs',
      'ipProtocol',
      'trafficClass',
    ] as const) {
      expect(bare[k], k).toBeUndefined();
    }
    expect(seen[4]).toMatchObject({ templateId: 256, flowLabel: label, vlan: 100, srcAddr: '2001:db8::3', samplingRate: 1 });
  });

  it('IPFIX IE 315: a frame without a label or VLAN after one with them, in one set', () => {
    const fields = [f('selectorId', 4), f('dataLinkFrameSection', VARLEN)];
    const v6 = ipv6UdpFrame({ vlan: 100, flowLabel: label, payloadLength: 1000, srcPort: 40000, dstPort: 2811 });
    // An IPv4 frame (no label, no VLAN) and a frame cut inside the Ethernet header.
    const v4 = buildFrame({ ip: { version: 4, src: '10.0.0.1', dst: '10.0.0.2', l4: { proto: 'icmp', type: 8, code: 0, payload: 20 } } });
    const cut = v6.subarray(0, 10);
    const msg = ipfixMessage({ domain: 1 }, [
      ipfixTemplateSet([{ id: 300, fields }]),
      ipfixDataSet(300, fields, [
        [1, v6],
        [2, v4],
        [3, cut],
      ]),
    ]);
    const array = decodeFlowDatagram(msg, ctx(), createFlowDecoderState()).records;
    const seen: FlowRecord[] = [];
    decodeFlowDatagram(msg, ctx(), createFlowDecoderState(), { onRecord: (rec) => void seen.push({ ...rec }) });
    expect(seen).toHaveLength(3);
    for (let i = 0; i < 3; i++) expectExactly(seen[i]!, array[i]!);
    expect(seen[0]).toMatchObject({ ipVersion: 6, flowLabel: label, vlan: 100, srcPort: 40000 });
    expect(seen[1]).toMatchObject({ ipVersion: 4, flowLabel: undefined, vlan: undefined, srcPort: undefined, ipProtocol: 1 });
    expect(seen[2]).toMatchObject({ ipVersion: 0, flowLabel: undefined, vlan: undefined, ipProtocol: undefined, bytes: 0, packets: 1 });
  });

  it('NetFlow v9 and v5: every field rewritten per record', () => {
    const T = [f('octetDeltaCount', 4), f('packetDeltaCount', 4), f('flowLabelIPv6', 3), f('sourceIPv6Address', 16)];
    const U = [f('octetDeltaCount', 4), f('packetDeltaCount', 4)];
    const v9 = v9Message({ records: 4, sourceId: 5 }, [
      v9TemplateFlowset([
        { id: 256, fields: T },
        { id: 257, fields: U },
      ]),
      v9DataFlowset(256, T, [[100, 1, label, '2001:db8::1']]),
      v9DataFlowset(257, U, [[200, 2]]),
    ]);
    const v5 = v5Datagram({ samplingInterval: 10 }, [
      { src: '10.0.0.1', dst: '10.0.0.2', packets: 1, bytes: 2, srcPort: 1, dstPort: 2 },
      { src: '10.0.0.3', dst: '10.0.0.4', packets: 3, bytes: 4 },
    ]);
    for (const msg of [v9, v5]) {
      const array = decodeFlowDatagram(msg, ctx(), createFlowDecoderState()).records;
      const seen: FlowRecord[] = [];
      const r = decodeFlowDatagram(msg, ctx(), createFlowDecoderState(), {
        onRecord: (rec) => {
          seen.push({ ...rec });
          rec.flowLabel = 1;
          rec.srcPort = 9;
        },
      });
      expect(r.stats.records).toBe(array.length);
      expect(seen).toHaveLength(array.length);
      for (let i = 0; i < array.length; i++) expectExactly(seen[i]!, array[i]!);
    }
  });

  it('sFlow: a sampled IPv4 sample and a bare sample after a labelled raw header with VLAN', () => {
    const bytes = buildSflowDatagram({
      agent: '192.0.2.1',
      subAgent: 3,
      samples: [
        {
          kind: 'flow',
          samplingRate: 100,
          records: [
            {
              kind: 'header',
              frame: buildFrame({
                vlans: [{ vid: 7 }],
                ip: {
                  version: 6,
                  trafficClass: 0,
                  flowLabel: label,
                  src: '2001:db8::1',
                  dst: '2001:db8::2',
                  l4: { proto: 'udp', srcPort: 5, dstPort: 6, payload: 10 },
                },
              }),
            },
          ],
        },
        { kind: 'flow', samplingRate: 0, records: [{ kind: 'ipv4', length: 60, protocol: 1, src: '10.0.0.1', dst: '10.0.0.2' }] },
        { kind: 'flow', records: [] },
      ],
    });
    const array = decodeSflow(bytes, ADDR, 6343, createSflowState()).records;
    const seen: FlowRecord[] = [];
    const r = decodeSflow(bytes, ADDR, 6343, createSflowState(), {
      onRecord: (rec) => {
        seen.push({ ...rec });
        rec.vlan = 4000;
        rec.samplingRate = 99;
      },
    });
    expect(r.errors).toEqual([]);
    expect(r.records).toEqual([]);
    expect(r.stats.records).toBe(3);
    for (let i = 0; i < 3; i++) expectExactly(seen[i]!, array[i]!);
    expect(seen[0]).toMatchObject({ ipVersion: 6, flowLabel: label, vlan: 7, srcPort: 5, samplingRate: 100 });
    expect(seen[1]).toMatchObject({
      ipVersion: 4,
      flowLabel: undefined,
      vlan: undefined,
      srcPort: undefined,
      trafficClass: undefined,
      samplingRate: 1,
    });
    expect(seen[2]).toMatchObject({ ipVersion: 0, bytes: 0, srcAddr: undefined, ipProtocol: undefined });
  });
});

describe('sink mode details', () => {
  const T = [f('octetDeltaCount', 4), f('packetDeltaCount', 4), f('flowLabelIPv6', 3)];

  it('records held for a missing template are replayed through the sink when it arrives', () => {
    const st = createFlowDecoderState();
    const seen: FlowRecord[] = [];
    const onRecord = (rec: FlowRecord): void => void seen.push({ ...rec });
    const c = { exporterAddr: '192.0.2.1', exporterPort: 4739, receivedMs: 1000 };
    const early = decodeFlowDatagram(
      ipfixMessage({ domain: 1, seq: 0 }, [
        ipfixDataSet(256, T, [
          [1, 1, 1],
          [2, 2, 2],
        ]),
      ]),
      c,
      st,
      { onRecord },
    );
    expect(early.stats).toMatchObject({ templateMisses: 1, buffered: 1, records: 0 });
    const late = decodeFlowDatagram(
      ipfixMessage({ domain: 1, seq: 2 }, [ipfixTemplateSet([{ id: 256, fields: T }]), ipfixDataSet(256, T, [[3, 3, 3]])]),
      c,
      st,
      { onRecord },
    );
    expect(late.stats).toMatchObject({ replayed: 2, dataRecords: 1, records: 3 });
    expect(late.records).toEqual([]);
    expect(seen.map((r) => r.bytes)).toEqual([1, 2, 3]);
  });

  it('a set the decoder rejects emits nothing through the sink', () => {
    const V = [f('octetDeltaCount', 4), f('interfaceName', VARLEN)];
    const set = ipfixDataSet(256, V, [
      [1, 'eth0'],
      [2, 'eth1'],
    ]);
    // Cut the last record's name short: the varlen length then runs past the set end.
    const bad = set.slice(0, set.length - 2);
    bad[2] = (bad.length >> 8) & 0xff;
    bad[3] = bad.length & 0xff;
    const seen: number[] = [];
    const r = decodeFlowDatagram(
      ipfixMessage({ domain: 1 }, [ipfixTemplateSet([{ id: 256, fields: V }]), bad]),
      { exporterAddr: '192.0.2.1', exporterPort: 4739, receivedMs: 0 },
      createFlowDecoderState(),
      { onRecord: (rec) => void seen.push(rec.bytes) },
    );
    expect(r.errors.map((e) => e.code)).toEqual(['record-malformed']);
    expect(seen).toEqual([]);
    expect(r.stats.records).toBe(0);
  });

  it('refuses to be called again from inside its own sink', () => {
    const msg = ipfixMessage({ domain: 1 }, [ipfixTemplateSet([{ id: 256, fields: T }]), ipfixDataSet(256, T, [[1, 1, 1]])]);
    const c = { exporterAddr: '192.0.2.1', exporterPort: 4739, receivedMs: 0 };
    const st = createFlowDecoderState();
    expect(() => decodeFlowDatagram(msg, c, st, { onRecord: () => void decodeFlowDatagram(msg, c, st) })).toThrow(/not re-entrant/);
    // And it still works afterwards.
    expect(decodeFlowDatagram(msg, c, st).records).toHaveLength(1);
    const sf = buildSflowDatagram({ agent: '192.0.2.1', samples: [{ kind: 'flow', records: [] }] });
    const ss = createSflowState();
    expect(() => decodeSflow(sf, '192.0.2.1', 6343, ss, { onRecord: () => void decodeSflow(sf, '192.0.2.1', 6343, ss) })).toThrow(
      /not re-entrant/,
    );
    expect(decodeSflow(sf, '192.0.2.1', 6343, ss).records).toHaveLength(1);
  });
});
