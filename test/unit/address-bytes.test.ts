/**
 * FlowRecord.addrBytes / addrLen / srcAddrAt / dstAddrAt, decoder by decoder, at exact
 * offsets: the datagram itself (no copy), addrLen octets at each offset, filled whether or
 * not the addresses are formatted, and addrLen 0 unless the record has both addresses of one
 * length. Every record is read inside the sink call (the bytes are valid only then) and again
 * in array mode. The golden-wide check is test/golden/address-bytes.test.ts.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { useCompiledFill } from '../../decoders/ipfix/data.js';
import { createFlowDecoderState, decodeFlowDatagram } from '../../decoders/ipfix/index.js';
import { ipv4String, ipv6String } from '../../decoders/packet/addr.js';
import type { FlowRecord } from '../../decoders/record.js';
import { createSflowState, decodeSflow, type SflowOptions } from '../../decoders/sflow/index.js';
import {
  f,
  ipfixDataSet,
  ipfixMessage,
  ipfixTemplateSet,
  ipv4,
  ipv6,
  ipv6UdpFrame,
  v5Datagram,
  v9DataFlowset,
  v9Message,
  v9TemplateFlowset,
  VARLEN,
  type Field,
} from '../builders/ipfix.js';
import { buildFrame, buildIpv6, buildSflowDatagram, type FlowRecordSpec, type Ipv6Spec } from '../builders/sflow.js';

/** What a record says about its addresses, read during the sink call. */
interface Seen {
  bytesIsDatagram: boolean;
  addrLen: number;
  srcAddrAt: number;
  dstAddrAt: number;
  /** The addresses formatted from the bytes, when addrLen is not 0. */
  fromBytes: [string, string] | undefined;
  srcAddr: string | undefined;
  dstAddr: string | undefined;
}

function seen(rec: FlowRecord, datagram: Uint8Array): Seen {
  const fmt = rec.addrLen === 16 ? ipv6String : ipv4String;
  return {
    bytesIsDatagram: rec.addrBytes === datagram,
    addrLen: rec.addrLen,
    srcAddrAt: rec.srcAddrAt,
    dstAddrAt: rec.dstAddrAt,
    fromBytes: rec.addrLen === 0 ? undefined : [fmt(rec.addrBytes!, rec.srcAddrAt), fmt(rec.addrBytes!, rec.dstAddrAt)],
    srcAddr: rec.srcAddr,
    dstAddr: rec.dstAddr,
  };
}

/** A record with both addresses, of `len` octets at `srcAt` / `dstAt` of the datagram, formatted the same. */
function both(len: 4 | 16, srcAt: number, dstAt: number, src: string, dst: string): Seen {
  return { bytesIsDatagram: true, addrLen: len, srcAddrAt: srcAt, dstAddrAt: dstAt, fromBytes: [src, dst], srcAddr: src, dstAddr: dst };
}

/** A record without address bytes (addrLen 0), whatever its strings. */
function none(src: string | undefined, dst: string | undefined): Seen {
  return { bytesIsDatagram: false, addrLen: 0, srcAddrAt: 0, dstAddrAt: 0, fromBytes: undefined, srcAddr: src, dstAddr: dst };
}

/** Where `part` first occurs in `whole` (the test builds datagrams where it is unique). */
function indexOf(whole: Uint8Array, part: Uint8Array, from = 0): number {
  outer: for (let i = from; i + part.length <= whole.length; i++) {
    for (let j = 0; j < part.length; j++) if (whole[i + j] !== part[j]) continue outer;
    return i;
  }
  throw new Error('not found');
}

const CTX = { exporterAddr: '192.0.2.1', exporterPort: 4739, receivedMs: 1_700_000_000_000 };

/**
 * Decodes an IPFIX / v9 / v5 datagram every way (sink and array mode, compiled fills and
 * fillRecord, with and without formatting) and returns what the records said; checks that
 * every way agrees on the bytes and that the strings are there only when asked.
 */
