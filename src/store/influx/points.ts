import type { IPoint } from 'influx';
import type { Registry } from '../../registry/registry.js';
import type { TrafficRow } from '../types.js';

/** Tag value for pairs the registry does not know (folded or kept by number). */
export const UNREGISTERED = 'unregistered';
/** Tag value for an interface the exporter did not report. */
export const NO_LINK = 'none';

export interface LinkInfo {
  name: string;
  capacityBps?: number | undefined;
}

export interface PointNaming {
  registry: () => Registry;
  /** Configured link for (exporter, ifIndex): name (else the ifIndex is used) and capacity. */
  link: (exporter: string, ifIndex: number) => LinkInfo | undefined;
}

function linkTag(naming: PointNaming, exporter: string, ifIndex: number | null): string {
  if (ifIndex === null) return NO_LINK;
  return naming.link(exporter, ifIndex)?.name ?? String(ifIndex);
}

function capacity(naming: PointNaming, exporter: string, ifIndex: number | null): number | undefined {
  if (ifIndex === null) return undefined;
  const c = naming.link(exporter, ifIndex)?.capacityBps;
  return c === undefined ? undefined : Math.round(c);
}

/**
 * Turns whole buckets of rows into InfluxDB points (docs/influx-schema.md): one
 * `scitags_traffic` point per marked row, and one `link_traffic` point per
 * (bucket, exporter, in link, out link, class) summed over the bucket's rows. Relies on
 * the store contract that a call carries every row of each bucket it touches.
 */
export function rowsToPoints(rows: readonly TrafficRow[], naming: PointNaming): IPoint[] {
  const registry = naming.registry();
  const points: IPoint[] = [];
  const links = new Map<string, IPoint & { fields: { bytes: number; packets: number; records: number } }>();
  for (const row of rows) {
    const time = new Date(row.bucketStartMs);
    const inLink = linkTag(naming, row.exporter, row.inIf);
    const outLink = linkTag(naming, row.exporter, row.outIf);
    const inIf = row.inIf === null ? NO_LINK : String(row.inIf);
    const outIf = row.outIf === null ? NO_LINK : String(row.outIf);
    // Tag objects are written out literally (no spreads): this runs per row of every bucket,
    // and object spreads made it 3-4x slower (npm run bench -- influx).
    if (row.trafficClass === 'scitags') {
      const known = row.community !== null && row.activity !== null;
      const names = known ? registry.names(row.community!, row.activity!) : undefined;
      points.push({
        measurement: 'scitags_traffic',
        timestamp: time,
        tags: {
          exporter: row.exporter,
          in_link: inLink,
          out_link: outLink,
          in_if: inIf,
          out_if: outIf,
          community: names?.registered ? names.communityName! : UNREGISTERED,
          activity: names?.registered ? names.activityName! : UNREGISTERED,
          community_id: known ? String(row.community) : UNREGISTERED,
          activity_id: known ? String(row.activity) : UNREGISTERED,
        },
        fields: { bytes: row.bytes, packets: row.packets, records: row.records },
      });
      // Only NAT64 rows carry the tag: every other point (and series) stays as it was.
      if (row.nat64 === true) points[points.length - 1]!.tags!.nat64 = 'true';
    }
    const key = `${row.bucketStartMs}|${row.exporter}|${inIf}|${outIf}|${row.trafficClass}|${row.nat64 === true}`;
    const existing = links.get(key);
    if (existing) {
      existing.fields.bytes += row.bytes;
      existing.fields.packets += row.packets;
      existing.fields.records += row.records;
    } else {
      // Capacities ride along as fields (no extra series) so utilisation is one InfluxQL query.
      const inCap = capacity(naming, row.exporter, row.inIf);
      const outCap = capacity(naming, row.exporter, row.outIf);
      const fields: Record<string, number> = { bytes: row.bytes, packets: row.packets, records: row.records };
      if (inCap !== undefined) fields.in_capacity_bps = inCap;
      if (outCap !== undefined) fields.out_capacity_bps = outCap;
      links.set(key, {
        measurement: 'link_traffic',
        timestamp: time,
        tags: { exporter: row.exporter, in_link: inLink, out_link: outLink, in_if: inIf, out_if: outIf, class: row.trafficClass },
        fields: fields as { bytes: number; packets: number; records: number },
      });
      if (row.nat64 === true) links.get(key)!.tags!.nat64 = 'true';
    }
  }
  points.push(...links.values());
  return points;
}
