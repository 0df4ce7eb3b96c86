import { describe, expect, it } from 'vitest';
import { createFlowDecoderState, decodeFlowDatagram, summarizeFlowState } from '../../decoders/ipfix/index.js';
import type { FlowDecodeOptions, FlowDecoderLimits, FlowDecoderState } from '../../decoders/ipfix/index.js';
import { encodeFlowLabel } from '../../decoders/scitags/flowlabel.js';
import {
  f,
  ipfixDataSet,
  ipfixMessage,
  ipfixOptionsTemplateSet,
  ipfixSet,
  ipfixTemplateSet,
  ipfixWithdrawAllSet,
  ipfixWithdrawalSet,
  ipv6UdpFrame,
  LongVarlen,
  VARLEN,
} from '../builders/ipfix.js';

const ADDR = '192.0.2.1';

function decode(
  bytes: Uint8Array,
  state: FlowDecoderState,
  opts: FlowDecodeOptions = {},
  ctx: { port?: number; ms?: number; addr?: string } = {},
) {
  return decodeFlowDatagram(
    bytes,
    { exporterAddr: ctx.addr ?? ADDR, exporterPort: ctx.port ?? 4739, receivedMs: ctx.ms ?? 1_000_000 },
    state,
    opts,
  );
}

const V6 = [
  f('sourceIPv6Address', 16),
  f('destinationIPv6Address', 16),
  f('octetDeltaCount', 8),
  f('packetDeltaCount', 8),
  f('flowLabelIPv6', 4),
  f('ingressInterface', 4),
];
const rec6 = (bytes: number, packets: number, label: number, inIf = 3) => ({
  sourceIPv6Address: '2001:db8::1',
  destinationIPv6Address: '2001:db8::2',
  octetDeltaCount: bytes,
  packetDeltaCount: packets,
  flowLabelIPv6: label,
  ingressInterface: inIf,
});
const V4 = [f('sourceIPv4Address', 4), f('destinationIPv4Address', 4), f('octetDeltaCount', 4), f('packetDeltaCount', 4)];

