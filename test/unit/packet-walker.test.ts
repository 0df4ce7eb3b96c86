import { describe, expect, it } from 'vitest';
import { DecodeError } from '../../decoders/errors.js';
import { ipv4String, ipv6String } from '../../decoders/packet/addr.js';
import type { PacketInfo } from '../../decoders/packet/types.js';
import { newPacketInfo, resetPacketInfo, walkHeader } from '../../decoders/packet/walker.js';
import { buildFrame, buildIpv4, buildIpv6, type ExtHeaderSpec, type FrameSpec, type Ipv6Spec } from '../builders/sflow.js';

/**
 * A PacketInfo with every field at its reset value except the ones given. The address
 * offsets follow the addresses given (any offset where an address is, -1 where none is):
 * their exact values are checked in 'walkHeader: address offsets' below.
 */
function expected(fields: Partial<PacketInfo>): PacketInfo {
  const offsets: Partial<PacketInfo> =
    fields.srcAddr === undefined
      ? {}
      : {
          addrLen: fields.srcAddr.includes(':') ? 16 : 4,
          srcAddrAt: expect.any(Number) as number,
          dstAddrAt: fields.dstAddr === undefined ? -1 : (expect.any(Number) as number),
        };
  return { ...newPacketInfo(), ...offsets, ...fields };
}

function walk(frame: Uint8Array, start: 'ethernet' | 'ipv4' | 'ipv6' = 'ethernet', length = frame.length): PacketInfo {
  return walkHeader(frame, 0, length, start, newPacketInfo());
}

const V6: Ipv6Spec = {
  version: 6,
  trafficClass: 0x28,
  flowLabel: 0x10004, // SciTags atlas (2) / default (1)
  src: '2001:db8:10::3',
  dst: '2001:db8:20::14',
  l4: { proto: 'tcp', srcPort: 1094, dstPort: 50010, payload: 100 },
};

const V6_FIELDS: Partial<PacketInfo> = {
  ipVersion: 6,
  flowLabel: 0x10004,
  trafficClass: 0x28,
  ipLength: 40 + 20 + 100,
  srcAddr: '2001:db8:10::3',
  dstAddr: '2001:db8:20::14',
  ipProtocol: 6,
  srcPort: 1094,
  dstPort: 50010,
};