function flowSeen(datagram: Uint8Array): Seen[] {
  let reference: Seen[] | undefined;
  for (const compiled of [true, false]) {
    useCompiledFill(compiled);
    for (const withAddresses of [true, false]) {
      const viaSink: Seen[] = [];
      decodeFlowDatagram(datagram, CTX, createFlowDecoderState(), { withAddresses, onRecord: (r) => viaSink.push(seen(r, datagram)) });
      const r = decodeFlowDatagram(datagram, CTX, createFlowDecoderState(), { withAddresses });
      expect(r.errors).toEqual([]);
      expect(r.records.map((x) => seen(x, datagram))).toEqual(viaSink);
      if (withAddresses) {
        if (reference === undefined) reference = viaSink;
        else expect(viaSink).toEqual(reference);
      } else {
        expect(viaSink.every((s) => s.srcAddr === undefined && s.dstAddr === undefined)).toBe(true);
        expect(viaSink.map((s) => ({ ...s, srcAddr: undefined, dstAddr: undefined }))).toEqual(
          reference!.map((s) => ({ ...s, srcAddr: undefined, dstAddr: undefined })),
        );
      }
    }
  }
  return reference!;
}

/** Offset of the first record of the data set `set` in `msg` (its 4-octet set header skipped). */
function firstRecord(msg: Uint8Array, set: Uint8Array): number {
  return indexOf(msg, set) + 4;
}

afterEach(() => useCompiledFill(true));