describe('IPFIX templates and data', () => {
  it('decodes template and data in one datagram', () => {
    const st = createFlowDecoderState();
    const label = encodeFlowLabel(2, 1);
    const msg = ipfixMessage({ domain: 7, seq: 0, exportSecs: 1_700_000_000 }, [
      ipfixTemplateSet([{ id: 256, fields: V6 }]),
      ipfixDataSet(256, V6, [rec6(1500, 2, label), rec6(900, 1, 0, 4)]),
    ]);
    const r = decode(msg, st);
    expect(r.errors).toEqual([]);
    expect(r.stats).toMatchObject({ version: 10, sets: 2, templates: 1, dataRecords: 2, templateMisses: 0 });
    expect(r.records).toHaveLength(2);
    expect(r.records[0]).toMatchObject({
      protocol: 'ipfix',
      exporter: '192.0.2.1:4739',
      domain: 7,
      templateId: 256,
      ipVersion: 6,
      flowLabel: 0x10004,
      bytes: 1500,
      packets: 2,
      inIf: 3,
      srcAddr: '2001:db8::1',
      dstAddr: '2001:db8::2',
      exportMs: 1_700_000_000_000,
      samplingRate: 1,
      samplingSource: 'unknown',
    });
    expect(r.records[1]).toMatchObject({ bytes: 900, packets: 1, flowLabel: 0, inIf: 4 });
  });

  it('handles several sets per datagram with padding', () => {
    const st = createFlowDecoderState();
    const msg = ipfixMessage({}, [
      ipfixTemplateSet([{ id: 256, fields: V4 }], 3),
      ipfixTemplateSet([{ id: 257, fields: V6 }]),
      ipfixDataSet(256, V4, [['10.0.0.1', '10.0.0.2', 100, 1]], 3), // 3 octets < record length 16: padding
      ipfixDataSet(257, V6, [rec6(10, 1, 5)], 4),
      ipfixDataSet(256, V4, [['10.0.0.3', '10.0.0.4', 200, 2]]),
    ]);
    const r = decode(msg, st);
    expect(r.errors).toEqual([]);
    expect(r.stats.sets).toBe(5);
    expect(r.records.map((x) => [x.templateId, x.ipVersion, x.bytes, x.srcAddr])).toEqual([
      [256, 4, 100, '10.0.0.1'],
      [257, 6, 10, '2001:db8::1'],
      [256, 4, 200, '10.0.0.3'],
    ]);
  });

  it('drops and counts data for a withdrawn template, and accepts its redefinition', () => {
    const st = createFlowDecoderState();
    decode(ipfixMessage({}, [ipfixTemplateSet([{ id: 256, fields: V4 }])]), st);
    const data = ipfixDataSet(256, V4, [['10.0.0.1', '10.0.0.2', 100, 1]]);
    expect(decode(ipfixMessage({}, [data]), st).records).toHaveLength(1);
    const w = decode(ipfixMessage({}, [ipfixWithdrawalSet([256])]), st);
    expect(w.stats.withdrawals).toBe(1);
    const r = decode(ipfixMessage({}, [data]), st);
    expect(r.records).toEqual([]);
    expect(r.stats.withdrawnDrops).toBe(1);
    expect(r.stats.templateMisses).toBe(0);
    expect(r.errors.map((e) => e.code)).toEqual(['template-withdrawn']);
    expect(r.stopped).toBe(false);
    // Redefined with another layout: the new layout is used.
    const r2 = decode(ipfixMessage({}, [ipfixTemplateSet([{ id: 256, fields: V6 }]), ipfixDataSet(256, V6, [rec6(5, 1, 9)])]), st);
    expect(r2.records.map((x) => [x.ipVersion, x.bytes, x.flowLabel])).toEqual([[6, 5, 9]]);
  });

  it('withdraw-all removes data templates (set 2 / id 2) and options templates (set 3 / id 3) separately', () => {
    const st = createFlowDecoderState();
    const opt = [f('meteringProcessId', 4), f('samplingPacketInterval', 4), f('samplingPacketSpace', 4)];
    decode(
      ipfixMessage({}, [
        ipfixTemplateSet([
          { id: 256, fields: V4 },
          { id: 257, fields: V6 },
        ]),
        ipfixOptionsTemplateSet([{ id: 258, fields: opt, scopeCount: 1 }]),
      ]),
      st,
    );
    decode(ipfixMessage({}, [ipfixWithdrawAllSet(2)]), st);
    const dom = summarizeFlowState(st).sessions[0]!.domains[0]!;
    expect(dom.templates.map((t) => t.id)).toEqual([258]);
    expect(dom.withdrawn.sort()).toEqual([256, 257]);
    const r = decode(ipfixMessage({}, [ipfixDataSet(257, V6, [rec6(1, 1, 1)]), ipfixDataSet(258, opt, [[1, 1, 9]])]), st);
    expect(r.stats).toMatchObject({ withdrawnDrops: 1, optionsRecords: 1 });
    decode(ipfixMessage({}, [ipfixWithdrawAllSet(3)]), st);
    expect(summarizeFlowState(st).sessions[0]!.domains[0]!.templates).toEqual([]);
  });

  it('a redefinition replaces the old layout', () => {
    const st = createFlowDecoderState();
    decode(ipfixMessage({}, [ipfixTemplateSet([{ id: 300, fields: V4 }])]), st);
    const r = decode(ipfixMessage({}, [ipfixTemplateSet([{ id: 300, fields: V6 }]), ipfixDataSet(300, V6, [rec6(7, 1, 1)])]), st);
    expect(r.records[0]).toMatchObject({ ipVersion: 6, bytes: 7 });
    expect(summarizeFlowState(st).sessions[0]!.domains[0]!.templates).toHaveLength(1);
  });

  it('keeps templates apart per domain and per transport session', () => {
    const st = createFlowDecoderState();
    decode(ipfixMessage({ domain: 1 }, [ipfixTemplateSet([{ id: 256, fields: V4 }])]), st);
    decode(ipfixMessage({ domain: 2 }, [ipfixTemplateSet([{ id: 256, fields: V6 }])]), st);
    decode(ipfixMessage({ domain: 1 }, [ipfixTemplateSet([{ id: 256, fields: V6 }])]), st, {}, { port: 5000 });
    const a = decode(ipfixMessage({ domain: 1 }, [ipfixDataSet(256, V4, [['10.0.0.1', '10.0.0.2', 100, 1]])]), st);
    const b = decode(ipfixMessage({ domain: 2 }, [ipfixDataSet(256, V6, [rec6(200, 2, 3)])]), st);
    const c = decode(ipfixMessage({ domain: 1 }, [ipfixDataSet(256, V6, [rec6(300, 3, 4)])]), st, {}, { port: 5000 });
    expect(a.records.map((x) => [x.domain, x.ipVersion, x.bytes])).toEqual([[1, 4, 100]]);
    expect(b.records.map((x) => [x.domain, x.ipVersion, x.bytes])).toEqual([[2, 6, 200]]);
    expect(c.records.map((x) => [x.exporter, x.ipVersion, x.bytes])).toEqual([['192.0.2.1:5000', 6, 300]]);
  });

  it('formats IPv6 exporters in brackets', () => {
    const st = createFlowDecoderState();
    const r = decode(
      ipfixMessage({}, [ipfixTemplateSet([{ id: 256, fields: V4 }]), ipfixDataSet(256, V4, [['10.0.0.1', '10.0.0.2', 1, 1]])]),
      st,
      {},
      { addr: '2001:db8::9' },
    );
    expect(r.records[0]!.exporter).toBe('[2001:db8::9]:4739');
  });
});

