import { describe, expect, it } from 'vitest';
import { createFlowDecoderState, decodeFlowDatagram, summarizeFlowState } from '../../decoders/ipfix/index.js';
import type { FlowDecodeOptions, FlowDecoderState } from '../../decoders/ipfix/index.js';
import { f, v5Datagram, v9DataFlowset, v9Message, v9OptionsFlowset, v9TemplateFlowset } from '../builders/ipfix.js';

const ADDR = '198.51.100.7';
function decode(bytes: Uint8Array, st: FlowDecoderState, opts: FlowDecodeOptions = {}, port = 2055) {
  return decodeFlowDatagram(bytes, { exporterAddr: ADDR, exporterPort: port, receivedMs: 5_000 }, st, opts);
}

// RFC 3954 field types: IN_BYTES 1, IN_PKTS 2, PROTOCOL 4, L4_SRC_PORT 7, IPV4_SRC_ADDR 8,
// INPUT_SNMP 10, L4_DST_PORT 11, IPV4_DST_ADDR 12, LAST_SWITCHED 21, FIRST_SWITCHED 22,
// IPV6_SRC_ADDR 27, IPV6_DST_ADDR 28, IPV6_FLOW_LABEL 31, FLOW_SAMPLER_ID 48.
const V9 = [
  f('sourceIPv6Address', 16),
  f('destinationIPv6Address', 16),
  f('octetDeltaCount', 4),
  f('packetDeltaCount', 4),
  f('flowStartSysUpTime', 4),
  f('flowEndSysUpTime', 4),
  f('flowLabelIPv6', 3),
  f('ingressInterface', 2),
  f('samplerId', 1),
];
const rec = (bytes: number, label: number, sampler = 1, inIf = 5) => [
  '2001:db8::a',
  '2001:db8::b',
  bytes,
  bytes / 100,
  3_590_000,
  3_599_000,
  label,
  inIf,
  sampler,
];

