import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compileSiteTable, SiteDirectory, SiteLookup } from '../../src/enrich/site-lookup.js';
import { SiteMap } from '../../src/sites/site-map.js';

/**
 * The byte-level lookup of flow records (numeric maps per length, an address cache) against
 * the fireflies' text-level SiteMap: two implementations of one longest-prefix rule must name
 * the same site for every address, including after cache collisions (more addresses than
 * cache slots, looked up twice).
 */
const hex = (n: number) => n.toString(16);
const v4Text = (b: number[]) => b.join('.');
const v6Text = (b: number[]) => [0, 2, 4, 6, 8, 10, 12, 14].map((i) => hex((b[i]! << 8) | b[i + 1]!)).join(':');

const prefixArb = fc.oneof(
  fc.record({ bytes: fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 4, maxLength: 4 }), len: fc.integer({ min: 8, max: 32 }) }),
  fc.record({
    bytes: fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 16, maxLength: 16 }),
    len: fc.integer({ min: 16, max: 128 }),
  }),
);

describe('site lookup on bytes agrees with the SiteMap on text', () => {
  it('for random prefixes and addresses near them (fast-check)', () => {
    fc.assert(
      fc.property(
        fc.array(prefixArb, { minLength: 1, maxLength: 40 }),
        fc.array(fc.integer({ min: 0, max: 2 ** 31 }), { minLength: 1, maxLength: 300 }),
        (prefixes, seeds) => {
          const sites: Record<string, string[]> = {};
          prefixes.forEach((p, i) => {
            const text = p.bytes.length === 4 ? v4Text(p.bytes) : v6Text(p.bytes);
            (sites[`S${i % 7}`] ??= []).push(`${text}/${p.len}`);
          });
          const dir = new SiteDirectory(100);
          const lookup = new SiteLookup(compileSiteTable(sites, undefined, dir));
          const map = new SiteMap(sites, { maxPrefixes: 1000, maxSites: 100 });
          for (const seed of [...seeds, ...seeds]) {
            // An address inside (or just beside) one of the prefixes: its bytes with low bits changed.
            const p = prefixes[seed % prefixes.length]!;
            const bytes = p.bytes.map((b, i) => (i >= p.bytes.length - 2 ? (b + seed) & 0xff : b));
            const text = bytes.length === 4 ? v4Text(bytes) : v6Text(bytes);
            const got = dir.nameOf(lookup.siteOf(Uint8Array.from(bytes), 0, bytes.length));
            expect([text, got]).toEqual([text, map.siteOf(text)]);
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('keeps answering right when 20,000 addresses share the 8,192 cache slots', () => {
    const sites = { A: ['10.0.0.0/9', '2001:db8::/33'], B: ['10.128.0.0/9', '2001:db8:8000::/33'] };
    const dir = new SiteDirectory(10);
    const lookup = new SiteLookup(compileSiteTable(sites, undefined, dir));
    const map = new SiteMap(sites, { maxPrefixes: 10, maxSites: 10 });
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 20_000; i++) {
        const v4 = [10, (i * 7) & 0xff, (i >>> 8) & 0xff, i & 0xff];
        expect(dir.nameOf(lookup.siteOf(Uint8Array.from(v4), 0, 4))).toBe(map.siteOf(v4Text(v4)));
        const v6 = [0x20, 0x01, 0x0d, 0xb8, (i * 13) & 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, (i >>> 8) & 0xff, i & 0xff];
        expect(dir.nameOf(lookup.siteOf(Uint8Array.from(v6), 0, 16))).toBe(map.siteOf(v6Text(v6)));
      }
    }
  });
});
