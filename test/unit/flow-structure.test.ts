/**
 * The structural rules of IPFIX / NetFlow v9 datagrams (issue 12): zero padding after the
 * last set is skipped and counted, a chain that breaks (a set past the message end, garbage)
 * keeps the complete sets before the break and reports the break, and NetFlow v9 fields of
 * length 65535 are variable-length as in IPFIX. Builder-made datagrams with exact values,
 * then the third-party captures that showed each case (../shared/external-captures, skipped
 * with a notice when absent).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readCaptureFile } from '../../collectors/pcap.js';
import type { FlowRecord } from '../../decoders/record.js';
import { DatagramDecoder, DEFAULT_DECODER_OPTIONS } from '../../src/pipeline/decoder.js';
import { snapshotOf } from '../../src/pipeline/snapshot.js';
import { createFlowDecoderState, decodeFlowDatagram, type FlowDecoderState } from '../../decoders/ipfix/index.js';
import {
  concat,
  f,
  encodeRecord,
  ipfixDataSet,
  ipfixSet,
  ipfixMessage,
  ipfixTemplateSet,
  v9DataFlowset,
  v9Message,
  v9TemplateFlowset,
  LongVarlen,
  VARLEN,
} from '../builders/ipfix.js';

const ctx = { exporterAddr: '192.0.2.9', exporterPort: 2055, receivedMs: 1_000 };
const decode = (b: Uint8Array, st: FlowDecoderState) => decodeFlowDatagram(b, ctx, st, { withFields: true });

const T = [f('octetDeltaCount', 4), f('packetDeltaCount', 4), f('flowLabelIPv6', 4)];
const tpl = (v9: boolean) => (v9 ? v9TemplateFlowset([{ id: 256, fields: T }]) : ipfixTemplateSet([{ id: 256, fields: T }]));
const data = (v9: boolean, recs: number[][]) => (v9 ? v9DataFlowset(256, T, recs) : ipfixDataSet(256, T, recs));

/** Third-party captures: used from ../shared, never copied into the repository. */
const EXTERNAL = join(import.meta.dirname, '..', '..', '..', 'shared', 'external-captures');
function external(name: string): string | undefined {
  const p = join(EXTERNAL, name);
  if (existsSync(p)) return p;
  console.warn(`skipped: ${p} absent (third-party captures live in ../shared/external-captures)`);
  return undefined;
}

/** Every datagram of a capture through one state: records, padding and error messages. */
function replay(path: string) {
  const st = createFlowDecoderState();
  const out = { records: [] as { bytes: number; packets: number }[], padding: [] as number[], errors: [] as string[] };
  for (const d of readCaptureFile(path).datagrams) {
    const r = decodeFlowDatagram(d.payload, { exporterAddr: d.srcAddr, exporterPort: d.srcPort, receivedMs: d.timeMs }, st, {});
    out.records.push(...r.records.map((x) => ({ bytes: x.bytes, packets: x.packets })));
    out.padding.push(r.stats.paddingOctets);
    out.errors.push(...r.errors.map((e) => `${d.frame}: ${e.message}`));
  }
  return { ...out, st };
}

