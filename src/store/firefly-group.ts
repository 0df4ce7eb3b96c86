import { addSums, emptySums } from '../fireflies/aggregate.js';
import type { FireflyGroupByDimension, FireflyQuery, FireflyQueryResult, FireflyRow, FireflySeries, FireflySums } from './types.js';

/**
 * The FireflyQuery semantics, shared by both stores so they answer alike: each store reads
 * the rows of [fromMs, toMs) that match the filters, summed per step and key (SQL GROUP BY,
 * InfluxQL GROUP BY time()), and this groups them: points on multiples of the step from the
 * epoch, counts and sums added, maxima the largest; series largest (bytes, then ended and
 * started flows) first, ties by group. Totals are the sums over every matching row.
 */
export type StoredFireflyRow = Omit<FireflyRow, 'bucketSeconds'>;

function matches(r: StoredFireflyRow, q: FireflyQuery, checkTime: boolean): boolean {
  if (checkTime && (r.bucketStartMs < q.fromMs || r.bucketStartMs >= q.toMs)) return false;
  if (q.community?.length && !q.community.includes(r.community)) return false;
  if (q.activity?.length && !q.activity.includes(r.activity)) return false;
  if (q.ipVersion?.length && !q.ipVersion.includes(r.ipVersion)) return false;
  if (q.srcSite?.length && !q.srcSite.includes(r.srcSite)) return false;
  if (q.dstSite?.length && !q.dstSite.includes(r.dstSite)) return false;
  return true;
}

export function groupFireflyRows(rows: Iterable<StoredFireflyRow>, q: FireflyQuery, preBucketed = false): FireflyQueryResult {
  const stepMs = Math.round(q.stepSeconds * 1000);
  const dims: FireflyGroupByDimension[] = [...new Set(q.groupBy)];
  const totals = emptySums();
  const series = new Map<string, { group: Record<string, string | number>; byTime: Map<number, FireflySums> }>();
  for (const r of rows) {
    if (!matches(r, q, !preBucketed)) continue;
    addSums(totals, r);
    const group: Record<string, string | number> = {};
    for (const d of dims) group[d] = r[d];
    const key = JSON.stringify(group);
    let s = series.get(key);
    if (!s) series.set(key, (s = { group, byTime: new Map() }));
    const t = r.bucketStartMs - (r.bucketStartMs % stepMs);
    let p = s.byTime.get(t);
    if (!p) s.byTime.set(t, (p = emptySums()));
    addSums(p, r);
  }
  const out: [string, FireflySeries][] = [];
  for (const [key, s] of series) {
    const points = [...s.byTime.entries()].sort((a, b) => a[0] - b[0]).map(([timeMs, p]) => ({ timeMs, ...p }));
    const t = emptySums();
    for (const p of points) addSums(t, p);
    out.push([key, { group: s.group, points, totals: t }]);
  }
  out.sort(([ka, a], [kb, b]) => compareSeries(a.totals, b.totals) || (ka < kb ? -1 : ka > kb ? 1 : 0));
  return { series: out.map(([, s]) => s), totals };
}

/** Largest first: bytes, then ended flows, then started flows. */
export function compareSeries(a: FireflySums, b: FireflySums): number {
  return b.bytes - a.bytes || b.flowsEnded - a.flowsEnded || b.flowsStarted - a.flowsStarted;
}
