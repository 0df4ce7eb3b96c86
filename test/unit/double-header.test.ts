/**
 * Templates that describe two packet headers (issue 12): Cisco IOS XR exports SRv6 traffic
 * with the encapsulating router's outer IPv6 header first (its own entropy label in IE 31)
 * and the customer packet's header after it (IE 27/28/7/11/4 and IE 31 again). The host's
 * marking is the innermost one: by default the last occurrence of each header element wins,
 * an IPv4 customer packet inside IPv6 has no label, and exporters listed in
 * `exporters.outerFlowLabel` are read the outer way (first occurrences).
 */
import { classify } from '../../src/enrich/series.js';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readCaptureFile } from '../../collectors/pcap.js';
import type { FlowRecord } from '../../decoders/record.js';
import { createFlowDecoderState, decodeFlowDatagram } from '../../decoders/ipfix/index.js';
import { DatagramDecoder, DEFAULT_DECODER_OPTIONS } from '../../src/pipeline/decoder.js';
import { createSflowState, decodeSflow } from '../../decoders/sflow/index.js';
import { f, ipfixDataSet, ipfixMessage, ipfixTemplateSet, VARLEN } from '../builders/ipfix.js';
import { buildFrame, buildIpv4, buildIpv6, buildSflowDatagram } from '../builders/sflow.js';

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

  it('IPv6 fields, IE 31, then IPv4 fields: read as a dual-stack template (the label kept), and an IPv4 record makes no pair', () => {
    // The same layout as a dual-stack template (Cisco ASR9k v9 template 313), whose IPv6
    // records carry the host's label: the plan cannot tell the two apart, the record's IP
    // version does. IPv4 records never classify as a pair, so the SRv6 entropy counts nothing.
    const rec = decode(FOUR_IN_SIX, FOUR_ROW);
    expect(pick(rec)).toEqual([4, 42597, '192.0.2.13', '192.0.2.12', undefined, 134400, 560]);
    expect(classify(rec)).toBe('ipv4');
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

describe('raw headers (IE 315 frames, sFlow sampled headers): IP-in-IP under IPv6 alike', () => {
  // Outer IPv6 (router entropy label 1021670) with a routing header, then the customer packet.
  const customer6 = buildIpv6({
    version: 6,
    flowLabel: 0x10004,
    src: '2001:db8::13',
    dst: '2001:db8::12',
    l4: { proto: 'udp', srcPort: 2222, dstPort: 1111, payload: 100 },
  });
  const customer4 = buildIpv4({ version: 4, src: '192.0.2.13', dst: '192.0.2.12', l4: { proto: 'udp', srcPort: 2222, dstPort: 1111 } });
  const frame = (body: Uint8Array, proto: 4 | 41) =>
    buildFrame({
      ip: {
        version: 6,
        flowLabel: 1021670,
        src: '2001:db8:91::1',
        dst: '2001:db8:90:e003::',
        ext: [{ type: 'routing', len: 2 }],
        l4: { proto, body },
      },
    });

  function ie315(fr: Uint8Array, outerFlowLabel: boolean): FlowRecord {
    const T = [f('dataLinkFrameSection', VARLEN)];
    const msg = ipfixMessage({}, [ipfixTemplateSet([{ id: 400, fields: T }]), ipfixDataSet(400, T, [[fr]])]);
    const r = decodeFlowDatagram(msg, ctx, createFlowDecoderState(), { outerFlowLabel });
    expect(r.errors).toEqual([]);
    return r.records[0]!;
  }
  function sflow(fr: Uint8Array, outerHeaders: boolean): FlowRecord {
    const dg = buildSflowDatagram({
      agent: '192.0.2.1',
      samples: [{ kind: 'flow', samplingRate: 100, records: [{ kind: 'header', frame: fr, headerLength: fr.length }] }],
    });
    const r = decodeSflow(dg, '192.0.2.1', 6343, createSflowState(), { outerHeaders });
    expect(r.errors).toEqual([]);
    return r.records[0]!;
  }
  // IE 315 counts the IP length of the frame: the outer header's, 40 + 24 (routing) + inner.
  const rows = (r: FlowRecord) => [r.ipVersion, r.flowLabel, r.srcAddr, r.srcPort];

  it('IE 315: the customer packet by default, the outer header when configured; bytes are the outer IP length', () => {
    expect([...rows(ie315(frame(customer6, 41), false)), ie315(frame(customer6, 41), false).bytes]).toEqual([
      6,
      0x10004,
      '2001:db8::13',
      2222,
      64 + customer6.length,
    ]);
    expect(rows(ie315(frame(customer6, 41), true))).toEqual([6, 1021670, '2001:db8:91::1', undefined]);
    expect(rows(ie315(frame(customer4, 4), false))).toEqual([4, undefined, '192.0.2.13', 2222]);
    expect(rows(ie315(frame(customer4, 4), true))).toEqual([6, 1021670, '2001:db8:91::1', undefined]);
  });

  it('sFlow: the same, bytes being the frame length', () => {
    expect([...rows(sflow(frame(customer6, 41), false)), sflow(frame(customer6, 41), false).bytes]).toEqual([
      6,
      0x10004,
      '2001:db8::13',
      2222,
      frame(customer6, 41).length + 4,
    ]);
    expect(rows(sflow(frame(customer6, 41), true))).toEqual([6, 1021670, '2001:db8:91::1', undefined]);
    expect(rows(sflow(frame(customer4, 4), false))).toEqual([4, undefined, '192.0.2.13', 2222]);
    expect(rows(sflow(frame(customer4, 4), true))).toEqual([6, 1021670, '2001:db8:91::1', undefined]);
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
    // The IPv4-in-IPv6 records keep the outer label in their field but are IPv4: no pair.
    expect(rows(run(false))).toEqual([
      [340, 4, 42597, '192.0.2.13', 134624],
      [340, 4, 793060, '192.0.2.13', 134400],
      [341, 6, 0, '2001:db8::13', 146400],
      [340, 4, 42597, '192.0.2.13', 134400],
    ]);
    expect(rows(run(true))).toEqual([
      [340, 4, 42597, '192.0.2.13', 134624],
      [340, 4, 793060, '192.0.2.13', 134400],
      [341, 6, 1021670, '2001:db8:91::1', 146400],
      [340, 4, 42597, '192.0.2.13', 134400],
    ]);
  });
});

describe('akvorado_ipfix_srv6.pcap (IE 315 frame of SRv6 IPv4-in-IPv6, ../shared/external-captures)', () => {
  const path = join(import.meta.dirname, '..', '..', '..', 'shared', 'external-captures', 'akvorado_ipfix_srv6.pcap');

  it('counts the customer IPv4 packet (no label) by default, the outer IPv6 header when configured', () => {
    if (!existsSync(path)) {
      console.warn(`skipped: ${path} absent (third-party captures live in ../shared/external-captures)`);
      return;
    }
    const run = (outerFlowLabel: boolean) => {
      const st = createFlowDecoderState();
      const out: (string | number | undefined)[][] = [];
      for (const d of readCaptureFile(path).datagrams) {
        const r = decodeFlowDatagram(d.payload, { exporterAddr: d.srcAddr, exporterPort: d.srcPort, receivedMs: d.timeMs }, st, {
          outerFlowLabel,
        });
        for (const x of r.records) out.push([x.ipVersion, x.flowLabel, x.srcAddr, x.ipProtocol, x.bytes]);
      }
      return out;
    };
    // tshark -V -d udp.port==2055,cflow: the frame holds IPv6 fc30:2200:1b::f ->
    // fc30:2200:23:e009::, Flow Label 0xa47c0 (673728), Payload Length 64, Next Header IPIP
    // (4), then IPv4 8.8.8.8 -> 213.36.140.100 (ICMP, Total Length 64). The record counts the
    // outer IP length, 40 + 64 = 104 (akvorado's outer view also has 104 bytes).
    expect(run(false)).toEqual([[4, undefined, '8.8.8.8', 1, 104]]);
    expect(run(true)).toEqual([[6, 673728, 'fc30:2200:1b::f', 4, 104]]);
  });
});