describe('NetFlow v9', () => {
  it('decodes template, sampler options and data; converts sysUptime times to epoch ms', () => {
    const st = createFlowDecoderState();
    // Options: scope System (type 1, 4 octets), then FLOW_SAMPLER_ID / MODE / RANDOM_INTERVAL.
    const opt = [f(1, 4), f('samplerId', 1), f('samplerMode', 1), f('samplerRandomInterval', 4)];
    const msg = v9Message({ records: 4, sourceId: 42, seq: 10, sysUptimeMs: 3_600_000, unixSecs: 1_700_000_000 }, [
      v9TemplateFlowset([{ id: 256, fields: V9 }]),
      v9OptionsFlowset({ id: 257, fields: opt, scopeCount: 1 }),
      v9DataFlowset(257, opt, [[0, 1, 2, 64]]),
      v9DataFlowset(256, V9, [rec(1500, 0x10004)]),
    ]);
    const r = decode(msg, st, { withFields: true });
    expect(r.errors).toEqual([]);
    expect(r.stats).toMatchObject({ version: 9, sets: 4, templates: 2, optionsRecords: 1, dataRecords: 1 });
    expect(r.records).toHaveLength(1);
    expect(r.records[0]).toMatchObject({
      protocol: 'netflow9',
      exporter: '198.51.100.7:2055',
      domain: 42,
      templateId: 256,
      ipVersion: 6,
      flowLabel: 0x10004,
      bytes: 1500,
      packets: 15,
      inIf: 5,
      samplingRate: 64,
      samplingSource: 'options',
      exportMs: 1_700_000_000_000,
      startMs: 1_700_000_000_000 - 10_000,
      endMs: 1_700_000_000_000 - 1_000,
    });
    expect(r.records[0]!.fields).toMatchObject({ flowLabelIPv6: 0x10004, samplerId: 1, flowStartSysUpTime: 3_590_000 });
  });

  it('applies interface-scoped SAMPLING_INTERVAL (34) to records by input interface', () => {
    const st = createFlowDecoderState();
    const opt = [f(2, 2), f('samplingInterval', 4), f('samplingAlgorithm', 1)]; // scope Interface
    const fields = [f('octetDeltaCount', 4), f('packetDeltaCount', 4), f('ingressInterface', 2)];
    const r = decode(
      v9Message({ records: 5 }, [
        v9OptionsFlowset({ id: 300, fields: opt, scopeCount: 1 }),
        v9DataFlowset(300, opt, [
          [5, 100, 2],
          [6, 1000, 2],
        ]),
        v9TemplateFlowset([{ id: 256, fields }]),
        v9DataFlowset(256, fields, [
          [1, 1, 5],
          [1, 1, 6],
          [1, 1, 7],
        ]),
      ]),
      st,
    );
    expect(r.records.map((x) => [x.inIf, x.samplingRate, x.samplingSource])).toEqual([
      [5, 100, 'options'],
      [6, 1000, 'options'],
      [7, 1, 'unknown'],
    ]);
    expect(summarizeFlowState(st).sessions[0]!.domains[0]!.sampling.interfaces).toEqual({ 5: 100, 6: 1000 });
  });

  it('counts lost export packets from sequence gaps (RFC 3954 5.1)', () => {
    const st = createFlowDecoderState();
    const t = v9TemplateFlowset([{ id: 256, fields: [f('octetDeltaCount', 4)] }]);
    const m = (seq: number) => v9Message({ records: 1, seq }, [t]);
    expect(decode(m(100), st).stats.lostDatagrams).toBe(0);
    expect(decode(m(101), st).stats.lostDatagrams).toBe(0);
    const gap = decode(m(105), st);
    expect(gap.stats).toMatchObject({ sequenceGaps: 1, lostDatagrams: 3, lostRecords: 0 });
    const late = decode(m(103), st);
    expect(late.stats).toMatchObject({ lateDatagrams: 1, sequenceResets: 0 });
    expect(decode(m(106), st).stats.lostDatagrams).toBe(0);
  });

  it('tolerates flowset padding and reports a header count larger than the records present', () => {
    const st = createFlowDecoderState();
    const fields = [f('octetDeltaCount', 4), f('protocolIdentifier', 1)]; // 5-octet records: 3 of padding
    const r = decode(v9Message({ records: 2 }, [v9TemplateFlowset([{ id: 256, fields }]), v9DataFlowset(256, fields, [[10, 6]])]), st);
    expect(r.errors).toEqual([]);
    expect(r.records.map((x) => [x.bytes, x.ipProtocol])).toEqual([[10, 6]]);
    const short = decode(v9Message({ records: 1, count: 3 }, [v9DataFlowset(256, fields, [[10, 6]])]), st);
    expect(short.records).toHaveLength(1);
    expect(short.errors.map((e) => e.code)).toEqual(['truncated']);
    expect(short.stopped).toBe(false);
  });

  it('keeps v9 and IPFIX templates of one domain id apart by session', () => {
    const st = createFlowDecoderState();
    const fields = [f('octetDeltaCount', 4)];
    decode(v9Message({ records: 1 }, [v9TemplateFlowset([{ id: 256, fields }])]), st, {}, 2055);
    const r = decode(v9Message({ records: 1 }, [v9DataFlowset(256, fields, [[9]])]), st, {}, 2056);
    expect(r.records).toEqual([]);
    expect(r.stats.templateMisses).toBe(1);
  });

  it('rejects a v9 datagram whose flowset runs past the end', () => {
    const st = createFlowDecoderState();
    const msg = v9Message({ records: 1 }, [v9TemplateFlowset([{ id: 256, fields: V9 }])]);
    const r = decode(msg.slice(0, msg.length - 6), st);
    expect(r.errors.map((e) => e.code)).toEqual(['truncated']);
    expect(st.sessions.size).toBe(0);
  });
});

