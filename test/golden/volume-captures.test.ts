/**
 * Volume fields of real third-party exporter captures (../shared/external-captures, see its
 * catalog.json; used from there, never copied here): Cisco ASA NSEL (totals per flowId,
 * initiator + responder octets), YAF and ipfixprobe RFC 5103 biflows, Barracuda (deltas next
 * to totals). Skipped with a notice when ../shared is absent.
 *
 * Expected numbers were derived independently of this decoder, from tshark 4.0's per-record
 * dissection (`tshark -r F -V -d udp.port==N,cflow`, one record per "Flow n" block) summed by
 * a short script with the rules of the README (octetDeltaCount first; totals and NSEL counters
 * counted per flow: first record whole, repeats by what grew; reverse counters as their own
 * record). The per-capture notes say which tshark fields they are.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readCaptureFile } from '../../collectors/pcap.js';
import { createFlowDecoderState, decodeFlowDatagram } from '../../decoders/ipfix/index.js';
import type { FlowRecord } from '../../decoders/record.js';
import { DatagramDecoder, DEFAULT_DECODER_OPTIONS } from '../../src/pipeline/decoder.js';
import { snapshotOf } from '../../src/pipeline/snapshot.js';
import { repoRoot } from '../support/root.js';

const DIR = join(repoRoot(), '..', 'shared', 'external-captures');
const present = existsSync(DIR);
if (!present) console.warn(`volume-captures: ${DIR} absent, third-party capture checks skipped`);

function run(name: string) {
  const st = createFlowDecoderState();
  const records: FlowRecord[] = [];
  let errors = 0;
  let dataRecords = 0;
  let noVolume = 0;
  for (const d of readCaptureFile(join(DIR, `${name}.pcap`)).datagrams) {
    const r = decodeFlowDatagram(d.payload, { exporterAddr: d.srcAddr, exporterPort: d.srcPort, receivedMs: d.timeMs }, st, {});
    errors += r.errors.length;
    dataRecords += r.stats.dataRecords;
    noVolume += r.stats.noVolume;
    records.push(...r.records);
  }
  const bytes = records.reduce((a, r) => a + r.bytes, 0);
  const packets = records.reduce((a, r) => a + r.packets, 0);
  return { records, errors, dataRecords, noVolume, emitted: records.length, bytes, packets };
}

const brief = (r: FlowRecord) => [r.srcAddr, r.dstAddr, r.srcPort, r.dstPort, r.inIf, r.outIf, r.bytes, r.packets];

describe.skipIf(!present)('volume of real exporters (third-party captures)', () => {
  it('Cisco ASA NSEL, BYTES_TOTAL (85) with flowId: 14 records, 888 octets', () => {
    // tshark: 14 records in data set 265, 14 distinct "Flow Id", "Permanent Octets" sum 888.
    const r = run('logstash_nf9_cisco_asa1');
    expect([r.errors, r.dataRecords, r.noVolume, r.emitted, r.bytes, r.packets]).toEqual([0, 14, 0, 14, 888, 0]);
  });

  it('Cisco ASA NSEL, initiator + responder octets per flowId; flow-created records are no-volume', () => {
    // tshark: 19 records; 4 in set 256 (Firewall Event "Flow created", no counter); 15 in set
    // 263 with "Initiator Octets" + "Responder Octets" summing to 130362, of which each flow's
    // teardown repeats its flow-update: per Flow Id, 65603 octets.
    const r = run('logstash_nf9_cisco_asa2');
    expect([r.errors, r.dataRecords, r.noVolume, r.emitted, r.bytes, r.packets]).toEqual([0, 19, 4, 15, 65603, 0]);
    // The first record: flow 742819709, deleted with 81 + 763 octets.
    expect(brief(r.records[0]!)).toEqual(['192.168.0.2', '192.168.0.17', 61775, 80, 3, 4, 844, 0]);
    // The same 4 no-volume records per exporter, as the API and metrics show them.
    const dec = new DatagramDecoder(DEFAULT_DECODER_OPTIONS);
    for (const d of readCaptureFile(join(DIR, 'logstash_nf9_cisco_asa2.pcap')).datagrams)
      dec.decode(d.payload, d.srcAddr, d.srcPort, d.timeMs);
    expect(snapshotOf(dec, 0).exporters.map((e) => [e.records, e.errorsByReason])).toEqual([[15, { 'no-volume': 4 }]]);
  });

  it('YAF biflows with running totals (85/86 and their PEN 29305 reverse): 2 records, 4 directions', () => {
    // tshark: set 45841 "Permanent Octets" 132 / reverse 200, packets 2 / 2; set 45873 172 / 92,
    // 4 / 2 (set 53248 is YAF's statistics options record, not traffic).
    const r = run('logstash_ipfix_yaf_applabel');
    expect([r.errors, r.dataRecords, r.noVolume, r.emitted, r.bytes, r.packets]).toEqual([0, 2, 0, 4, 596, 10]);
    expect(r.records.map((x) => [x.srcAddr, x.dstAddr, x.srcPort, x.dstPort, x.bytes, x.packets])).toEqual([
      ['172.16.32.201', '172.16.32.100', 46086, 53, 132, 2],
      ['172.16.32.100', '172.16.32.201', 53, 46086, 200, 2],
      ['172.16.32.100', '172.16.32.215', 63499, 9997, 172, 4],
      ['172.16.32.215', '172.16.32.100', 9997, 63499, 92, 2],
    ]);
  });

  it('YAF biflows in the telegraf example: 29 records, 27 with reverse traffic', () => {
    // tshark: 29 records with "Permanent Octets" (forward 111492, reverse 465945) and
    // "Permanent Packets" (457, 613); 27 have non-zero reverse counters; 29 distinct flows
    // (addresses, ports, protocol, start), so every total counts whole.
    const r = run('telegraf_ipfix_example');
    expect([r.errors, r.dataRecords, r.noVolume, r.emitted, r.bytes, r.packets]).toEqual([0, 29, 0, 56, 577437, 1070]);
  });

  it('ipfixprobe biflows (delta counters and their reverse): 4 records, 6 directions that carried traffic', () => {
    // tshark: 4 records; "Octets" 62 / 229 / 21673 / 2304, reverse 128 / 0 / 1546 / 0;
    // "Packets" 1 / 1 / 28 / 4, reverse 1 / 0 / 25 / 0.
    const r = run('akvorado_ipfix_ipfixprobe_biflow');
    expect([r.errors, r.dataRecords, r.noVolume, r.emitted, r.bytes, r.packets]).toEqual([0, 4, 0, 6, 25942, 60]);
    expect(brief(r.records[1]!)).toEqual(['10.10.1.1', '10.10.1.4', 53, 56166, undefined, 10, 128, 1]);
  });

  it('Barracuda: octetDeltaCount wins over the octetTotalCount next to it', () => {
    // tshark: 8 records, "Octets" (IE 1) sum 388 and "Packets" 4; "Permanent Octets" (85) sum 638.
    const r = run('logstash_ipfix_barracuda');
    expect([r.errors, r.dataRecords, r.noVolume, r.emitted, r.bytes, r.packets]).toEqual([0, 8, 0, 8, 388, 4]);
  });
});
