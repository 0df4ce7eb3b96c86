/**
 * Properties of the raw-header walker: it never throws on any bytes inside its range, never
 * reads past offset + length (a buffer poisoned after the cut gives the same answer as one
 * that ends there), and a longer cut never contradicts a shorter one. Also: the hot-path
 * address formatter (the only one the product uses) equals a plain RFC 5952 reference.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ipv4String, ipv6String } from '../../decoders/packet/addr.js';
import type { HeaderStart, PacketInfo } from '../../decoders/packet/types.js';
import { newPacketInfo, walkHeader } from '../../decoders/packet/walker.js';
import { buildFrame, type ExtHeaderSpec, type FrameSpec, type L4Spec } from '../builders/sflow.js';

const starts: HeaderStart[] = ['ethernet', 'ipv4', 'ipv6'];

function snapshot(info: PacketInfo): unknown {
  // Structured copy: the walker reuses arrays, and `inner` is a reused object too.
  return JSON.parse(JSON.stringify(info)) as unknown;
}

/** Walks bytes[offset, offset+len) three ways: cut buffer, and poisoned with 0x00 and 0xff after. */
function walkThreeWays(bytes: Uint8Array, offset: number, len: number, start: HeaderStart, inner: boolean): unknown[] {
  const cut = bytes.slice(0, offset + len);
  const results: unknown[] = [];
  for (const poison of [undefined, 0x00, 0xff]) {
    let buf = cut;
    if (poison !== undefined) {
      buf = new Uint8Array(offset + len + 64).fill(poison);
      buf.set(cut);
    }
    results.push(snapshot(walkHeader(buf, offset, len, start, newPacketInfo(), { inner })));
  }
  return results;
}

const l4Arb: fc.Arbitrary<L4Spec> = fc.oneof(
  fc.record({
    proto: fc.constantFrom('tcp' as const, 'udp' as const, 'sctp' as const),
    srcPort: fc.nat(65535),
    dstPort: fc.nat(65535),
    payload: fc.nat(64),
  }),
  fc.record({ proto: fc.constantFrom('icmp' as const, 'icmpv6' as const), type: fc.nat(255), code: fc.nat(255) }),
);

const extArb: fc.Arbitrary<ExtHeaderSpec> = fc.oneof(
  fc.record({ type: fc.constantFrom('hop' as const, 'routing' as const, 'dest' as const), len: fc.nat(4) }),
  fc.record({ type: fc.constant('fragment' as const), offset: fc.oneof(fc.constant(0), fc.nat(8191)), more: fc.boolean() }),
  fc.record({ type: fc.constant('ah' as const), len: fc.integer({ min: 1, max: 8 }) }),
);

const v6Text = fc
  .array(fc.oneof(fc.constant(0), fc.nat(0xffff)), { minLength: 8, maxLength: 8 })
  .map((w) => w.map((x) => x.toString(16)).join(':'));
const v4Text = fc.array(fc.nat(255), { minLength: 4, maxLength: 4 }).map((b) => b.join('.'));

const frameArb: fc.Arbitrary<FrameSpec> = fc.record({
  vlans: fc.array(fc.record({ vid: fc.nat(4095), tpid: fc.constantFrom(0x8100, 0x88a8, 0x9100) }), { maxLength: 3 }),
  mpls: fc.array(fc.nat(0xfffff), { maxLength: 3 }),
  ip: fc.oneof(
    fc.record({
      version: fc.constant(6 as const),
      trafficClass: fc.nat(255),
      flowLabel: fc.nat(0xfffff),
      src: v6Text,
      dst: v6Text,
      ext: fc.array(extArb, { maxLength: 4 }),
      l4: l4Arb,
    }),
    fc.record({
      version: fc.constant(4 as const),
      src: v4Text,
      dst: v4Text,
      options: fc.constantFrom(0, 4, 40),
      fragOffset: fc.oneof(fc.constant(0), fc.nat(8191)),
      l4: l4Arb,
    }),
  ),
});

