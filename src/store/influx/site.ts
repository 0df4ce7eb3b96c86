import type { IPoint } from 'influx';
import type { Registry } from '../../registry/registry.js';
import type { StoredSiteRow } from '../site-group.js';
import type { SiteTrafficQuery, SiteTrafficRow, TrafficClass } from '../types.js';
import { UNREGISTERED } from './points.js';
import { orEquals } from './query.js';

/**
 * The `scitags_site_traffic` measurement (docs/influx-schema.md): one point per site-pair row
 * at its bucket start. Tags: exporter, src_site, dst_site (site names: bounded by the site
 * map), class, community / activity (registry names) and their ids (marked rows only), and
 * nat64 = "true" on NAT64 rows only. Fields: bytes, packets, records.
 */
export const SITE_MEASUREMENT = 'scitags_site_traffic';

export const SITE_TAGS = ['exporter', 'src_site', 'dst_site', 'class', 'community', 'activity', 'community_id', 'activity_id', 'nat64'];
const KEY_TAGS = '"exporter", "src_site", "dst_site", "class", "community_id", "activity_id", "nat64"';
const SUMS = 'sum("bytes") AS "bytes", sum("packets") AS "packets", sum("records") AS "records"';

export function siteRowsToPoints(rows: readonly SiteTrafficRow[], registry: Registry): IPoint[] {
  return rows.map((r) => {
    const known = r.community !== null && r.activity !== null;
    const names = known ? registry.names(r.community!, r.activity!) : undefined;
    const tags: Record<string, string> = {
      exporter: r.exporter,
      src_site: r.srcSite,
      dst_site: r.dstSite,
      class: r.trafficClass,
    };
    if (r.trafficClass === 'scitags') {
      tags.community = names?.registered ? names.communityName! : UNREGISTERED;
      tags.activity = names?.registered ? names.activityName! : UNREGISTERED;
      tags.community_id = known ? String(r.community) : UNREGISTERED;
      tags.activity_id = known ? String(r.activity) : UNREGISTERED;
    }
    if (r.nat64 === true) tags.nat64 = 'true';
    return {
      measurement: SITE_MEASUREMENT,
      timestamp: new Date(r.bucketStartMs),
      tags,
      fields: { bytes: r.bytes, packets: r.packets, records: r.records },
    };
  });
}

/** Time range, step and the simple filters pushed down; groupSiteRows applies the rest. */
export function buildSiteQuery(q: SiteTrafficQuery): string {
  const where = [
    `time >= ${Math.floor(q.fromMs)}ms`,
    `time < ${Math.ceil(q.toMs)}ms`,
    orEquals('exporter', q.exporter),
    orEquals('class', q.trafficClass),
    orEquals('community_id', q.community),
    orEquals('activity_id', q.activity),
    orEquals('src_site', q.srcSite),
    orEquals('dst_site', q.dstSite),
  ].filter(Boolean);
  return `SELECT ${SUMS} FROM "${SITE_MEASUREMENT}" WHERE ${where.join(' AND ')} GROUP BY time(${Math.round(q.stepSeconds * 1000)}ms), ${KEY_TAGS} fill(none)`;
}

const id = (tag: unknown): number | null => (tag === undefined || tag === null || tag === '' || tag === UNREGISTERED ? null : Number(tag));

export function influxRowToSite(row: Record<string, unknown>): StoredSiteRow {
  const cls = String(row.class) as TrafficClass;
  return {
    bucketStartMs: (row.time as { getTime(): number }).getTime(),
    exporter: String(row.exporter),
    srcSite: String(row.src_site),
    dstSite: String(row.dst_site),
    trafficClass: cls,
    community: cls === 'scitags' ? id(row.community_id) : null,
    activity: cls === 'scitags' ? id(row.activity_id) : null,
    nat64: row.nat64 === 'true',
    bytes: Number(row.bytes),
    packets: Number(row.packets),
    records: Number(row.records),
  };
}