describe('zero padding after the last set', () => {
  for (const v9 of [true, false]) {
    const name = v9 ? 'NetFlow v9' : 'IPFIX';
    it(`${name}: templates and data before 64 zero octets are kept, the padding counted`, () => {
      const st = createFlowDecoderState();
      const body = [tpl(v9), data(v9, [[1500, 3, 0x10004]]), new Uint8Array(64)];
      const msg = v9 ? v9Message({ records: 2 }, body) : ipfixMessage({}, body);
      const r = decode(msg, st);
      expect(r.errors).toEqual([]);
      expect(r.stats.paddingOctets).toBe(64);
      expect(r.stats.sets).toBe(2);
      expect(r.records.map((x) => [x.bytes, x.packets, x.flowLabel])).toEqual([[1500, 3, 0x10004]]);
      expect(st.totals.paddedDatagrams).toBe(1);
      // The template was learnt: the next datagram's data decodes.
      const next = decode(
        v9 ? v9Message({ records: 1, seq: 1 }, [data(v9, [[40, 1, 0]])]) : ipfixMessage({ seq: 1 }, [data(v9, [[40, 1, 0]])]),
        st,
      );
      expect(next.errors).toEqual([]);
      expect(next.records.map((x) => x.bytes)).toEqual([40]);
    });

    it(`${name}: a non-zero tail is an error that ends the datagram, the sets before it are kept`, () => {
      const st = createFlowDecoderState();
      const garbage = Uint8Array.of(0, 0, 0, 0, 0, 7); // a set header of length 0, then a non-zero octet
      const body = [tpl(v9), data(v9, [[1500, 3, 0x10004]]), garbage];
      const msg = v9 ? v9Message({ records: 2 }, body) : ipfixMessage({}, body);
      const r = decode(msg, st);
      expect(r.errors.map((e) => e.code)).toEqual(['bad-length']);
      expect(r.stopped).toBe(true);
      expect(r.stats.paddingOctets).toBe(0);
      expect(r.records.map((x) => x.bytes)).toEqual([1500]);
    });
  }

  it('IPFIX: zero octets after the message length are padding; non-zero ones are still reported', () => {
    const st = createFlowDecoderState();
    const msg = ipfixMessage({}, [tpl(false), data(false, [[9, 1, 0]])]);
    const padded = decode(concat([msg, new Uint8Array(12)]), st);
    expect(padded.errors).toEqual([]);
    expect(padded.stats.paddingOctets).toBe(12);
    const junk = decode(concat([msg, Uint8Array.of(0, 1)]), createFlowDecoderState());
    expect(junk.errors.map((e) => e.message)).toEqual(['bad-length: 2 octets after the IPFIX message (at offset ' + msg.length + ')']);
    expect(junk.records.map((x) => x.bytes)).toEqual([9]);
  });
});

describe('a set running past the end', () => {
  it('IPFIX: the complete sets before it are decoded, the truncation is the error that ends the datagram', () => {
    const st = createFlowDecoderState();
    const full = ipfixMessage({}, [tpl(false), data(false, [[100, 1, 0]]), data(false, [[200, 2, 0]])]);
    // Cut inside the last set: the header's message length is now past the octets received.
    const cut = full.subarray(0, full.length - 3);
    const r = decode(cut, st);
    expect(r.records.map((x) => x.bytes)).toEqual([100]);
    expect(r.errors.map((e) => e.code)).toEqual(['truncated']);
    expect(r.errors[0]!.message).toBe(`truncated: set length 16 past the ${cut.length} octets received (at offset ${16 + 20 + 16 + 2})`);
    expect(r.stopped).toBe(true);
    // The record count is unknown: the sequence check starts over instead of counting a gap.
    expect(r.stats.sequenceGaps).toBe(0);
  });

  it('IPFIX: a set length past the message length (telegraf issue 14370 shape) keeps the sets before it', () => {
    const st = createFlowDecoderState();
    const sets = [tpl(false), data(false, [[100, 1, 0]]), data(false, [[200, 2, 0]])];
    const total = 16 + sets.reduce((a, s) => a + s.length, 0);
    const r = decode(ipfixMessage({ length: total - 2 }, sets), st);
    expect(r.records.map((x) => x.bytes)).toEqual([100]);
    expect(r.errors.map((e) => e.message)).toEqual([
      `truncated: set length 16 past message end ${total - 2} (at offset ${total - 16 + 2})`,
    ]);
    expect(r.stats.paddingOctets).toBe(0);
  });

  it('NetFlow v9: a flowset past the datagram end keeps the flowsets before it', () => {
    const st = createFlowDecoderState();
    const full = v9Message({ records: 3 }, [tpl(true), data(true, [[100, 1, 0]]), data(true, [[200, 2, 0]])]);
    const r = decode(full.subarray(0, full.length - 1), st);
    expect(r.records.map((x) => x.bytes)).toEqual([100]);
    expect(r.errors.map((e) => e.code)).toEqual(['truncated']);
    expect(r.stopped).toBe(true);
  });

  it('a break in the very first set rejects the datagram whole, before any state changes', () => {
    const st = createFlowDecoderState();
    const full = ipfixMessage({}, [tpl(false)]);
    const r = decode(full.subarray(0, full.length - 1), st);
    expect(r.errors.map((e) => e.code)).toEqual(['truncated']);
    expect(st.sessions.size).toBe(0);
    const v9 = v9Message({ records: 1 }, [tpl(true)]);
    const r9 = decode(v9.subarray(0, v9.length - 1), st);
    expect(r9.errors.map((e) => e.code)).toEqual(['truncated']);
    expect(st.sessions.size).toBe(0);
  });
});