describe('data before template', () => {
  it('holds data, then replays it when the template arrives', () => {
    const st = createFlowDecoderState();
    const early = decode(
      ipfixMessage({ seq: 0 }, [
        ipfixDataSet(256, V4, [
          ['10.0.0.1', '10.0.0.2', 100, 1],
          ['10.0.0.3', '10.0.0.4', 50, 1],
        ]),
      ]),
      st,
    );
    expect(early.records).toEqual([]);
    expect(early.stats).toMatchObject({ templateMisses: 1, buffered: 1 });
    expect(early.errors).toEqual([]);
    const t = decode(
      ipfixMessage({ seq: 2 }, [ipfixTemplateSet([{ id: 256, fields: V4 }]), ipfixDataSet(256, V4, [['10.0.0.5', '10.0.0.6', 7, 1]])]),
      st,
    );
    expect(t.stats).toMatchObject({ replayed: 2, dataRecords: 1 });
    expect(t.records.map((x) => x.bytes)).toEqual([100, 50, 7]);
    expect(summarizeFlowState(st).sessions[0]!.pendingSets).toBe(0);
  });

  it('evicts held data by size and by age, and counts it', () => {
    const st = createFlowDecoderState({ maxPendingBytes: 40, maxPendingAgeMs: 1000 });
    const data = ipfixDataSet(256, V4, [['10.0.0.1', '10.0.0.2', 100, 1]]); // 16-octet body
    decode(ipfixMessage({}, [data]), st, {}, { ms: 0 });
    decode(ipfixMessage({}, [data]), st, {}, { ms: 10 });
    const third = decode(ipfixMessage({}, [data]), st, {}, { ms: 20 }); // 48 > 40: oldest goes
    expect(third.stats.evicted).toBe(1);
    const aged = decode(ipfixMessage({}, []), st, {}, { ms: 1015 }); // the one from 10 is > 1000 ms old
    expect(aged.stats.evicted).toBe(1);
    const big = decode(
      ipfixMessage({}, [
        ipfixDataSet(
          256,
          V4,
          Array.from({ length: 3 }, () => ['0.0.0.0', '0.0.0.0', 0, 0]),
        ),
      ]),
      st,
      {},
      { ms: 1016 },
    );
    expect(big.stats).toMatchObject({ templateMisses: 1, buffered: 0, evicted: 1 });
    const t = decode(ipfixMessage({}, [ipfixTemplateSet([{ id: 256, fields: V4 }])]), st, {}, { ms: 1017 });
    expect(t.stats.replayed).toBe(1);
    expect(st.totals.pendingEvicted).toBe(3);
  });
});

