import type { Registry } from '../registry/registry.js';
import { parseLinkKey as parseStoreLinkKey } from '../store/sqlite/link-key.js';
import {
  type GroupByDimension,
  isSiteTrafficStore,
  type SiteGroupByDimension,
  type SiteTrafficQuery,
  type TrafficClass,
  type TrafficQuery,
  type TrafficQueryResult,
} from '../store/types.js';
import {
  BadParameter,
  filterList,
  GROUP_BY_DIMENSIONS,
  linkKey,
  normaliseAddress,
  parseBoundedTime,
  parseLinkKey,
  parseStep,
  type SiteDimension,
  SITE_DIMENSIONS,
  siteList,
  splitList,
  type TrafficGroupBy,
} from './params.js';
import { queryWithProvisional } from './provisional.js';
import type { ApiDeps, ApiLimits } from './types.js';

/** Query string of GET /api/v1/traffic after JSON-schema validation (all strings). */
export interface TrafficParams {
  from?: string;
  to?: string;
  step?: string;
  groupBy?: string;
  community?: string;
  activity?: string;
  link?: string;
  exporter?: string;
  class?: string;
  srcSite?: string;
  dstSite?: string;
  site?: string;
  provisional?: string;
}

export const UNREGISTERED = 'unregistered';
/** Longest step accepted (366 days). */
export const MAX_STEP_SECONDS = 366 * 86400;

export interface TrafficTotalsOut {
  bytes: number;
  packets: number;
  records: number;
  /** Average over the whole range. */
  bitsPerSecond: number;
  packetsPerSecond: number;
}

export interface TrafficPointOut {
  time: string;
  timeMs: number;
  bytes: number;
  packets: number;
  records: number;
  bitsPerSecond: number;
  packetsPerSecond: number;
  /** With provisional=true: the step holds a bucket the store does not have yet (still open, or changed since written). */
  provisional?: true;
}

export interface TrafficSeriesOut {
  group: Record<string, string | number | null>;
  points: TrafficPointOut[];
  totals: TrafficTotalsOut;
}

export interface TrafficResponse {
  from: string;
  to: string;
  fromMs: number;
  toMs: number;
  stepSeconds: number;
  bucketSeconds: number;
  groupBy: TrafficGroupBy[];
  filters: {
    community?: { id: number; name: string | null }[];
    activity?: { id: number; name: string | null }[];
    link?: { link: string; name: string | null }[];
    exporter?: string[];
    class?: TrafficClass[];
    srcSite?: string[];
    dstSite?: string[];
    site?: string[];
  };
  series: TrafficSeriesOut[];
  totals: TrafficTotalsOut;
  /** Series left out because of the group limit (smallest by bytes first). */
  omittedGroups: number;
}

/** Activity name for an id when every experiment defining it agrees (1 default, 2 perfSONAR). */
export function commonActivityName(reg: Registry, activity: number): string | null {
  const names = new Set<string>();
  for (const exp of reg.document.experiments) {
    const a = exp.activities.find((x) => x.activityId === activity);
    if (a) names.add(a.activityName);
  }
  return names.size === 1 ? [...names][0]! : null;
}

export function resolveCommunities(reg: Registry, text: string): { id: number; name: string | null }[] {
  return filterList(text, 'community').map((item) => {
    if (/^\d+$/.test(item)) {
      const id = Number(item);
      if (id > 511) throw new BadParameter('community', `experiment id ${item} is out of range 0..511`);
      return { id, name: reg.communityName(id) ?? null };
    }
    const lower = item.toLowerCase();
    const exp = reg.document.experiments.find((e) => e.expName.toLowerCase() === lower);
    if (!exp)
      throw new BadParameter(
        'community',
        `unknown experiment ${JSON.stringify(item)}: not in the registry (give a numeric id for unregistered ones)`,
      );
    return { id: exp.expId, name: exp.expName };
  });
}