describe('NetFlow v9 variable-length fields (length 65535, read as RFC 7011 7)', () => {
  it('short and long length forms, with the fields after them in place', () => {
    const st = createFlowDecoderState();
    // Field 236 (VRF name) as H3C NetStream sends it, between fixed fields.
    const V = [f('octetDeltaCount', 4), f(236, VARLEN), f('packetDeltaCount', 4), f('flowLabelIPv6', 4)];
    const msg = v9Message({ records: 3 }, [
      v9TemplateFlowset([{ id: 300, fields: V }]),
      // Built by hand: the second record's 1-octet value in the 3-octet length form (ff 00 01).
      ipfixSet(300, concat([encodeRecord(V, [702, 'vrf-a', 9, 0x10004]), encodeRecord(V, [64, new LongVarlen(Uint8Array.of(0)), 1, 0])])),
    ]);
    const r = decode(msg, st);
    expect(r.errors).toEqual([]);
    // Unnamed elements are shown as hex under ie<id>: 'vrf-a' is 76 72 66 2d 61.
    expect(r.records.map((x) => [x.bytes, x.packets, x.flowLabel, x.fields?.ie236])).toEqual([
      [702, 9, 0x10004, '7672662d61'],
      [64, 1, 0, '00'],
    ]);
  });

  it('a varlen length past the flowset end rejects that flowset alone', () => {
    const st = createFlowDecoderState();
    const V = [f('octetDeltaCount', 4), f(236, VARLEN)];
    const body = Uint8Array.of(0, 0, 0, 9, 200, 1, 2); // length 200, 2 octets present
    const msg = v9Message({ records: 2 }, [
      v9TemplateFlowset([{ id: 300, fields: V }]),
      concat([Uint8Array.of(1, 44, 0, 4 + body.length), body]),
    ]);
    const r = decode(msg, st);
    expect(r.records).toEqual([]);
    expect(r.errors.map((e) => e.code)).toEqual(['record-malformed']);
  });
});

