import { parseCidr } from '../../collectors/allowlist.js';
import type { CricDocument } from '../sites/cric.js';
import { OTHER_SITE, UNKNOWN_SITE } from '../sites/site-map.js';
import { addressWords } from '../sites/prefix-table.js';

/** Site ids of the two answers the lookup gives itself; real sites start at FIRST_SITE_ID. */
export const UNKNOWN_SITE_ID = 0;
export const OTHER_SITE_ID = 1;
const FIRST_SITE_ID = 2;

/**
 * Site name <-> small integer, append-only for the life of the process: the site-pair
 * aggregator keys cells by ids (in workers too), so an id must mean the same site before and
 * after a CRIC refresh. Bounded: once `maxSites` names have ids, further names map to 'other'.
 */
export class SiteDirectory {
  private readonly names: string[] = [UNKNOWN_SITE, OTHER_SITE];
  private readonly ids = new Map<string, number>([
    [UNKNOWN_SITE, UNKNOWN_SITE_ID],
    [OTHER_SITE, OTHER_SITE_ID],
  ]);
  /** Names that got 'other' because the directory was full. */
  folded = 0;

  constructor(private readonly maxSites: number) {}

  idOf(name: string): number {
    let id = this.ids.get(name);
    if (id !== undefined) return id;
    if (this.names.length - FIRST_SITE_ID >= this.maxSites) {
      this.folded++;
      return OTHER_SITE_ID;
    }
    id = this.names.length;
    this.names.push(name);
    this.ids.set(name, id);
    return id;
  }

  /** The name of an id; 'other' for null (the aggregator's overflow key) and unknown ids. */
  nameOf(id: number | null): string {
    return id === null ? OTHER_SITE : (this.names[id] ?? OTHER_SITE);
  }

  get size(): number {
    return this.names.length - FIRST_SITE_ID;
  }
}

/** One prefix as plain data (it crosses to decode workers): family, length, four words, site id. */
export type PrefixSpec = [family: 4 | 6, length: number, w0: number, w1: number, w2: number, w3: number, site: number];

/** A site table as plain data: configured prefixes (looked up first, they win) and CRIC ones. */
export interface SiteTableSpec {
  configured: PrefixSpec[];
  cric: PrefixSpec[];
}

export const EMPTY_SITE_TABLE: SiteTableSpec = Object.freeze({ configured: [], cric: [] }) as unknown as SiteTableSpec;

function specsOf(entries: Iterable<[name: string, cidr: string]>, dir: SiteDirectory, out: PrefixSpec[]): void {
  for (const [name, cidr] of entries) {
    const c = parseCidr(cidr.trim());
    const a = c ? addressWords(c.address) : undefined;
    if (!c || !a) continue; // counted as invalid by the SiteMap, which reads the same lists
    let len = c.prefix;
    if (c.family === 6 && a.family === 4) {
      // ::ffff:a.b.c.d/len (RFC 4291 2.5.5.2): the IPv4 prefix, as the SiteMap reads it.
      if (len < 96) continue;
      len -= 96;
    }
    const w = a.words;
    out.push([a.family, len, w[0]!, w[1] ?? 0, w[2] ?? 0, w[3] ?? 0, dir.idOf(name)]);
  }
}

/** Compiles configured prefixes and a CRIC document into a table spec, giving new names ids. */
export function compileSiteTable(
  configured: Readonly<Record<string, readonly string[]>>,
  cric: CricDocument | undefined,
  dir: SiteDirectory,
): SiteTableSpec {
  const spec: SiteTableSpec = { configured: [], cric: [] };
  const pairs = (sites: Iterable<{ name: string; prefixes: readonly string[] }>): [string, string][] =>
    [...sites].flatMap((s) => s.prefixes.map((p): [string, string] => [s.name, p]));
  const names = Object.keys(configured).sort();
  specsOf(pairs(names.map((name) => ({ name, prefixes: configured[name] ?? [] }))), dir, spec.configured);
  if (cric) specsOf(pairs(cric.sites), dir, spec.cric);
  return spec;
}

/** Mask of the top `bits` (0..32) of a word. */
function mask(word: number, bits: number): number {
  return bits <= 0 ? 0 : bits >= 32 ? word >>> 0 : (word & (0xffffffff << (32 - bits))) >>> 0;
}

/**
 * Longest-prefix match on address bytes, for the per-record path: per prefix length present,
 * a Map keyed by numbers (the masked first word; for IPv6 lengths 33-64 a second Map keyed by
 * the masked second word; longer IPv6 prefixes, rare in site lists, by a string of the masked
 * words). Lengths are probed longest first; the first hit wins.
 */
class LengthTable {
  private readonly v4 = new Map<number, Map<number, number>>();
  private readonly v6short = new Map<number, Map<number, number>>();
  private readonly v6mid = new Map<number, Map<number, Map<number, number>>>();
  private readonly v6long = new Map<number, Map<string, number>>();
  private v4Lengths: number[] = [];
  private v6Lengths: number[] = [];

  constructor(specs: readonly PrefixSpec[]) {
    for (const [family, len, w0, w1, w2, w3, site] of specs) {
      if (family === 4) setFirst(this.v4, len, mask(w0, len), site);
      else if (len <= 32) setFirst(this.v6short, len, mask(w0, len), site);
      else if (len <= 64) {
        let byW0 = this.v6mid.get(len);
        if (!byW0) this.v6mid.set(len, (byW0 = new Map()));
        setFirst(byW0, mask(w0, 32), mask(w1, len - 32), site);
      } else setFirst(this.v6long, len, longKey(w0, w1, w2, w3, len), site);
    }
    this.v4Lengths = [...this.v4.keys()].sort((a, b) => b - a);
    this.v6Lengths = [...new Set([...this.v6short.keys(), ...this.v6mid.keys(), ...this.v6long.keys()])].sort((a, b) => b - a);
  }