describe('IPFIX / NetFlow v9 data records', () => {
  const v4Fields: Field[] = [f('octetDeltaCount', 4), f('packetDeltaCount', 4), f('sourceIPv4Address', 4), f('destinationIPv4Address', 4)];

  it('IPFIX IPv4: IE 8 / IE 12 in the datagram, every record', () => {
    const set = ipfixDataSet(256, v4Fields, [
      [100, 1, '10.0.0.1', '10.0.0.2'],
      [200, 2, '10.0.0.3', '10.0.0.4'],
    ]);
    const msg = ipfixMessage({ domain: 1 }, [ipfixTemplateSet([{ id: 256, fields: v4Fields }]), set]);
    const at = firstRecord(msg, set);
    expect(flowSeen(msg)).toEqual([both(4, at + 8, at + 12, '10.0.0.1', '10.0.0.2'), both(4, at + 24, at + 28, '10.0.0.3', '10.0.0.4')]);
  });

  it('IPFIX IPv6: IE 27 / IE 28, destination before source in the template', () => {
    const fields = [f('destinationIPv6Address', 16), f('octetDeltaCount', 8), f('sourceIPv6Address', 16), f('flowLabelIPv6', 4)];
    const set = ipfixDataSet(300, fields, [['2001:db8::b', 1500, '2001:db8::a', 0x12345]]);
    const msg = ipfixMessage({}, [ipfixTemplateSet([{ id: 300, fields }]), set]);
    const at = firstRecord(msg, set);
    expect(flowSeen(msg)).toEqual([both(16, at + 24, at, '2001:db8::a', '2001:db8::b')]);
  });

  it('a variable-length template: offsets past the length prefixes, absolute in the datagram', () => {
    const fields = [f(999, VARLEN), f('octetDeltaCount', 4), f('sourceIPv6Address', 16), f('destinationIPv6Address', 16)];
    const set = ipfixDataSet(301, fields, [
      [new Uint8Array(3), 10, '2001:db8::1', '2001:db8::2'],
      [new Uint8Array(300), 20, '2001:db8::3', '2001:db8::4'],
    ]);
    const msg = ipfixMessage({}, [ipfixTemplateSet([{ id: 301, fields }]), set]);
    const at = firstRecord(msg, set);
    const second = at + 1 + 3 + 4 + 32; // first record: 1-octet prefix, 3 octets, count, addresses
    const got = flowSeen(msg);
    expect(got.map((s) => [s.addrLen, s.srcAddrAt, s.dstAddrAt, s.bytesIsDatagram])).toEqual([
      [16, at + 1 + 3 + 4, at + 1 + 3 + 4 + 16, true],
      [16, second + 3 + 300 + 4, second + 3 + 300 + 4 + 16, true], // 3-octet prefix (255, length)
    ]);
    expect(got.map((s) => s.fromBytes)).toEqual([
      ['2001:db8::1', '2001:db8::2'],
      ['2001:db8::3', '2001:db8::4'],
    ]);
  });

  it('one address only, or an IPv4 source with an IPv6 destination: addrLen 0, no bytes', () => {
    const only = [f('octetDeltaCount', 4), f('sourceIPv4Address', 4)];
    const mixed = [f('octetDeltaCount', 4), f('sourceIPv4Address', 4), f('destinationIPv6Address', 16)];
    const msg = ipfixMessage({}, [
      ipfixTemplateSet([
        { id: 256, fields: only },
        { id: 257, fields: mixed },
      ]),
      ipfixDataSet(256, only, [[1, '10.0.0.1']]),
      ipfixDataSet(257, mixed, [[1, '10.0.0.1', '2001:db8::2']]),
    ]);
    expect(flowSeen(msg)).toEqual([none('10.0.0.1', undefined), none('10.0.0.1', '2001:db8::2')]);
  });

  it('an RFC 5103 reverse record has its offsets swapped with its addresses', () => {
    const fields = [
      f('octetDeltaCount', 8),
      f('packetDeltaCount', 4),
      f('sourceIPv6Address', 16),
      f('destinationIPv6Address', 16),
      f(1, 8, 29305), // reverseOctetDeltaCount
      f(2, 4, 29305), // reversePacketDeltaCount
    ];
    const set = ipfixDataSet(400, fields, [[1000, 10, '2001:db8::a', '2001:db8::b', 5000, 50]]);
    const msg = ipfixMessage({}, [ipfixTemplateSet([{ id: 400, fields }]), set]);
    const at = firstRecord(msg, set);
    expect(flowSeen(msg)).toEqual([
      both(16, at + 12, at + 28, '2001:db8::a', '2001:db8::b'),
      both(16, at + 28, at + 12, '2001:db8::b', '2001:db8::a'),
    ]);
  });

  it('NetFlow v9 IPv4', () => {
    const set = v9DataFlowset(260, v4Fields, [[100, 1, '192.0.2.10', '198.51.100.20']]);
    const msg = v9Message({ records: 2 }, [v9TemplateFlowset([{ id: 260, fields: v4Fields }]), set]);
    const at = firstRecord(msg, set);
    expect(flowSeen(msg)).toEqual([both(4, at + 8, at + 12, '192.0.2.10', '198.51.100.20')]);
  });
});

describe('NetFlow v5', () => {
  it('srcaddr / dstaddr of every 48-octet record after the 24-octet header', () => {
    const dg = v5Datagram({}, [
      { src: '10.1.0.1', dst: '10.2.0.1', packets: 1, bytes: 100 },
      { src: '10.1.0.2', dst: '10.2.0.2', packets: 2, bytes: 200 },
    ]);
    expect(flowSeen(dg)).toEqual([both(4, 24, 28, '10.1.0.1', '10.2.0.1'), both(4, 72, 76, '10.1.0.2', '10.2.0.2')]);
  });
});