describe('walkHeader: link layer', () => {
  it('walks Ethernet + IPv6 + TCP to every field', () => {
    expect(walk(buildFrame({ ip: V6 }))).toEqual(expected(V6_FIELDS));
  });

  it('walks Ethernet + IPv4 with options + UDP', () => {
    const frame = buildFrame({
      ip: {
        version: 4,
        tos: 0xb8,
        src: '192.0.2.11',
        dst: '203.0.113.30',
        options: 8,
        l4: { proto: 'udp', srcPort: 40002, dstPort: 53, payload: 12 },
      },
    });
    expect(walk(frame)).toEqual(
      expected({
        ipVersion: 4,
        ipLength: 28 + 8 + 12,
        srcAddr: '192.0.2.11',
        dstAddr: '203.0.113.30',
        ipProtocol: 17,
        srcPort: 40002,
        dstPort: 53,
      }),
    );
  });

  const stacks: [string, NonNullable<FrameSpec['vlans']>, number[]][] = [
    ['802.1Q', [{ vid: 100 }], [100]],
    ['802.1Q with PCP set', [{ vid: 200, pcp: 5 }], [200]],
    ['802.1ad + 802.1Q (QinQ)', [{ vid: 10, tpid: 0x88a8 }, { vid: 100 }], [10, 100]],
    ['0x9100 + 802.1Q', [{ vid: 11, tpid: 0x9100 }, { vid: 101 }], [11, 101]],
    ['802.1ad + 802.1ad + 802.1Q', [{ vid: 1, tpid: 0x88a8 }, { vid: 2, tpid: 0x88a8 }, { vid: 4094 }], [1, 2, 4094]],
    ['priority tag (VID 0)', [{ vid: 0, pcp: 3 }], [0]],
  ];
  for (const [name, vlans, ids] of stacks) {
    it(`walks a ${name} stack to the IPv6 label`, () => {
      expect(walk(buildFrame({ vlans, ip: V6 }))).toEqual(expected({ ...V6_FIELDS, vlans: ids }));
    });
  }

  const mpls: [string, FrameSpec, number[]][] = [
    ['one label over IPv6', { mpls: [16], ip: V6 }, [16]],
    ['three labels over IPv6', { mpls: [1000, 2000, 0xfffff], ip: V6 }, [1000, 2000, 0xfffff]],
    ['VLAN then two labels over IPv6', { vlans: [{ vid: 300 }], mpls: [17, 18], ip: V6 }, [17, 18]],
  ];
  for (const [name, spec, labels] of mpls) {
    it(`walks MPLS: ${name}`, () => {
      const vids = (spec.vlans ?? []).map((v) => v.vid);
      expect(walk(buildFrame(spec))).toEqual(expected({ ...V6_FIELDS, mplsLabels: labels, vlans: vids }));
    });
  }

  it('walks MPLS over IPv4 by the first nibble, and multicast MPLS (0x8848)', () => {
    const v4 = buildFrame({
      mpls: [42],
      ip: { version: 4, src: '10.0.0.1', dst: '10.0.0.2', l4: { proto: 'udp', srcPort: 1, dstPort: 2 } },
    });
    expect(walk(v4)).toEqual(
      expected({
        ipVersion: 4,
        ipLength: 28,
        srcAddr: '10.0.0.1',
        dstAddr: '10.0.0.2',
        ipProtocol: 17,
        srcPort: 1,
        dstPort: 2,
        mplsLabels: [42],
      }),
    );
    const mc = buildFrame({ mpls: [42], ip: V6 });
    mc[12] = 0x88;
    mc[13] = 0x48;
    expect(walk(mc)).toEqual(expected({ ...V6_FIELDS, mplsLabels: [42] }));
  });

  /** Ethernet, MPLS labels, a 4-octet word, then `inner` (an Ethernet pseudowire's payload). */
  function pseudowire(labels: number[], word: number[], inner: Uint8Array): Uint8Array {
    const outer = buildFrame({ mpls: labels, ip: V6 });
    const head = outer.subarray(0, 14 + 4 * labels.length);
    const out = new Uint8Array(head.length + word.length + inner.length);
    out.set(head, 0);
    out.set(word, head.length);
    out.set(inner, head.length + word.length);
    return out;
  }
  const customer = buildFrame({
    vlans: [{ vid: 1000 }],
    ip: {
      version: 4,
      tos: 0x20,
      src: '198.51.100.1',
      dst: '198.51.100.2',
      l4: { proto: 'tcp', srcPort: 443, dstPort: 55427, payload: 1452 },
    },
  });

  it('walks past a pseudowire control word (RFC 4385: first nibble 0) to the customer frame (EoMPLS / EVPN)', () => {
    // Control word 0000 flags/length/sequence 0x0000 0x0007: only the first nibble matters.
    const frame = pseudowire([300012, 17], [0x00, 0x00, 0x00, 0x07], customer);
    expect(walk(frame)).toEqual(
      expected({
        ipVersion: 4,
        ipLength: 20 + 20 + 1452,
        srcAddr: '198.51.100.1',
        dstAddr: '198.51.100.2',
        ipProtocol: 6,
        srcPort: 443,
        dstPort: 55427,
        mplsLabels: [300012, 17],
        vlans: [1000],
      }),
    );
  });

  it('a header cut inside the control word is truncated; an ACH (first nibble 1) stays undecoded', () => {
    const frame = pseudowire([42], [0x00, 0x00, 0x00, 0x00], customer);
    expect(walk(frame, 'ethernet', 14 + 4 + 3)).toEqual(expected({ mplsLabels: [42], truncated: true }));
    // A cut in the customer's Ethernet header is a truncation too.
    expect(walk(frame, 'ethernet', 14 + 4 + 4 + 10)).toEqual(expected({ mplsLabels: [42], truncated: true }));
    const ach = pseudowire([42], [0x10, 0x00, 0x00, 0x07], customer);
    expect(walk(ach)).toEqual(expected({ mplsLabels: [42] }));
  });

  it('reports nothing (and no truncation) for a non-IP EtherType', () => {
    const frame = buildFrame({ ip: V6 });
    frame[12] = 0x08;
    frame[13] = 0x06; // ARP
    expect(walk(frame)).toEqual(expected({}));
  });

  it('refuses an IPv6 EtherType whose version nibble is not 6', () => {
    const frame = buildFrame({ ip: V6 });
    frame[14] = 0x45;
    expect(walk(frame)).toEqual(expected({ ipVersion: 0 }));
  });

  it('walks bare IPv6 and IPv4 (sFlow header_protocol 12 / 11)', () => {
    expect(walk(buildIpv6(V6), 'ipv6')).toEqual(expected(V6_FIELDS));
    const v4 = buildIpv4({ version: 4, src: '192.0.2.1', dst: '192.0.2.2', l4: { proto: 'tcp', srcPort: 80, dstPort: 8080 } });
    expect(walk(v4, 'ipv4')).toEqual(
      expected({ ipVersion: 4, ipLength: 40, srcAddr: '192.0.2.1', dstAddr: '192.0.2.2', ipProtocol: 6, srcPort: 80, dstPort: 8080 }),
    );
  });

  it('reads ICMP and ICMPv6 type and code, no ports', () => {
    const icmp6 = buildFrame({ ip: { ...V6, l4: { proto: 'icmpv6', type: 128, code: 0, payload: 56 } } });
    expect(walk(icmp6)).toEqual(
      expected({ ...V6_FIELDS, ipLength: 40 + 64, ipProtocol: 58, srcPort: undefined, dstPort: undefined, icmpType: 128, icmpCode: 0 }),
    );
    const icmp4 = buildFrame({ ip: { version: 4, src: '10.1.1.1', dst: '10.1.1.2', l4: { proto: 'icmp', type: 3, code: 4 } } });
    expect(walk(icmp4)).toEqual(
      expected({ ipVersion: 4, ipLength: 28, srcAddr: '10.1.1.1', dstAddr: '10.1.1.2', ipProtocol: 1, icmpType: 3, icmpCode: 4 }),
    );
  });

  it('walks inside a larger buffer from an offset and never past offset + length', () => {
    const frame = buildFrame({ vlans: [{ vid: 7 }], ip: V6 });
    const big = new Uint8Array(frame.length + 100).fill(0xee);
    big.set(frame, 37);
    expect(walkHeader(big, 37, frame.length, 'ethernet', newPacketInfo())).toEqual(expected({ ...V6_FIELDS, vlans: [7] }));
  });

  it('counts a jumbo frame from its 128-octet header', () => {
    const frame = buildFrame({ ip: { ...V6, l4: { proto: 'tcp', srcPort: 2811, dstPort: 20000, payload: 8940 } } });
    expect(frame.length).toBe(14 + 40 + 20 + 8940);
    expect(walk(frame, 'ethernet', 128)).toEqual(expected({ ...V6_FIELDS, ipLength: 9000, srcPort: 2811, dstPort: 20000 }));
  });

  it('throws DecodeError only when offset/length leave the buffer', () => {
    const frame = buildFrame({ ip: V6 });
    const out = newPacketInfo();
    expect(() => walkHeader(frame, 0, frame.length + 1, 'ethernet', out)).toThrow(DecodeError);
    expect(() => walkHeader(frame, -1, 4, 'ethernet', out)).toThrow(DecodeError);
    expect(() => walkHeader(frame, frame.length, 1, 'ethernet', out)).toThrow(DecodeError);
    expect(() => walkHeader(frame, 0, -1, 'ethernet', out)).toThrow(DecodeError);
    expect(() => walkHeader(frame, 0.5, 4, 'ethernet', out)).toThrow(DecodeError);
    expect(walkHeader(frame, frame.length, 0, 'ethernet', out)).toEqual(expected({ truncated: true }));
    expect(walkHeader(frame, 0, 0, 'ipv6', out)).toEqual(expected({ ipVersion: 6, truncated: true }));
  });

  it('resets a reused PacketInfo completely, keeping its arrays', () => {
    const out = newPacketInfo();
    const { vlans, mplsLabels } = out;
    walkHeader(buildFrame({ vlans: [{ vid: 5 }], mpls: [9], ip: V6 }), 0, 80, 'ethernet', out);
    expect(out.vlans).toEqual([5]);
    const v4 = buildFrame({ ip: { version: 4, src: '10.0.0.1', dst: '10.0.0.2', l4: { proto: 'udp', srcPort: 1, dstPort: 2 } } });
    expect(walkHeader(v4, 0, v4.length, 'ethernet', out)).toEqual(
      expected({ ipVersion: 4, ipLength: 28, srcAddr: '10.0.0.1', dstAddr: '10.0.0.2', ipProtocol: 17, srcPort: 1, dstPort: 2 }),
    );
    expect(out.vlans).toBe(vlans);
    expect(out.mplsLabels).toBe(mplsLabels);
    const dirty = walkHeader(buildFrame({ ip: V6 }), 0, 20, 'ethernet', newPacketInfo());
    resetPacketInfo(dirty);
    expect(dirty).toEqual(newPacketInfo());
  });
});

