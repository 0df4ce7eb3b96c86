import { isIP } from 'node:net';
import { parseCidr } from '../../collectors/allowlist.js';

/**
 * Longest-prefix match over IPv4 and IPv6 prefixes, for site attribution.
 *
 * Layout: per address family, one hash map per prefix length that occurs (at most 33 for
 * IPv4, 129 for IPv6), keyed by the network bits. A lookup masks the address at each
 * length present, longest first, and stops at the first hit: at most (number of distinct
 * lengths) map probes, typically a dozen, and memory linear in the prefixes (a bit-per-node
 * trie would hold up to 128 nodes per IPv6 prefix). The table is bounded by `maxPrefixes`;
 * inserts beyond it are refused and counted by the caller.
 *
 * IPv4-mapped IPv6 addresses (::ffff:a.b.c.d, RFC 4291 2.5.5.2) are looked up as IPv4, since
 * dual-stack sockets and some hosts report IPv4 peers that way.
 */

/** An address as 32-bit words, most significant first: one for IPv4, four for IPv6. */
export type AddressWords = readonly number[];

/** Parses IPv4 / IPv6 text into words; undefined when not an address. Zone ids are refused. */
export function addressWords(text: string): { family: 4 | 6; words: number[] } | undefined {
  const family = isIP(text);
  if (family === 4) return { family: 4, words: [ipv4Word(text)] };
  if (family !== 6) return undefined;
  const words = ipv6Words(text);
  // ::ffff:0:0/96 is the IPv4-mapped range (RFC 4291 2.5.5.2).
  if (words[0] === 0 && words[1] === 0 && words[2] === 0xffff) return { family: 4, words: [words[3]!] };
  return { family: 6, words };
}

function ipv4Word(text: string): number {
  const p = text.split('.');
  return ((Number(p[0]) << 24) | (Number(p[1]) << 16) | (Number(p[2]) << 8) | Number(p[3])) >>> 0;
}

/** Eight 16-bit groups (with '::' expanded and a dotted IPv4 tail converted) as four words. */
function ipv6Words(text: string): number[] {
  // isIP() accepted it, so it is well formed; a zone (%eth0) is not part of the address.
  const pct = text.indexOf('%');
  const addr = pct < 0 ? text : text.slice(0, pct);
  const groups: number[] = [];
  const parse = (part: string): number[] => {
    if (part === '') return [];
    const out: number[] = [];
    for (const g of part.split(':')) {
      if (g.includes('.')) {
        const w = ipv4Word(g);
        out.push(w >>> 16, w & 0xffff);
      } else out.push(parseInt(g, 16));
    }
    return out;
  };
  const dbl = addr.indexOf('::');
  if (dbl < 0) groups.push(...parse(addr));
  else {
    const head = parse(addr.slice(0, dbl));
    const tail = parse(addr.slice(dbl + 2));
    groups.push(...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail);
  }
  const words: number[] = [];
  for (let i = 0; i < 4; i++) words.push(((groups[2 * i]! << 16) | groups[2 * i + 1]!) >>> 0);
  return words;
}

/** The network bits of `words` at `len`, as a map key. */
function networkKey(words: AddressWords, len: number): string {
  let key = '';
  for (let i = 0; i < words.length; i++) {
    const bits = Math.min(32, Math.max(0, len - 32 * i));
    // (x >>> 32) is x in JavaScript, so a zero-bit word is written as 0 explicitly.
    const masked = bits === 0 ? 0 : bits === 32 ? words[i]! : (words[i]! & (0xffffffff << (32 - bits))) >>> 0;
    key += i === 0 ? masked.toString(16) : `.${masked.toString(16)}`;
  }
  return key;
}

interface Family<T> {
  /** Prefix length -> network key -> value. */
  byLength: Map<number, Map<string, T>>;
  /** The lengths present, longest first (rebuilt when a length appears). */
  lengths: number[];
}

export type InsertResult = 'added' | 'duplicate' | 'invalid' | 'full';

export class PrefixTable<T> {
  private readonly v4: Family<T> = { byLength: new Map(), lengths: [] };
  private readonly v6: Family<T> = { byLength: new Map(), lengths: [] };
  private count = 0;

  constructor(readonly maxPrefixes: number) {}

  get size(): number {
    return this.count;
  }

  /**
   * Adds `cidr` -> `value`. The first value given for a prefix stays ('duplicate' for the
   * next): callers insert in a deterministic order, so the answer does not depend on timing.
   */
  insert(cidr: string, value: T): InsertResult {
    const c = parseCidr(cidr.trim());
    if (!c) return 'invalid';
    const a = addressWords(c.address);
    if (!a) return 'invalid';
    let len = c.prefix;
    let family = a.family;
    // ::ffff:a.b.c.d/len with len >= 96 is the IPv4 prefix a.b.c.d/(len - 96); a shorter one
    // covers more than the mapped range and stays IPv6 (where mapped lookups never reach).
    if (c.family === 6 && a.family === 4) {
      if (len >= 96) len -= 96;
      else {
        family = 6;
        a.words.splice(0, 1, 0, 0, 0xffff, a.words[0]!);
      }
    }
    const fam = family === 4 ? this.v4 : this.v6;
    let map = fam.byLength.get(len);
    const key = networkKey(a.words, len);
    if (map?.has(key)) return 'duplicate';
    if (this.count >= this.maxPrefixes) return 'full';
    if (!map) {
      map = new Map();
      fam.byLength.set(len, map);
      fam.lengths = [...fam.byLength.keys()].sort((x, y) => y - x);
    }
    map.set(key, value);
    this.count++;
    return 'added';
  }

  /** The value of the longest prefix holding `address` (IPv4 or IPv6 text); undefined if none. */
  lookup(address: string): T | undefined {
    const a = addressWords(address);
    return a ? this.lookupWords(a.family, a.words) : undefined;
  }

  lookupWords(family: 4 | 6, words: AddressWords): T | undefined {
    const fam = family === 4 ? this.v4 : this.v6;
    for (const len of fam.lengths) {
      const v = fam.byLength.get(len)!.get(networkKey(words, len));
      if (v !== undefined) return v;
    }
    return undefined;
  }
}