describe('NetFlow v5', () => {
  const recs = [
    {
      src: '10.0.0.1',
      dst: '10.0.0.2',
      packets: 10,
      bytes: 1500,
      inIf: 3,
      outIf: 4,
      srcPort: 80,
      dstPort: 40000,
      protocol: 6,
      tos: 0x28,
      firstUptimeMs: 3_500_000,
      lastUptimeMs: 3_599_500,
    },
    { src: '10.0.0.3', dst: '10.0.0.4', packets: 1, bytes: 64, protocol: 17 },
  ];

  it('decodes records with the header sampling interval (low 14 bits, 2-bit mode)', () => {
    const st = createFlowDecoderState();
    const dg = v5Datagram(
      { samplingMode: 1, samplingInterval: 100, unixSecs: 1_700_000_000, unixNsecs: 250_000_000, sysUptimeMs: 3_600_000 },
      recs,
    );
    const r = decode(dg, st);
    expect(r.errors).toEqual([]);
    expect(r.stats).toMatchObject({ version: 5, dataRecords: 2, unknownSampling: 0 });
    expect(r.records[0]).toEqual({
      protocol: 'netflow5',
      exporter: '198.51.100.7:2055',
      domain: 0,
      templateId: 0,
      ipVersion: 4,
      flowLabel: undefined,
      packets: 10,
      bytes: 1500,
      samplingRate: 100,
      samplingSource: 'header',
      inIf: 3,
      outIf: 4,
      direction: undefined,
      vlan: undefined,
      srcAddr: '10.0.0.1',
      dstAddr: '10.0.0.2',
      // The addresses' bytes in the datagram itself: header 24 octets, srcaddr then dstaddr.
      addrBytes: dg,
      addrLen: 4,
      srcAddrAt: 24,
      dstAddrAt: 28,
      srcPort: 80,
      dstPort: 40000,
      ipProtocol: 6,
      trafficClass: 0x28,
      startMs: 1_700_000_000_250 - 100_000,
      endMs: 1_700_000_000_250 - 500,
      exportMs: 1_700_000_000_250,
      // Enrichment's fields: decoders leave them at their defaults.
      nat64: false,
      srcSite: 0,
      dstSite: 0,
    });
    expect(r.records[0]!.addrBytes).toBe(dg);
    expect(r.records[1]).toMatchObject({ addrLen: 4, srcAddrAt: 24 + 48, dstAddrAt: 28 + 48 });
  });

  // Per-exporter defaults and overrides are the enrichment's (test/unit/pipeline.test.ts).
  it('unsampled header: unknown, with the global default rate; a sampled header states its rate', () => {
    const st = createFlowDecoderState();
    const plain = decode(v5Datagram({}, recs), st);
    expect(plain.records[0]).toMatchObject({ samplingRate: 1, samplingSource: 'unknown' });
    expect(plain.stats.unknownSampling).toBe(2);
    const cfg = decode(v5Datagram({ flowSequence: 2 }, recs), st, { defaultSamplingRate: 10 });
    expect(cfg.records[0]).toMatchObject({ samplingRate: 10, samplingSource: 'unknown' });
    const hdr = decode(v5Datagram({ samplingInterval: 100, flowSequence: 4 }, recs), st, { defaultSamplingRate: 10 });
    expect(hdr.records[0]).toMatchObject({ samplingRate: 100, samplingSource: 'header' });
  });

  it('counts lost flows from flow_sequence and rejects truncated datagrams whole', () => {
    const st = createFlowDecoderState();
    decode(v5Datagram({ flowSequence: 0 }, recs), st);
    expect(decode(v5Datagram({ flowSequence: 7 }, recs), st).stats).toMatchObject({ sequenceGaps: 1, lostRecords: 5 });
    const full = v5Datagram({}, recs);
    const cut = decode(full.slice(0, full.length - 1), st);
    expect(cut.records).toEqual([]);
    expect(cut.errors.map((e) => e.code)).toEqual(['truncated']);
    expect(decode(v5Datagram({ count: 0 }, []), st).errors.map((e) => e.code)).toEqual(['bad-length']);
  });
});
