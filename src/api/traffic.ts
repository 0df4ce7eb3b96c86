import type { Registry } from '../registry/registry.js';
import { parseLinkKey as parseStoreLinkKey } from '../store/sqlite/link-key.js';
import type { GroupByDimension, TrafficClass, TrafficQuery, TrafficSeries } from '../store/types.js';
import {
  BadParameter,
  filterList,
  GROUP_BY_DIMENSIONS,
  linkKey,
  normaliseAddress,
  parseBoundedTime,
  parseLinkKey,
  parseStep,
  splitList,
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
  groupBy: GroupByDimension[];
  filters: {
    community?: { id: number; name: string | null }[];
    activity?: { id: number; name: string | null }[];
    link?: { link: string; name: string | null }[];
    exporter?: string[];
    class?: TrafficClass[];
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
  series: TrafficSeries,
  groupBy: GroupByDimension[],
): Record<string, string | number | null> {
  const g = series.group;
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

/**
 * GET /api/v1/traffic after schema validation: resolves times, step, names and links, queries
 * the store, names the groups and applies the limits. Throws BadParameter for semantic errors.
 */
export async function trafficQuery(deps: ApiDeps, limits: ApiLimits, q: TrafficParams): Promise<TrafficResponse> {
  const reg = deps.registry.registry;
  const { fromMs, toMs, rangeSeconds, stepSeconds, bucket } = resolveRange(deps, limits, q);

  let groupBy = (q.groupBy === undefined ? ['community', 'activity'] : splitList(q.groupBy)) as GroupByDimension[];
  groupBy = GROUP_BY_DIMENSIONS.filter((d) => groupBy.includes(d));
  // Unregistered (folded) pairs and unmarked traffic both have community null: keep them apart.
  if ((groupBy.includes('community') || groupBy.includes('activity')) && !groupBy.includes('class')) groupBy.push('class');

  const query: TrafficQuery = { fromMs, toMs, stepSeconds, groupBy };
  const filters: TrafficResponse['filters'] = {};
  if (q.community !== undefined) {
    filters.community = resolveCommunities(reg, q.community);
    query.community = filters.community.map((c) => c.id);
  }
  if (q.activity !== undefined) {
    filters.activity = resolveActivities(reg, q.activity, query.community);
    query.activity = filters.activity.map((a) => a.id);
  }
  if (q.link !== undefined) {
    const links = resolveLinks(deps, q.link);
    filters.link = links.map((l) => ({ link: l.key, name: l.name }));
    query.link = links.map((l) => ({ exporter: l.exporter, ifIndex: l.ifIndex }));
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
    query.exporter = exporters;
  }
  if (q.class !== undefined) {
    filters.class = splitList(q.class) as TrafficClass[];
    query.trafficClass = filters.class;
  }

  const wantProvisional = q.provisional === 'true' || q.provisional === '1';
  const result =
    wantProvisional && deps.provisional
      ? await queryWithProvisional(deps.store, deps.provisional(), query)
      : { ...(await deps.store.queryTraffic(query)), provisionalSteps: new Set<number>() };

  const series = result.series
    .map((s) => ({
      group: decorateGroup(deps, reg, s, groupBy),
      points: s.points.map((p) => ({
        time: new Date(p.timeMs).toISOString(),
        timeMs: p.timeMs,
        bytes: p.bytes,
        packets: p.packets,
        records: p.records,
        bitsPerSecond: (p.bytes * 8) / stepSeconds,
        packetsPerSecond: p.packets / stepSeconds,
        ...(result.provisionalSteps.has(p.timeMs) ? { provisional: true as const } : {}),
      })),
      totals: totalsOut(s.totals, rangeSeconds),
    }))
    .sort((a, b) => b.totals.bytes - a.totals.bytes || JSON.stringify(a.group).localeCompare(JSON.stringify(b.group)));
  const kept = series.slice(0, limits.maxGroups);

  return {
    from: new Date(fromMs).toISOString(),
    to: new Date(toMs).toISOString(),
    fromMs,
    toMs,
    stepSeconds,
    bucketSeconds: bucket,
    groupBy,
    filters,
    series: kept,
    totals: totalsOut(result.totals, rangeSeconds),
    omittedGroups: series.length - kept.length,
  };
}