describe('walkHeader: IPv6 extension headers', () => {
  const chains: [string, ExtHeaderSpec[], number][] = [
    ['hop-by-hop', [{ type: 'hop' }], 8],
    ['hop-by-hop with Hdr Ext Len 2', [{ type: 'hop', len: 2 }], 24],
    ['routing', [{ type: 'routing', len: 2 }], 24],
    ['destination options', [{ type: 'dest' }], 8],
    [
      'hop-by-hop, destination, routing, destination',
      [{ type: 'hop' }, { type: 'dest', len: 1 }, { type: 'routing', len: 4 }, { type: 'dest' }],
      8 + 16 + 40 + 8,
    ],
    ['first fragment (offset 0, more fragments)', [{ type: 'fragment', offset: 0, more: true }], 8],
    ['AH (HMAC-96, 24 octets)', [{ type: 'ah' }], 24],
    ['AH with Payload Len 7 (36 octets)', [{ type: 'ah', len: 7 }], 36],
    ['hop-by-hop, AH, destination options', [{ type: 'hop' }, { type: 'ah' }, { type: 'dest' }], 8 + 24 + 8],
    ['hop-by-hop, fragment (offset 0), AH', [{ type: 'hop' }, { type: 'fragment', offset: 0, more: true }, { type: 'ah' }], 8 + 8 + 24],
  ];
  for (const [name, ext, extLen] of chains) {
    it(`walks ${name} to the TCP ports`, () => {
      const frame = buildFrame({ ip: { ...V6, ext } });
      expect(walk(frame)).toEqual(expected({ ...V6_FIELDS, ipLength: 40 + extLen + 120 }));
      // The same chain with UDP, so the final protocol is really taken from the last header.
      const udp = buildFrame({ ip: { ...V6, ext, l4: { proto: 'udp', srcPort: 5, dstPort: 6 } } });
      expect(walk(udp)).toEqual(expected({ ...V6_FIELDS, ipLength: 40 + extLen + 8, ipProtocol: 17, srcPort: 5, dstPort: 6 }));
    });
  }

  it('marks a non-first fragment and reads no ports from it', () => {
    const frame = buildFrame({ ip: { ...V6, ext: [{ type: 'fragment', offset: 185 }] } });
    expect(walk(frame)).toEqual(expected({ ...V6_FIELDS, ipLength: 40 + 8 + 120, srcPort: undefined, dstPort: undefined, fragment: true }));
    const after = buildFrame({ ip: { ...V6, ext: [{ type: 'hop' }, { type: 'fragment', offset: 1, more: true }] } });
    expect(walk(after)).toEqual(
      expected({ ...V6_FIELDS, ipLength: 40 + 16 + 120, srcPort: undefined, dstPort: undefined, fragment: true }),
    );
  });

  it('stops at ESP and at No Next Header', () => {
    const esp = buildFrame({ ip: { ...V6, ext: [{ type: 'hop' }], l4: { proto: 50, body: new Uint8Array(16).fill(0xab) } } });
    expect(walk(esp)).toEqual(expected({ ...V6_FIELDS, ipLength: 40 + 8 + 16, ipProtocol: 50, srcPort: undefined, dstPort: undefined }));
    const none = buildFrame({ ip: { ...V6, ext: [{ type: 'dest' }], l4: { proto: 59, body: new Uint8Array(0) } } });
    expect(walk(none)).toEqual(expected({ ...V6_FIELDS, ipLength: 48, ipProtocol: 59, srcPort: undefined, dstPort: undefined }));
  });

  it('knows the protocol after a header cut inside the extension header, but no ports', () => {
    const frame = buildFrame({ ip: { ...V6, ext: [{ type: 'hop', len: 3 }] } });
    // Cut after the hop-by-hop header's first two octets: next header (TCP) known, ports not.
    expect(walk(frame, 'ethernet', 14 + 40 + 2)).toEqual(
      expected({ ...V6_FIELDS, ipLength: 40 + 32 + 120, srcPort: undefined, dstPort: undefined, truncated: true }),
    );
  });

  it('gives up (without throwing) on an absurdly long chain', () => {
    const ext: ExtHeaderSpec[] = Array.from({ length: 20 }, () => ({ type: 'dest' as const }));
    const frame = buildFrame({ ip: { ...V6, ext } });
    expect(walk(frame)).toEqual(
      expected({ ...V6_FIELDS, ipLength: 40 + 160 + 120, ipProtocol: undefined, srcPort: undefined, dstPort: undefined }),
    );
  });
});

