/**
 * Which fields give a record's volume (plan.ts chooseVolume), running totals turned into
 * deltas per flow (totals.ts), records without volume (`no-volume`) and RFC 5103 biflows.
 * Every datagram is built with the test builders; expected values are the ones written in.
 */
import { describe, expect, it } from 'vitest';
import { createFlowDecoderState, decodeFlowDatagram, recountStateBytes, STATE_COST } from '../../decoders/ipfix/index.js';
import type { FlowDecodeOptions, FlowDecoderState } from '../../decoders/ipfix/index.js';
import { FLOW_TOTALS_IDLE_MS } from '../../decoders/ipfix/totals.js';
import type { FlowRecord } from '../../decoders/record.js';
import { encodeFlowLabel } from '../../decoders/scitags/flowlabel.js';
import { DatagramDecoder, DEFAULT_DECODER_OPTIONS } from '../../src/pipeline/decoder.js';
import { snapshotOf } from '../../src/pipeline/snapshot.js';
import {
  f,
  type Field,
  ipfixDataSet,
  ipfixMessage,
  ipfixTemplateSet,
  type RecordValues,
  v9DataFlowset,
  v9Message,
  v9TemplateFlowset,
  VARLEN,
} from '../builders/ipfix.js';

const ADDR = '192.0.2.1';
/** RFC 5103 section 6.1: the reverse information element PEN. */
const REV = 29305;

function decode(bytes: Uint8Array, state: FlowDecoderState, opts: FlowDecodeOptions = {}, ms = 1_000_000) {
  return decodeFlowDatagram(bytes, { exporterAddr: ADDR, exporterPort: 4739, receivedMs: ms }, state, opts);
}

/** One IPFIX message: the template and its data records. */
function ipfix(fields: Field[], records: RecordValues[], seq = 0): Uint8Array {
  return ipfixMessage({ seq }, [ipfixTemplateSet([{ id: 256, fields }]), ipfixDataSet(256, fields, records)]);
}

const counts = (recs: readonly FlowRecord[]) => recs.map((r) => [r.bytes, r.packets]);

const KEY4 = [f('sourceIPv4Address', 4), f('destinationIPv4Address', 4), f('sourceTransportPort', 2), f('destinationTransportPort', 2)];
const key4 = { sourceIPv4Address: '10.0.0.1', destinationIPv4Address: '10.0.0.2', sourceTransportPort: 1000, destinationTransportPort: 80 };

describe('volume: order of preference per template', () => {
  it('octetDeltaCount / packetDeltaCount win over every other counter the template carries', () => {
    const fields = [
      ...KEY4,
      f('octetTotalCount', 8),
      f('packetTotalCount', 8),
      f('postOctetDeltaCount', 8),
      f('postPacketDeltaCount', 8),
      f('octetDeltaCount', 4),
      f('packetDeltaCount', 4),
    ];
    const r = decode(
      ipfix(fields, [
        {
          ...key4,
          octetTotalCount: 90000,
          packetTotalCount: 900,
          postOctetDeltaCount: 777,
          postPacketDeltaCount: 7,
          octetDeltaCount: 1500,
          packetDeltaCount: 3,
        },
      ]),
      createFlowDecoderState(),
    );
    expect(counts(r.records)).toEqual([[1500, 3]]);
  });

  it('postOctetDeltaCount / postPacketDeltaCount (23/24) when 1/2 are absent, before layer2 and totals', () => {
    const fields = [
      ...KEY4,
      f('layer2OctetDeltaCount', 8),
      f('octetTotalCount', 8),
      f('postOctetDeltaCount', 8),
      f('postPacketDeltaCount', 4),
    ];
    const r = decode(
      ipfix(fields, [{ ...key4, layer2OctetDeltaCount: 1600, octetTotalCount: 5000, postOctetDeltaCount: 1400, postPacketDeltaCount: 2 }]),
      createFlowDecoderState(),
    );
    expect(counts(r.records)).toEqual([[1400, 2]]);
  });

  it('layer2OctetDeltaCount (352) for bytes, packets chosen apart (packetDeltaCount here)', () => {
    const fields = [...KEY4, f('layer2OctetDeltaCount', 8), f('packetDeltaCount', 8)];
    const r = decode(ipfix(fields, [{ ...key4, layer2OctetDeltaCount: 1518, packetDeltaCount: 1 }]), createFlowDecoderState());
    expect(counts(r.records)).toEqual([[1518, 1]]);
  });

  it('NSEL (NetFlow v9, Cisco ASA): initiator + responder octets (231/232) and packets (298/299), per flowId', () => {
    const fields = [
      f('flowId', 4),
      f('sourceIPv4Address', 4),
      f('destinationIPv4Address', 4),
      f('initiatorOctets', 4),
      f('responderOctets', 4),
      f('initiatorPackets', 4),
      f('responderPackets', 4),
    ];
    const asa = (flowId: number, io: number, ro: number, ip: number, rp: number) => ({
      flowId,
      sourceIPv4Address: '192.168.0.2',
      destinationIPv4Address: '192.168.0.17',
      initiatorOctets: io,
      responderOctets: ro,
      initiatorPackets: ip,
      responderPackets: rp,
    });
    // As the ASA does (logstash_nf9_cisco_asa2): a flow-update, then the teardown repeating its
    // counters, then a longer flow whose teardown reports more.
    const msg = v9Message({ records: 5 }, [
      v9TemplateFlowset([{ id: 263, fields }]),
      v9DataFlowset(263, fields, [
        asa(710, 81, 6207, 1, 5),
        asa(710, 81, 6207, 1, 5),
        asa(773, 69, 14179, 4, 11),
        asa(773, 90, 20000, 6, 15),
      ]),
    ]);
    const r = decode(msg, createFlowDecoderState());
    expect(r.errors).toEqual([]);
    expect(counts(r.records)).toEqual([
      [6288, 6],
      [0, 0],
      [14248, 15],
      [5842, 6],
    ]);
  });

  it('NSEL initiatorOctets alone is the bytes; no packet field leaves packets at 0', () => {
    const fields = [...KEY4, f('initiatorOctets', 8)];
    const r = decode(ipfix(fields, [{ ...key4, initiatorOctets: 4242 }]), createFlowDecoderState());
    expect(counts(r.records)).toEqual([[4242, 0]]);
  });

  it('a counter longer than 8 octets or variable-length is not a counter', () => {
    const fields = [...KEY4, f('octetDeltaCount', VARLEN), f('packetDeltaCount', 4)];
    const r = decode(ipfix(fields, [{ ...key4, octetDeltaCount: Uint8Array.of(1, 2), packetDeltaCount: 5 }]), createFlowDecoderState());
    expect(counts(r.records)).toEqual([[0, 5]]);
  });
});

