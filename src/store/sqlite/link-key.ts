/**
 * A link (exporter, ifIndex) as one group value, since TrafficSeries.group holds scalars:
 * "192.0.2.1#7", "2001:db8::1#7", and "192.0.2.1#-" when the exporter reported no interface.
 * '#' occurs in no IPv4 or IPv6 address (zone ids use '%'), so the split is unambiguous. The
 * API resolves the pair to a configured link name. Any store grouping by link should use this.
 */
export function formatLinkKey(exporter: string, ifIndex: number | null): string {
  return `${exporter}#${ifIndex === null ? '-' : ifIndex}`;
}

export function parseLinkKey(key: string): { exporter: string; ifIndex: number | null } | undefined {
  const hash = key.lastIndexOf('#');
  if (hash <= 0) return undefined;
  const rest = key.slice(hash + 1);
  if (rest === '-') return { exporter: key.slice(0, hash), ifIndex: null };
  if (!/^\d{1,10}$/.test(rest)) return undefined;
  return { exporter: key.slice(0, hash), ifIndex: Number(rest) };
}
