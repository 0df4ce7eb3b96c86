import { FieldType, type IPoint } from 'influx';
import type { Nat64TopRow } from '../nat64-top.js';

/**
 * The `scitags_nat64_top` measurement (docs/influx-schema.md): per bucket the top N IPv4
 * destinations behind NAT64 (src/enrich/nat64-top.ts), one point per rank at the bucket
 * start. The only tag is `rank` (1..transition.nat64TopN, so at most N series); the address
 * is a FIELD, never a tag: addresses must not become series. A rewrite of the bucket
 * overwrites its points rank by rank (a rewrite never lists fewer addresses).
 */
export const NAT64_TOP_MEASUREMENT = 'scitags_nat64_top';
export const NAT64_TOP_TAGS = ['rank'];
export const NAT64_TOP_FIELDS = {
  address: FieldType.STRING,
  bytes: FieldType.INTEGER,
  packets: FieldType.INTEGER,
  error_bytes: FieldType.INTEGER,
  bucket_seconds: FieldType.INTEGER,
};

export function nat64TopToPoints(rows: readonly Nat64TopRow[]): IPoint[] {
  return rows.map((r) => ({
    measurement: NAT64_TOP_MEASUREMENT,
    timestamp: new Date(r.bucketStartMs),
    tags: { rank: String(r.rank) },
    fields: { address: r.address, bytes: r.bytes, packets: r.packets, error_bytes: r.errorBytes, bucket_seconds: r.bucketSeconds },
  }));
}

export function nat64TopQuery(fromMs: number, toMs?: number): string {
  const where = [`time >= ${Math.floor(fromMs)}ms`, ...(toMs !== undefined ? [`time < ${Math.ceil(toMs)}ms`] : [])];
  return `SELECT "address", "bytes", "packets", "error_bytes", "bucket_seconds", "rank" FROM "${NAT64_TOP_MEASUREMENT}" WHERE ${where.join(' AND ')}`;
}

export function influxRowToNat64Top(row: Record<string, unknown>, bucketSeconds: number): Nat64TopRow {
  return {
    bucketStartMs: (row.time as { getTime(): number }).getTime(),
    bucketSeconds: row.bucket_seconds === null || row.bucket_seconds === undefined ? bucketSeconds : Number(row.bucket_seconds),
    rank: Number(row.rank),
    address: String(row.address),
    bytes: Number(row.bytes),
    packets: Number(row.packets),
    errorBytes: Number(row.error_bytes),
  };
}