export function resolveActivities(reg: Registry, text: string, communities: number[] | undefined): { id: number; name: string | null }[] {
  const out: { id: number; name: string | null }[] = [];
  for (const item of filterList(text, 'activity')) {
    if (/^\d+$/.test(item)) {
      const id = Number(item);
      if (id > 63) throw new BadParameter('activity', `activity id ${item} is out of range 0..63`);
      out.push({ id, name: commonActivityName(reg, id) });
      continue;
    }
    const lower = item.toLowerCase();
    const ids = new Map<number, string>();
    for (const exp of reg.document.experiments) {
      if (communities && !communities.includes(exp.expId)) continue;
      for (const a of exp.activities)
        if (a.activityName.toLowerCase() === lower && !ids.has(a.activityId)) ids.set(a.activityId, a.activityName);
    }
    if (ids.size === 0) {
      throw new BadParameter(
        'activity',
        `unknown activity ${JSON.stringify(item)}: not in the registry${communities ? ' for the experiments given' : ''} (give a numeric id for unregistered ones)`,
      );
    }
    for (const [id, name] of [...ids].sort((a, b) => a[0] - b[0])) out.push({ id, name });
  }
  // Dedupe by id, keeping the first.
  return out.filter((x, i) => out.findIndex((y) => y.id === x.id) === i);
}

function resolveLinks(deps: ApiDeps, text: string): { exporter: string; ifIndex: number; key: string; name: string | null }[] {
  return filterList(text, 'link').map((item) => {
    const configured = deps.links.find((l) => l.name === item) ?? deps.links.find((l) => l.name.toLowerCase() === item.toLowerCase());
    if (configured) {
      return {
        exporter: configured.exporter,
        ifIndex: configured.ifIndex,
        key: linkKey(configured.exporter, configured.ifIndex),
        name: configured.name,
      };
    }
    const k = parseLinkKey(item);
    if (!k) {
      const names = deps.links.map((l) => l.name);
      throw new BadParameter(
        'link',
        `unknown link ${JSON.stringify(item)}: give a configured link name${names.length ? ` (${names.join(', ')})` : ''} or exporter:ifIndex (192.0.2.1:7, [2001:db8::1]:7)`,
      );
    }
    return { ...k, key: linkKey(k.exporter, k.ifIndex), name: linkName(deps, k.exporter, k.ifIndex) };
  });
}

function linkName(deps: ApiDeps, exporter: string, ifIndex: number): string | null {
  const c = deps.links.find((l) => l.exporter === exporter && l.ifIndex === ifIndex);
  if (c) return c.name;
  const learned = deps.learnedInterfaces?.().find((l) => l.exporter === exporter && l.ifIndex === ifIndex);
  return learned?.name ?? null;
}

function totalsOut(t: { bytes: number; packets: number; records: number }, seconds: number): TrafficTotalsOut {
  return {
    bytes: t.bytes,
    packets: t.packets,
    records: t.records,
    bitsPerSecond: (t.bytes * 8) / seconds,
    packetsPerSecond: t.packets / seconds,
  };
}

/** Adds names to a store group: communityName, activityName ("unregistered" for folded pairs), linkName. */
function decorateGroup(
  deps: ApiDeps,
  reg: Registry,
  g: Record<string, string | number | null>,
  groupBy: readonly TrafficGroupBy[],
): Record<string, string | number | null> {
  const out: Record<string, string | number | null> = {};
  const cls = g['class'];
  const marked = cls === undefined || cls === 'scitags';
  const community = typeof g['community'] === 'number' ? g['community'] : null;
  for (const dim of groupBy) {
    const v = g[dim] ?? null;
    switch (dim) {
      case 'community':
        out['community'] = v;
        out['communityName'] = community !== null ? (reg.communityName(community) ?? UNREGISTERED) : marked ? UNREGISTERED : null;
        break;
      case 'activity': {
        out['activity'] = v;
        let name: string | null;
        if (typeof v !== 'number') name = marked ? UNREGISTERED : null;
        else if (groupBy.includes('community')) name = community !== null ? (reg.activityName(community, v) ?? UNREGISTERED) : UNREGISTERED;
        else name = commonActivityName(reg, v);
        out['activityName'] = name;
        break;
      }
      case 'link': {
        // Stores give "exporter#ifIndex" ("exporter#-": no interface reported); accept "exporter:ifIndex" too.
        const k = typeof v === 'string' ? (parseStoreLinkKey(v) ?? parseLinkKey(v)) : undefined;
        if (!k) {
          Object.assign(out, { link: v, linkName: null, linkExporter: null, linkIfIndex: null });
          break;
        }
        out['link'] = linkKey(k.exporter, k.ifIndex);
        out['linkName'] = k.ifIndex === null ? null : linkName(deps, k.exporter, k.ifIndex);
        out['linkExporter'] = k.exporter;
        out['linkIfIndex'] = k.ifIndex;
        break;
      }
      default:
        out[dim] = v;
    }
  }
  return out;
}

