import { isFireflyStore, isSiteTrafficStore, type FireflyGroupByDimension, type SiteGroupByDimension } from '../store/types.js';
import { FireflyStoreUnavailable } from './fireflies.js';
import { BadParameter, filterList, normaliseAddress, siteList, splitList } from './params.js';
import { commonActivityName, resolveActivities, resolveCommunities, resolveRange } from './traffic.js';
import type { ApiDeps, ApiLimits } from './types.js';

/** Query string of GET /api/v1/correlation after JSON-schema validation. */
export interface CorrelationParams {
  from?: string;
  to?: string;
  step?: string;
  groupBy?: string;
  community?: string;
  activity?: string;
  srcSite?: string;
  dstSite?: string;
  exporter?: string;
}

/** The dimensions both views have: the experiment and activity, and the site pair. */
export const CORRELATION_GROUP_BY: readonly ('community' | 'activity' | 'srcSite' | 'dstSite')[] = [
  'community',
  'activity',
  'srcSite',
  'dstSite',
];
const alt = `(${CORRELATION_GROUP_BY.join('|')})`;
export const CORRELATION_GROUP_BY_PATTERN = `^(${alt}(,${alt})*)?$`;

export interface CorrelationSums {
  /** Bytes of the flows whose end firefly arrived (both directions, as the hosts reported them). */
  fireflyBytes: number;
  fireflyFlowsEnded: number;
  /** Flow-label marked bytes and packets the exporters saw between the same sites (sampling-scaled). */
  flowLabelBytes: number;
  flowLabelPackets: number;
}

export interface CorrelationOut extends CorrelationSums {
  /** flowLabelBytes / fireflyBytes: how much of what the hosts reported this network saw marked; null without firefly bytes. */
  visibleShare: number | null;
}

export interface CorrelationResponse {
  from: string;
  to: string;
  fromMs: number;
  toMs: number;
  stepSeconds: number;
  bucketSeconds: number;
  groupBy: string[];
  series: {
    group: Record<string, string | number | null>;
    points: (CorrelationOut & { time: string; timeMs: number })[];
    totals: CorrelationOut;
  }[];
  totals: CorrelationOut;
  omittedGroups: number;
}

const zero = (): CorrelationSums => ({ fireflyBytes: 0, fireflyFlowsEnded: 0, flowLabelBytes: 0, flowLabelPackets: 0 });
const out = (s: CorrelationSums): CorrelationOut => ({ ...s, visibleShare: s.fireflyBytes > 0 ? s.flowLabelBytes / s.fireflyBytes : null });

/**
 * GET /api/v1/correlation: fireflies (what transfer hosts said they moved, per experiment,
 * activity and site pair) beside the flow-label traffic the exporters saw for the same keys
 * (the site-pair view, class scitags). Both come from the store, per step; the answer joins
 * them by group. Flow-label bytes are summed over the exporters asked for (all by default):
 * a flow crossing two exporting routers counts at each, so pick the border routers with
 * `exporter` for a one-to-one comparison. Unregistered pairs are folded in the flow-label view
 * (community null), so only registered experiments line up.
 */
