import { formatLinkKey } from './sqlite/link-key.js';
import { SeriesBuilder } from './series-builder.js';
import type { GroupByDimension, TrafficClass, TrafficQuery, TrafficQueryResult } from './types.js';

/**
 * The TrafficQuery semantics in plain code, for stores that cannot express them in their own
 * query language (InfluxDB: InfluxQL has no UNION for the in/out halves of a link). It is
 * the same contract the SQLite store implements in SQL (see sqlite/query.ts): rows in
 * [fromMs, toMs), points on multiples of the step from the epoch; grouping by link or
 * direction counts a row for its in-link ('in') and its out-link ('out'), once when both are
 * the same link and direction is not grouped (never twice in one group); without those a
 * row counts once and a link filter matches either side; totals count each matching row
 * once; series largest first, ties by group. A test runs both stores on the same rows.
 */
export interface StoredRow {
  bucketStartMs: number;
  exporter: string;
  inIf: number | null;
  outIf: number | null;
  trafficClass: TrafficClass;
  community: number | null;
  activity: number | null;
  bytes: number;
  packets: number;
  records: number;
  /** To or from a NAT64 prefix (absent: not). */
  nat64?: boolean;
}

function matchesFilters(r: StoredRow, q: TrafficQuery, checkTime: boolean): boolean {
  if (checkTime && (r.bucketStartMs < q.fromMs || r.bucketStartMs >= q.toMs)) return false;
  if (q.community?.length && (r.community === null || !q.community.includes(r.community))) return false;
  if (q.activity?.length && (r.activity === null || !q.activity.includes(r.activity))) return false;
  if (q.exporter?.length && !q.exporter.includes(r.exporter)) return false;
  if (q.trafficClass?.length && !q.trafficClass.includes(r.trafficClass)) return false;
  return true;
}

function onLink(q: TrafficQuery, exporter: string, ifIndex: number | null): boolean {
  return ifIndex !== null && (q.link ?? []).some((l) => l.exporter === exporter && l.ifIndex === ifIndex);
}

function dimensionValue(
  d: GroupByDimension,
  r: StoredRow,
  ifIndex: number | null,
  direction: 'in' | 'out' | undefined,
): string | number | null {
  switch (d) {
    case 'community':
      return r.community;
    case 'activity':
      return r.activity;
    case 'exporter':
      return r.exporter;
    case 'class':
      return r.trafficClass;
    case 'link':
      return formatLinkKey(r.exporter, ifIndex);
    case 'direction':
      return direction ?? null;
    case 'nat64':
      return r.nat64 === true ? 'true' : 'false';
  }
}

/**
 * `preBucketed`: the rows are already step sums of rows filtered by time (InfluxQL GROUP BY
 * time() gives the step start, which may lie before `fromMs`), so the time filter is skipped.
 */
export function groupRows(rows: Iterable<StoredRow>, q: TrafficQuery, preBucketed = false): TrafficQueryResult {
  const stepMs = Math.round(q.stepSeconds * 1000);
  const dims = [...new Set(q.groupBy)];
  const expanded = dims.includes('link') || dims.includes('direction');
  const byDirection = dims.includes('direction');
  const hasLinkFilter = (q.link?.length ?? 0) > 0;
  const out = new SeriesBuilder(q.stepSeconds);

  const addTo = (r: StoredRow, ifIndex: number | null, direction: 'in' | 'out' | undefined): void => {
    const group: Record<string, string | number | null> = {};
    for (const d of dims) group[d] = dimensionValue(d, r, ifIndex, direction);
    out.add(group, r.bucketStartMs - (r.bucketStartMs % stepMs), r);
  };

  for (const r of rows) {
    if (!matchesFilters(r, q, !preBucketed)) continue;
    const inMatch = !hasLinkFilter || onLink(q, r.exporter, r.inIf);
    const outMatch = !hasLinkFilter || onLink(q, r.exporter, r.outIf);
    if (hasLinkFilter && !inMatch && !outMatch) continue;
    out.count(r);
    if (expanded) {
      if (inMatch) addTo(r, r.inIf, 'in');
      // Both sides on the same link (both unknown, or in and out on one interface) are one
      // group unless direction tells them apart: the row counts once there, not twice.
      if (outMatch && (byDirection || r.inIf !== r.outIf)) addTo(r, r.outIf, 'out');
    } else {
      addTo(r, null, undefined);
    }
  }
  return out.result();
}
