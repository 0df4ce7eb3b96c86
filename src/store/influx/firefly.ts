import { hostname } from 'node:os';
import { escape, FieldType, type IPoint } from 'influx';
import { DURATION_BINS, THROUGHPUT_BINS } from '../../fireflies/histogram.js';
import type { Registry } from '../../registry/registry.js';
import type { StoredFireflyRow } from '../firefly-group.js';
import type { FireflyQuery, FireflyRow } from '../types.js';
import { orEquals } from './query.js';

/**
 * The `scitags_firefly` measurement (docs/influx-schema.md): one point per firefly row, at
 * the bucket start. Tags: community / activity (registry names when known, else the
 * numbers: firefly ids are declared by the host, bounded by the id space), community_id /
 * activity_id, ip_version, src_site, dst_site, and instance: the collector that counted them
 * (`fireflies.instance`, else the hostname). Traffic points stay disjoint between instances
 * through their exporter tag; firefly rows have no exporter, so without the instance tag two
 * instances' rows of one key and bucket would be one series and time, and the last write would
 * win. Queries sum over it (it is never grouped by), so they answer for every instance. The
 * maxima are left out while no ended flow carried the value (InfluxDB has no null): max()
 * then skips the point.
 */
export const FIREFLY_MEASUREMENT = 'scitags_firefly';

export const FIREFLY_TAGS = ['community', 'activity', 'community_id', 'activity_id', 'ip_version', 'src_site', 'dst_site', 'instance'];

/** The `instance` tag value: the configured name, else the hostname (never empty: InfluxDB refuses an empty tag value). */
export function fireflyInstanceName(configured: string | undefined): string {
  const name = configured?.trim() || hostname();
  return name === '' ? 'collector' : name;
}

export const FIREFLY_FIELDS = {
  flows_started: FieldType.INTEGER,
  flows_ended: FieldType.INTEGER,
  flows_expired: FieldType.INTEGER,
  flows_without_start: FieldType.INTEGER,
  bytes: FieldType.INTEGER,
  duration_seconds: FieldType.FLOAT,
  throughput_sum_bps: FieldType.FLOAT,
  throughput_count: FieldType.INTEGER,
  throughput_max_bps: FieldType.FLOAT,
  rtt_sum_ms: FieldType.FLOAT,
  rtt_count: FieldType.INTEGER,
  rtt_max_ms: FieldType.FLOAT,
  delivery_rate_sum_bps: FieldType.FLOAT,
  delivery_rate_count: FieldType.INTEGER,
  delivery_rate_max_bps: FieldType.FLOAT,
  retransmits: FieldType.INTEGER,
  ...Object.fromEntries([...DURATION_BINS, ...THROUGHPUT_BINS].map((b) => [b.name, FieldType.INTEGER])),
};

export function fireflyRowsToPoints(rows: readonly FireflyRow[], registry: Registry, instance: string): IPoint[] {
  return rows.map((r) => {
    const fields: Record<string, number> = {
      flows_started: r.flowsStarted,
      flows_ended: r.flowsEnded,
      flows_expired: r.flowsExpired,
      flows_without_start: r.flowsWithoutStart,
      // Integer fields: a fractional value would be refused by InfluxDB (400, dead-lettered).
      bytes: Math.round(r.bytes),
      duration_seconds: r.durationSeconds,
      throughput_sum_bps: r.throughputSum,
      throughput_count: r.throughputCount,
      rtt_sum_ms: r.rttSum,
      rtt_count: r.rttCount,
      delivery_rate_sum_bps: r.deliveryRateSum,
      delivery_rate_count: r.deliveryRateCount,
      retransmits: Math.round(r.retransmits),
    };
    DURATION_BINS.forEach((b, i) => (fields[b.name] = r.durationHistogram[i] ?? 0));
    THROUGHPUT_BINS.forEach((b, i) => (fields[b.name] = r.throughputHistogram[i] ?? 0));
    if (r.throughputMax !== null) fields.throughput_max_bps = r.throughputMax;
    if (r.rttMax !== null) fields.rtt_max_ms = r.rttMax;
    if (r.deliveryRateMax !== null) fields.delivery_rate_max_bps = r.deliveryRateMax;
    return {
      measurement: FIREFLY_MEASUREMENT,
      timestamp: new Date(r.bucketStartMs),
      tags: {
        community: registry.communityName(r.community) ?? String(r.community),
        activity: registry.activityName(r.community, r.activity) ?? String(r.activity),
        community_id: String(r.community),
        activity_id: String(r.activity),
        ip_version: String(r.ipVersion),
        src_site: r.srcSite,
        dst_site: r.dstSite,
        instance,
      },
      fields,
    };
  });
}

