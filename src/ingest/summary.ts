import type { Registry } from '../registry/registry.js';
import type { TrafficRow } from '../store/types.js';

/**
 * Totals over a set of records in the `ingest` document shape (DESIGN.md, "Contract used by
 * the acceptance checks"): every decoded non-zero IPv6 label as a pair, registered or not;
 * IPv6 without a usable label and all IPv4 as unmarked. Packets and bytes are scaled by the
 * sampling rate in force for each record; `records` is not.
 */
export interface Counts {
  records: number;
  packets: number;
  bytes: number;
}

export interface PairTotals extends Counts {
  community: number;
  activity: number;
  communityName: string | null;
  activityName: string | null;
  registered: boolean;
}

function zero(): Counts {
  return { records: 0, packets: 0, bytes: 0 };
}

/** A pair with its registry names (null where the registry has none) and whether it is registered. */
export function namedPair(registry: Registry, community: number, activity: number): Omit<PairTotals, keyof Counts> {
  const names = registry.names(community, activity);
  return {
    community,
    activity,
    communityName: names.communityName ?? null,
    activityName: names.activityName ?? null,
    registered: names.registered,
  };
}

export class TrafficSummary {
  /** Keyed by community * 64 + activity (both fit: 9 + 6 bits). */
  private readonly pairs = new Map<number, Counts>();
  readonly ipv6 = zero();
  readonly ipv4 = zero();
  readonly unknown = zero();

  /** Adds an aggregated row (the daemon's path: the rows the aggregator writes to a store). */
  addRow(row: TrafficRow): void {
    let c: Counts;
    if (row.trafficClass === 'scitags') {
      // `ingest` keeps every pair (keepUnregistered 'all'), so community and activity are set.
      const key = row.community! * 64 + row.activity!;
      let p = this.pairs.get(key);
      if (!p) this.pairs.set(key, (p = zero()));
      c = p;
    } else c = row.trafficClass === 'ipv6_unmarked' ? this.ipv6 : row.trafficClass === 'ipv4' ? this.ipv4 : this.unknown;
    c.records += row.records;
    c.packets += row.packets;
    c.bytes += row.bytes;
  }

  pairTotals(registry: Registry): PairTotals[] {
    return [...this.pairs.entries()]
      .sort((a, b) => a[0] - b[0])
      .map(([key, c]) => ({ ...namedPair(registry, Math.floor(key / 64), key % 64), ...c }));
  }
}
