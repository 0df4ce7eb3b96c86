import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PrefixTable } from '../../src/sites/prefix-table.js';

/**
 * The longest-prefix match agrees with a naive scan over every prefix (BigInt arithmetic,
 * independent of the table's word masking): for random IPv4 and IPv6 prefixes of every
 * length, and addresses drawn both at random and from inside the prefixes (so the long
 * prefixes are hit too). On equal prefixes the first inserted value wins in both. Both treat
 * the IPv4-mapped range as the table documents: mapped addresses are IPv4 addresses, mapped
 * prefixes of /96 or longer IPv4 prefixes, and a shorter IPv6 prefix never holds a mapped
 * address (fast-check found the naive model missing this: ::/80 and ::ffff:ffff:fffa).
 */

interface P {
  family: 4 | 6;
  bits: bigint;
  len: number;
}

const width = (f: 4 | 6): number => (f === 4 ? 32 : 128);

function text(family: 4 | 6, bits: bigint): string {
  if (family === 4) return [24n, 16n, 8n, 0n].map((s) => String((bits >> s) & 0xffn)).join('.');
  const groups: string[] = [];
  for (let i = 7; i >= 0; i--) groups.push(((bits >> BigInt(16 * i)) & 0xffffn).toString(16));
  return groups.join(':');
}

/** ::ffff:0:0/96, the IPv4-mapped range (RFC 4291 2.5.5.2): its top 96 bits. */
const isMapped = (bits: bigint): boolean => bits >> 32n === 0xffffn;

/**
 * How the table stores a prefix: one inside the IPv4-mapped range (length 96 or more) is the
 * IPv4 prefix of its last 32 bits. A shorter IPv6 prefix stays IPv6.
 */
function stored(p: P): P {
  return p.family === 6 && p.len >= 96 && isMapped(p.bits) ? { family: 4, bits: p.bits & 0xffffffffn, len: p.len - 96 } : p;
}

/** How the table looks an address up: an IPv4-mapped IPv6 address as its IPv4 address. */
function lookedUp(family: 4 | 6, addr: bigint): { family: 4 | 6; addr: bigint } {
  return family === 6 && isMapped(addr) ? { family: 4, addr: addr & 0xffffffffn } : { family, addr };
}

function contains(prefix: P, family: 4 | 6, address: bigint): boolean {
  const p = stored(prefix);
  const a = lookedUp(family, address);
  if (p.family !== a.family) return false;
  const shift = BigInt(width(p.family) - p.len);
  return p.bits >> shift === a.addr >> shift;
}

/** The table's key of a prefix: equal keys are one prefix (the first value stays). */
function keyOfPrefix(prefix: P): string {
  const p = stored(prefix);
  const shift = BigInt(width(p.family) - p.len);
  return `${p.family}/${p.len}/${(p.bits >> shift).toString(16)}`;
}

function naive(prefixes: readonly P[], family: 4 | 6, addr: bigint): number | undefined {
  let best: number | undefined;
  let bestLen = -1;
  prefixes.forEach((p, i) => {
    const len = stored(p).len;
    if (contains(p, family, addr) && len > bestLen) {
      best = i;
      bestLen = len;
    }
  });
  return best;
}

const v4 = fc.bigInt({ min: 0n, max: 2n ** 32n - 1n });
const v6 = fc.bigInt({ min: 0n, max: 2n ** 128n - 1n });
const prefix: fc.Arbitrary<P> = fc.oneof(
  fc.record({ family: fc.constant(4 as const), bits: v4, len: fc.integer({ min: 0, max: 32 }) }),
  fc.record({ family: fc.constant(6 as const), bits: v6, len: fc.integer({ min: 0, max: 128 }) }),
  // Inside or around the IPv4-mapped range, where the table switches families.
  fc.record({ family: fc.constant(6 as const), bits: v4.map((b) => (0xffffn << 32n) | b), len: fc.integer({ min: 64, max: 128 }) }),
);

describe('PrefixTable (property)', () => {
  it('answers as a naive longest-prefix scan', () => {
    fc.assert(
      fc.property(
        fc.array(prefix, { maxLength: 40 }),
        fc.array(fc.tuple(fc.nat(), fc.boolean(), v6), { maxLength: 40 }),
        (prefixes, probes) => {
          const t = new PrefixTable<number>(1000);
          // The value of an equal prefix is the first index (the table keeps the first).
          const firstOf = new Map<string, number>();
          prefixes.forEach((p, i) => {
            const key = keyOfPrefix(p);
            if (!firstOf.has(key)) firstOf.set(key, i);
            t.insert(`${text(p.family, p.bits)}/${p.len}`, firstOf.get(key)!);
          });
          for (const [pick, inside, noise] of probes) {
            let family: 4 | 6;
            let addr: bigint;
            const p = prefixes.length > 0 ? prefixes[pick % prefixes.length] : undefined;
            if (inside && p) {
              // An address inside p: its network bits, random host bits.
              family = p.family;
              const hostBits = BigInt(width(family) - p.len);
              const mask = (1n << hostBits) - 1n;
              addr = ((p.bits >> hostBits) << hostBits) | (noise & mask);
            } else {
              family = pick % 2 === 0 ? 4 : 6;
              addr = family === 4 ? noise & 0xffffffffn : noise;
            }
            expect(t.lookup(text(family, addr))).toBe(
              naive(prefixes, family, addr) === undefined ? undefined : firstOf.get(keyOf(prefixes, family, addr)),
            );
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});

/** The key of the longest prefix holding addr (for the first-inserted value of equal prefixes). */
function keyOf(prefixes: readonly P[], family: 4 | 6, addr: bigint): string {
  return keyOfPrefix(prefixes[naive(prefixes, family, addr)!]!);
}
