import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PrefixTable } from '../../src/sites/prefix-table.js';

/**
 * The longest-prefix match agrees with a naive scan over every prefix (BigInt arithmetic,
 * independent of the table's word masking): for random IPv4 and IPv6 prefixes of every
 * length, and addresses drawn both at random and from inside the prefixes (so the long
 * prefixes are hit too). On equal prefixes the first inserted value wins in both.
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

function contains(p: P, family: 4 | 6, addr: bigint): boolean {
  if (p.family !== family) return false;
  const shift = BigInt(width(family) - p.len);
  return p.bits >> shift === addr >> shift;
}

function naive(prefixes: readonly P[], family: 4 | 6, addr: bigint): number | undefined {
  let best: number | undefined;
  let bestLen = -1;
  prefixes.forEach((p, i) => {
    if (contains(p, family, addr) && p.len > bestLen) {
      best = i;
      bestLen = p.len;
    }
  });
  return best;
}

const v4 = fc.bigInt({ min: 0n, max: 2n ** 32n - 1n });
const v6 = fc.bigInt({ min: 0n, max: 2n ** 128n - 1n });
const prefix: fc.Arbitrary<P> = fc.oneof(
  fc.record({ family: fc.constant(4 as const), bits: v4, len: fc.integer({ min: 0, max: 32 }) }),
  fc.record({ family: fc.constant(6 as const), bits: v6, len: fc.integer({ min: 0, max: 128 }) }),
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
            const shift = BigInt(width(p.family) - p.len);
            const key = `${p.family}/${p.len}/${(p.bits >> shift).toString(16)}`;
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
  const i = naive(prefixes, family, addr)!;
  const p = prefixes[i]!;
  const shift = BigInt(width(p.family) - p.len);
  return `${p.family}/${p.len}/${(p.bits >> shift).toString(16)}`;
}