describe('walkHeader: IPv4 fragments', () => {
  const base = {
    version: 4 as const,
    src: '192.0.2.1',
    dst: '192.0.2.2',
    l4: { proto: 'udp' as const, srcPort: 4000, dstPort: 5000, payload: 20 },
  };
  it('reads ports from the first fragment', () => {
    expect(walk(buildFrame({ ip: { ...base, moreFragments: true } }))).toEqual(
      expected({ ipVersion: 4, ipLength: 48, srcAddr: '192.0.2.1', dstAddr: '192.0.2.2', ipProtocol: 17, srcPort: 4000, dstPort: 5000 }),
    );
  });
  it('marks a non-first fragment and reads no ports', () => {
    expect(walk(buildFrame({ ip: { ...base, fragOffset: 3 } }))).toEqual(
      expected({ ipVersion: 4, ipLength: 48, srcAddr: '192.0.2.1', dstAddr: '192.0.2.2', ipProtocol: 17, fragment: true }),
    );
  });
  it('reads no upper layer when IHL is below 5', () => {
    const frame = buildFrame({ ip: base });
    frame[14] = 0x44;
    expect(walk(frame)).toEqual(expected({ ipVersion: 4, ipLength: 48, srcAddr: '192.0.2.1', dstAddr: '192.0.2.2', ipProtocol: 17 }));
  });
});