/**
 * from, to and step of a query (GET /api/v1/traffic, /api/v1/fireflies): times within the
 * stores' range, `to` after `from`, a step that is a multiple of the bucket width and keeps
 * the points within the limit (default: the smallest such multiple).
 */
export function resolveRange(
  deps: Pick<ApiDeps, 'now' | 'bucketSeconds'>,
  limits: ApiLimits,
  q: { from?: string; to?: string; step?: string },
): { fromMs: number; toMs: number; rangeSeconds: number; stepSeconds: number; bucket: number } {
  const nowMs = deps.now();
  const fromMs = parseBoundedTime(q.from ?? 'now-1h', nowMs, 'from');
  const toMs = parseBoundedTime(q.to ?? 'now', nowMs, 'to');
  if (toMs <= fromMs) {
    throw new BadParameter(
      q.to === undefined ? 'from' : 'to',
      `must be later than from (from ${new Date(fromMs).toISOString()}, to ${new Date(toMs).toISOString()})`,
    );
  }
  const rangeSeconds = (toMs - fromMs) / 1000;
  const bucket = deps.bucketSeconds;
  let stepSeconds: number;
  if (q.step !== undefined) {
    stepSeconds = parseStep(q.step);
    if (stepSeconds < 1) throw new BadParameter('step', 'must be >= 1 second');
    if (stepSeconds > MAX_STEP_SECONDS) throw new BadParameter('step', `must be at most ${MAX_STEP_SECONDS / 86400} days`);
    if (stepSeconds % bucket !== 0) throw new BadParameter('step', `must be a multiple of the bucket width (${bucket} s)`);
    const points = Math.ceil(rangeSeconds / stepSeconds);
    if (points > limits.maxPoints) {
      const minStep = Math.ceil(rangeSeconds / limits.maxPoints / bucket) * bucket;
      throw new BadParameter(
        'step',
        `the range with this step gives ${points} points, more than the limit of ${limits.maxPoints}: use a step of at least ${minStep} s`,
      );
    }
  } else {
    stepSeconds = bucket * Math.max(1, Math.ceil(rangeSeconds / bucket / limits.maxPoints));
  }

  return { fromMs, toMs, rangeSeconds, stepSeconds, bucket };
}

interface ResolvedTraffic {
  fromMs: number;
  toMs: number;
  rangeSeconds: number;
  stepSeconds: number;
  bucket: number;
  /** The groups as asked (with class added next to community / activity). */
  groupBy: TrafficGroupBy[];
  filters: TrafficResponse['filters'];
  result: TrafficQueryResult;
  provisionalSteps: Set<number>;
}

/**
 * Resolves a traffic request (times, step, names, links, sites) and queries the store: the
 * link view (`traffic` rows) or, when a site dimension is grouped or filtered, the site-pair
 * view (`site_traffic` rows; they have no interfaces, so link and direction cannot be
 * combined with sites). `internal` dimensions are grouped in the store query too but are not
 * part of the answer's groupBy (the transition view splits by class and NAT64 itself).
 */