describe('field encodings', () => {
  it('reads variable-length fields in both length forms', () => {
    const st = createFlowDecoderState();
    const fields = [f('interfaceName', VARLEN), f('octetDeltaCount', 4), f('interfaceDescription', VARLEN), f('packetDeltaCount', 4)];
    const long = 'x'.repeat(300);
    const msg = ipfixMessage({}, [
      ipfixTemplateSet([{ id: 256, fields }]),
      ipfixDataSet(256, fields, [
        ['eth0', 1000, long, 10],
        [new LongVarlen(new TextEncoder().encode('ge-0/0/1')), 2000, '', 20],
      ]),
    ]);
    const r = decode(msg, st, { withFields: true });
    expect(r.errors).toEqual([]);
    expect(r.records.map((x) => [x.bytes, x.packets])).toEqual([
      [1000, 10],
      [2000, 20],
    ]);
    expect(r.records[0]!.fields).toEqual({
      interfaceName: 'eth0',
      octetDeltaCount: 1000,
      interfaceDescription: long,
      packetDeltaCount: 10,
    });
    expect(r.records[1]!.fields!['interfaceName']).toBe('ge-0/0/1');
  });

  it('reports a variable-length field running past its set and keeps earlier sets', () => {
    const st = createFlowDecoderState();
    const fields = [f('interfaceName', VARLEN), f('octetDeltaCount', 4)];
    // Body: varlen prefix says 200 octets but only 4 follow.
    const bad = ipfixSet(257, Uint8Array.of(200, 1, 2, 3, 4));
    const msg = ipfixMessage({}, [
      ipfixTemplateSet([
        { id: 256, fields: V4 },
        { id: 257, fields },
      ]),
      ipfixDataSet(256, V4, [['10.0.0.1', '10.0.0.2', 100, 1]]),
      bad,
      ipfixDataSet(256, V4, [['10.0.0.3', '10.0.0.4', 100, 1]]),
    ]);
    const r = decode(msg, st);
    expect(r.records.map((x) => x.srcAddr)).toEqual(['10.0.0.1']);
    expect(r.errors.map((e) => e.code)).toEqual(['record-malformed']);
    expect(r.stopped).toBe(true);
  });

  it('skips enterprise-specific fields by their length', () => {
    const st = createFlowDecoderState();
    const fields = [f(1, 4, 29305), f('octetDeltaCount', 4), f(2, VARLEN, 9), f('packetDeltaCount', 4), f(3, 2, 6871)];
    const r = decode(
      ipfixMessage({}, [
        ipfixTemplateSet([{ id: 256, fields }]),
        ipfixDataSet(256, fields, [[0xdeadbeef, 4000, Uint8Array.of(1, 2, 3), 40, 7]]),
      ]),
      st,
      { withFields: true },
    );
    expect(r.records[0]).toMatchObject({ bytes: 4000, packets: 40 });
    expect(r.records[0]!.fields).toEqual({
      '29305.1': 'deadbeef',
      octetDeltaCount: 4000,
      '9.2': '010203',
      packetDeltaCount: 40,
      '6871.3': '0007',
    });
  });

  it('reads reduced-size counters of 1 to 8 octets', () => {
    for (let len = 1; len <= 8; len++) {
      const st = createFlowDecoderState();
      const fields = [f('octetDeltaCount', len), f('packetDeltaCount', len)];
      const big = len >= 7 ? 2 ** 52 + 3 : 2 ** (8 * len) - 1;
      const r = decode(ipfixMessage({}, [ipfixTemplateSet([{ id: 256, fields }]), ipfixDataSet(256, fields, [[big, 1]])]), st);
      expect(
        r.records.map((x) => [x.bytes, x.packets]),
        `length ${len}`,
      ).toEqual([[big, 1]]);
    }
  });

  it('masks IE 31 of 3 and 4 octets to the 20-bit label (pmacct puts TC bits above it)', () => {
    const label = encodeFlowLabel(65, 6, 31);
    for (const len of [3, 4]) {
      const st = createFlowDecoderState();
      const fields = [f('octetDeltaCount', 4), f('flowLabelIPv6', len)];
      const raw = len === 3 ? (0xa << 20) | label : (0xfff << 20) + label;
      const r = decode(ipfixMessage({}, [ipfixTemplateSet([{ id: 256, fields }]), ipfixDataSet(256, fields, [[1, raw]])]), st);
      expect(r.records[0]!.flowLabel, `length ${len}`).toBe(label);
      expect(r.records[0]!.ipVersion).toBe(6);
    }
  });

  it('converts IPFIX times: seconds, milliseconds, microseconds and sysUpTime with systemInitTime', () => {
    const st = createFlowDecoderState();
    const opt = [f('meteringProcessId', 4), f('systemInitTimeMilliseconds', 8)];
    const fields = [f('flowStartSysUpTime', 4), f('flowEndSysUpTime', 4), f('octetDeltaCount', 4)];
    const f2 = [f('flowStartSeconds', 4), f('flowEndMilliseconds', 8), f('octetDeltaCount', 4)];
    const f3 = [f('flowStartMicroseconds', 8), f('octetDeltaCount', 4)];
    const ntp = (BigInt(1_700_000_000 + 2208988800) << 32n) | (1n << 31n); // +500 ms
    const r = decode(
      ipfixMessage({}, [
        ipfixOptionsTemplateSet([{ id: 300, fields: opt, scopeCount: 1 }]),
        ipfixSet(300, new Uint8Array([0, 0, 0, 1, ...bytes8(1_699_999_000_000n)])),
        ipfixTemplateSet([
          { id: 256, fields },
          { id: 257, fields: f2 },
          { id: 258, fields: f3 },
        ]),
        ipfixDataSet(256, fields, [[500, 800, 1]]),
        ipfixDataSet(257, f2, [[1_700_000_000, 1_700_000_001_234, 1]]),
        ipfixDataSet(258, f3, [[ntp, 1]]),
      ]),
      st,
    );
    expect(r.errors).toEqual([]);
    expect(r.records.map((x) => [x.startMs, x.endMs])).toEqual([
      [1_699_999_000_500, 1_699_999_000_800],
      [1_700_000_000_000, 1_700_000_001_234],
      [1_700_000_000_500, undefined],
    ]);
  });

  it('dumps fields by IANA name', () => {
    const st = createFlowDecoderState();
    const r = decode(ipfixMessage({}, [ipfixTemplateSet([{ id: 256, fields: V6 }]), ipfixDataSet(256, V6, [rec6(10, 1, 0x10004)])]), st, {
      withFields: true,
    });
    expect(r.records[0]!.fields).toEqual({
      sourceIPv6Address: '2001:db8::1',
      destinationIPv6Address: '2001:db8::2',
      octetDeltaCount: 10,
      packetDeltaCount: 1,
      flowLabelIPv6: 0x10004,
      ingressInterface: 3,
    });
  });

  it('leaves addresses unformatted when asked', () => {
    const st = createFlowDecoderState();
    const r = decode(ipfixMessage({}, [ipfixTemplateSet([{ id: 256, fields: V6 }]), ipfixDataSet(256, V6, [rec6(10, 1, 1)])]), st, {
      withAddresses: false,
    });
    expect(r.records[0]).toMatchObject({ srcAddr: undefined, dstAddr: undefined, ipVersion: 6, bytes: 10 });
  });

  it('reads the label, IP length and VLAN of an IE 315 frame: one packet per record', () => {
    const st = createFlowDecoderState();
    const label = encodeFlowLabel(200, 10, 5);
    const fields = [f('selectorId', 4), f('dataLinkFrameSection', VARLEN)];
    const fixed = [f('dataLinkFrameSection', 128)];
    const frame = ipv6UdpFrame({ vlan: 100, flowLabel: label, trafficClass: 0x20, payloadLength: 1000, srcPort: 40000, dstPort: 2811 });
    const r = decode(
      ipfixMessage({}, [
        ipfixTemplateSet([
          { id: 256, fields },
          { id: 257, fields: fixed },
        ]),
        ipfixDataSet(256, fields, [[1, frame]]),
        ipfixDataSet(257, fixed, [[ipv6UdpFrame({ flowLabel: 0, payloadLength: 60, padTo: 128 })]]),
      ]),
      st,
    );
    expect(r.errors).toEqual([]);
    expect(r.records[0]).toMatchObject({
      ipVersion: 6,
      flowLabel: label,
      trafficClass: 0x20,
      packets: 1,
      bytes: 1040,
      vlan: 100,
      srcPort: 40000,
      dstPort: 2811,
      ipProtocol: 17,
      srcAddr: '2001:db8::1',
    });
    expect(r.records[1]).toMatchObject({ ipVersion: 6, flowLabel: 0, packets: 1, bytes: 100, vlan: undefined });
  });
});

