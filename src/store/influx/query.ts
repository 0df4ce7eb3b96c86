import { escape } from 'influx';
import type { StoredRow } from '../group.js';
import type { TrafficClass, TrafficQuery } from '../types.js';
import { NO_LINK, UNREGISTERED } from './points.js';

/**
 * InfluxQL for a TrafficQuery. Only the time range, the step, the exporter filter and (for
 * marked traffic) the id filters are pushed down; the grouping semantics are applied in
 * code by groupRows, so both stores answer alike. Every value from a request reaches the
 * query through escape.stringLit; identifiers are constants.
 */
const SUMS = 'sum("bytes") AS "bytes", sum("packets") AS "packets", sum("records") AS "records"';

export function orEquals(tag: string, values: readonly (string | number)[] | undefined): string | undefined {
  if (!values || values.length === 0) return undefined;
  return `(${values.map((v) => `${escape.quoted(tag)} = ${escape.stringLit(String(v))}`).join(' OR ')})`;
}

function timeTerms(q: TrafficQuery): string[] {
  // Integer milliseconds: InfluxQL reads `123ms` as a duration since the epoch.
  return [`time >= ${Math.floor(q.fromMs)}ms`, `time < ${Math.ceil(q.toMs)}ms`];
}

export function buildInfluxQueries(q: TrafficQuery): { scitags: string | undefined; links: string | undefined } {
  const step = `${Math.round(q.stepSeconds * 1000)}ms`;
  const classes = q.trafficClass?.length ? q.trafficClass : undefined;
  const wantScitags = !classes || classes.includes('scitags');
  const otherClasses = (classes ?? (['ipv6_unmarked', 'ipv4', 'unknown'] as TrafficClass[])).filter((c) => c !== 'scitags');
  const exporter = orEquals('exporter', q.exporter);
  // Unmarked traffic has no ids: a community/activity filter leaves only marked rows.
  const idFilter = (q.community?.length ?? 0) > 0 || (q.activity?.length ?? 0) > 0;

  let scitags: string | undefined;
  if (wantScitags) {
    const where = [...timeTerms(q), exporter, orEquals('community_id', q.community), orEquals('activity_id', q.activity)].filter(Boolean);
    scitags =
      `SELECT ${SUMS} FROM "scitags_traffic" WHERE ${where.join(' AND ')} ` +
      `GROUP BY time(${step}), "exporter", "in_if", "out_if", "community_id", "activity_id", "nat64" fill(none)`;
  }
  let links: string | undefined;
  if (otherClasses.length > 0 && !idFilter) {
    const where = [...timeTerms(q), exporter, orEquals('class', otherClasses)].filter(Boolean);
    links = `SELECT ${SUMS} FROM "link_traffic" WHERE ${where.join(' AND ')} GROUP BY time(${step}), "exporter", "in_if", "out_if", "class", "nat64" fill(none)`;
  }
  return { scitags, links };
}

function ifIndex(tag: unknown): number | null {
  return tag === undefined || tag === NO_LINK || tag === '' ? null : Number(tag);
}

function id(tag: unknown): number | null {
  return tag === undefined || tag === UNREGISTERED || tag === '' ? null : Number(tag);
}

/** One InfluxQL result row (tags merged in by node-influx) as a stored row. */
export function influxRowToStored(row: Record<string, unknown>, trafficClass: TrafficClass | undefined): StoredRow {
  const time = row.time as { getTime(): number };
  const cls = trafficClass ?? (row.class as TrafficClass);
  return {
    bucketStartMs: time.getTime(),
    exporter: String(row.exporter),
    inIf: ifIndex(row.in_if),
    outIf: ifIndex(row.out_if),
    trafficClass: cls,
    community: cls === 'scitags' ? id(row.community_id) : null,
    activity: cls === 'scitags' ? id(row.activity_id) : null,
    bytes: Number(row.bytes),
    packets: Number(row.packets),
    records: Number(row.records),
    ...(row.nat64 === 'true' ? { nat64: true } : {}),
  };
}
