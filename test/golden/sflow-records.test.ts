/**
 * Golden test: the pmacct sfprobe capture (every packet of corpus traffic/scitags_mixed.pcap
 * sampled at rate 1, 128-octet raw headers) against the truth file decoded independently by
 * tshark and a separate struct parser. Every sample is compared field by field, then the
 * per-pair and unmarked totals the `ingest` contract must report.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { readCaptureFile } from '../../collectors/pcap.js';
import { decodeSflow, createSflowState } from '../../decoders/sflow/index.js';
import type { FlowRecord } from '../../decoders/record.js';
import { activityOf, communityOf } from '../../decoders/scitags/flowlabel.js';
import { fixturePath } from '../support/expected.js';

const CAPTURE = fixturePath('sflow_pmacct_sfprobe_rate1.pcap');
const TRUTH = fixturePath('sflow_pmacct_sfprobe_rate1.truth.json');

interface TruthSample {
  frame: number;
  agent: string;
  sub_agent: number;
  dgram_seq: number;
  sample_seq: number;
  source_id_class: number;
  source_id_index: number;
  sampling_rate: number;
  sample_pool: number;
  drops: number;
  input_if: number;
  output_if: number;
  ext_switch: { src_vlan: number; src_pri: number; dst_vlan: number; dst_pri: number };
  header_protocol: number;
  frame_length: number;
  stripped: number;
  header_length: number;
  ip_version: 4 | 6;
  src: string;
  dst: string;
  protocol: number;
  sport?: number;
  dport?: number;
  icmp_type?: number;
  traffic_class?: number;
  flow_label?: number;
  ip_total_length: number;
  header_vlans: number[];
}

interface Totals {
  records: number;
  packets_scaled: number;
  bytes_scaled: number;
}

interface Truth {
  datagrams: number;
  flow_samples: number;
  counter_samples: number;
  datagram_list: { frame: number; agent: string; sub_agent: number; seq: number; samples: number }[];
  samples: TruthSample[];
  expected_by_pair_all_nonzero_labels: Record<string, Totals>;
  expected_other: { ipv4: Totals; ipv6_label_zero: Totals; ipv6_label_nonzero: Totals };
}

describe('sFlow golden: pmacct sfprobe rate 1', () => {
  const truth = JSON.parse(readFileSync(TRUTH, 'utf8')) as Truth;
  const { datagrams } = readCaptureFile(CAPTURE);
  const state = createSflowState();
  const decoded = datagrams.map((d) => ({ d, res: decodeSflow(d.payload, d.srcAddr, d.srcPort, state, { withFields: true }) }));
  const records: FlowRecord[] = decoded.flatMap(({ res }) => res.records);

  it('decodes every datagram cleanly, in sequence', () => {
    expect(datagrams).toHaveLength(truth.datagrams);
    expect(
      decoded.map(({ d, res }) => ({
        frame: d.frame,
        agent: res.agent,
        sub_agent: res.subAgent,
        seq: res.sequence,
        samples: res.stats.samples,
      })),
    ).toEqual(truth.datagram_list.map((t) => ({ frame: t.frame, agent: t.agent, sub_agent: t.sub_agent, seq: t.seq, samples: t.samples })));
    for (const { res } of decoded) {
      expect(res.errors).toEqual([]);
      expect(res.stats.lostDatagrams).toBe(0);
      expect(res.stats.lostSamples).toBe(0);
      expect(res.stats.skipped).toEqual({ samples: 0, flowRecords: 0, counterRecords: 0, headerProtocols: 0 });
      expect(res.counters).toEqual([]);
    }
    expect(records).toHaveLength(truth.flow_samples);
    const agent = [...state.agents.values()];
    expect(agent).toHaveLength(1);
    expect(agent[0]!).toMatchObject({ agent: '127.0.0.1', subAgent: 7, seen: 235, lost: 0, resets: 0, duplicates: 0 });
  });

  it('every sample equals the truth sample', () => {
    const actual = records.map((r, i) => ({
      i,
      exporter: r.exporter,
      protocol: r.protocol,
      domain: r.domain,
      ipVersion: r.ipVersion,
      flowLabel: r.flowLabel,
      trafficClass: r.trafficClass,
      srcAddr: r.srcAddr,
      dstAddr: r.dstAddr,
      ipProtocol: r.ipProtocol,
      srcPort: r.srcPort,
      dstPort: r.dstPort,
      vlan: r.vlan,
      inIf: r.inIf,
      outIf: r.outIf,
      packets: r.packets,
      bytes: r.bytes,
      samplingRate: r.samplingRate,
      samplingSource: r.samplingSource,
      fields: r.fields,
    }));
    const udpSource = `${datagrams[0]!.srcAddr}:${datagrams[0]!.srcPort}`;
    const expected = truth.samples.map((t, i) => ({
      i,
      exporter: udpSource,
      protocol: 'sflow',
      domain: t.sub_agent,
      ipVersion: t.ip_version,
      flowLabel: t.flow_label,
      trafficClass: t.traffic_class,
      srcAddr: t.src,
      dstAddr: t.dst,
      ipProtocol: t.protocol,
      srcPort: t.sport,
      dstPort: t.dport,
      vlan: t.ext_switch.src_vlan || t.header_vlans[0] || undefined,
      // 0x3FFFFFFF is "no interface" (sFlow v5 section 5): the record has none; the dump keeps the value.
      inIf: t.input_if === 0x3fffffff ? undefined : t.input_if,
      outIf: t.output_if === 0x3fffffff ? undefined : t.output_if,
      packets: 1,
      bytes: t.frame_length,
      samplingRate: t.sampling_rate,
      samplingSource: 'header',
      fields: expect.objectContaining({
        agent: t.agent,
        sub_agent_id: t.sub_agent,
        sequence_number: t.sample_seq,
        source_id_type: t.source_id_class,
        source_id_index: t.source_id_index,
        sampling_rate: t.sampling_rate,
        sample_pool: t.sample_pool,
        drops: t.drops,
        input_format: 0,
        output_format: 0,
        header_protocol: t.header_protocol,
        frame_length: t.frame_length,
        stripped: t.stripped,
        header_length: t.header_length,
        header_vlans: t.header_vlans,
        ip_length: t.ip_total_length,
        icmp_type: t.icmp_type,
        src_vlan: t.ext_switch.src_vlan,
        src_priority: t.ext_switch.src_pri,
        dst_vlan: t.ext_switch.dst_vlan,
        dst_priority: t.ext_switch.dst_pri,
      }),
    }));
    expect(actual).toEqual(expected);
  });

  it('totals per SciTags pair and unmarked equal the expected ingest totals', () => {
    const add = (m: Map<string, Totals>, key: string, r: FlowRecord): void => {
      const t = m.get(key) ?? { records: 0, packets_scaled: 0, bytes_scaled: 0 };
      t.records += 1;
      t.packets_scaled += r.packets * r.samplingRate;
      t.bytes_scaled += r.bytes * r.samplingRate;
      m.set(key, t);
    };
    const pairs = new Map<string, Totals>();
    const other = new Map<string, Totals>();
    for (const r of records) {
      if (r.ipVersion === 4) add(other, 'ipv4', r);
      else if (r.flowLabel === undefined || r.flowLabel === 0) add(other, 'ipv6_label_zero', r);
      else {
        add(other, 'ipv6_label_nonzero', r);
        add(pairs, `${communityOf(r.flowLabel)}/${activityOf(r.flowLabel)}`, r);
      }
    }
    const pick = (t: Totals): Totals => ({ records: t.records, packets_scaled: t.packets_scaled, bytes_scaled: t.bytes_scaled });
    expect(Object.fromEntries(pairs)).toEqual(
      Object.fromEntries(Object.entries(truth.expected_by_pair_all_nonzero_labels).map(([k, v]) => [k, pick(v)])),
    );
    expect(Object.fromEntries(other)).toEqual({
      ipv4: pick(truth.expected_other.ipv4),
      ipv6_label_zero: pick(truth.expected_other.ipv6_label_zero),
      ipv6_label_nonzero: pick(truth.expected_other.ipv6_label_nonzero),
    });
  });
});