describe('volume: running totals (85/86) become deltas per flow', () => {
  const fields = [f('flowId', 8), ...KEY4, f('octetTotalCount', 8), f('packetTotalCount', 8)];
  const rec = (flowId: number, bytes: number, packets: number) => ({ flowId, ...key4, octetTotalCount: bytes, packetTotalCount: packets });

  it('a flow seen once counts its total; repeats count what grew; a smaller total starts again', () => {
    const st = createFlowDecoderState();
    const r1 = decode(ipfix(fields, [rec(1, 1000, 10), rec(2, 500, 5)]), st);
    expect(counts(r1.records)).toEqual([
      [1000, 10],
      [500, 5],
    ]);
    // Same flows again: flow 1 grew by 300 octets / 3 packets, flow 2 did not grow.
    const r2 = decode(ipfix(fields, [rec(1, 1300, 13), rec(2, 500, 5)], 2), st);
    expect(counts(r2.records)).toEqual([
      [300, 3],
      [0, 0],
    ]);
    // Flow 1 restarted (total below the last one): counted in full.
    const r3 = decode(ipfix(fields, [rec(1, 200, 2)], 4), st);
    expect(counts(r3.records)).toEqual([[200, 2]]);
    // Each remembered flow is charged to the state budget, and the accounting adds up.
    expect(st.bytes).toBe(recountStateBytes(st));
  });

  it('without flowId, a flow is its key fields and start time: another start is another flow', () => {
    const nokey = [...KEY4, f('flowStartMilliseconds', 8), f('octetTotalCount', 4)];
    const st = createFlowDecoderState();
    const at = (start: number, total: number) => ({ ...key4, flowStartMilliseconds: start, octetTotalCount: total });
    const r1 = decode(ipfix(nokey, [at(1_000, 700), at(2_000, 100)]), st);
    const r2 = decode(ipfix(nokey, [at(1_000, 1_000), at(2_000, 150), { ...at(1_000, 50), destinationTransportPort: 443 }], 2), st);
    expect(counts(r1.records)).toEqual([
      [700, 0],
      [100, 0],
    ]);
    expect(counts(r2.records)).toEqual([
      [300, 0],
      [50, 0],
      [50, 0],
    ]);
  });

  it('totals of NetFlow v9 (Cisco ASA BYTES_TOTAL with flowId) are per flow too', () => {
    const v9 = [f('flowId', 4), f('sourceIPv4Address', 4), f('octetTotalCount', 4)];
    const st = createFlowDecoderState();
    const msg = (seq: number, total: number) =>
      v9Message({ records: 2, seq }, [
        v9TemplateFlowset([{ id: 265, fields: v9 }]),
        v9DataFlowset(265, v9, [{ flowId: 8525, sourceIPv4Address: '10.1.1.1', octetTotalCount: total }]),
      ]);
    expect(counts(decode(msg(0, 160), st).records)).toEqual([[160, 0]]);
    expect(counts(decode(msg(1, 224), st).records)).toEqual([[64, 0]]);
  });

  it('the table is bounded by the state budget: the least recently updated flow is forgotten', () => {
    const st = createFlowDecoderState();
    decode(ipfixMessage({}, [ipfixTemplateSet([{ id: 256, fields }])]), st);
    // Room for exactly two remembered flows (one exporter address: its fair share is the budget).
    st.limits.stateBudgetBytes = st.bytes + 2 * STATE_COST.flowTotal;
    const data = (seq: number, ...recs: ReturnType<typeof rec>[]) => ipfixMessage({ seq }, [ipfixDataSet(256, fields, recs)]);
    expect(counts(decode(data(0, rec(1, 100, 1), rec(2, 200, 2)), st).records)).toEqual([
      [100, 1],
      [200, 2],
    ]);
    // Flow 3 takes flow 1's place; flow 1 then comes back as a new flow and pushes out flow 2.
    expect(counts(decode(data(2, rec(3, 300, 3), rec(1, 150, 2), rec(3, 330, 4), rec(2, 260, 3)), st).records)).toEqual([
      [300, 3],
      [150, 2],
      [30, 1],
      [260, 3],
    ]);
    expect(st.bytes).toBeLessThanOrEqual(st.limits.stateBudgetBytes);
    expect(st.bytes).toBe(recountStateBytes(st));
  });

  it('a flow idle longer than FLOW_TOTALS_IDLE_MS is forgotten', () => {
    const st = createFlowDecoderState();
    decode(ipfix(fields, [rec(9, 1000, 10)]), st, {}, 1_000_000);
    const later = decode(ipfix(fields, [rec(9, 1200, 12)], 1), st, {}, 1_000_000 + FLOW_TOTALS_IDLE_MS);
    const idle = decode(ipfix(fields, [rec(9, 1500, 15)], 2), st, {}, 1_000_000 + 2 * FLOW_TOTALS_IDLE_MS + 1);
    expect(counts(later.records)).toEqual([[200, 2]]);
    expect(counts(idle.records)).toEqual([[1500, 15]]);
    expect(st.bytes).toBe(recountStateBytes(st));
  });
});

