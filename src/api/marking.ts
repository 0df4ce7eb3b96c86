import { MARKING_OUTCOMES, type MarkingOutcome } from '../fireflies/marking.js';
import { siteList } from './params.js';
import { commonActivityName, resolveCommunities } from './traffic.js';
import type { ApiDeps, ApiLimits } from './types.js';

export interface MarkingParams {
  community?: string;
  srcSite?: string;
  dstSite?: string;
}

type ByOutcome = Record<MarkingOutcome, number>;

export interface MarkingRowOut {
  community: number;
  communityName: string;
  activity: number;
  activityName: string;
  srcSite: string;
  dstSite: string;
  records: ByOutcome;
  bytes: ByOutcome;
  /** agree / (agree + mismatch + unmarked) records: of the records that could carry the pair, how many did; null without any. */
  agreeShare: number | null;
  /** For mismatches: the pairs the packets carried instead, most records first. */
  carried: { community: number; activity: number; records: number }[];
}

export interface MarkingResponse {
  since: string;
  sinceMs: number;
  flows: number;
  evicted: number;
  outcomes: readonly MarkingOutcome[];
  rows: MarkingRowOut[];
  omittedRows: number;
}

/** The marking check is not running (a daemon without fireflies): the route says 503. */
export class MarkingUnavailable extends Error {}

const zero = (): ByOutcome => ({ agree: 0, mismatch: 0, unmarked: 0, notExported: 0, ipv4: 0 });

/**
 * GET /api/v1/fireflies/marking: per experiment, activity and site pair of the firefly flows,
 * how the flow records of the same 5-tuple were marked since the collector started: `agree`
 * (the packets carried the declared pair), `mismatch` (another pair; `carried` says which),
 * `unmarked` (label 0), `notExported` (the exporter sends no flow label: not the host's fault),
 * `ipv4` (no flow label exists). Records and sampling-scaled bytes per outcome.
 */
export function markingQuery(deps: ApiDeps, limits: ApiLimits, q: MarkingParams): MarkingResponse {
  if (!deps.marking) throw new MarkingUnavailable('the marking check is not running');
  const reg = deps.registry.registry;
  const status = deps.marking();
  const communities = q.community === undefined ? undefined : new Set(resolveCommunities(reg, q.community).map((c) => c.id));
  const srcSites = q.srcSite === undefined ? undefined : new Set(siteList(q.srcSite, 'srcSite'));
  const dstSites = q.dstSite === undefined ? undefined : new Set(siteList(q.dstSite, 'dstSite'));

  const rows = new Map<string, MarkingRowOut & { carriedMap: Map<string, number> }>();
  for (const c of status.counts) {
    if (communities && !communities.has(c.experimentId)) continue;
    if (srcSites && !srcSites.has(c.srcSite)) continue;
    if (dstSites && !dstSites.has(c.dstSite)) continue;
    const key = `${c.experimentId}|${c.activityId}|${c.srcSite}|${c.dstSite}`;
    let r = rows.get(key);
    if (!r) {
      rows.set(
        key,
        (r = {
          community: c.experimentId,
          communityName: reg.communityName(c.experimentId) ?? String(c.experimentId),
          activity: c.activityId,
          activityName: reg.activityName(c.experimentId, c.activityId) ?? commonActivityName(reg, c.activityId) ?? String(c.activityId),
          srcSite: c.srcSite,
          dstSite: c.dstSite,
          records: zero(),
          bytes: zero(),
          agreeShare: null,
          carried: [],
          carriedMap: new Map(),
        }),
      );
    }
    r.records[c.outcome] += c.records;
    r.bytes[c.outcome] += c.bytes;
    for (const [pair, n] of Object.entries(c.carried)) r.carriedMap.set(pair, (r.carriedMap.get(pair) ?? 0) + n);
  }
  const out = [...rows.values()]
    .map(({ carriedMap, ...r }) => {
      const could = r.records.agree + r.records.mismatch + r.records.unmarked;
      return {
        ...r,
        agreeShare: could > 0 ? r.records.agree / could : null,
        carried: [...carriedMap]
          .map(([pair, records]) => {
            const [community, activity] = pair.split('/').map(Number) as [number, number];
            return { community, activity, records };
          })
          .sort((a, b) => b.records - a.records || a.community - b.community || a.activity - b.activity),
      };
    })
    .sort((a, b) => {
      const total = (r: MarkingRowOut) => MARKING_OUTCOMES.reduce((n, o) => n + r.records[o], 0);
      return (
        total(b) - total(a) ||
        `${a.community}|${a.activity}|${a.srcSite}|${a.dstSite}`.localeCompare(`${b.community}|${b.activity}|${b.srcSite}|${b.dstSite}`)
      );
    });
  const kept = out.slice(0, limits.maxGroups);
  return {
    since: new Date(status.sinceMs).toISOString(),
    sinceMs: status.sinceMs,
    flows: status.flows,
    evicted: status.evicted,
    outcomes: MARKING_OUTCOMES,
    rows: kept,
    omittedRows: out.length - kept.length,
  };
}