describe('walkHeader: truncation', () => {
  const frame = buildFrame({ ip: V6 }); // 14 + 40 + 20 + 100

  /** What must be known when the frame is cut to `n` octets (the IPv6 header starts at `ip`). */
  function knownAt(n: number, ip: number): PacketInfo {
    const k = n - ip;
    const f: Partial<PacketInfo> = { truncated: true };
    if (n >= ip) f.ipVersion = 6;
    if (k >= 4) {
      f.flowLabel = V6_FIELDS.flowLabel;
      f.trafficClass = V6_FIELDS.trafficClass;
    }
    if (k >= 6) f.ipLength = V6_FIELDS.ipLength;
    if (k >= 24) f.srcAddr = V6_FIELDS.srcAddr;
    if (k >= 40) {
      f.dstAddr = V6_FIELDS.dstAddr;
      f.ipProtocol = 6;
    }
    if (k >= 42) f.srcPort = V6_FIELDS.srcPort;
    if (k >= 44) {
      f.dstPort = V6_FIELDS.dstPort;
      f.truncated = false;
    }
    return expected(f);
  }

  it('at every octet of the first 60 octets of an Ethernet IPv6 frame: label iff >= 4 octets of IPv6 header', () => {
    for (let n = 0; n <= 60; n++) {
      const info = walk(frame, 'ethernet', n);
      expect({ n, info }).toEqual({ n, info: knownAt(n, 14) });
      expect(info.flowLabel !== undefined).toBe(n >= 18);
    }
  });

  it('at every octet of the first 60 octets of a bare IPv6 packet', () => {
    const ip = buildIpv6(V6);
    for (let n = 0; n <= 60; n++) {
      expect({ n, info: walk(ip, 'ipv6', n) }).toEqual({ n, info: knownAt(n, 0) });
    }
  });

  it('inside a VLAN tag or an MPLS entry', () => {
    const tagged = buildFrame({ vlans: [{ vid: 100 }, { vid: 200 }], ip: V6 });
    expect(walk(tagged, 'ethernet', 16)).toEqual(expected({ truncated: true }));
    expect(walk(tagged, 'ethernet', 18)).toEqual(expected({ vlans: [100], truncated: true }));
    expect(walk(tagged, 'ethernet', 22)).toEqual(expected({ vlans: [100, 200], ipVersion: 6, truncated: true }));
    const labelled = buildFrame({ mpls: [1, 2], ip: V6 });
    expect(walk(labelled, 'ethernet', 20)).toEqual(expected({ mplsLabels: [1], truncated: true }));
    expect(walk(labelled, 'ethernet', 22)).toEqual(expected({ mplsLabels: [1, 2], truncated: true }));
  });

  it('inside an IPv4 header', () => {
    const v4 = buildFrame({ ip: { version: 4, src: '192.0.2.1', dst: '192.0.2.2', l4: { proto: 'tcp', srcPort: 1, dstPort: 2 } } });
    expect(walk(v4, 'ethernet', 14 + 3)).toEqual(expected({ ipVersion: 4, truncated: true }));
    expect(walk(v4, 'ethernet', 14 + 10)).toEqual(expected({ ipVersion: 4, ipLength: 40, ipProtocol: 6, truncated: true }));
    expect(walk(v4, 'ethernet', 14 + 16)).toEqual(
      expected({ ipVersion: 4, ipLength: 40, ipProtocol: 6, srcAddr: '192.0.2.1', truncated: true }),
    );
    expect(walk(v4, 'ethernet', 14 + 22)).toEqual(
      expected({ ipVersion: 4, ipLength: 40, ipProtocol: 6, srcAddr: '192.0.2.1', dstAddr: '192.0.2.2', srcPort: 1, truncated: true }),
    );
  });
});