describe('IPFIX IE 315 frames', () => {
  const frame = ipv6UdpFrame({ flowLabel: 0x12345, payloadLength: 100, src: '2001:db8:1::1', dst: '2001:db8:2::2', padTo: 128 });

  it('the frame header gives the addresses when the template has none (fixed and variable length)', () => {
    const fixed = [f('dataLinkFrameSection', 128)];
    const varlen = [f('selectorId', 4), f('dataLinkFrameSection', VARLEN)];
    const msg = ipfixMessage({}, [
      ipfixTemplateSet([
        { id: 256, fields: fixed },
        { id: 257, fields: varlen },
      ]),
      ipfixDataSet(256, fixed, [[frame]]),
      ipfixDataSet(257, varlen, [[7, frame]]),
    ]);
    const first = indexOf(msg, frame);
    const second = indexOf(msg, frame, first + 1);
    const want = (at: number): Seen => both(16, at + 14 + 8, at + 14 + 24, '2001:db8:1::1', '2001:db8:2::2');
    expect(flowSeen(msg)).toEqual([want(first), want(second)]);
  });

  it("the record's own IE 8 / 12 win over the frame's; one IE 27 alone takes the frame's destination", () => {
    const own = [f('sourceIPv4Address', 4), f('destinationIPv4Address', 4), f('dataLinkFrameSection', 128)];
    const half = [f('sourceIPv6Address', 16), f('dataLinkFrameSection', 128)];
    const ownSet = ipfixDataSet(256, own, [['10.0.0.1', '10.0.0.2', frame]]);
    const halfSet = ipfixDataSet(257, half, [['2001:db8::77', frame]]);
    const msg = ipfixMessage({}, [
      ipfixTemplateSet([
        { id: 256, fields: own },
        { id: 257, fields: half },
      ]),
      ownSet,
      halfSet,
    ]);
    const ownAt = firstRecord(msg, ownSet);
    const halfAt = firstRecord(msg, halfSet);
    expect(flowSeen(msg)).toEqual([
      both(4, ownAt, ownAt + 4, '10.0.0.1', '10.0.0.2'),
      both(16, halfAt, halfAt + 16 + 14 + 24, '2001:db8::77', '2001:db8:2::2'),
    ]);
  });

  it('a frame cut before the destination address: addrLen 0', () => {
    const cut = [f('dataLinkFrameSection', 14 + 30)];
    const msg = ipfixMessage({}, [ipfixTemplateSet([{ id: 256, fields: cut }]), ipfixDataSet(256, cut, [[frame.subarray(0, 44)]])]);
    expect(flowSeen(msg)).toEqual([none('2001:db8:1::1', undefined)]);
  });
});

