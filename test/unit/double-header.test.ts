/**
 * Templates that describe two packet headers (issue 12): Cisco IOS XR exports SRv6 traffic
 * with the encapsulating router's outer IPv6 header first (its own entropy label in IE 31)
 * and the customer packet's header after it (IE 27/28/7/11/4 and IE 31 again). The host's
 * marking is the innermost one: by default the last occurrence of each header element wins,
 * an IPv4 customer packet inside IPv6 has no label, and exporters listed in
 * `exporters.outerFlowLabel` are read the outer way (first occurrences).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readCaptureFile } from '../../collectors/pcap.js';
import type { FlowRecord } from '../../decoders/record.js';
import { createFlowDecoderState, decodeFlowDatagram } from '../../decoders/ipfix/index.js';
import { DatagramDecoder, DEFAULT_DECODER_OPTIONS } from '../../src/pipeline/decoder.js';
import { f, ipfixDataSet, ipfixMessage, ipfixTemplateSet, VARLEN } from '../builders/ipfix.js';

const ctx = { exporterAddr: '192.0.2.1', exporterPort: 4739, receivedMs: 0 };

// The shape of IOS XR template 341: outer IPv6 header, then the customer's IPv6 header.
const SIX_IN_SIX = [
  f('octetDeltaCount', 8),
  f('packetDeltaCount', 8),
  f('sourceIPv6Address', 16),
  f('destinationIPv6Address', 16),
  f('flowLabelIPv6', 4),
  f('sourceTransportPort', 2),
  f('sourceIPv6Address', 16),
  f('destinationIPv6Address', 16),
  f('sourceTransportPort', 2),
  f('protocolIdentifier', 1),
  f('flowLabelIPv6', 4),
];
// Outer label 1021670 (pmacct_502_t00's), inner label 0x10004 (SciTags (2, 1)).
const SIX_ROW = [146400, 600, '2001:db8:91::1', '2001:db8:90:e003::', 1021670, 0, '2001:db8::13', '2001:db8::12', 2222, 17, 0x10004];
// Template 340: outer IPv6 header, then the customer's IPv4 header.
const FOUR_IN_SIX = [
  f('octetDeltaCount', 8),
  f('packetDeltaCount', 8),
  f('sourceIPv6Address', 16),
  f('destinationIPv6Address', 16),
  f('flowLabelIPv6', 4),
  f('sourceIPv4Address', 4),
  f('destinationIPv4Address', 4),
  f('protocolIdentifier', 1),
];
const FOUR_ROW = [134400, 560, '2001:db8:91::1', '2001:db8:90:e003::', 42597, '192.0.2.13', '192.0.2.12', 6];

function decode(fields: ReturnType<typeof f>[], row: (number | string)[], outerFlowLabel = false): FlowRecord {
  const st = createFlowDecoderState();
  const msg = ipfixMessage({}, [ipfixTemplateSet([{ id: 341, fields }]), ipfixDataSet(341, fields, [row])]);
  const r = decodeFlowDatagram(msg, ctx, st, { outerFlowLabel });
  expect(r.errors).toEqual([]);
  expect(r.records).toHaveLength(1);
  return r.records[0]!;
}
const pick = (r: FlowRecord) => [r.ipVersion, r.flowLabel, r.srcAddr, r.dstAddr, r.srcPort, r.bytes, r.packets];

describe('IE 31 twice: the innermost header wins', () => {
  it('IPv6 in IPv6: the customer packet label, addresses and port by default; the outer ones when configured', () => {
    expect(pick(decode(SIX_IN_SIX, SIX_ROW))).toEqual([6, 0x10004, '2001:db8::13', '2001:db8::12', 2222, 146400, 600]);
    expect(pick(decode(SIX_IN_SIX, SIX_ROW, true))).toEqual([6, 1021670, '2001:db8:91::1', '2001:db8:90:e003::', 0, 146400, 600]);
  });

  it('IPv4 in IPv6: the customer packet is IPv4 and has no label; configured outer, the outer label is kept', () => {
    expect(pick(decode(FOUR_IN_SIX, FOUR_ROW))).toEqual([4, undefined, '192.0.2.13', '192.0.2.12', undefined, 134400, 560]);
    expect(pick(decode(FOUR_IN_SIX, FOUR_ROW, true))).toEqual([4, 42597, '192.0.2.13', '192.0.2.12', undefined, 134400, 560]);
  });

  it('the same rule in a variable-length template', () => {
    const fields = [...SIX_IN_SIX, f('interfaceName', VARLEN)];
    const row = [...SIX_ROW, 'Hu0/0/0/1'];
    expect(pick(decode(fields, row))).toEqual([6, 0x10004, '2001:db8::13', '2001:db8::12', 2222, 146400, 600]);
    expect(pick(decode(fields, row, true))).toEqual([6, 1021670, '2001:db8:91::1', '2001:db8:90:e003::', 0, 146400, 600]);
  });

  it('a template with one header is read the same either way', () => {
    const one = [f('octetDeltaCount', 4), f('sourceIPv6Address', 16), f('flowLabelIPv6', 4)];
    expect(pick(decode(one, [100, '2001:db8::1', 0x10004]))).toEqual([6, 0x10004, '2001:db8::1', undefined, undefined, 100, 0]);
    expect(pick(decode(one, [100, '2001:db8::1', 0x10004], true))).toEqual([6, 0x10004, '2001:db8::1', undefined, undefined, 100, 0]);
  });

  it('exporters.outerFlowLabel applies per exporter address in the decode pipeline', () => {
    const dec = new DatagramDecoder({ ...DEFAULT_DECODER_OPTIONS, withAddresses: true, outerFlowLabelExporters: ['192.0.2.0/30'] });
    const msg = ipfixMessage({}, [ipfixTemplateSet([{ id: 341, fields: SIX_IN_SIX }]), ipfixDataSet(341, SIX_IN_SIX, [SIX_ROW])]);
    const labels: (number | undefined)[] = [];
    const target = { add: (rec: FlowRecord) => labels.push(rec.flowLabel) };
    dec.decodeInto(msg, '192.0.2.1', 4739, 0, 'ipfix', target); // listed: outer
    dec.decodeInto(msg, '192.0.2.9', 4739, 0, 'ipfix', target); // not listed: inner
    dec.decodeInto(msg, '192.0.2.2', 4739, 0, 'ipfix', target); // listed again
    expect(labels).toEqual([1021670, 0x10004, 1021670]);
  });
});

describe('pmacct_502_t00.pcap (Cisco IOS XR 7.10.1 SRv6, ../shared/external-captures)', () => {
  const path = join(import.meta.dirname, '..', '..', '..', 'shared', 'external-captures', 'pmacct_502_t00.pcap');
  function run(outerFlowLabel: boolean): FlowRecord[] {
    const st = createFlowDecoderState();
    const out: FlowRecord[] = [];
    for (const d of readCaptureFile(path).datagrams) {
      const r = decodeFlowDatagram(d.payload, { exporterAddr: d.srcAddr, exporterPort: d.srcPort, receivedMs: d.timeMs }, st, {
        outerFlowLabel,
      });
      out.push(...r.records.filter((x) => x.templateId === 340 || x.templateId === 341));
    }
    return out;
  }

  it('the SRv6 record counts the customer label 0, not the router entropy 1021670', () => {
    if (!existsSync(path)) {
      console.warn(`skipped: ${path} absent (third-party captures live in ../shared/external-captures)`);
      return;
    }
    // tshark -V -d udp.port==9991,cflow: data set 341 holds one flow (Octets 146400, Packets
    // 600) whose ipv6FlowLabel is 1021670 (outer header, SrcAddr 2001:db8:91::1) and 0 (inner,
    // SrcAddr 2001:db8::13); data sets 340 hold three IPv4-in-IPv6 flows (Octets 134624,
    // 134400, 134400, outer labels 42597, 793060, 42597, inner SrcAddr 192.0.2.13).
    const rows = (recs: FlowRecord[]) => recs.map((r) => [r.templateId, r.ipVersion, r.flowLabel, r.srcAddr, r.bytes]);
    expect(rows(run(false))).toEqual([
      [340, 4, undefined, '192.0.2.13', 134624],
      [340, 4, undefined, '192.0.2.13', 134400],
      [341, 6, 0, '2001:db8::13', 146400],
      [340, 4, undefined, '192.0.2.13', 134400],
    ]);
    expect(rows(run(true))).toEqual([
      [340, 4, 42597, '192.0.2.13', 134624],
      [340, 4, 793060, '192.0.2.13', 134400],
      [341, 6, 1021670, '2001:db8:91::1', 146400],
      [340, 4, 42597, '192.0.2.13', 134400],
    ]);
  });
});