describe('volume: records without any volume field', () => {
  const fields = [...KEY4, f('protocolIdentifier', 1)];

  it('are counted as no-volume, not emitted, and still count for the sequence number', () => {
    const st = createFlowDecoderState();
    const r = decode(
      ipfix(fields, [
        { ...key4, protocolIdentifier: 6 },
        { ...key4, protocolIdentifier: 17 },
      ]),
      st,
    );
    expect(r.records).toEqual([]);
    expect(r.errors).toEqual([]);
    expect([r.stats.dataRecords, r.stats.records, r.stats.noVolume]).toEqual([2, 0, 2]);
    // RFC 7011 3.1: the next sequence number counts the 2 records; no gap reported.
    const next = decode(ipfix(fields, [{ ...key4, protocolIdentifier: 6 }], 2), st);
    expect([next.stats.sequenceGaps, next.stats.noVolume, st.totals.noVolumeRecords]).toEqual([0, 1, 3]);
  });

  it('variable-length templates too (after the structural check)', () => {
    const vfields = [...KEY4, f('interfaceName', VARLEN)];
    const r = decode(
      ipfix(vfields, [
        { ...key4, interfaceName: 'et-0/0/1' },
        { ...key4, interfaceName: 'x' },
      ]),
      createFlowDecoderState(),
    );
    expect([r.records.length, r.stats.dataRecords, r.stats.noVolume]).toEqual([0, 2, 2]);
  });

  it('per exporter: errorsByReason no-volume in the snapshot (API and metrics), not a bad datagram', () => {
    const dec = new DatagramDecoder(DEFAULT_DECODER_OPTIONS);
    dec.decode(
      ipfix(fields, [
        { ...key4, protocolIdentifier: 6 },
        { ...key4, protocolIdentifier: 6 },
        { ...key4, protocolIdentifier: 6 },
      ]),
      ADDR,
      4739,
      0,
    );
    const [ex] = snapshotOf(dec, 0).exporters;
    expect([ex?.address, ex?.records, ex?.errorsByReason]).toEqual([ADDR, 0, { 'no-volume': 3 }]);
    expect(dec.exporters.all()[0]?.badDatagrams).toBe(0);
  });
});

