import { parseCidr } from '../../collectors/allowlist.js';
import { addressWords } from '../sites/prefix-table.js';

/** RFC 6052 2.1: the well-known prefix of IPv4-embedded IPv6 addresses (NAT64 / 464XLAT). */
export const WELL_KNOWN_NAT64_PREFIX = '64:ff9b::/96';

/** RFC 6052 2.2: the prefix lengths an IPv4-embedded IPv6 address may use. */
export const NAT64_PREFIX_LENGTHS: readonly number[] = [32, 40, 48, 56, 64, 96];

/**
 * RFC 6052 2.2, Figure 1: which octets of the address hold the IPv4 address for each prefix
 * length (octet 8, bits 64-71, is the reserved "u" octet and never holds any).
 */
const IPV4_OCTETS: Readonly<Record<number, readonly number[]>> = {
  32: [4, 5, 6, 7],
  40: [5, 6, 7, 9],
  48: [6, 7, 9, 10],
  56: [7, 9, 10, 11],
  64: [9, 10, 11, 12],
  96: [12, 13, 14, 15],
};

interface Prefix {
  /** The prefix's octets (its length is a multiple of 8, so whole octets compare). */
  octets: Uint8Array;
  ipv4Octets: readonly number[];
}

/**
 * The NAT64 prefixes in force: the well-known one and those an operator configures (e.g. a
 * local-use 64:ff9b:1::/48, RFC 8215). Matching reads the record's address bytes in place:
 * one octet compare loop per prefix, no string.
 */
export class Nat64Prefixes {
  private readonly prefixes: Prefix[];
  /**
   * 1 for each first octet some prefix starts with: the per-record test is one typed-array
   * read for almost every address (global unicast starts 0x2-0x3, the well-known prefix 0x00).
   */
  private readonly firstOctet = new Uint8Array(256);

  /** Throws for a prefix that is not IPv6 or not one of RFC 6052's lengths (config validation). */
  constructor(cidrs: readonly string[]) {
    this.prefixes = cidrs.map((text) => {
      const c = parseCidr(text.trim());
      const a = c && c.family === 6 ? addressWords(c.address) : undefined;
      if (!c || !a || a.family !== 6) throw new Error(`NAT64 prefix ${JSON.stringify(text)} is not an IPv6 prefix`);
      const ipv4Octets = IPV4_OCTETS[c.prefix];
      if (ipv4Octets === undefined) {
        throw new Error(
          `NAT64 prefix ${JSON.stringify(text)}: the length must be one of ${NAT64_PREFIX_LENGTHS.join(', ')} (RFC 6052 2.2)`,
        );
      }
      const octets = new Uint8Array(c.prefix / 8);
      for (let i = 0; i < octets.length; i++) octets[i] = (a.words[i >>> 2]! >>> (24 - 8 * (i & 3))) & 0xff;
      return { octets, ipv4Octets };
    });
    for (const p of this.prefixes) this.firstOctet[p.octets[0]!] = 1;
  }

  get size(): number {
    return this.prefixes.length;
  }

  /** Index of the prefix holding the 16-octet address at `at` of `bytes`, or -1. */
  match(bytes: Uint8Array, at: number): number {
    if (this.firstOctet[bytes[at]!] === 0) return -1;
    for (let p = 0; p < this.prefixes.length; p++) {
      const o = this.prefixes[p]!.octets;
      let i = 0;
      while (i < o.length && bytes[at + i] === o[i]) i++;
      if (i === o.length) return p;
    }
    return -1;
  }

  /** The IPv4 address (as an unsigned 32-bit number) embedded in an address of prefix `index`. */
  embeddedIpv4(bytes: Uint8Array, at: number, index: number): number {
    const k = this.prefixes[index]!.ipv4Octets;
    return ((bytes[at + k[0]!]! << 24) | (bytes[at + k[1]!]! << 16) | (bytes[at + k[2]!]! << 8) | bytes[at + k[3]!]!) >>> 0;
  }
}