export async function correlationQuery(deps: ApiDeps, limits: ApiLimits, q: CorrelationParams): Promise<CorrelationResponse> {
  const store = deps.store;
  const reg = deps.registry.registry;
  const { fromMs, toMs, stepSeconds, bucket } = resolveRange(deps, limits, q);
  const asked = q.groupBy === undefined ? ['community'] : splitList(q.groupBy);
  const groupBy = CORRELATION_GROUP_BY.filter((d) => asked.includes(d));

  const community = q.community === undefined ? undefined : resolveCommunities(reg, q.community).map((c) => c.id);
  const activity = q.activity === undefined ? undefined : resolveActivities(reg, q.activity, community).map((a) => a.id);
  const srcSite = q.srcSite === undefined ? undefined : siteList(q.srcSite, 'srcSite');
  const dstSite = q.dstSite === undefined ? undefined : siteList(q.dstSite, 'dstSite');
  const exporter =
    q.exporter === undefined
      ? undefined
      : filterList(q.exporter, 'exporter').map((e) => {
          const a = normaliseAddress(e);
          if (a === undefined) throw new BadParameter('exporter', `${JSON.stringify(e)} is not an IPv4 or IPv6 address`);
          return a;
        });
  const filters = {
    ...(community ? { community } : {}),
    ...(activity ? { activity } : {}),
    ...(srcSite ? { srcSite } : {}),
    ...(dstSite ? { dstSite } : {}),
  };

  if (!isFireflyStore(store)) throw new FireflyStoreUnavailable(`the ${store.kind} store does not keep fireflies`);
  if (!isSiteTrafficStore(store)) throw new FireflyStoreUnavailable(`the ${store.kind} store keeps no site-pair sums`);
  const [fireflies, marked] = await Promise.all([
    store.queryFireflies({ fromMs, toMs, stepSeconds, groupBy: groupBy as FireflyGroupByDimension[], ...filters }),
    store.querySiteTraffic({
      fromMs,
      toMs,
      stepSeconds,
      groupBy: groupBy as SiteGroupByDimension[],
      trafficClass: ['scitags'],
      ...filters,
      ...(exporter ? { exporter } : {}),
    }),
  ]);

  const groups = new Map<
    string,
    { group: Record<string, string | number | null>; byTime: Map<number, CorrelationSums>; totals: CorrelationSums }
  >();
  const at = (group: Record<string, string | number | null>, timeMs: number | undefined): CorrelationSums => {
    const values: Record<string, string | number | null> = {};
    for (const d of groupBy) values[d] = group[d] ?? null;
    const key = JSON.stringify(values);
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { group: values, byTime: new Map(), totals: zero() }));
    if (timeMs === undefined) return g.totals;
    let p = g.byTime.get(timeMs);
    if (!p) g.byTime.set(timeMs, (p = zero()));
    return p;
  };
  const totals = zero();
  for (const s of fireflies.series) {
    for (const p of s.points) {
      const into = at(s.group, p.timeMs);
      into.fireflyBytes += p.bytes;
      into.fireflyFlowsEnded += p.flowsEnded;
    }
    const t = at(s.group, undefined);
    t.fireflyBytes += s.totals.bytes;
    t.fireflyFlowsEnded += s.totals.flowsEnded;
  }
  totals.fireflyBytes = fireflies.totals.bytes;
  totals.fireflyFlowsEnded = fireflies.totals.flowsEnded;
  for (const s of marked.series) {
    for (const p of s.points) {
      const into = at(s.group, p.timeMs);
      into.flowLabelBytes += p.bytes;
      into.flowLabelPackets += p.packets;
    }
    const t = at(s.group, undefined);
    t.flowLabelBytes += s.totals.bytes;
    t.flowLabelPackets += s.totals.packets;
  }
  totals.flowLabelBytes = marked.totals.bytes;
  totals.flowLabelPackets = marked.totals.packets;

  const series = [...groups.values()]
    .map((g) => {
      const named: Record<string, string | number | null> = {};
      const c = g.group['community'];
      for (const d of groupBy) {
        const v = g.group[d] ?? null;
        named[d] = v;
        if (d === 'community') named['communityName'] = typeof v === 'number' ? (reg.communityName(v) ?? String(v)) : 'unregistered';
        if (d === 'activity') {
          named['activityName'] =
            typeof v !== 'number'
              ? 'unregistered'
              : ((typeof c === 'number' ? reg.activityName(c, v) : commonActivityName(reg, v)) ?? String(v));
        }
      }
      return {
        group: named,
        points: [...g.byTime.entries()]
          .sort(([a], [b]) => a - b)
          .map(([timeMs, p]) => ({ time: new Date(timeMs).toISOString(), timeMs, ...out(p) })),
        totals: out(g.totals),
      };
    })
    .sort(
      (a, b) =>
        Math.max(b.totals.fireflyBytes, b.totals.flowLabelBytes) - Math.max(a.totals.fireflyBytes, a.totals.flowLabelBytes) ||
        JSON.stringify(a.group).localeCompare(JSON.stringify(b.group)),
    );
  const kept = series.slice(0, limits.maxGroups);
  return {
    from: new Date(fromMs).toISOString(),
    to: new Date(toMs).toISOString(),
    fromMs,
    toMs,
    stepSeconds,
    bucketSeconds: bucket,
    groupBy,
    series: kept,
    totals: out(totals),
    omittedGroups: series.length - kept.length,
  };
}