describe('walkHeader properties', () => {
  it('never throws and never reads past offset + length, on random bytes', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 200 }),
        fc.nat(),
        fc.nat(),
        fc.constantFrom(...starts),
        fc.boolean(),
        (bytes, a, b, start, inner) => {
          const offset = bytes.length === 0 ? 0 : a % (bytes.length + 1);
          const len = bytes.length - offset === 0 ? 0 : b % (bytes.length - offset + 1);
          const [cut, zeros, ones] = walkThreeWays(bytes, offset, len, start, inner);
          expect(zeros).toEqual(cut);
          expect(ones).toEqual(cut);
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('never reads past the cut of a well-formed frame, at any cut', () => {
    fc.assert(
      fc.property(frameArb, fc.nat(), fc.boolean(), (spec, c, inner) => {
        const frame = buildFrame(spec);
        const len = c % (frame.length + 1);
        const [cut, zeros, ones] = walkThreeWays(frame, 0, len, 'ethernet', inner);
        expect(zeros).toEqual(cut);
        expect(ones).toEqual(cut);
      }),
      { numRuns: 2000 },
    );
  });

  it('a longer cut never contradicts a shorter one', () => {
    fc.assert(
      fc.property(frameArb, (spec) => {
        const frame = buildFrame(spec);
        const full = walkHeader(frame, 0, frame.length, 'ethernet', newPacketInfo());
        expect(full.truncated).toBe(false);
        const complete = snapshot(full) as Record<string, unknown>;
        const contradictions: string[] = [];
        for (let n = 0; n < Math.min(frame.length, 120); n++) {
          const part = snapshot(walkHeader(frame, 0, n, 'ethernet', newPacketInfo())) as Record<string, unknown>;
          for (const [k, v] of Object.entries(part)) {
            // Unknown (undefined), not-yet-seen (ipVersion 0, fragment false, no address offsets) never contradict.
            if (k === 'truncated' || v === undefined || v === null) continue;
            if ((k === 'ipVersion' && v === 0) || (k === 'fragment' && v === false)) continue;
            // Address offsets not reached yet: addrLen 0, offsets -1.
            if ((k === 'addrLen' && v === 0) || ((k === 'srcAddrAt' || k === 'dstAddrAt') && v === -1)) continue;
            const want = Array.isArray(v) ? JSON.stringify((complete[k] as unknown[]).slice(0, v.length)) : JSON.stringify(complete[k]);
            if (JSON.stringify(v) !== want) contradictions.push(`cut ${n}: ${k} = ${JSON.stringify(v)}, full ${want}`);
          }
        }
        expect(contradictions).toEqual([]);
      }),
      { numRuns: 300 },
    );
  });

  it('the address offsets point at the addresses the strings show, with and without formatting', () => {
    /** Offsets agree with the strings of the same walk, the inner walk's included; offsets alone the same without formatting. */
    function check(bytes: Uint8Array, offset: number, len: number, start: HeaderStart, inner: boolean): void {
      const info = walkHeader(bytes, offset, len, start, newPacketInfo(), { inner });
      for (const i of info.inner === undefined ? [info] : [info, info.inner]) {
        const fmt = i.addrLen === 16 ? ipv6String : ipv4String;
        expect(i.addrLen === 0 ? undefined : fmt(bytes, i.srcAddrAt)).toBe(i.srcAddr);
        expect(i.dstAddrAt < 0 ? undefined : fmt(bytes, i.dstAddrAt)).toBe(i.dstAddr);
        if (i.dstAddrAt >= 0) expect(i.dstAddrAt + i.addrLen).toBeLessThanOrEqual(offset + len);
      }
      const bare = walkHeader(bytes, offset, len, start, newPacketInfo(), { inner, addresses: false });
      const pick = (i: PacketInfo | undefined): unknown => i && [i.addrLen, i.srcAddrAt, i.dstAddrAt];
      expect([pick(bare), pick(bare.inner)]).toEqual([pick(info), pick(info.inner)]);
    }
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.nat(), fc.constantFrom(...starts), fc.boolean(), (bytes, a, start, inner) => {
        const offset = bytes.length === 0 ? 0 : a % (bytes.length + 1);
        check(bytes, offset, bytes.length - offset, start, inner);
      }),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(frameArb, fc.nat(), fc.boolean(), (spec, c, inner) => {
        const frame = buildFrame(spec);
        check(frame, 0, c % (frame.length + 1), 'ethernet', inner);
        check(frame, 0, frame.length, 'ethernet', inner);
      }),
      { numRuns: 1000 },
    );
  });

  it('throws only DecodeError for ranges outside the buffer', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 64 }),
        fc.integer({ min: -10, max: 100 }),
        fc.integer({ min: -10, max: 100 }),
        (bytes, offset, len) => {
          try {
            walkHeader(bytes, offset, len, 'ethernet', newPacketInfo());
            expect(offset >= 0 && len >= 0 && offset + len <= bytes.length).toBe(true);
          } catch (err) {
            expect((err as Error).name).toBe('DecodeError');
            expect(offset < 0 || len < 0 || offset + len > bytes.length).toBe(true);
          }
        },
      ),
    );
  });
});

/** Reference IPv4 text: plain template string, no tables, no cache. */
function formatIPv4(bytes: Uint8Array, off: number): string {
  return `${bytes[off]}.${bytes[off + 1]}.${bytes[off + 2]}.${bytes[off + 3]}`;
}

/** Reference RFC 5952 IPv6 text, written with arrays and no cache (was decoders/reader.ts's). */
function formatIPv6(bytes: Uint8Array, off: number): string {
  const words: number[] = [];
  for (let i = 0; i < 8; i++) words.push((bytes[off + 2 * i]! << 8) | bytes[off + 2 * i + 1]!);
  // RFC 5952 4.2: compress the longest run (length >= 2) of zero words, first one on ties.
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8;) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  // RFC 5952 5: IPv4-mapped addresses keep the dotted quad.
  if (bestStart === 0 && bestLen === 5 && words[5] === 0xffff) {
    return `::ffff:${formatIPv4(bytes, off + 12)}`;
  }
  const hex = words.map((w) => w.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

describe('address formatting', () => {
  const zeroBiased = fc
    .array(fc.oneof(fc.constant(0), fc.constant(0), fc.nat(255)), { minLength: 16, maxLength: 16 })
    .map((a) => Uint8Array.from(a));
  it('ipv6String equals the reference formatIPv6 (RFC 5952), cached or not', () => {
    fc.assert(
      fc.property(zeroBiased, fc.boolean(), (bytes, mapped) => {
        if (mapped) {
          bytes.fill(0, 0, 10);
          bytes[10] = 0xff;
          bytes[11] = 0xff;
        }
        const want = formatIPv6(bytes, 0);
        expect(ipv6String(bytes, 0)).toBe(want);
        expect(ipv6String(bytes, 0)).toBe(want); // second call is served from the cache
      }),
      { numRuns: 5000 },
    );
  });
  it('ipv4String equals the reference formatIPv4', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 4, maxLength: 4 }), (bytes) => {
        expect(ipv4String(bytes, 0)).toBe(formatIPv4(bytes, 0));
        expect(ipv4String(bytes, 0)).toBe(formatIPv4(bytes, 0));
      }),
      { numRuns: 2000 },
    );
  });
});
