/**
 * Real exporter captures (test/fixtures) through the decoder: every datagram decodes without
 * errors, record counts and totals match what tshark / ipfixDump report for them (see
 * ../shared/corpus/README.md; the per-record golden comparison is the lead's golden test).
 */
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createFlowDecoderState, decodeFlowDatagram, summarizeFlowState } from '../../decoders/ipfix/index.js';
import { readCaptureFile } from '../../collectors/pcap.js';
import { fixturePath } from '../support/expected.js';

const pmacct = fixturePath('ipfix_pmacct_nfprobe_flowlabel.pcap');
const softflowd = fixturePath('ipfix_softflowd_vlan.pcap');

function run(path: string) {
  const st = createFlowDecoderState();
  const records = [];
  const stats = { datagrams: 0, errors: 0, lostRecords: 0, lateRecords: 0, optionsRecords: 0, templates: 0 };
  for (const d of readCaptureFile(path).datagrams) {
    const r = decodeFlowDatagram(d.payload, { exporterAddr: d.srcAddr, exporterPort: d.srcPort, receivedMs: d.timeMs }, st, {
      withFields: true,
    });
    stats.datagrams++;
    stats.errors += r.errors.length;
    stats.lostRecords += r.stats.lostRecords;
    stats.lateRecords += r.stats.lateRecords;
    stats.optionsRecords += r.stats.optionsRecords;
    stats.templates += r.stats.templates;
    records.push(...r.records);
  }
  return { st, records, stats };
}

function totals(records: ReturnType<typeof run>['records'], pick: (r: (typeof records)[number]) => boolean) {
  const sel = records.filter(pick);
  return { records: sel.length, packets: sel.reduce((a, r) => a + r.packets, 0), bytes: sel.reduce((a, r) => a + r.bytes, 0) };
}

describe.skipIf(!existsSync(pmacct))('pmacct nfprobe IPFIX capture', () => {
  it('decodes 43 data records, IE 31 in 3 octets, with exact totals', () => {
    const { records, stats, st } = run(pmacct);
    expect(stats).toEqual({ datagrams: 9, errors: 0, lostRecords: 0, lateRecords: 0, optionsRecords: 1, templates: 5 });
    expect(records).toHaveLength(43);
    expect(totals(records, (r) => r.ipVersion === 4)).toEqual({ records: 6, packets: 164, bytes: 115431 });
    expect(totals(records, (r) => r.ipVersion === 6 && r.flowLabel === 0)).toEqual({ records: 6, packets: 103, bytes: 44382 });
    expect(totals(records, (r) => r.ipVersion === 6 && (r.flowLabel ?? 0) !== 0)).toEqual({ records: 31, packets: 1181, bytes: 868845 });
    expect(records[0]).toMatchObject({
      exporter: '127.0.0.1:45873',
      domain: 11,
      templateId: 2048,
      srcAddr: '2001:db8:20::12',
      dstAddr: '2001:db8:10::2',
      srcPort: 51001,
      dstPort: 10123,
      ipProtocol: 17,
      packets: 10,
      bytes: 8960,
      flowLabel: 892762,
      vlan: 100,
      inIf: 3,
      outIf: 0,
      direction: 0,
      samplingRate: 1,
    });
    expect(records[0]!.fields!['flowLabelIPv6']).toBe(892762);
    expect(
      summarizeFlowState(st)
        .sessions[0]!.domains[0]!.templates.map((t) => t.id)
        .sort(),
    ).toEqual([1024, 1025, 2048, 2049, 4098]);
  });
});

describe.skipIf(!existsSync(softflowd))('softflowd IPFIX capture', () => {
  it('decodes 43 records without labels, rate 1 from 305/306 options, times from systemInitTime', () => {
    const { records, stats, st } = run(softflowd);
    expect(stats.errors).toBe(0);
    expect(records).toHaveLength(43);
    expect(totals(records, (r) => r.ipVersion === 4)).toEqual({ records: 6, packets: 164, bytes: 115431 });
    expect(totals(records, (r) => r.ipVersion === 6)).toEqual({ records: 37, packets: 1284, bytes: 913227 });
    expect(records.every((r) => r.flowLabel === undefined && r.samplingRate === 1 && r.samplingSource === 'options')).toBe(true);
    expect(records.every((r) => r.startMs !== undefined && r.startMs > 1.7e12 && r.endMs! >= r.startMs)).toBe(true);
    expect(records[0]).toMatchObject({ srcAddr: '2001:db8:20::12', packets: 10, bytes: 8960, vlan: 100, direction: 1 });
    expect(summarizeFlowState(st).exporters[0]!.sampling.domainRate).toBe(1);
    // softflowd's sequence numbers count something other than data records (tshark and
    // ipfixDump warn too): one forward gap of 5, then a step back read as a late datagram.
    expect(stats.lostRecords).toBe(5);
  });
});
