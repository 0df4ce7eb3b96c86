import { BlockList, isIPv4, isIPv6 } from 'node:net';

/**
 * Exporter allow-list by CIDR, on Node's own BlockList (no hand-written prefix matching).
 * An empty list allows everyone.
 */
export class ExporterAllowList {
  private readonly list = new BlockList();
  readonly empty: boolean;

  constructor(cidrs: readonly string[]) {
    this.empty = cidrs.length === 0;
    for (const cidr of cidrs) {
      const [addr = '', bitsText] = cidr.split('/');
      const type = isIPv4(addr) ? 'ipv4' : isIPv6(addr) ? 'ipv6' : undefined;
      if (!type) throw new Error(`allow-list entry ${JSON.stringify(cidr)} is not an IPv4 or IPv6 address or prefix`);
      const max = type === 'ipv4' ? 32 : 128;
      const bits = bitsText === undefined ? max : Number(bitsText);
      if (!Number.isInteger(bits) || bits < 0 || bits > max) throw new Error(`allow-list entry ${JSON.stringify(cidr)} has a bad prefix length`);
      this.list.addSubnet(addr, bits, type);
    }
  }

  allows(address: string): boolean {
    if (this.empty) return true;
    return this.list.check(address, isIPv4(address) ? 'ipv4' : 'ipv6');
  }
}

/** Dual-stack sockets report IPv4 peers as ::ffff:a.b.c.d; exporters are keyed by the IPv4 form. */
export function normalizeAddress(address: string): string {
  return address.startsWith('::ffff:') && isIPv4(address.slice(7)) ? address.slice(7) : address;
}
