import { describe, expect, it } from 'vitest';
import { emptyRecord, type FlowRecord } from '../../decoders/record.js';
import { Enricher } from '../../src/enrich/enricher.js';
import { Nat64Prefixes, WELL_KNOWN_NAT64_PREFIX } from '../../src/enrich/nat64.js';
import { compileSiteTable, OTHER_SITE_ID, SiteDirectory, SiteLookup, UNKNOWN_SITE_ID } from '../../src/enrich/site-lookup.js';

/** 16 address octets from IPv6 text (test helper; '::' and a dotted IPv4 tail expanded). */
function v6(text: string): Uint8Array {
  const groups = expand(text);
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    out[2 * i] = g >>> 8;
    out[2 * i + 1] = g & 0xff;
  });
  return out;
}

function expand(text: string): number[] {
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const parse = (s: string | undefined): number[] => {
    if (!s) return [];
    return s.split(':').flatMap((g) => {
      if (!g.includes('.')) return [parseInt(g, 16)];
      const b = g.split('.').map(Number);
      return [(b[0]! << 8) | b[1]!, (b[2]! << 8) | b[3]!];
    });
  };
  const h = parse(head);
  const t = parse(tail);
  return tail === undefined ? h : [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t];
}

const v4 = (text: string): Uint8Array => Uint8Array.from(text.split('.').map(Number));
const ipv4Text = (n: number): string => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');

describe('NAT64 prefixes (RFC 6052)', () => {
  it('matches the well-known prefix and extracts the embedded IPv4 address', () => {
    const p = new Nat64Prefixes([WELL_KNOWN_NAT64_PREFIX]);
    const a = v6('64:ff9b::192.0.2.33');
    expect(p.match(a, 0)).toBe(0);
    expect(ipv4Text(p.embeddedIpv4(a, 0, 0))).toBe('192.0.2.33');
    expect(p.match(v6('64:ff9b:1::c000:221'), 0)).toBe(-1);
    expect(p.match(v6('2001:db8::1'), 0)).toBe(-1);
  });

  // RFC 6052 2.4: 192.0.2.33 embedded in 2001:db8:122::/48 is 2001:db8:122:c000:2:2100::, and in
  // 2001:db8:122:344::/64 it is 2001:db8:122:344:c0:2:2100:0 (the u octet skipped).
  it('reads the IPv4 address where RFC 6052 2.2 puts it for each prefix length (the 2.4 examples)', () => {
    const cases: [string, string][] = [
      ['2001:db8::/32', '2001:db8:c000:221::'],
      ['2001:db8:100::/40', '2001:db8:1c0:2:21::'],
      ['2001:db8:122::/48', '2001:db8:122:c000:2:2100::'],
      ['2001:db8:122:300::/56', '2001:db8:122:3c0:0:221::'],
      ['2001:db8:122:344::/64', '2001:db8:122:344:c0:2:2100:0'],
      ['2001:db8:122:344::/96', '2001:db8:122:344::192.0.2.33'],
    ];
    for (const [prefix, address] of cases) {
      const p = new Nat64Prefixes([prefix]);
      const a = v6(address);
      expect([prefix, p.match(a, 0)]).toEqual([prefix, 0]);
      expect([prefix, ipv4Text(p.embeddedIpv4(a, 0, 0))]).toEqual([prefix, '192.0.2.33']);
    }
  });

  it('refuses prefixes RFC 6052 does not define, and IPv4', () => {
    expect(() => new Nat64Prefixes(['64:ff9b::/80'])).toThrow(/length must be one of 32, 40, 48, 56, 64, 96/);
    expect(() => new Nat64Prefixes(['192.0.2.0/24'])).toThrow(/not an IPv6 prefix/);
    expect(() => new Nat64Prefixes(['nonsense'])).toThrow(/not an IPv6 prefix/);
  });
});

