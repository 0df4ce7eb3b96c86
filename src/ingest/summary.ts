import type { FlowRecord } from '../../decoders/record.js';
import { activityOf, communityOf } from '../../decoders/scitags/flowlabel.js';
import { classify } from '../enrich/series.js';
import type { Registry } from '../registry/registry.js';

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

function add(c: Counts, rec: FlowRecord): void {
  c.records += 1;
  c.packets += rec.packets * rec.samplingRate;
  c.bytes += rec.bytes * rec.samplingRate;
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

  addRecord(rec: FlowRecord): void {
    switch (classify(rec)) {
      case 'pair': {
        const label = rec.flowLabel!;
        const key = communityOf(label) * 64 + activityOf(label);
        let c = this.pairs.get(key);
        if (!c) this.pairs.set(key, (c = zero()));
        add(c, rec);
        break;
      }
      case 'ipv6':
        add(this.ipv6, rec);
        break;
      case 'ipv4':
        add(this.ipv4, rec);
        break;
      case 'unknown':
        add(this.unknown, rec);
        break;
    }
  }

  pairTotals(registry: Registry): PairTotals[] {
    return [...this.pairs.entries()]
      .sort((a, b) => a[0] - b[0])
      .map(([key, c]) => ({ ...namedPair(registry, Math.floor(key / 64), key % 64), ...c }));
  }
}