async function resolveTraffic(
  deps: ApiDeps,
  limits: ApiLimits,
  q: TrafficParams,
  internal: readonly ('class' | 'nat64')[] = [],
): Promise<ResolvedTraffic> {
  const reg = deps.registry.registry;
  const { fromMs, toMs, rangeSeconds, stepSeconds, bucket } = resolveRange(deps, limits, q);

  let groupBy = (q.groupBy === undefined ? ['community', 'activity'] : splitList(q.groupBy)) as TrafficGroupBy[];
  groupBy = GROUP_BY_DIMENSIONS.filter((d) => groupBy.includes(d));
  // Unregistered (folded) pairs and unmarked traffic both have community null: keep them apart.
  if ((groupBy.includes('community') || groupBy.includes('activity')) && !groupBy.includes('class') && !internal.includes('class')) {
    groupBy.push('class');
  }
  const queryGroupBy = [...groupBy, ...internal.filter((d) => !groupBy.includes(d))];

  const filters: TrafficResponse['filters'] = {};
  const common: { community?: number[]; activity?: number[]; exporter?: string[]; trafficClass?: TrafficClass[] } = {};
  if (q.community !== undefined) {
    filters.community = resolveCommunities(reg, q.community);
    common.community = filters.community.map((c) => c.id);
  }
  if (q.activity !== undefined) {
    filters.activity = resolveActivities(reg, q.activity, common.community);
    common.activity = filters.activity.map((a) => a.id);
  }
  if (q.exporter !== undefined) {
    const exporters = [
      ...new Set(
        filterList(q.exporter, 'exporter').map((e) => {
          const a = normaliseAddress(e);
          if (a === undefined) throw new BadParameter('exporter', `${JSON.stringify(e)} is not an IPv4 or IPv6 address`);
          return a;
        }),
      ),
    ];
    filters.exporter = exporters;
    common.exporter = exporters;
  }
  if (q.class !== undefined) {
    filters.class = splitList(q.class) as TrafficClass[];
    common.trafficClass = filters.class;
  }
  const sites: { srcSite?: string[]; dstSite?: string[]; site?: string[] } = {};
  for (const d of SITE_DIMENSIONS) {
    const text = q[d];
    if (text !== undefined) sites[d] = filters[d] = siteList(text, d);
  }

  const siteView = groupBy.some((d) => isSiteDimension(d)) || Object.keys(sites).length > 0;
  let result: TrafficQueryResult;
  // Steps holding buckets not yet in the store (provisional=true; the link view only).
  let provisionalSteps = new Set<number>();
  if (siteView) {
    const linkDims = groupBy.filter((d) => d === 'link' || d === 'direction');
    if (linkDims.length > 0 || q.link !== undefined) {
      throw new BadParameter(
        linkDims.length > 0 ? 'groupBy' : 'link',
        'sites cannot be combined with link or direction: the site-pair sums are kept per exporter and site, not per interface',
      );
    }
    if (!isSiteTrafficStore(deps.store)) throw new BadParameter('groupBy', 'this store keeps no site-pair sums');
    const query: SiteTrafficQuery = { fromMs, toMs, stepSeconds, groupBy: queryGroupBy as SiteGroupByDimension[], ...common, ...sites };
    result = await deps.store.querySiteTraffic(query);
  } else {
    const query: TrafficQuery = { fromMs, toMs, stepSeconds, groupBy: queryGroupBy as GroupByDimension[], ...common };
    if (q.link !== undefined) {
      const links = resolveLinks(deps, q.link);
      filters.link = links.map((l) => ({ link: l.key, name: l.name }));
      query.link = links.map((l) => ({ exporter: l.exporter, ifIndex: l.ifIndex }));
    }
    const wantProvisional = q.provisional === 'true' || q.provisional === '1';
    const answer =
      wantProvisional && deps.provisional
        ? await queryWithProvisional(deps.store, deps.provisional(), query)
        : { ...(await deps.store.queryTraffic(query)), provisionalSteps: new Set<number>() };
    result = answer;
    provisionalSteps = answer.provisionalSteps;
  }
  return { fromMs, toMs, rangeSeconds, stepSeconds, bucket, groupBy, filters, result, provisionalSteps };
}

function isSiteDimension(d: string): d is SiteDimension {
  return (SITE_DIMENSIONS as readonly string[]).includes(d);
}