function bytes8(v: bigint): number[] {
  const out: number[] = [];
  for (let i = 7; i >= 0; i--) out.push(Number((v >> BigInt(8 * i)) & 0xffn));
  return out;
}

describe('sampling', () => {
  const data = (extra: ReturnType<typeof f>[] = []) => [
    f('octetDeltaCount', 4),
    f('packetDeltaCount', 4),
    f('ingressInterface', 4),
    ...extra,
  ];

  it('domain-wide samplingInterval / samplingAlgorithm (34/35)', () => {
    const st = createFlowDecoderState();
    const opt = [f('meteringProcessId', 4), f('samplingInterval', 4), f('samplingAlgorithm', 1)];
    const r = decode(
      ipfixMessage({}, [
        ipfixOptionsTemplateSet([{ id: 400, fields: opt, scopeCount: 1 }]),
        ipfixDataSet(400, opt, [[1, 512, 2]]),
        ipfixTemplateSet([{ id: 256, fields: data() }]),
        ipfixDataSet(256, data(), [[100, 1, 1]]),
      ]),
      st,
    );
    expect(r.stats.optionsRecords).toBe(1);
    expect(r.records[0]).toMatchObject({ samplingRate: 512, samplingSource: 'options' });
    expect(r.stats.unknownSampling).toBe(0);
    expect(summarizeFlowState(st).exporters).toEqual([
      {
        exporterAddr: ADDR,
        domain: 0,
        sampling: { domainRate: 512, samplers: {}, selectors: {}, interfaces: {}, interfaceNames: {}, systemInitMs: null },
      },
    ]);
  });

  it('joins samplerId (48) with samplerMode/RandomInterval (49/50) options, including from another source port', () => {
    const st = createFlowDecoderState();
    const opt = [f('samplerId', 1), f('samplerMode', 1), f('samplerRandomInterval', 4)];
    decode(
      ipfixMessage({ domain: 3 }, [
        ipfixOptionsTemplateSet([{ id: 400, fields: opt, scopeCount: 1 }]),
        ipfixDataSet(400, opt, [
          [1, 2, 10],
          [2, 2, 100],
        ]),
      ]),
      st,
      {},
      { port: 2000 },
    );
    const fields = data([f('samplerId', 1)]);
    const r = decode(
      ipfixMessage({ domain: 3 }, [
        ipfixTemplateSet([{ id: 256, fields }]),
        ipfixDataSet(256, fields, [
          [100, 1, 1, 1],
          [100, 1, 1, 2],
          [100, 1, 1, 3],
        ]),
      ]),
      st,
      {},
      { port: 2001 },
    );
    expect(r.records.map((x) => [x.samplingRate, x.samplingSource])).toEqual([
      [10, 'options'],
      [100, 'options'],
      [1, 'unknown'],
    ]);
    expect(r.stats.unknownSampling).toBe(1);
  });

  it('a session that decoded data before its exporter sent options from another port picks the options up at once', () => {
    // The domain remembers its exporter-wide table (or its absence) between data sets; options
    // arriving on another source port must replace that memo, not be hidden by it.
    const st = createFlowDecoderState();
    const opt = [f('meteringProcessId', 4), f('samplingInterval', 4), f('samplingAlgorithm', 1)];
    const msg = (records: number[][]) =>
      ipfixMessage({}, [ipfixTemplateSet([{ id: 256, fields: data() }]), ipfixDataSet(256, data(), records)]);
    const before = decode(msg([[100, 1, 1]]), st, {}, { port: 2001 });
    expect(before.records.map((x) => [x.samplingRate, x.samplingSource])).toEqual([[1, 'unknown']]);
    decode(
      ipfixMessage({}, [ipfixOptionsTemplateSet([{ id: 400, fields: opt, scopeCount: 1 }]), ipfixDataSet(400, opt, [[1, 64, 2]])]),
      st,
      {},
      { port: 2000 },
    );
    const after = decode(msg([[100, 1, 1]]), st, {}, { port: 2001 });
    expect(after.records.map((x) => [x.samplingRate, x.samplingSource])).toEqual([[64, 'options']]);
  });

  it('an evicted exporter-wide table stops applying to the sessions that used it', () => {
    // maxSessions bounds the exporter-wide tables (address|domain) too. Port 2001 reads domain
    // 1's rate from the table port 2000's options made; options for domains 2 and 3 then evict
    // that table, and port 2001's next data set must not find it through its domain's memo.
    const st = createFlowDecoderState({ maxSessions: 2 });
    const opt = [f('meteringProcessId', 4), f('samplingInterval', 4), f('samplingAlgorithm', 1)];
    const options = (domain: number, rate: number) =>
      ipfixMessage({ domain }, [
        ipfixOptionsTemplateSet([{ id: 400, fields: opt, scopeCount: 1 }]),
        ipfixDataSet(400, opt, [[1, rate, 2]]),
      ]);
    const msg = ipfixMessage({ domain: 1 }, [ipfixTemplateSet([{ id: 256, fields: data() }]), ipfixDataSet(256, data(), [[100, 1, 1]])]);
    const rateOf = (r: ReturnType<typeof decode>) => r.records.map((x) => [x.samplingRate, x.samplingSource]);
    decode(options(1, 64), st, {}, { port: 2000 });
    expect(rateOf(decode(msg, st, {}, { port: 2001 }))).toEqual([[64, 'options']]);
    decode(options(2, 128), st, {}, { port: 2000 });
    decode(options(3, 256), st, {}, { port: 2000 });
    expect(summarizeFlowState(st).exporters.map((e) => e.domain)).toEqual([2, 3]);
    expect(rateOf(decode(msg, st, {}, { port: 2001 }))).toEqual([[1, 'unknown']]);
  });

  it('selectorId (302) with samplingPacketInterval/Space (305/306) and samplingSize/Population (309/310)', () => {
    const st = createFlowDecoderState();
    const o1 = [f('selectorId', 4), f('samplingPacketInterval', 4), f('samplingPacketSpace', 4)];
    const o2 = [f('selectorId', 4), f('samplingSize', 4), f('samplingPopulation', 4)];
    const fields = data([f('selectorId', 4)]);
    const r = decode(
      ipfixMessage({}, [
        ipfixOptionsTemplateSet([
          { id: 400, fields: o1, scopeCount: 1 },
          { id: 401, fields: o2, scopeCount: 1 },
        ]),
        ipfixDataSet(400, o1, [[7, 1, 9]]),
        ipfixDataSet(401, o2, [[8, 2, 200]]),
        ipfixTemplateSet([{ id: 256, fields }]),
        ipfixDataSet(256, fields, [
          [1, 1, 1, 7],
          [1, 1, 1, 8],
        ]),
      ]),
      st,
    );
    expect(r.records.map((x) => [x.samplingRate, x.samplingSource])).toEqual([
      [10, 'options'],
      [100, 'options'],
    ]);
  });

  it('domain-wide 305/306 without a selector (softflowd -s)', () => {
    const st = createFlowDecoderState();
    const opt = [f('meteringProcessId', 4), f('samplingPacketInterval', 4), f('samplingPacketSpace', 4), f('selectorAlgorithm', 2)];
    const r = decode(
      ipfixMessage({}, [
        ipfixOptionsTemplateSet([{ id: 256, fields: opt, scopeCount: 1 }]),
        ipfixDataSet(256, opt, [[1, 1, 99, 1]]),
        ipfixTemplateSet([{ id: 1024, fields: data() }]),
        ipfixDataSet(1024, data(), [[1, 1, 1]]),
      ]),
      st,
    );
    expect(r.records[0]).toMatchObject({ samplingRate: 100, samplingSource: 'options' });
  });

  it('rates carried in the data record itself', () => {
    const st = createFlowDecoderState();
    const a = data([f('samplingInterval', 2)]);
    const b = data([f('samplingPacketInterval', 4), f('samplingPacketSpace', 4)]);
    const c = data([f('samplingSize', 4), f('samplingPopulation', 4)]);
    const r = decode(
      ipfixMessage({}, [
        ipfixTemplateSet([
          { id: 256, fields: a },
          { id: 257, fields: b },
          { id: 258, fields: c },
        ]),
        ipfixDataSet(256, a, [[1, 1, 1, 64]]),
        ipfixDataSet(257, b, [[1, 1, 1, 1, 3]]),
        ipfixDataSet(258, c, [[1, 1, 1, 1, 1000]]),
      ]),
      st,
    );
    expect(r.records.map((x) => [x.samplingRate, x.samplingSource])).toEqual([
      [64, 'record'],
      [4, 'record'],
      [1000, 'record'],
    ]);
  });

  // Per-exporter defaults and overrides are the enrichment's (test/unit/pipeline.test.ts).
  it('configuration: the global default for unknown, never above what the exporter says', () => {
    const msg = ipfixMessage({}, [ipfixTemplateSet([{ id: 256, fields: data() }]), ipfixDataSet(256, data(), [[1, 1, 1]])]);
    expect(decode(msg, createFlowDecoderState()).records[0]).toMatchObject({ samplingRate: 1, samplingSource: 'unknown' });
    expect(decode(msg, createFlowDecoderState(), { defaultSamplingRate: 8 }).records[0]).toMatchObject({
      samplingRate: 8,
      samplingSource: 'unknown',
    });
    const withOpt = ipfixMessage({}, [
      ipfixOptionsTemplateSet([{ id: 400, fields: [f('meteringProcessId', 4), f('samplingInterval', 4)], scopeCount: 1 }]),
      ipfixDataSet(400, [f('meteringProcessId', 4), f('samplingInterval', 4)], [[1, 512]]),
      ipfixTemplateSet([{ id: 256, fields: data() }]),
      ipfixDataSet(256, data(), [[1, 1, 1]]),
    ]);
    expect(decode(withOpt, createFlowDecoderState(), { defaultSamplingRate: 32 }).records[0]).toMatchObject({
      samplingRate: 512,
      samplingSource: 'options',
    });
  });
});