describe('volume: RFC 5103 biflows', () => {
  const label = encodeFlowLabel(2, 1);
  const revLabel = encodeFlowLabel(3, 4);
  const fields = [
    f('sourceIPv6Address', 16),
    f('destinationIPv6Address', 16),
    f('sourceTransportPort', 2),
    f('destinationTransportPort', 2),
    f('ingressInterface', 4),
    f('egressInterface', 4),
    f('ipClassOfService', 1),
    f('flowLabelIPv6', 4),
    f('octetDeltaCount', 8),
    f('packetDeltaCount', 8),
    f(31, 4, REV), // reverseFlowLabelIPv6
    f(1, 8, REV), // reverseOctetDeltaCount
    f(2, 8, REV), // reversePacketDeltaCount
  ];
  const bi = (bytes: number, packets: number, rbytes: number, rpackets: number) => ({
    sourceIPv6Address: '2001:db8::1',
    destinationIPv6Address: '2001:db8::2',
    sourceTransportPort: 40000,
    destinationTransportPort: 2811,
    ingressInterface: 3,
    egressInterface: 7,
    ipClassOfService: 0x20,
    flowLabelIPv6: label,
    octetDeltaCount: bytes,
    packetDeltaCount: packets,
    [`${REV}.31`]: revLabel,
    [`${REV}.1`]: rbytes,
    [`${REV}.2`]: rpackets,
  });
  const view = (r: FlowRecord) => [
    r.srcAddr,
    r.dstAddr,
    r.srcPort,
    r.dstPort,
    r.inIf,
    r.outIf,
    r.flowLabel,
    r.trafficClass,
    r.bytes,
    r.packets,
  ];
  const forward = ['2001:db8::1', '2001:db8::2', 40000, 2811, 3, 7, label, 0x20, 9000, 6];
  const reverse = ['2001:db8::2', '2001:db8::1', 2811, 40000, 7, 3, revLabel, undefined, 120000, 80];

  it('the reverse counters are a record of their own: turned around, with the reverse label', () => {
    const r = decode(ipfix(fields, [bi(9000, 6, 120000, 80), bi(500, 1, 0, 0)]), createFlowDecoderState());
    expect(r.records.map(view)).toEqual([forward, reverse, ['2001:db8::1', '2001:db8::2', 40000, 2811, 3, 7, label, 0x20, 500, 1]]);
    // Two data records on the wire (the sequence number's unit), three emitted.
    expect([r.stats.dataRecords, r.stats.records]).toEqual([2, 3]);
  });

  it('a sink gets the same records (the reused record refilled for the reverse one)', () => {
    const got: unknown[] = [];
    const r = decode(ipfix(fields, [bi(9000, 6, 120000, 80)]), createFlowDecoderState(), {
      onRecord: (rec) => {
        got.push(view(rec));
        rec.inIf = 999; // a sink may change its record: the reverse one is refilled from the wire
      },
    });
    expect(got).toEqual([forward, reverse]);
    expect(r.stats.records).toBe(2);
  });

  it('no reverse label exported: the reverse record has none (the forward one is the other host’s)', () => {
    const nolabel = fields.filter((x) => !(x.pen === REV && x.id === 31));
    const rec = bi(10, 1, 20, 2) as Record<string, unknown>;
    delete rec[`${REV}.31`];
    const r = decode(ipfix(nolabel, [rec as RecordValues]), createFlowDecoderState());
    expect(r.records.map((x) => [x.flowLabel, x.bytes, x.packets])).toEqual([
      [label, 10, 1],
      [undefined, 20, 2],
    ]);
  });

  it('YAF-style reverse totals (29305/85, 29305/86) become deltas per flow like forward ones', () => {
    const yaf = [
      f('sourceIPv4Address', 4),
      f('destinationIPv4Address', 4),
      f('flowStartMilliseconds', 8),
      f('octetTotalCount', 8),
      f(85, 8, REV),
      f('packetTotalCount', 8),
      f(86, 8, REV),
    ];
    const row = (b: number, rb: number, p: number, rp: number) => ({
      sourceIPv4Address: '10.0.0.1',
      destinationIPv4Address: '10.0.0.2',
      flowStartMilliseconds: 1_700_000_000_000,
      octetTotalCount: b,
      [`${REV}.85`]: rb,
      packetTotalCount: p,
      [`${REV}.86`]: rp,
    });
    const st = createFlowDecoderState();
    const a = decode(ipfix(yaf, [row(400, 6000, 5, 7)]), st);
    const b = decode(ipfix(yaf, [row(520, 6000, 7, 7)], 1), st);
    expect(a.records.map((r) => [r.srcAddr, r.bytes, r.packets])).toEqual([
      ['10.0.0.1', 400, 5],
      ['10.0.0.2', 6000, 7],
    ]);
    // The reverse direction did not grow: only the forward delta is emitted.
    expect(b.records.map((r) => [r.srcAddr, r.bytes, r.packets])).toEqual([['10.0.0.1', 120, 2]]);
  });
});
