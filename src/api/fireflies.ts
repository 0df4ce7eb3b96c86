import { DURATION_BINS, THROUGHPUT_BINS } from '../fireflies/histogram.js';
import type { Registry } from '../registry/registry.js';
import { isFireflyStore, type FireflyGroupByDimension, type FireflyQuery, type FireflySums } from '../store/types.js';
import { siteList, splitList } from './params.js';
import { commonActivityName, resolveActivities, resolveCommunities, resolveRange } from './traffic.js';
import type { ApiDeps, ApiLimits } from './types.js';

/** Query string of GET /api/v1/fireflies after JSON-schema validation (all strings). */
export interface FireflyParams {
  from?: string;
  to?: string;
  step?: string;
  groupBy?: string;
  community?: string;
  activity?: string;
  ipVersion?: string;
  srcSite?: string;
  dstSite?: string;
}

export const FIREFLY_GROUP_BY_DIMENSIONS: readonly FireflyGroupByDimension[] = ['community', 'activity', 'ipVersion', 'srcSite', 'dstSite'];
const alt = (xs: readonly string[]) => `(${xs.join('|')})`;
export const FIREFLY_GROUP_BY_PATTERN = `^(${alt(FIREFLY_GROUP_BY_DIMENSIONS)}(,${alt(FIREFLY_GROUP_BY_DIMENSIONS)})*)?$`;
export const IP_VERSION_PATTERN = '^(4|6)(,(4|6))?$';

/** Sums of a step, a series or the whole answer, with the means and rates derived from them. */
export interface FireflyTotalsOut {
  flowsStarted: number;
  flowsEnded: number;
  flowsExpired: number;
  flowsWithoutStart: number;
  /** Ended flows: bytes in both directions and summed durations. */
  bytes: number;
  durationSeconds: number;
  /** durationSeconds / flowsEnded; null without ended flows. */
  durationMeanSeconds: number | null;
  /** bytes * 8 / the step (points) or the range (totals). */
  bitsPerSecond: number;
  /** Over ended flows with a throughput (usage and a duration); null when none had one. */
  throughputMeanBitsPerSecond: number | null;
  throughputMaxBitsPerSecond: number | null;
  /** Over ended flows with an rtt (flowd-go netlink); null when none had one. */
  rttMeanMs: number | null;
  rttMaxMs: number | null;
  /** Over ended flows with a delivery rate (flowd-go netlink deliveryRate, bytes/s x 8); null when none had one. */
  deliveryRateMeanBitsPerSecond: number | null;
  deliveryRateMaxBitsPerSecond: number | null;
  retransmits: number;
  /** Ended flows per bin of the answer's `bins.durationSeconds` / `bins.throughputBitsPerSecond`. */
  durationHistogram: number[];
  throughputHistogram: number[];
}

export interface FireflyPointOut extends FireflyTotalsOut {
  time: string;
  timeMs: number;
}

export interface FireflySeriesOut {
  group: Record<string, string | number>;
  points: FireflyPointOut[];
  totals: FireflyTotalsOut;
}

export interface FireflyResponse {
  from: string;
  to: string;
  fromMs: number;
  toMs: number;
  stepSeconds: number;
  bucketSeconds: number;
  groupBy: FireflyGroupByDimension[];
  /** Exclusive upper bounds of the histogram bins; null: no bound (the last bin). */
  bins: { durationSeconds: (number | null)[]; throughputBitsPerSecond: (number | null)[] };
  filters: {
    community?: { id: number; name: string | null }[];
    activity?: { id: number; name: string | null }[];
    ipVersion?: (4 | 6)[];
    srcSite?: string[];
    dstSite?: string[];
  };
  series: FireflySeriesOut[];
  totals: FireflyTotalsOut;
  omittedGroups: number;
}

/** The store cannot answer (no firefly support, or it failed): the route says 503. */
export class FireflyStoreUnavailable extends Error {}