describe('third-party captures', () => {
  it('Cisco ACI v9 (logstash_nf9_cisco_aci.pcap): 64 zero octets after the templates, then 3 records', () => {
    const p = external('logstash_nf9_cisco_aci.pcap');
    if (p === undefined) return;
    const r = replay(p);
    // tshark -r logstash_nf9_cisco_aci.pcap -V -d udp.port==2055,cflow: frame 1 is a 256-octet
    // payload (UDP length 264) holding 3 template flowsets of 64 + 64 + 44 octets after the
    // 20-octet header, so 256 - 192 = 64 zero octets; frame 2 holds 3 data flowsets of one
    // record each, Octets 99, Packets 2.
    expect(r.errors).toEqual([]);
    expect(r.padding).toEqual([64, 0]);
    expect(r.records).toEqual([
      { bytes: 99, packets: 2 },
      { bytes: 99, packets: 2 },
      { bytes: 99, packets: 2 },
    ]);
  });

  it('PAN-OS 8.1 v9 (logstash_nf9_paloalto_81_zerofilled.pcap): data then 1,220 zero octets', () => {
    const p = external('logstash_nf9_paloalto_81_zerofilled.pcap');
    if (p === undefined) return;
    const r = replay(p);
    // tshark: frame 2 is a 1,400-octet payload (UDP length 1408): header 20, one data
    // flowset of length 160 (Octets 363, Packets 3), then 1400 - 180 = 1,220 zero octets.
    expect(r.errors).toEqual([]);
    expect(r.padding).toEqual([0, 1220]);
    expect(r.records).toEqual([{ bytes: 363, packets: 3 }]);
  });

  it('telegraf issue 14370 IPFIX: the set past the message length is dropped and counted', () => {
    const p = external('telegraf_issue_14370.pcap');
    if (p === undefined) return;
    const r = replay(p);
    // tshark -d udp.port==4739,cflow: Length 290; sets of 132 (templates 256, 257) + 60 (one
    // record of template 256: Octets 256, Packets 1) + 84, and 16 + 132 + 60 + 84 = 292 > 290.
    expect(r.records).toEqual([{ bytes: 256, packets: 1 }]);
    expect(r.errors).toEqual(['1: truncated: set length 84 past message end 290 (at offset 210)']);
    expect(r.padding).toEqual([0]);
  });

  it('akvorado EoMPLS / EVPN IE 315 (akvorado_ipfix_eompls_cw.pcap): past the control word to the customer frame', () => {
    const p = external('akvorado_ipfix_eompls_cw.pcap');
    if (p === undefined) return;
    const r = replay(p);
    // Each record is one packet of the IP total length in its frame. tshark (-d
    // udp.port==2055,cflow) shows the IPv4 Total Length of records 1-3 and 5-10 (record 3
    // behind labels 300012/17 and a control word); it misreads record 4's customer frame,
    // for which akvorado's TestDecodeEVPN expects Bytes 1492 (198.51.100.1:443 -> :55427).
    expect(r.errors).toEqual([]);
    expect(r.records.map((x) => x.bytes)).toEqual([1440, 1500, 1500, 1492, 965, 1440, 1500, 1500, 1500, 1500]);
    expect(r.records.every((x) => x.packets === 1)).toBe(true);
  });

  it('H3C NetStream v9 (logstash_nf9_h3c_netstream_varstring.pcap): field 236 of length 65535', () => {
    const p = external('logstash_nf9_h3c_netstream_varstring.pcap');
    if (p === undefined) return;
    const r = replay(p);
    // tshark shows Packets 9, Octets 702 (and stops at field 43, which it reads as an IPv4
    // address); logstash-codec-netflow's spec expects in_pkts 9 for this record. The
    // record's last octets are ff 00 01 00: field 236 in the 3-octet length form, 1 octet.
    expect(r.errors).toEqual([]);
    expect(r.records).toEqual([{ bytes: 702, packets: 9 }]);
  });
});

describe('padding is counted per exporter, apart from the errors', () => {
  it('a v9 datagram with 64 zero octets after its last flowset: 1 padded datagram, 64 octets, no error, in the exporters view', () => {
    const fields = [f('octetDeltaCount', 4), f('packetDeltaCount', 4)];
    const msg = v9Message({ records: 2 }, [v9TemplateFlowset([{ id: 256, fields }]), v9DataFlowset(256, fields, [[1500, 1]])]);
    const padded = new Uint8Array(msg.length + 64);
    padded.set(msg);
    const decoder = new DatagramDecoder(DEFAULT_DECODER_OPTIONS);
    const bytes: number[] = [];
    const target = { add: (rec: FlowRecord) => bytes.push(rec.bytes) };
    decoder.decodeInto(padded, '192.0.2.7', 2055, 0, 'netflow', target);
    decoder.decodeInto(msg, '192.0.2.7', 2055, 0, 'netflow', target);
    expect(bytes).toEqual([1500, 1500]);
    const [ex] = decoder.exporters.all();
    expect([ex!.paddedDatagrams, ex!.paddingOctets, ex!.badDatagrams, Object.fromEntries(ex!.errorsByCode)]).toEqual([1, 64, 0, {}]);
    const view = snapshotOf(decoder, 0).exporters[0]!;
    expect(view.padding).toEqual({ datagrams: 1, octets: 64 });
  });
});
