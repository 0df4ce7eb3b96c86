import { describe, expect, it } from 'vitest';
import { readCaptureFile } from '../../collectors/pcap.js';
import { DatagramDecoder, DEFAULT_DECODER_OPTIONS } from '../../src/pipeline/decoder.js';
import { fixturePath, loadTruth } from '../support/expected.js';

/**
 * Every IPFIX record of the corpus captures equals the independently decoded truth record
 * (tshark 4.0.17, cross-checked with ipfixDump and nfdump), in order.
 */
interface TruthRecord {
  src: string;
  dst: string;
  ip_version: number;
  sport?: number;
  dport?: number;
  protocol: number;
  packets: number;
  bytes: number;
  flow_label?: number;
  vlan: number;
  in_if: number;
  out_if: number;
  direction: number;
  tos: number;
  frame: number;
  exporter: string;
  domain: number;
  template_id: number;
  sampling_rate: number;
}

for (const name of ['ipfix_pmacct_nfprobe_flowlabel', 'ipfix_softflowd_vlan']) {
  describe(`${name}: every record equals the truth file's record`, () => {
    const truth = loadTruth(fixturePath(`${name}.truth.json`)) as unknown as { records: TruthRecord[]; data_records: number };
    const decoder = new DatagramDecoder({ ...DEFAULT_DECODER_OPTIONS, withAddresses: true });
    const got: (TruthRecord & { frame: number })[] = [];
    for (const d of readCaptureFile(fixturePath(`${name}.pcap`)).datagrams) {
      for (const r of decoder.decode(d.payload, d.srcAddr, d.srcPort, d.timeMs).records) {
        got.push({
          src: r.srcAddr!,
          dst: r.dstAddr!,
          ip_version: r.ipVersion,
          ...(r.srcPort !== undefined ? { sport: r.srcPort, dport: r.dstPort! } : {}),
          protocol: r.ipProtocol!,
          packets: r.packets,
          bytes: r.bytes,
          ...(r.flowLabel !== undefined ? { flow_label: r.flowLabel } : {}),
          vlan: r.vlan ?? 0,
          in_if: r.inIf ?? 0,
          out_if: r.outIf ?? 0,
          direction: r.direction!,
          tos: r.trafficClass ?? 0,
          frame: d.frame,
          exporter: r.exporter,
          domain: r.domain,
          template_id: r.templateId,
          sampling_rate: r.samplingRate,
        });
      }
    }

    it(`decodes ${truth.data_records} records`, () => {
      expect(got.length).toBe(truth.data_records);
    });

    it('matches field by field, in order', () => {
      const want = truth.records.map((t) => ({
        src: t.src,
        dst: t.dst,
        ip_version: t.ip_version,
        ...(t.sport !== undefined ? { sport: t.sport, dport: t.dport } : {}),
        protocol: t.protocol,
        packets: t.packets,
        bytes: t.bytes,
        ...(t.flow_label !== undefined ? { flow_label: t.flow_label } : {}),
        vlan: t.vlan,
        in_if: t.in_if,
        out_if: t.out_if,
        direction: t.direction,
        tos: t.tos,
        frame: t.frame,
        exporter: t.exporter,
        domain: t.domain,
        template_id: t.template_id,
        sampling_rate: t.sampling_rate,
      }));
      expect(got).toEqual(want);
    });
  });
}