describe('sequence numbers (IPFIX counts data records, RFC 7011 3.1)', () => {
  const msg = (seq: number, n: number) =>
    ipfixMessage({ seq }, [
      ipfixDataSet(
        256,
        V4,
        Array.from({ length: n }, () => ['10.0.0.1', '10.0.0.2', 1, 1]),
      ),
    ]);

  it('counts gaps in records, tolerates wrap, hands back late datagrams and detects resets', () => {
    const st = createFlowDecoderState();
    decode(ipfixMessage({ seq: 0 }, [ipfixTemplateSet([{ id: 256, fields: V4 }])]), st);
    expect(decode(msg(0, 3), st).stats.lostRecords).toBe(0);
    const gap = decode(msg(5, 2), st); // expected 3: 2 lost
    expect(gap.stats).toMatchObject({ sequenceGaps: 1, lostRecords: 2 });
    const late = decode(msg(3, 2), st); // the missing two arrive late
    expect(late.stats).toMatchObject({ lostRecords: 0, lateRecords: 2, sequenceResets: 0 });
    expect(decode(msg(7, 1), st).stats.lostRecords).toBe(0);
    const reset = decode(msg(123_456_789, 1), st);
    expect(reset.stats).toMatchObject({ lostRecords: 0, sequenceResets: 1 });
    // Wrap: 2^32 - 1 + 2 records -> next expected is 1.
    decode(msg(4294967295, 2), st);
    expect(decode(msg(1, 1), st).stats).toMatchObject({ lostRecords: 0, sequenceResets: 0 });
    expect(decode(msg(4, 1), st).stats.lostRecords).toBe(2);
    const seq = summarizeFlowState(st).sessions[0]!.domains[0]!.sequence;
    expect(seq).toMatchObject({ lost: 2, late: 2, gaps: 2, resets: 2 });
  });
});