describe('sFlow flow samples', () => {
  const V6: Ipv6Spec = {
    version: 6,
    trafficClass: 0,
    flowLabel: 0x20818,
    src: '2001:db8:10::3',
    dst: '2001:db8:20::14',
    l4: { proto: 'tcp', srcPort: 1094, dstPort: 50010, payload: 100 },
  };

  /** Decodes one flow sample with `records` (sink and array mode, with and without formatting). */
  function sflowSeen(records: FlowRecordSpec[], opts: SflowOptions = {}): { dg: Uint8Array; seen: Seen[] } {
    const dg = buildSflowDatagram({ agent: '192.0.2.1', samples: [{ kind: 'flow', records }] });
    const run = (o: SflowOptions): Seen[] => {
      const viaSink: Seen[] = [];
      decodeSflow(dg, '192.0.2.1', 6343, createSflowState(), { ...o, onRecord: (r) => viaSink.push(seen(r, dg)) });
      const r = decodeSflow(dg, '192.0.2.1', 6343, createSflowState(), o);
      expect(r.errors).toEqual([]);
      expect(r.records.map((x) => seen(x, dg))).toEqual(viaSink);
      return viaSink;
    };
    const shown = run({ ...opts, withAddresses: true });
    const bare = run({ ...opts, withAddresses: false });
    expect(bare.map((s) => [s.addrLen, s.srcAddrAt, s.dstAddrAt, s.fromBytes])).toEqual(
      shown.map((s) => [s.addrLen, s.srcAddrAt, s.dstAddrAt, s.fromBytes]),
    );
    return { dg, seen: shown };
  }

  it('raw header, Ethernet + IPv6', () => {
    const frame = buildFrame({ vlans: [{ vid: 5 }], ip: V6 });
    const { dg, seen: got } = sflowSeen([{ kind: 'header', frame }]);
    const at = indexOf(dg, frame.subarray(0, 64));
    expect(got).toEqual([both(16, at + 18 + 8, at + 18 + 24, V6.src, V6.dst)]);
  });

  it('raw header, bare IPv4 (header_protocol 11)', () => {
    const frame = buildFrame({ ip: { version: 4, src: '10.0.0.1', dst: '10.0.0.2', l4: { proto: 'udp', srcPort: 1, dstPort: 2 } } });
    const ip = frame.subarray(14);
    const { dg, seen: got } = sflowSeen([{ kind: 'header', protocol: 11, frame: ip }]);
    const at = indexOf(dg, ip);
    expect(got).toEqual([both(4, at + 12, at + 16, '10.0.0.1', '10.0.0.2')]);
  });

  it('sampled_ipv6 and sampled_ipv4 records', () => {
    const six = sflowSeen([{ kind: 'ipv6', length: 1000, protocol: 6, src: '2001:db8::5', dst: '2001:db8::6', srcPort: 1, dstPort: 2 }]);
    const at6 = indexOf(six.dg, ipv6('2001:db8::5'));
    expect(at6 + 16).toBe(indexOf(six.dg, ipv6('2001:db8::6')));
    expect(six.seen).toEqual([both(16, at6, at6 + 16, '2001:db8::5', '2001:db8::6')]);
    const four = sflowSeen([{ kind: 'ipv4', length: 60, protocol: 17, src: '10.9.0.1', dst: '10.9.0.2' }]);
    const at4 = indexOf(four.dg, ipv4('10.9.0.1'));
    expect(four.seen).toEqual([both(4, at4, at4 + 4, '10.9.0.1', '10.9.0.2')]);
  });

  it('a header cut inside the destination address: no bytes (the string of the source stays)', () => {
    const frame = buildFrame({ ip: V6 });
    const { seen: got } = sflowSeen([{ kind: 'header', frame, headerLength: 14 + 30 }]);
    expect(got).toEqual([none(V6.src, undefined)]);
  });

  it('tunnels with innerHeaders: the addresses the strings show (GRE: outer; IPv6 in IPv6: inner)', () => {
    const inner: Ipv6Spec = { ...V6, src: '2001:db8::a', dst: '2001:db8::b' };
    const gre = new Uint8Array([0x00, 0x00, 0x86, 0xdd, ...buildIpv6(inner)]);
    const greFrame = buildFrame({ ip: { version: 4, src: '10.0.0.1', dst: '10.0.0.2', l4: { proto: 47, body: gre } } });
    const g = sflowSeen([{ kind: 'header', frame: greFrame }], { innerHeaders: true });
    const gAt = indexOf(g.dg, greFrame.subarray(0, 64));
    expect(g.seen).toEqual([both(4, gAt + 26, gAt + 30, '10.0.0.1', '10.0.0.2')]);
    const v6in6 = buildFrame({ ip: { ...V6, l4: { proto: 41, body: buildIpv6(inner) } } });
    for (const innerHeaders of [true, false]) {
      const t = sflowSeen([{ kind: 'header', frame: v6in6 }], { innerHeaders });
      const at = indexOf(t.dg, v6in6.subarray(0, 64));
      expect(t.seen).toEqual([both(16, at + 14 + 40 + 8, at + 14 + 40 + 24, '2001:db8::a', '2001:db8::b')]);
      // Read the outer way, the outer header's.
      const o = sflowSeen([{ kind: 'header', frame: v6in6 }], { innerHeaders, outerHeaders: true });
      expect(o.seen.map((s) => [s.srcAddrAt - at, s.dstAddrAt - at, ...s.fromBytes!])).toEqual([[22, 38, V6.src, V6.dst]]);
    }
  });
});
