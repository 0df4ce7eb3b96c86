import { SeriesBuilder } from './series-builder.js';
import type { SiteGroupByDimension, SiteTrafficQuery, TrafficClass, TrafficQueryResult } from './types.js';

/** A site-pair row as both stores read it back (already summed per step when preBucketed). */
export interface StoredSiteRow {
  bucketStartMs: number;
  exporter: string;
  srcSite: string;
  dstSite: string;
  trafficClass: TrafficClass;
  community: number | null;
  activity: number | null;
  nat64: boolean;
  bytes: number;
  packets: number;
  records: number;
}

function matches(r: StoredSiteRow, q: SiteTrafficQuery, checkTime: boolean): boolean {
  if (checkTime && (r.bucketStartMs < q.fromMs || r.bucketStartMs >= q.toMs)) return false;
  if (q.community?.length && (r.community === null || !q.community.includes(r.community))) return false;
  if (q.activity?.length && (r.activity === null || !q.activity.includes(r.activity))) return false;
  if (q.exporter?.length && !q.exporter.includes(r.exporter)) return false;
  if (q.trafficClass?.length && !q.trafficClass.includes(r.trafficClass)) return false;
  if (q.srcSite?.length && !q.srcSite.includes(r.srcSite)) return false;
  if (q.dstSite?.length && !q.dstSite.includes(r.dstSite)) return false;
  return true;
}

function value(d: SiteGroupByDimension, r: StoredSiteRow, site: string): string | number | boolean | null {
  switch (d) {
    case 'community':
      return r.community;
    case 'activity':
      return r.activity;
    case 'exporter':
      return r.exporter;
    case 'class':
      return r.trafficClass;
    case 'nat64':
      return r.nat64;
    case 'srcSite':
      return r.srcSite;
    case 'dstSite':
      return r.dstSite;
    case 'site':
      return site;
  }
}

/**
 * The SiteTrafficQuery semantics, shared by both stores (they push the time range and the
 * simple filters down and sum per step; the grouping is here). Grouping by 'site' counts a
 * row for its source site and for its destination site, once when they are the same site
 * (never twice in one group), as grouping by link does with a row's two interfaces; a 'site'
 * filter then keeps the sides on a listed site, and without 'site' grouping it keeps rows with
 * either side listed. Totals count each matching row once. Series largest first, ties by group.
 */
export function groupSiteRows(rows: Iterable<StoredSiteRow>, q: SiteTrafficQuery, preBucketed = false): TrafficQueryResult {
  const stepMs = Math.round(q.stepSeconds * 1000);
  const dims = [...new Set(q.groupBy)];
  const bySite = dims.includes('site');
  const siteFilter = q.site?.length ? new Set(q.site) : undefined;
  const out = new SeriesBuilder(q.stepSeconds);

  const addTo = (r: StoredSiteRow, site: string): void => {
    const group: Record<string, string | number | null> = {};
    for (const d of dims) {
      const v = value(d, r, site);
      group[d] = typeof v === 'boolean' ? String(v) : v;
    }
    out.add(group, preBucketed ? r.bucketStartMs : r.bucketStartMs - (r.bucketStartMs % stepMs), r);
  };

  for (const r of rows) {
    if (!matches(r, q, !preBucketed)) continue;
    const srcListed = siteFilter === undefined || siteFilter.has(r.srcSite);
    const dstListed = siteFilter === undefined || siteFilter.has(r.dstSite);
    if (!srcListed && !dstListed) continue;
    out.count(r);
    if (!bySite) addTo(r, '');
    else {
      if (srcListed) addTo(r, r.srcSite);
      if (dstListed && r.dstSite !== r.srcSite) addTo(r, r.dstSite);
    }
  }
  return out.result();
}