describe('walkHeader: inner headers (opt-in)', () => {
  const innerV6: Ipv6Spec = { ...V6, flowLabel: 0x3fefc, src: '2001:db8::a', dst: '2001:db8::b' };
  const innerFields = { ...V6_FIELDS, flowLabel: 0x3fefc, srcAddr: '2001:db8::a', dstAddr: '2001:db8::b' };

  it('is off by default', () => {
    const frame = buildFrame({ ip: { version: 4, src: '10.0.0.1', dst: '10.0.0.2', l4: { proto: 41, body: buildIpv6(innerV6) } } });
    expect(walk(frame).inner).toBeUndefined();
  });

  it('walks IPv6-in-IPv4 (41) and IPv4-in-IPv6 (4)', () => {
    const frame = buildFrame({ ip: { version: 4, src: '10.0.0.1', dst: '10.0.0.2', l4: { proto: 41, body: buildIpv6(innerV6) } } });
    const out = walkHeader(frame, 0, frame.length, 'ethernet', newPacketInfo(), { inner: true });
    expect(out.ipProtocol).toBe(41);
    expect(out.inner).toEqual(expected(innerFields));
    // IPv4 in IPv6 read the outer way (exporters.outerFlowLabel): the outer label, the inner
    // packet in `inner`. (Read the default way, the inner header replaces the outer one: see
    // 'IP-in-IP under IPv6' below.)
    const v4in6 = buildIpv4({ version: 4, src: '10.9.9.9', dst: '10.8.8.8', l4: { proto: 'udp', srcPort: 7, dstPort: 9 } });
    const outer = buildFrame({ ip: { ...V6, l4: { proto: 4, body: v4in6 } } });
    const out2 = walkHeader(outer, 0, outer.length, 'ethernet', newPacketInfo(), { inner: true, outer: true });
    expect(out2.flowLabel).toBe(0x10004);
    expect(out2.inner).toEqual(
      expected({ ipVersion: 4, ipLength: 28, srcAddr: '10.9.9.9', dstAddr: '10.8.8.8', ipProtocol: 17, srcPort: 7, dstPort: 9 }),
    );
  });

  it('walks GRE (with key) carrying IPv6, and GRE carrying Ethernet (0x6558)', () => {
    const gre = new Uint8Array([0x20, 0x00, 0x86, 0xdd, 0, 0, 0, 42, ...buildIpv6(innerV6)]);
    const frame = buildFrame({ ip: { version: 4, src: '10.0.0.1', dst: '10.0.0.2', l4: { proto: 47, body: gre } } });
    expect(walkHeader(frame, 0, frame.length, 'ethernet', newPacketInfo(), { inner: true }).inner).toEqual(expected(innerFields));
    const teb = new Uint8Array([0x00, 0x00, 0x65, 0x58, ...buildFrame({ vlans: [{ vid: 33 }], ip: innerV6 })]);
    const frame2 = buildFrame({ ip: { ...V6, l4: { proto: 47, body: teb } } });
    const out = walkHeader(frame2, 0, frame2.length, 'ethernet', newPacketInfo(), { inner: true });
    expect(out.flowLabel).toBe(0x10004);
    expect(out.inner).toEqual(expected({ ...innerFields, vlans: [33] }));
  });

  it('walks VXLAN on UDP 4789 to the inner Ethernet frame', () => {
    const inner = buildFrame({ ip: innerV6 });
    const udpPayload = new Uint8Array([0x08, 0, 0, 0, 0, 0, 100, 0, ...inner]);
    // UDP header is built by the builder; the VXLAN header + inner frame is its payload.
    const outer = buildIpv6({
      ...V6,
      l4: { proto: 17, body: new Uint8Array([0xc0, 0x00, 0x12, 0xb5, 0, 8 + udpPayload.length, 0, 0, ...udpPayload]) },
    });
    const out = walkHeader(outer, 0, outer.length, 'ipv6', newPacketInfo(), { inner: true });
    expect(out.dstPort).toBe(4789);
    expect(out.flowLabel).toBe(0x10004);
    expect(out.inner).toEqual(expected(innerFields));
  });

  it('reports a tunnel cut short as a truncated inner packet', () => {
    const frame = buildFrame({ ip: { version: 4, src: '10.0.0.1', dst: '10.0.0.2', l4: { proto: 41, body: buildIpv6(innerV6) } } });
    const out = walkHeader(frame, 0, 14 + 20 + 3, 'ethernet', newPacketInfo(), { inner: true });
    expect(out.truncated).toBe(false);
    expect(out.inner).toEqual(expected({ ipVersion: 6, truncated: true }));
  });
});