describe('site lookup on address bytes', () => {
  const cric = {
    sites: [
      { name: 'CERN-PROD', prefixes: ['128.142.0.0/16', '2001:1458::/31', '2001:1458:301::/48'] },
      { name: 'FNAL', prefixes: ['131.225.0.0/16', '2620:6a:0:8421::/64', '2620:6a:0:8421::96/128'] },
    ],
    skipped: 0,
    overCap: 0,
  };

  it('finds the longest prefix per source, configured prefixes first whatever their length', () => {
    const dir = new SiteDirectory(100);
    const table = new SiteLookup(compileSiteTable({ 'MY-SITE': ['128.142.10.0/24', '2001:db8::/32'] }, cric, dir));
    const site = (b: Uint8Array): string => dir.nameOf(table.siteOf(b, 0, b.length));
    expect(site(v4('128.142.10.1'))).toBe('MY-SITE');
    expect(site(v4('128.142.11.1'))).toBe('CERN-PROD');
    expect(site(v4('131.225.1.1'))).toBe('FNAL');
    expect(site(v4('192.0.2.1'))).toBe('unknown');
    expect(site(v6('2001:1458:301::5'))).toBe('CERN-PROD');
    expect(site(v6('2001:1459::1'))).toBe('CERN-PROD'); // inside the /31
    expect(site(v6('2001:145a::1'))).toBe('unknown');
    expect(site(v6('2620:6a:0:8421::96'))).toBe('FNAL'); // the /128
    expect(site(v6('2620:6a:0:8421::97'))).toBe('FNAL'); // the /64
    expect(site(v6('2001:db8:5::1'))).toBe('MY-SITE');
    // IPv4-mapped IPv6 is looked up as IPv4 (RFC 4291 2.5.5.2).
    expect(site(v6('::ffff:131.225.3.4'))).toBe('FNAL');
    // At an offset inside a larger buffer.
    const buf = new Uint8Array(40);
    buf.set(v6('2001:1458:301::5'), 12);
    expect(dir.nameOf(table.siteOf(buf, 12, 16))).toBe('CERN-PROD');
  });

  it('keeps ids across recompiles and folds names beyond maxSites into other', () => {
    const dir = new SiteDirectory(2);
    const first = compileSiteTable({}, cric, dir);
    expect(dir.size).toBe(2);
    const again = compileSiteTable({ 'NEW-SITE': ['192.0.2.0/24'] }, cric, dir);
    const ids = (t: typeof first) => [...t.configured, ...t.cric].map((p) => p[6]);
    expect(ids(again).slice(1)).toEqual(ids(first));
    expect(again.configured[0]![6]).toBe(OTHER_SITE_ID);
    expect(dir.folded).toBe(1);
    expect(dir.nameOf(null)).toBe('other');
    expect(dir.nameOf(UNKNOWN_SITE_ID)).toBe('unknown');
  });
});

describe('the enricher', () => {
  it('flags NAT64 on either side, sets site ids, and hands the record to both aggregators', () => {
    const dir = new SiteDirectory(10);
    const sites = new SiteLookup(compileSiteTable({ A: ['2001:db8:a::/48'], B: ['2001:db8:b::/48'] }, undefined, dir));
    const seen: [boolean, string, string][] = [];
    const sitePairs: FlowRecord[] = [];
    const enricher = new Enricher(
      new Nat64Prefixes([WELL_KNOWN_NAT64_PREFIX]),
      { add: (r) => void seen.push([r.nat64, dir.nameOf(r.srcSite), dir.nameOf(r.dstSite)]) },
      { add: (r) => void sitePairs.push(r) },
      sites,
    );
    const rec = (src: Uint8Array | undefined, dst: Uint8Array | undefined): FlowRecord => {
      const r = emptyRecord('ipfix', '192.0.2.1:4739', 0);
      if (src && dst) {
        const b = new Uint8Array(src.length * 2);
        b.set(src, 0);
        b.set(dst, src.length);
        Object.assign(r, { addrBytes: b, addrLen: src.length, srcAddrAt: 0, dstAddrAt: src.length });
      }
      return r;
    };
    enricher.add(rec(v6('2001:db8:a::1'), v6('64:ff9b::192.0.2.33')), 0, '192.0.2.1');
    enricher.add(rec(v6('64:ff9b::198.51.100.1'), v6('2001:db8:b::1')), 0, '192.0.2.1');
    enricher.add(rec(v6('2001:db8:a::1'), v6('2001:db8:b::1')), 0, '192.0.2.1');
    enricher.add(rec(v4('192.0.2.1'), v4('198.51.100.1')), 0, '192.0.2.1');
    enricher.add(rec(undefined, undefined), 0, '192.0.2.1');
    expect(seen).toEqual([
      [true, 'A', 'unknown'],
      [true, 'unknown', 'B'],
      [false, 'A', 'B'],
      [false, 'unknown', 'unknown'],
      [false, 'unknown', 'unknown'],
    ]);
    expect(sitePairs).toHaveLength(5);
  });

  it('skips site lookups and the site-pair aggregator while no site table is in force', () => {
    const sitePairs: FlowRecord[] = [];
    const enricher = new Enricher(new Nat64Prefixes([]), { add: () => {} }, { add: (r) => void sitePairs.push(r) }, undefined);
    enricher.add(emptyRecord('sflow', '192.0.2.1:6343', 0), 0, '192.0.2.1');
    expect(sitePairs).toEqual([]);
    enricher.setSites(new SiteLookup(compileSiteTable({ A: ['192.0.2.0/24'] }, undefined, new SiteDirectory(5))));
    enricher.add(emptyRecord('sflow', '192.0.2.1:6343', 0), 0, '192.0.2.1');
    expect(sitePairs).toHaveLength(1);
  });
});