  get empty(): boolean {
    return this.v4Lengths.length === 0 && this.v6Lengths.length === 0;
  }

  /** Site id of the longest prefix holding the address, or -1. */
  lookup(b: Uint8Array, at: number, addrLen: number): number {
    const w0 = word(b, at);
    if (addrLen === 4) {
      for (const len of this.v4Lengths) {
        const id = this.v4.get(len)!.get(mask(w0, len));
        if (id !== undefined) return id;
      }
      return -1;
    }
    // IPv4-mapped IPv6 (::ffff:a.b.c.d) is looked up as IPv4, as the SiteMap does.
    const w1 = word(b, at + 4);
    const w2 = word(b, at + 8);
    if (w0 === 0 && w1 === 0 && w2 === 0xffff) return this.lookup(b, at + 12, 4);
    for (const len of this.v6Lengths) {
      let id: number | undefined;
      if (len <= 32) id = this.v6short.get(len)?.get(mask(w0, len));
      else if (len <= 64)
        id = this.v6mid
          .get(len)
          ?.get(w0)
          ?.get(mask(w1, len - 32));
      else id = this.v6long.get(len)?.get(longKey(w0, w1, w2, word(b, at + 12), len));
      if (id !== undefined) return id;
    }
    return -1;
  }
}

function setFirst<K>(maps: Map<number, Map<K, number>>, len: number, key: K, site: number): void {
  let m = maps.get(len);
  if (!m) maps.set(len, (m = new Map()));
  // The first site given a prefix keeps it (the SiteMap's rule: insertion in name order).
  if (!m.has(key)) m.set(key, site);
}

function longKey(w0: number, w1: number, w2: number, w3: number, len: number): string {
  return `${w0}.${w1}.${mask(w2, len - 64)}.${mask(w3, len - 96)}`;
}

function word(b: Uint8Array, at: number): number {
  return ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
}

/** Entries of each address cache (a power of two): hosts repeat, flow after flow. */
const CACHE_BITS = 13;
const CACHE_SIZE = 1 << CACHE_BITS;

/**
 * Address bytes -> site id: configured prefixes first (whatever the lengths), then CRIC.
 *
 * The per-length probes cost a few Map lookups per prefix length present, most for addresses
 * no prefix holds (all lengths probed): a direct-mapped cache per family (8,192 entries, the
 * address words and the answer, in typed arrays) answers repeated addresses with one hash and
 * a compare. A new table (CRIC refresh) is a new SiteLookup, so the cache never goes stale.
 */
export class SiteLookup {
  private readonly configured: LengthTable;
  private readonly cric: LengthTable;
  private readonly v4Keys = new Int32Array(CACHE_SIZE);
  private readonly v4Sites = new Int32Array(CACHE_SIZE).fill(-1);
  private readonly v6Keys = new Int32Array(CACHE_SIZE * 4);
  private readonly v6Sites = new Int32Array(CACHE_SIZE).fill(-1);

  constructor(spec: SiteTableSpec) {
    this.configured = new LengthTable(spec.configured);
    this.cric = new LengthTable(spec.cric);
  }

  /** True when no prefix is known: the enricher then skips site lookups altogether. */
  get empty(): boolean {
    return this.configured.empty && this.cric.empty;
  }

  siteOf(b: Uint8Array, at: number, addrLen: number): number {
    const w0 = word(b, at) | 0;
    if (addrLen === 4) {
      const slot = Math.imul(w0, 0x9e3779b1) >>> (32 - CACHE_BITS);
      const cached = this.v4Sites[slot]!;
      if (cached >= 0 && this.v4Keys[slot] === w0) return cached;
      const id = this.lookup(b, at, addrLen);
      this.v4Keys[slot] = w0;
      this.v4Sites[slot] = id;
      return id;
    }
    const w1 = word(b, at + 4) | 0;
    const w2 = word(b, at + 8) | 0;
    const w3 = word(b, at + 12) | 0;
    const slot =
      Math.imul(w0 ^ Math.imul(w1, 0x85ebca6b) ^ Math.imul(w2, 0xc2b2ae35) ^ Math.imul(w3, 0x27d4eb2f), 0x9e3779b1) >>> (32 - CACHE_BITS);
    const k = slot * 4;
    const keys = this.v6Keys;
    const cached = this.v6Sites[slot]!;
    if (cached >= 0 && keys[k] === w0 && keys[k + 1] === w1 && keys[k + 2] === w2 && keys[k + 3] === w3) return cached;
    const id = this.lookup(b, at, addrLen);
    keys[k] = w0;
    keys[k + 1] = w1;
    keys[k + 2] = w2;
    keys[k + 3] = w3;
    this.v6Sites[slot] = id;
    return id;
  }

  private lookup(b: Uint8Array, at: number, addrLen: number): number {
    const id = this.configured.lookup(b, at, addrLen);
    if (id >= 0) return id;
    const c = this.cric.lookup(b, at, addrLen);
    return c >= 0 ? c : UNKNOWN_SITE_ID;
  }
}