describe('walkHeader: IP-in-IP under IPv6, the innermost header wins (issue 12)', () => {
  // An SRv6-style outer header: router addresses, entropy label 0xf96e6 (1021670), a routing
  // header, then the customer packet.
  const outerV6 = (body: Uint8Array, proto: 4 | 41): Ipv6Spec => ({
    version: 6,
    flowLabel: 1021670,
    src: '2001:db8:91::1',
    dst: '2001:db8:90:e003::',
    ext: [{ type: 'routing', len: 2 }],
    l4: { proto, body },
  });
  const customer6 = buildIpv6({ ...V6, src: '2001:db8::13', dst: '2001:db8::12' });
  const customer4 = buildIpv4({ version: 4, src: '192.0.2.13', dst: '192.0.2.12', l4: { proto: 'udp', srcPort: 2222, dstPort: 1111 } });
  // Outer IPv6 length: 40 + routing header 8 * (2 + 1) + the customer packet.
  const outerLength = (inner: Uint8Array) => 40 + 24 + inner.length;

  it('IPv6 in IPv6: the customer packet label, addresses and ports; the IP length is the outer one', () => {
    const frame = buildFrame({ ip: outerV6(customer6, 41) });
    expect(walk(frame)).toEqual(
      expected({ ...V6_FIELDS, srcAddr: '2001:db8::13', dstAddr: '2001:db8::12', ipLength: outerLength(customer6) }),
    );
  });

  it('IPv4 in IPv6 alike: the customer packet is IPv4, with no label', () => {
    const frame = buildFrame({ ip: outerV6(customer4, 4) });
    expect(walk(frame)).toEqual(
      expected({
        ipVersion: 4,
        ipLength: outerLength(customer4),
        srcAddr: '192.0.2.13',
        dstAddr: '192.0.2.12',
        ipProtocol: 17,
        srcPort: 2222,
        dstPort: 1111,
      }),
    );
  });

  it('read the outer way (outer: true) the outer header stays', () => {
    const frame = buildFrame({ ip: outerV6(customer6, 41) });
    expect(walkHeader(frame, 0, frame.length, 'ethernet', newPacketInfo(), { outer: true })).toEqual(
      expected({
        ipVersion: 6,
        flowLabel: 1021670,
        trafficClass: 0,
        ipLength: outerLength(customer6),
        srcAddr: '2001:db8:91::1',
        dstAddr: '2001:db8:90:e003::',
        ipProtocol: 41,
      }),
    );
  });

  it('a header cut inside the customer packet leaves its fields unknown, never the outer ones', () => {
    const frame = buildFrame({ ip: outerV6(customer6, 41) });
    // Ethernet 14 + outer 40 + routing 24 + 2 octets of the customer header.
    expect(walk(frame, 'ethernet', 14 + 40 + 24 + 2)).toEqual(
      expected({ ipVersion: 6, ipLength: outerLength(customer6), truncated: true }),
    );
    // A customer header whose version nibble is wrong is not a packet: the outer one stays.
    const bad = buildFrame({ ip: outerV6(customer6, 41) });
    bad[14 + 40 + 24] = 0x50;
    expect(walk(bad).flowLabel).toBe(1021670);
  });

  it('IPv6 in IPv4 keeps the outer header (the rule is for IPv6 outer headers)', () => {
    const frame = buildFrame({ ip: { version: 4, src: '10.0.0.1', dst: '10.0.0.2', l4: { proto: 41, body: customer6 } } });
    expect(walk(frame)).toMatchObject({ ipVersion: 4, ipProtocol: 41, flowLabel: undefined, srcAddr: '10.0.0.1' });
  });
});

