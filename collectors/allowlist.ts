import { BlockList, isIP, isIPv4 } from 'node:net';

/** An address prefix: "192.0.2.0/24", "2001:db8::/32", or a bare address (a host prefix). */
export interface Cidr {
  address: string;
  family: 4 | 6;
  prefix: number;
}

/** Splits and checks "address/len"; on failure, which part is wrong. */
function readCidr(text: string): Cidr | 'address' | 'prefix' {
  const slash = text.indexOf('/');
  const address = slash < 0 ? text : text.slice(0, slash);
  const family = isIP(address);
  if (family !== 4 && family !== 6) return 'address';
  const max = family === 4 ? 32 : 128;
  if (slash < 0) return { address, family, prefix: max };
  const lenText = text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(lenText)) return 'prefix';
  const prefix = Number(lenText);
  if (prefix > max) return 'prefix';
  return { address, family, prefix };
}

/** Parses "address/len" (or a bare address = host prefix); undefined when invalid. */
export function parseCidr(text: string): Cidr | undefined {
  const cidr = readCidr(text);
  return typeof cidr === 'string' ? undefined : cidr;
}

/**
 * A set of CIDRs (IPv4 and IPv6) on Node's own BlockList (no hand-written prefix matching).
 * The one CIDR parser and matcher of the collector: config validation, the exporter
 * allow-list and the operator sampling rules all go through here.
 */
export class CidrSet {
  private readonly list = new BlockList();

  /** `what` names an entry in the error thrown for an invalid one ("allow-list entry"). */
  constructor(cidrs: readonly string[], what: string) {
    for (const text of cidrs) {
      const cidr = readCidr(text);
      if (cidr === 'address') throw new Error(`${what} ${JSON.stringify(text)} is not an IPv4 or IPv6 address or prefix`);
      if (cidr === 'prefix') throw new Error(`${what} ${JSON.stringify(text)} has a bad prefix length`);
      this.list.addSubnet(cidr.address, cidr.prefix, cidr.family === 4 ? 'ipv4' : 'ipv6');
    }
  }

  /** True when `address` (IPv4 or IPv6 text) falls in one of the prefixes. */
  has(address: string): boolean {
    return this.list.check(address, isIPv4(address) ? 'ipv4' : 'ipv6');
  }
}

/** Exporter allow-list by CIDR. An empty list allows everyone. */
export class ExporterAllowList {
  private readonly set: CidrSet;
  readonly empty: boolean;

  constructor(cidrs: readonly string[]) {
    this.empty = cidrs.length === 0;
    this.set = new CidrSet(cidrs, 'allow-list entry');
  }

  allows(address: string): boolean {
    return this.empty || this.set.has(address);
  }
}

/** Dual-stack sockets report IPv4 peers as ::ffff:a.b.c.d; exporters are keyed by the IPv4 form. */
export function normalizeAddress(address: string): string {
  return address.startsWith('::ffff:') && isIPv4(address.slice(7)) ? address.slice(7) : address;
}