describe('hostile input and limits', () => {
  it('rejects a datagram whose set chain does not tile the message, before touching state', () => {
    const st = createFlowDecoderState();
    const good = ipfixMessage({}, [ipfixTemplateSet([{ id: 256, fields: V4 }])]);
    const cut = good.slice(0, good.length - 2);
    const r = decode(cut, st);
    expect(r.errors.map((e) => e.code)).toEqual(['truncated']);
    expect(st.sessions.size).toBe(0);
    const lying = ipfixMessage({ length: 200 }, [ipfixTemplateSet([{ id: 256, fields: V4 }])]);
    expect(decode(lying, st).errors.map((e) => e.code)).toEqual(['truncated']);
    const shortSet = ipfixMessage({}, [Uint8Array.of(1, 0, 0, 2)]);
    expect(decode(shortSet, st).errors.map((e) => e.code)).toEqual(['bad-length']);
  });

  it('skips reserved set ids, rejects bad versions and template ids below 256', () => {
    const st = createFlowDecoderState();
    const r = decode(ipfixMessage({}, [ipfixSet(7, new Uint8Array(4)), ipfixTemplateSet([{ id: 256, fields: V4 }])]), st);
    expect(r.errors.map((e) => e.code)).toEqual(['bad-set-id']);
    expect(r.stats.templates).toBe(1);
    expect(decode(Uint8Array.of(0, 11, 0, 0), st).errors.map((e) => e.code)).toEqual(['bad-version']);
    const low = decode(ipfixMessage({}, [ipfixTemplateSet([{ id: 255, fields: V4 }])]), st);
    expect(low.errors.map((e) => e.code)).toEqual(['bad-template']);
  });

  it('caps templates per session and fields per template', () => {
    const limits: Partial<FlowDecoderLimits> = { maxTemplatesPerSession: 3, maxFieldsPerTemplate: 4 };
    const st = createFlowDecoderState(limits);
    const ts = [256, 257, 258, 259].map((id) => ({ id, fields: V4 }));
    const r = decode(ipfixMessage({}, [ipfixTemplateSet(ts)]), st);
    expect(r.errors.map((e) => e.code)).toEqual(['limit-exceeded']);
    expect(r.stats.templates).toBe(3);
    // Redefining a known id is still allowed at the cap.
    expect(decode(ipfixMessage({}, [ipfixTemplateSet([{ id: 256, fields: V4 }])]), st).errors).toEqual([]);
    const st2 = createFlowDecoderState(limits);
    const wide = decode(ipfixMessage({}, [ipfixTemplateSet([{ id: 256, fields: V6 }])]), st2);
    expect(wide.errors.map((e) => e.code)).toEqual(['limit-exceeded']);
    expect(summarizeFlowState(st2).sessions[0]!.domains[0]!.templates).toEqual([]);
  });

  it('does not loop on a field count larger than the set', () => {
    const st = createFlowDecoderState();
    const body = Uint8Array.of(1, 0, 0xff, 0xff); // template 256 claiming 65535 fields
    const r = decode(ipfixMessage({}, [ipfixSet(2, body)]), st);
    expect(r.errors.map((e) => e.code)).toEqual(['limit-exceeded']);
  });

  it('forgets the least recently seen session beyond maxSessions', () => {
    const st = createFlowDecoderState({ maxSessions: 2 });
    const t = ipfixMessage({}, [ipfixTemplateSet([{ id: 256, fields: V4 }])]);
    decode(t, st, {}, { port: 1, ms: 1 });
    decode(t, st, {}, { port: 2, ms: 2 });
    decode(t, st, {}, { port: 3, ms: 3 });
    expect([...st.sessions.keys()]).toEqual(['192.0.2.1:2', '192.0.2.1:3']);
    expect(st.totals.sessionsEvicted).toBe(1);
  });
});

