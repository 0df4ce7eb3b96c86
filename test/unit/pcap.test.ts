import { describe, expect, it } from 'vitest';
import { parseCapture } from '../../collectors/pcap.js';
import { DecodeError } from '../../decoders/errors.js';

/** A UDP/IPv4 packet (no checksum) carrying `payload`. */
function ipv4Udp(src: number[], sport: number, dport: number, payload: number[]): number[] {
  const udpLen = 8 + payload.length;
  const total = 20 + udpLen;
  return [
    0x45,
    0,
    total >> 8,
    total & 0xff,
    0,
    0,
    0x40,
    0,
    64,
    17,
    0,
    0,
    ...src,
    127,
    0,
    0,
    1,
    sport >> 8,
    sport & 0xff,
    dport >> 8,
    dport & 0xff,
    udpLen >> 8,
    udpLen & 0xff,
    0,
    0,
    ...payload,
  ];
}

function ipv6Udp(sport: number, dport: number, payload: number[]): number[] {
  const udpLen = 8 + payload.length;
  const src = [0x20, 0x01, 0x0d, 0xb8, ...new Array<number>(11).fill(0), 1];
  const dst = [...new Array<number>(15).fill(0), 1];
  return [
    0x60,
    0,
    0,
    0,
    udpLen >> 8,
    udpLen & 0xff,
    17,
    64,
    ...src,
    ...dst,
    sport >> 8,
    sport & 0xff,
    dport >> 8,
    dport & 0xff,
    udpLen >> 8,
    udpLen & 0xff,
    0,
    0,
    ...payload,
  ];
}

function le32(v: number): number[] {
  return [v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, (v >>> 24) & 0xff];
}
function le16(v: number): number[] {
  return [v & 0xff, (v >> 8) & 0xff];
}

function pcap(linkType: number, frames: number[][], nanos = false): Uint8Array {
  const out = [...le32(nanos ? 0xa1b23c4d : 0xa1b2c3d4), ...le16(2), ...le16(4), ...le32(0), ...le32(0), ...le32(65535), ...le32(linkType)];
  frames.forEach((f, i) =>
    out.push(...le32(1700000000 + i), ...le32(nanos ? 500_000_000 : 500_000), ...le32(f.length), ...le32(f.length), ...f),
  );
  return Uint8Array.from(out);
}

const ethHeader = (type: number) => [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, type >> 8, type & 0xff];

describe('pcap reader', () => {
  it('reads Ethernet (with a VLAN tag), IPv4 and IPv6 UDP, numbering frames from 1', () => {
    const cap = pcap(1, [
      [...ethHeader(0x0800), ...ipv4Udp([10, 0, 0, 7], 45873, 4739, [0, 10, 0, 4])],
      [...ethHeader(0x8100), 0, 100, 0x86, 0xdd, ...ipv6Udp(6343, 6343, [0, 0, 0, 5])],
      [...ethHeader(0x0806), 0, 1],
    ]);
    const got = parseCapture(cap);
    expect(got.datagrams).toHaveLength(2);
    expect(got.datagrams[0]).toMatchObject({
      frame: 1,
      srcAddr: '10.0.0.7',
      srcPort: 45873,
      dstAddr: '127.0.0.1',
      dstPort: 4739,
      timeMs: 1700000000500,
    });
    expect([...got.datagrams[0]!.payload]).toEqual([0, 10, 0, 4]);
    expect(got.datagrams[1]).toMatchObject({ frame: 2, srcAddr: '2001:db8::1', dstAddr: '::1', srcPort: 6343 });
    expect(got.skipped).toEqual([{ frame: 3, reason: 'ethertype 0x806 is not IPv4 or IPv6' }]);
  });

  it('reads Linux cooked (SLL), raw IP and nanosecond captures', () => {
    const sll = [0, 0, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, 0x08, 0x00];
    expect(parseCapture(pcap(113, [[...sll, ...ipv4Udp([10, 1, 1, 1], 1, 2055, [0, 9])]])).datagrams[0]).toMatchObject({
      srcAddr: '10.1.1.1',
      dstPort: 2055,
    });
    const raw = parseCapture(pcap(101, [ipv6Udp(5, 6343, [1, 2, 3])], true));
    expect(raw.datagrams[0]).toMatchObject({ srcPort: 5, dstPort: 6343, timeMs: 1700000000500 });
  });

  it('reads pcapng (SHB, IDB with nanosecond tsresol, EPB)', () => {
    const shb = [
      ...le32(0x0a0d0d0a),
      ...le32(28),
      ...le32(0x1a2b3c4d),
      ...le16(1),
      ...le16(0),
      ...le32(0xffffffff),
      ...le32(0xffffffff),
      ...le32(28),
    ];
    const idb = [
      ...le32(1),
      ...le32(32),
      ...le16(1),
      ...le16(0),
      ...le32(0),
      ...le16(9),
      ...le16(1),
      9,
      0,
      0,
      0,
      ...le16(0),
      ...le16(0),
      ...le32(32),
    ];
    const pkt = [...ethHeader(0x0800), ...ipv4Udp([192, 0, 2, 1], 999, 4739, [0xaa])];
    const padded = [...pkt, ...new Array<number>((4 - (pkt.length % 4)) % 4).fill(0)];
    const ts = 1_700_000_000_123_456_789n;
    const epbLen = 32 + padded.length;
    const epb = [
      ...le32(6),
      ...le32(epbLen),
      ...le32(0),
      ...le32(Number(ts >> 32n)),
      ...le32(Number(ts & 0xffffffffn)),
      ...le32(pkt.length),
      ...le32(pkt.length),
      ...padded,
      ...le32(epbLen),
    ];
    const got = parseCapture(Uint8Array.from([...shb, ...idb, ...epb]));
    expect(got.datagrams).toHaveLength(1);
    expect(got.datagrams[0]).toMatchObject({ frame: 1, srcAddr: '192.0.2.1', srcPort: 999 });
    expect(got.datagrams[0]!.timeMs).toBeCloseTo(1700000000123.4568, 3);
  });

  it('reports a snaplen-cut UDP datagram as skipped, not as a short payload', () => {
    const full = [...ethHeader(0x0800), ...ipv4Udp([10, 0, 0, 1], 1, 4739, [1, 2, 3, 4, 5, 6])];
    const got = parseCapture(pcap(1, [full.slice(0, full.length - 2)]));
    expect(got.datagrams).toHaveLength(0);
    expect(got.skipped[0]?.reason).toMatch(/cut short by the capture/);
  });

  it('gives typed errors naming the frame for bad files', () => {
    expect(() => parseCapture(Uint8Array.from([1, 2, 3, 4, 5]))).toThrow(DecodeError);
    const cut = pcap(1, [[...ethHeader(0x0800), ...ipv4Udp([10, 0, 0, 1], 1, 2, [1])]]);
    expect(() => parseCapture(cut.subarray(0, cut.length - 3))).toThrow(/frame 1: captured length/);
    expect(() => parseCapture(pcap(147, [[1, 2, 3]]))).toThrow(/link type 147 is not supported/);
  });
});