/** The parts of an answer every traffic-shaped endpoint shares. */
function envelope(r: ResolvedTraffic) {
  return {
    from: new Date(r.fromMs).toISOString(),
    to: new Date(r.toMs).toISOString(),
    fromMs: r.fromMs,
    toMs: r.toMs,
    stepSeconds: r.stepSeconds,
    bucketSeconds: r.bucket,
    groupBy: r.groupBy,
    filters: r.filters,
  };
}

/**
 * GET /api/v1/traffic after schema validation: resolves times, step, names and links, queries
 * the store, names the groups and applies the limits. Throws BadParameter for semantic errors.
 */
export async function trafficQuery(deps: ApiDeps, limits: ApiLimits, q: TrafficParams): Promise<TrafficResponse> {
  const reg = deps.registry.registry;
  const r = await resolveTraffic(deps, limits, q);
  const { stepSeconds, rangeSeconds, groupBy, result, provisionalSteps } = r;

  const series = result.series
    .map((s) => ({
      group: decorateGroup(deps, reg, s.group, groupBy),
      points: s.points.map((p) => ({
        time: new Date(p.timeMs).toISOString(),
        timeMs: p.timeMs,
        bytes: p.bytes,
        packets: p.packets,
        records: p.records,
        bitsPerSecond: (p.bytes * 8) / stepSeconds,
        packetsPerSecond: p.packets / stepSeconds,
        ...(provisionalSteps.has(p.timeMs) ? { provisional: true as const } : {}),
      })),
      totals: totalsOut(s.totals, rangeSeconds),
    }))
    .sort((a, b) => b.totals.bytes - a.totals.bytes || JSON.stringify(a.group).localeCompare(JSON.stringify(b.group)));
  const kept = series.slice(0, limits.maxGroups);

  return {
    ...envelope(r),
    series: kept,
    totals: totalsOut(result.totals, rangeSeconds),
    omittedGroups: series.length - kept.length,
  };
}

// ---------------------------------------------------------------------------------------
// GET /api/v1/transition: the IPv6 transition view
// ---------------------------------------------------------------------------------------

/** IPv4 / IPv6 / NAT64 sums of a step, a series or the whole answer. */
export interface TransitionSums {
  ipv4Bytes: number;
  /** All IPv6, marked and unmarked, NAT64 included. */
  ipv6Bytes: number;
  /** The part of ipv6Bytes to or from a NAT64 prefix. */
  nat64Bytes: number;
  /** The part of ipv6Bytes carrying a SciTags flow label (class scitags); the rest is unmarked. */
  markedBytes: number;
  ipv4Packets: number;
  ipv6Packets: number;
  nat64Packets: number;
  markedPackets: number;
  /** Traffic whose IP version no field told (never guessed into either family). */
  unknownBytes: number;
  unknownPackets: number;
}

export interface TransitionOut extends TransitionSums {
  /** ipv6Bytes / (ipv4Bytes + ipv6Bytes); null without either. */
  ipv6Share: number | null;
  /** nat64Bytes / ipv6Bytes; null without IPv6. */
  nat64Share: number | null;
}

export interface TransitionResponse extends ReturnType<typeof envelope> {
  series: {
    group: Record<string, string | number | null>;
    points: (TransitionOut & { time: string; timeMs: number })[];
    totals: TransitionOut;
  }[];
  totals: TransitionOut;
  omittedGroups: number;
}

const zeroSums = (): TransitionSums => ({
  ipv4Bytes: 0,
  ipv6Bytes: 0,
  nat64Bytes: 0,
  markedBytes: 0,
  ipv4Packets: 0,
  ipv6Packets: 0,
  nat64Packets: 0,
  markedPackets: 0,
  unknownBytes: 0,
  unknownPackets: 0,
});

