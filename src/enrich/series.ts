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
 * A "series code" is one number for (class, community, activity), so the hot path keys cells
 * by numbers only:
 *   0 .. 32767  class 'scitags', pair kept as numbers: community * 64 + activity
 *   FOLDED      class 'scitags', unregistered pair folded (community = activity = null)
 *   IPV6 / IPV4 / UNKNOWN   the unmarked classes (community = activity = null)
 * The record -> class mapping is ingest's classify(), so `ingest` and the store agree.
 */
export const SERIES_FOLDED = 32768;
export const SERIES_IPV6 = 32769;
export const SERIES_IPV4 = 32770;
export const SERIES_UNKNOWN = 32771;
/** Number of series codes: the multiplier when packing (link, series) into one key. */
export const SERIES_SPACE = 32772;

export interface SeriesInfo {
  trafficClass: StoreTrafficClass;
  community: number | null;
  activity: number | null;
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

/** The series a record counts under, given the registry in force. */
export function seriesOf(rec: FlowRecord, registry: PairRegistry, filter: PairFilter): number {
  const label = rec.flowLabel;
  // classify(), written out: this runs once per record.
  if (label !== undefined && label !== 0 && rec.ipVersion !== 4) {
    const pair = communityOf(label) * 64 + activityOf(label);
    return filter.keeps(registry, pair) ? pair : SERIES_FOLDED;
  }
  return rec.ipVersion === 6 ? SERIES_IPV6 : rec.ipVersion === 4 ? SERIES_IPV4 : SERIES_UNKNOWN;
}

/** The series an over-the-cap record is folded into: its class, without the pair. */
export function overflowSeries(series: number): number {
  return series < SERIES_FOLDED ? SERIES_FOLDED : series;
}

export function seriesInfo(series: number): SeriesInfo {
  if (series < SERIES_FOLDED) return { trafficClass: 'scitags', community: series >>> 6, activity: series & 63 };
  switch (series) {
    case SERIES_FOLDED:
      return { trafficClass: 'scitags', community: null, activity: null };
    case SERIES_IPV6:
      return { trafficClass: 'ipv6_unmarked', community: null, activity: null };
    case SERIES_IPV4:
      return { trafficClass: 'ipv4', community: null, activity: null };
    default:
      return { trafficClass: 'unknown', community: null, activity: null };
  }
}