describe('interface names from interface options (interfaceName 82)', () => {
  it('learns names per ifIndex from options scoped by ingressInterface, padded or varlen, cleaned', () => {
    const st = createFlowDecoderState();
    const varOpt = [f('ingressInterface', 4), f('interfaceName', VARLEN)];
    const fixedOpt = [f('ingressInterface', 4), f('interfaceName', 16)];
    const padded = new Uint8Array(16);
    padded.set(new TextEncoder().encode('xe-0/0/1\u0007'));
    const r = decode(
      ipfixMessage({}, [
        ipfixOptionsTemplateSet([
          { id: 401, fields: varOpt, scopeCount: 1 },
          { id: 402, fields: fixedOpt, scopeCount: 1 },
        ]),
        ipfixDataSet(401, varOpt, [
          [7, 'et-1/0/0 to CERN'],
          [8, ''],
        ]),
        ipfixDataSet(402, fixedOpt, [[9, padded]]),
      ]),
      st,
    );
    expect(r.errors).toEqual([]);
    expect(r.stats.optionsRecords).toBe(3);
    const names = summarizeFlowState(st).exporters[0]!.sampling.interfaceNames;
    expect(names).toEqual({ 7: 'et-1/0/0 to CERN', 9: 'xe-0/0/1' });
  });
});

describe('template lifetime (RFC 7011 8.4)', () => {
  const fields = [f('octetDeltaCount', 4), f('packetDeltaCount', 4)];
  const tmpl = ipfixTemplateSet([{ id: 300, fields }]);
  const data = ipfixDataSet(300, fields, [[100, 1]]);

  it('expires a template not refreshed in time, holds its data, and decodes it when the refresh comes', () => {
    const st = createFlowDecoderState({ templateLifetimeMs: 60_000 });
    expect(decode(ipfixMessage({}, [tmpl, data]), st, {}, { ms: 0 }).records).toHaveLength(1);
    expect(decode(ipfixMessage({ seq: 1 }, [data]), st, {}, { ms: 60_000 }).records).toHaveLength(1);
    const late = decode(ipfixMessage({ seq: 2 }, [data]), st, {}, { ms: 60_001 });
    expect(late.records).toHaveLength(0);
    expect(late.stats).toMatchObject({ templatesExpired: 1, templateMisses: 1, buffered: 1 });
    const refreshed = decode(ipfixMessage({ seq: 3 }, [tmpl]), st, {}, { ms: 61_000 });
    expect(refreshed.stats.replayed).toBe(1);
    expect(refreshed.records.map((r) => r.bytes)).toEqual([100]);
  });

  it('never expires with the default lifetime of 0', () => {
    const st = createFlowDecoderState();
    decode(ipfixMessage({}, [tmpl]), st, {}, { ms: 0 });
    expect(decode(ipfixMessage({}, [data]), st, {}, { ms: 365 * 86_400_000 }).records).toHaveLength(1);
  });
});