describe('walkHeader: address offsets', () => {
  /** The addresses formatted from the bytes at the reported offsets. */
  function fromBytes(bytes: Uint8Array, info: PacketInfo): [string | undefined, string | undefined] {
    const fmt = info.addrLen === 16 ? ipv6String : ipv4String;
    return [info.srcAddrAt >= 0 ? fmt(bytes, info.srcAddrAt) : undefined, info.dstAddrAt >= 0 ? fmt(bytes, info.dstAddrAt) : undefined];
  }

  it('points at the IPv6 and IPv4 addresses after Ethernet, tags and labels, absolute in the buffer', () => {
    const v6 = buildFrame({ ip: V6 });
    expect(walk(v6)).toMatchObject({ addrLen: 16, srcAddrAt: 14 + 8, dstAddrAt: 14 + 24 });
    const tagged = buildFrame({ vlans: [{ vid: 5 }, { vid: 6 }], mpls: [9], ip: V6 });
    expect(walk(tagged)).toMatchObject({ addrLen: 16, srcAddrAt: 14 + 8 + 4 + 8, dstAddrAt: 14 + 8 + 4 + 24 });
    const v4 = buildFrame({ ip: { version: 4, src: '10.0.0.1', dst: '10.0.0.2', l4: { proto: 'udp', srcPort: 1, dstPort: 2 } } });
    expect(walk(v4)).toMatchObject({ addrLen: 4, srcAddrAt: 14 + 12, dstAddrAt: 14 + 16 });
    expect(walk(buildIpv6(V6), 'ipv6')).toMatchObject({ addrLen: 16, srcAddrAt: 8, dstAddrAt: 24 });
    const big = new Uint8Array(v6.length + 50);
    big.set(v6, 37);
    const info = walkHeader(big, 37, v6.length, 'ethernet', newPacketInfo());
    expect(info).toMatchObject({ addrLen: 16, srcAddrAt: 37 + 22, dstAddrAt: 37 + 38 });
    expect(fromBytes(big, info)).toEqual([V6.src, V6.dst]);
  });

  it('are set without address formatting too', () => {
    const v6 = buildFrame({ ip: V6 });
    const info = walkHeader(v6, 0, v6.length, 'ethernet', newPacketInfo(), { addresses: false });
    expect(info).toMatchObject({ srcAddr: undefined, dstAddr: undefined, addrLen: 16, srcAddrAt: 22, dstAddrAt: 38 });
  });

  it('stop where the header is cut: no destination before its last octet, nothing before the source', () => {
    const v6 = buildFrame({ ip: V6 });
    expect(walk(v6, 'ethernet', 14 + 39)).toMatchObject({ addrLen: 16, srcAddrAt: 22, dstAddrAt: -1, dstAddr: undefined });
    expect(walk(v6, 'ethernet', 14 + 23)).toMatchObject({ addrLen: 0, srcAddrAt: -1, dstAddrAt: -1, srcAddr: undefined });
  });

  it('IP-in-IP under IPv6: the inner header, as the strings; read the outer way, the outer one', () => {
    const inner = buildIpv6({ ...V6, src: '2001:db8::a', dst: '2001:db8::b' });
    const frame = buildFrame({ ip: { ...V6, l4: { proto: 41, body: inner } } });
    const info = walk(frame);
    expect(info).toMatchObject({ addrLen: 16, srcAddrAt: 14 + 40 + 8, dstAddrAt: 14 + 40 + 24 });
    expect(fromBytes(frame, info)).toEqual(['2001:db8::a', '2001:db8::b']);
    const outer = walkHeader(frame, 0, frame.length, 'ethernet', newPacketInfo(), { outer: true });
    expect(fromBytes(frame, outer)).toEqual([V6.src, V6.dst]);
  });

  it('a tunnel walked into `inner` (GRE): the outer header outside, the inner one in `inner`', () => {
    const innerV6: Ipv6Spec = { ...V6, src: '2001:db8::a', dst: '2001:db8::b' };
    const gre = new Uint8Array([0x00, 0x00, 0x86, 0xdd, ...buildIpv6(innerV6)]);
    const frame = buildFrame({ ip: { version: 4, src: '10.0.0.1', dst: '10.0.0.2', l4: { proto: 47, body: gre } } });
    const info = walkHeader(frame, 0, frame.length, 'ethernet', newPacketInfo(), { inner: true });
    expect(fromBytes(frame, info)).toEqual(['10.0.0.1', '10.0.0.2']);
    expect(info.inner).toMatchObject({ addrLen: 16, srcAddrAt: 14 + 20 + 4 + 8, dstAddrAt: 14 + 20 + 4 + 24 });
    expect(fromBytes(frame, info.inner!)).toEqual(['2001:db8::a', '2001:db8::b']);
  });
});