/**
 * Every field summed over points, the maxima by max(): what a step of the API adds up, and the
 * SELECT of the hourly roll-up (setup.ts, cq_firefly_1h), so an hour of rollup_1h holds what
 * the API would sum from that hour's raw points.
 */
export const FIREFLY_SUMS =
  'sum("flows_started") AS "flows_started", sum("flows_ended") AS "flows_ended", sum("flows_expired") AS "flows_expired", ' +
  'sum("flows_without_start") AS "flows_without_start", sum("bytes") AS "bytes", sum("duration_seconds") AS "duration_seconds", ' +
  'sum("throughput_sum_bps") AS "throughput_sum_bps", sum("throughput_count") AS "throughput_count", max("throughput_max_bps") AS "throughput_max_bps", ' +
  'sum("rtt_sum_ms") AS "rtt_sum_ms", sum("rtt_count") AS "rtt_count", max("rtt_max_ms") AS "rtt_max_ms", ' +
  'sum("delivery_rate_sum_bps") AS "delivery_rate_sum_bps", sum("delivery_rate_count") AS "delivery_rate_count", ' +
  'max("delivery_rate_max_bps") AS "delivery_rate_max_bps", sum("retransmits") AS "retransmits", ' +
  [...DURATION_BINS, ...THROUGHPUT_BINS].map((b) => `sum("${b.name}") AS "${b.name}"`).join(', ');

const KEY_TAGS = '"community_id", "activity_id", "ip_version", "src_site", "dst_site"';

/**
 * InfluxQL for a FireflyQuery: the time range, the filters and the step are pushed down;
 * every value from a request goes through escape.stringLit, identifiers are constants.
 */
export function buildFireflyQuery(q: FireflyQuery): string {
  const where = [
    `time >= ${Math.floor(q.fromMs)}ms`,
    `time < ${Math.ceil(q.toMs)}ms`,
    orEquals('community_id', q.community),
    orEquals('activity_id', q.activity),
    orEquals('ip_version', q.ipVersion),
    orEquals('src_site', q.srcSite),
    orEquals('dst_site', q.dstSite),
  ].filter(Boolean);
  return `SELECT ${FIREFLY_SUMS} FROM "${FIREFLY_MEASUREMENT}" WHERE ${where.join(' AND ')} GROUP BY time(${Math.round(q.stepSeconds * 1000)}ms), ${KEY_TAGS} fill(none)`;
}

/**
 * This instance's stored points since fromMs, per bucket (readFireflyRows: seeding its open
 * buckets at start). Only its own: adding another instance's rows to its buckets would write
 * them again under its tag, counting them twice. Points of a release without the tag are not
 * read either; they stay beside the new ones and the sums over both remain right.
 */
export function buildFireflyReadQuery(fromMs: number, instance: string): string {
  return `SELECT * FROM "${FIREFLY_MEASUREMENT}" WHERE time >= ${Math.floor(fromMs)}ms AND "instance" = ${escape.stringLit(instance)}`;
}

const num = (v: unknown): number => (v === null || v === undefined ? 0 : Number(v));
const maxNum = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

/** One InfluxQL result row (tags merged in by node-influx) as a stored firefly row. */
export function influxRowToFirefly(row: Record<string, unknown>): StoredFireflyRow {
  return {
    bucketStartMs: (row.time as { getTime(): number }).getTime(),
    community: Number(row.community_id),
    activity: Number(row.activity_id),
    ipVersion: row.ip_version === '6' ? 6 : 4,
    srcSite: String(row.src_site),
    dstSite: String(row.dst_site),
    flowsStarted: num(row.flows_started),
    flowsEnded: num(row.flows_ended),
    flowsExpired: num(row.flows_expired),
    flowsWithoutStart: num(row.flows_without_start),
    bytes: num(row.bytes),
    durationSeconds: num(row.duration_seconds),
    throughputSum: num(row.throughput_sum_bps),
    throughputCount: num(row.throughput_count),
    throughputMax: maxNum(row.throughput_max_bps),
    rttSum: num(row.rtt_sum_ms),
    rttCount: num(row.rtt_count),
    rttMax: maxNum(row.rtt_max_ms),
    deliveryRateSum: num(row.delivery_rate_sum_bps),
    deliveryRateCount: num(row.delivery_rate_count),
    deliveryRateMax: maxNum(row.delivery_rate_max_bps),
    retransmits: num(row.retransmits),
    durationHistogram: DURATION_BINS.map((b) => num(row[b.name])),
    throughputHistogram: THROUGHPUT_BINS.map((b) => num(row[b.name])),
  };
}