function totalsOut(s: FireflySums, seconds: number): FireflyTotalsOut {
  return {
    flowsStarted: s.flowsStarted,
    flowsEnded: s.flowsEnded,
    flowsExpired: s.flowsExpired,
    flowsWithoutStart: s.flowsWithoutStart,
    bytes: s.bytes,
    durationSeconds: s.durationSeconds,
    durationMeanSeconds: s.flowsEnded > 0 ? s.durationSeconds / s.flowsEnded : null,
    bitsPerSecond: (s.bytes * 8) / seconds,
    throughputMeanBitsPerSecond: s.throughputCount > 0 ? s.throughputSum / s.throughputCount : null,
    throughputMaxBitsPerSecond: s.throughputMax,
    rttMeanMs: s.rttCount > 0 ? s.rttSum / s.rttCount : null,
    rttMaxMs: s.rttMax,
    deliveryRateMeanBitsPerSecond: s.deliveryRateCount > 0 ? s.deliveryRateSum / s.deliveryRateCount : null,
    deliveryRateMaxBitsPerSecond: s.deliveryRateMax,
    retransmits: s.retransmits,
    durationHistogram: s.durationHistogram,
    throughputHistogram: s.throughputHistogram,
  };
}

/**
 * Names for a store group: communityName and activityName are the registry's names when it
 * knows the ids, else the numbers as text (firefly ids are declared by the host, so an
 * unregistered one is still a meaningful, bounded key, never folded).
 */
function decorateGroup(
  reg: Registry,
  g: Record<string, string | number>,
  groupBy: FireflyGroupByDimension[],
): Record<string, string | number> {
  const out: Record<string, string | number> = {};
  const community = typeof g['community'] === 'number' ? g['community'] : undefined;
  for (const dim of groupBy) {
    const v = g[dim]!;
    out[dim] = v;
    if (dim === 'community') out['communityName'] = reg.communityName(v as number) ?? String(v);
    if (dim === 'activity') {
      const name = community !== undefined ? reg.activityName(community, v as number) : commonActivityName(reg, v as number);
      out['activityName'] = name ?? String(v);
    }
  }
  return out;
}

/** GET /api/v1/fireflies after schema validation: like trafficQuery, over the firefly rows. */
export async function fireflyQuery(deps: ApiDeps, limits: ApiLimits, q: FireflyParams): Promise<FireflyResponse> {
  const store = deps.store;
  const reg = deps.registry.registry;
  const { fromMs, toMs, rangeSeconds, stepSeconds, bucket } = resolveRange(deps, limits, q);
  const asked = (q.groupBy === undefined ? ['community', 'activity'] : splitList(q.groupBy)) as FireflyGroupByDimension[];
  const groupBy = FIREFLY_GROUP_BY_DIMENSIONS.filter((d) => asked.includes(d));

  const query: FireflyQuery = { fromMs, toMs, stepSeconds, groupBy };
  const filters: FireflyResponse['filters'] = {};
  if (q.community !== undefined) {
    filters.community = resolveCommunities(reg, q.community);
    query.community = filters.community.map((c) => c.id);
  }
  if (q.activity !== undefined) {
    filters.activity = resolveActivities(reg, q.activity, query.community);
    query.activity = filters.activity.map((a) => a.id);
  }
  if (q.ipVersion !== undefined) {
    filters.ipVersion = splitList(q.ipVersion).map((v) => (v === '6' ? 6 : 4));
    query.ipVersion = filters.ipVersion;
  }
  if (q.srcSite !== undefined) query.srcSite = filters.srcSite = siteList(q.srcSite, 'srcSite');
  if (q.dstSite !== undefined) query.dstSite = filters.dstSite = siteList(q.dstSite, 'dstSite');

  if (!isFireflyStore(store)) throw new FireflyStoreUnavailable(`the ${store.kind} store does not keep fireflies`);
  const result = await store.queryFireflies(query);
  // The store orders series largest first (bytes, ended, started flows), ties by group.
  const series = result.series.map((s) => ({
    group: decorateGroup(reg, s.group, groupBy),
    points: s.points.map(({ timeMs, ...p }) => ({ time: new Date(timeMs).toISOString(), timeMs, ...totalsOut(p, stepSeconds) })),
    totals: totalsOut(s.totals, rangeSeconds),
  }));
  const kept = series.slice(0, limits.maxGroups);
  return {
    from: new Date(fromMs).toISOString(),
    to: new Date(toMs).toISOString(),
    fromMs,
    toMs,
    stepSeconds,
    bucketSeconds: bucket,
    groupBy,
    bins: { durationSeconds: DURATION_BINS.map((b) => b.upper), throughputBitsPerSecond: THROUGHPUT_BINS.map((b) => b.upper) },
    filters,
    series: kept,
    totals: totalsOut(result.totals, rangeSeconds),
    omittedGroups: series.length - kept.length,
  };
}