function addSums(into: TransitionSums, cls: unknown, nat64: boolean, bytes: number, packets: number): void {
  if (cls === 'ipv4') {
    into.ipv4Bytes += bytes;
    into.ipv4Packets += packets;
  } else if (cls === 'scitags' || cls === 'ipv6_unmarked') {
    into.ipv6Bytes += bytes;
    into.ipv6Packets += packets;
    if (cls === 'scitags') {
      into.markedBytes += bytes;
      into.markedPackets += packets;
    }
    if (nat64) {
      into.nat64Bytes += bytes;
      into.nat64Packets += packets;
    }
  } else {
    into.unknownBytes += bytes;
    into.unknownPackets += packets;
  }
}

function transitionOut(s: TransitionSums): TransitionOut {
  const both = s.ipv4Bytes + s.ipv6Bytes;
  return { ...s, ipv6Share: both > 0 ? s.ipv6Bytes / both : null, nat64Share: s.ipv6Bytes > 0 ? s.nat64Bytes / s.ipv6Bytes : null };
}

/**
 * GET /api/v1/transition: the same parameters and series as /api/v1/traffic, with each
 * group's traffic split into IPv4, IPv6 and the NAT64 part of IPv6 (the store is queried with
 * class and nat64 grouped as well, and the answer folds them back). Flow labels exist only in
 * IPv6, so grouping by community puts IPv4 and unmarked IPv6 under community null.
 */
export async function transitionQuery(deps: ApiDeps, limits: ApiLimits, q: TrafficParams): Promise<TransitionResponse> {
  const reg = deps.registry.registry;
  const asked = q.groupBy === undefined ? 'link' : q.groupBy;
  // class and nat64 are the view's own split: grouping by them is not offered.
  const groupText = splitList(asked)
    .filter((d) => d !== 'class' && d !== 'nat64')
    .join(',');
  const r = await resolveTraffic(deps, limits, { ...q, groupBy: groupText }, ['class', 'nat64']);
  r.groupBy = r.groupBy.filter((d) => d !== 'class');
  const groups = new Map<
    string,
    { group: Record<string, string | number | null>; byTime: Map<number, TransitionSums>; totals: TransitionSums }
  >();
  const totals = zeroSums();
  for (const s of r.result.series) {
    const cls = s.group['class'];
    const nat64 = s.group['nat64'] === 'true';
    const group = decorateGroup(deps, reg, s.group, r.groupBy);
    const key = JSON.stringify(group);
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { group, byTime: new Map(), totals: zeroSums() }));
    for (const p of s.points) {
      let at = g.byTime.get(p.timeMs);
      if (!at) g.byTime.set(p.timeMs, (at = zeroSums()));
      addSums(at, cls, nat64, p.bytes, p.packets);
    }
    addSums(g.totals, cls, nat64, s.totals.bytes, s.totals.packets);
    // Site grouping counts a row under both its sites: the top-level totals count it once.
    if (!r.groupBy.includes('site') && !r.groupBy.includes('link') && !r.groupBy.includes('direction')) {
      addSums(totals, cls, nat64, s.totals.bytes, s.totals.packets);
    }
  }
  if (r.groupBy.includes('site') || r.groupBy.includes('link') || r.groupBy.includes('direction')) {
    const once = await resolveTraffic(deps, limits, { ...q, groupBy: '' }, ['class', 'nat64']);
    for (const s of once.result.series) addSums(totals, s.group['class'], s.group['nat64'] === 'true', s.totals.bytes, s.totals.packets);
  }
  const series = [...groups.values()]
    .map((g) => ({
      group: g.group,
      points: [...g.byTime.entries()]
        .sort(([a], [b]) => a - b)
        .map(([timeMs, p]) => ({ time: new Date(timeMs).toISOString(), timeMs, ...transitionOut(p) })),
      totals: transitionOut(g.totals),
    }))
    .sort(
      (a, b) =>
        b.totals.ipv4Bytes + b.totals.ipv6Bytes - (a.totals.ipv4Bytes + a.totals.ipv6Bytes) ||
        JSON.stringify(a.group).localeCompare(JSON.stringify(b.group)),
    );
  const kept = series.slice(0, limits.maxGroups);
  return { ...envelope(r), series: kept, totals: transitionOut(totals), omittedGroups: series.length - kept.length };
}
