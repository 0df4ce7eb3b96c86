import type { FlowRecord } from '../../decoders/record.js';
import { activityOf, communityOf } from '../../decoders/scitags/flowlabel.js';
import type { Registry } from '../registry/registry.js';
import type { TrafficClass as StoreTrafficClass } from '../store/types.js';
import type { AggregatorConfig } from '../aggregate/config.js';

/** The record's class in the `ingest` sense (a pair, or unmarked IPv6 / IPv4, or unknown). */
export type RecordClass = 'pair' | 'ipv6' | 'ipv4' | 'unknown';

/**
 * Which class a record counts under. A non-zero label is a pair even when the record did not
 * state its IP version (IE 31 exists only for IPv6). A record with neither label nor IP
 * version (a template with no address or version field) is `unknown`, reported in stats.
 */
export function classify(rec: FlowRecord): RecordClass {
  if (rec.flowLabel !== undefined && rec.flowLabel !== 0 && rec.ipVersion !== 4) return 'pair';
  if (rec.ipVersion === 6) return 'ipv6';
  if (rec.ipVersion === 4) return 'ipv4';
  return 'unknown';
}

/**
 * A "series code" is one number for (class, community, activity, NAT64), so the hot path keys
 * cells by numbers only. The base code:
 *   0 .. 32767  class 'scitags', pair kept as numbers: community * 64 + activity
 *   FOLDED      class 'scitags', unregistered pair folded (community = activity = null)
 *   IPV6 / IPV4 / UNKNOWN   the unmarked classes (community = activity = null)
 * and SERIES_NAT64 added when the record's IPv6 traffic is to or from a NAT64 prefix
 * (enrich/nat64.ts): the transition view's third share, orthogonal to the class (a marked
 * flow to a NAT64 address keeps its experiment).
 * The record -> class mapping is ingest's classify(), so `ingest` and the store agree.
 */
export const SERIES_FOLDED = 32768;
export const SERIES_IPV6 = 32769;
export const SERIES_IPV4 = 32770;
export const SERIES_UNKNOWN = 32771;
/** Number of base codes. */
export const SERIES_BASE = 32772;
/** Added to a base code for traffic to or from a NAT64 prefix. */
export const SERIES_NAT64 = SERIES_BASE;
/** Number of series codes: the multiplier when packing (link, series) into one key. */
export const SERIES_SPACE = 2 * SERIES_BASE;

/** The registered-or-kept pair of a code, or -1 when it is not a kept pair (FOLDED, unmarked). */
export function pairOf(series: number): number {
  const base = series >= SERIES_NAT64 ? series - SERIES_NAT64 : series;
  return base < SERIES_FOLDED ? base : -1;
}

/** The code with its pair folded (unregistered): FOLDED in place of the pair, NAT64 kept. */
export function foldPair(series: number): number {
  return series >= SERIES_NAT64 ? SERIES_NAT64 + SERIES_FOLDED : SERIES_FOLDED;
}

export interface SeriesInfo {
  trafficClass: StoreTrafficClass;
  community: number | null;
  activity: number | null;
  /** To or from a NAT64 prefix. */
  nat64: boolean;
}

/** Which unregistered pairs keep their numbers: a 512 x 64 table, or all of them. */
export class KeepPolicy {
  private readonly table: Uint8Array | undefined;
  private readonly all: boolean;

  constructor(keep: AggregatorConfig['keepUnregistered']) {
    this.all = keep === 'all';
    if (keep === 'all' || keep === 'none' || keep.length === 0) return;
    this.table = new Uint8Array(32768);
    for (const sel of keep) {
      if (sel.activity === undefined) this.table.fill(1, sel.community * 64, sel.community * 64 + 64);
      else this.table[sel.community * 64 + sel.activity] = 1;
    }
  }

  keeps(pair: number): boolean {
    return this.all || (this.table !== undefined && this.table[pair] === 1);
  }
}

/** What classification needs of the registry: whether a pair is registered. */
export type PairRegistry = Pick<Registry, 'isRegistered'>;

/**
 * Treats every pair as registered: where pairs must be kept as numbers and the registry is
 * applied later (decode workers, whose sums the main thread checks) or does not matter
 * (the warm-up's scratch aggregator).
 */
export const EVERY_PAIR_REGISTERED: PairRegistry = { isRegistered: () => true };

/**
 * Which pairs keep their numbers under a registry and a keep policy, as one table lookup:
 * the per-record question of the aggregator. A Registry is immutable (a refresh installs a
 * new object), so the table is rebuilt only when the registry passed in is another object.
 */
export class PairFilter {
  private registry: PairRegistry | undefined;
  private readonly kept = new Uint8Array(SERIES_FOLDED);

  constructor(private readonly keep: KeepPolicy) {}

  keeps(registry: PairRegistry, pair: number): boolean {
    if (registry !== this.registry) this.rebuild(registry);
    return this.kept[pair] === 1;
  }

  private rebuild(registry: PairRegistry): void {
    for (let pair = 0; pair < SERIES_FOLDED; pair++) {
      this.kept[pair] = registry.isRegistered(pair >>> 6, pair & 63) || this.keep.keeps(pair) ? 1 : 0;
    }
    this.registry = registry;
  }
}

/** The series a record counts under, given the registry in force (rec.nat64 set by enrichment). */
export function seriesOf(rec: FlowRecord, registry: PairRegistry, filter: PairFilter): number {
  const label = rec.flowLabel;
  const nat64 = rec.nat64 ? SERIES_NAT64 : 0;
  // classify(), written out: this runs once per record.
  if (label !== undefined && label !== 0 && rec.ipVersion !== 4) {
    const pair = communityOf(label) * 64 + activityOf(label);
    return nat64 + (filter.keeps(registry, pair) ? pair : SERIES_FOLDED);
  }
  return nat64 + (rec.ipVersion === 6 ? SERIES_IPV6 : rec.ipVersion === 4 ? SERIES_IPV4 : SERIES_UNKNOWN);
}

/** The series an over-the-cap record is folded into: its class (and NAT64 side), without the pair. */
export function overflowSeries(series: number): number {
  return pairOf(series) >= 0 ? foldPair(series) : series;
}

/** The code of a stored row's class, pair and NAT64 flag (seeding a restart from the store). */
export function seriesOfRow(row: {
  trafficClass: StoreTrafficClass;
  community: number | null;
  activity: number | null;
  nat64?: boolean;
}): number {
  const base =
    row.trafficClass === 'scitags'
      ? row.community === null || row.activity === null
        ? SERIES_FOLDED
        : row.community * 64 + row.activity
      : row.trafficClass === 'ipv6_unmarked'
        ? SERIES_IPV6
        : row.trafficClass === 'ipv4'
          ? SERIES_IPV4
          : SERIES_UNKNOWN;
  return row.nat64 === true ? SERIES_NAT64 + base : base;
}

export function seriesInfo(series: number): SeriesInfo {
  const nat64 = series >= SERIES_NAT64;
  const base = nat64 ? series - SERIES_NAT64 : series;
  if (base < SERIES_FOLDED) return { trafficClass: 'scitags', community: base >>> 6, activity: base & 63, nat64 };
  switch (base) {
    case SERIES_FOLDED:
      return { trafficClass: 'scitags', community: null, activity: null, nat64 };
    case SERIES_IPV6:
      return { trafficClass: 'ipv6_unmarked', community: null, activity: null, nat64 };
    case SERIES_IPV4:
      return { trafficClass: 'ipv4', community: null, activity: null, nat64 };
    default:
      return { trafficClass: 'unknown', community: null, activity: null, nat64 };
  }
}
