import type { GroupByDimension, TrafficQuery } from '../types.js';

/**
 * Builds the SQL for a TrafficQuery against the `traffic` table (schema.ts).
 *
 * Time: rows whose bucket starts in [fromMs, toMs); points are re-bucketed to multiples of
 * the step counted from the Unix epoch (so steps line up across queries and with Grafana).
 *
 * Links and direction. A row is traffic that entered a router on inIf and left on outIf, so
 * it belongs to two links. When grouping by `link` or `direction`, every row counts twice:
 * once for its in-link (exporter, inIf) with direction 'in' and once for its out-link
 * (exporter, outIf) with direction 'out'; a `link` filter then keeps the sides on a listed
 * link. A row whose two sides are the same link (both unknown, or in and out on one
 * interface) counts once when `direction` is not grouped: its in and out halves would fall
 * in one group, and a row is never counted twice in one group.
 * Without link/direction grouping a row counts once, and a `link` filter keeps rows with
 * either side on a listed link. The overall totals always count each matching row once.
 *
 * Filters: an absent or empty list does not filter. `community` / `activity` filters match
 * numeric ids only (rows with folded or unmarked traffic have none).
 */

export interface BuiltQuery {
  sql: string;
  params: (string | number)[];
  /** Result columns holding the group values, in groupBy order. */
  groupColumns: { dimension: GroupByDimension; columns: string[] }[];
}

/** SQL expressions (over `traffic` or the expanded `halves`) for each dimension. */
const COLUMNS: Record<GroupByDimension, string[]> = {
  community: ['community'],
  activity: ['activity'],
  exporter: ['exporter'],
  class: ['class'],
  link: ['exporter', 'if_index'],
  direction: ['direction'],
  nat64: ['nat64'],
};

function uniqueDimensions(groupBy: readonly GroupByDimension[]): GroupByDimension[] {
  return [...new Set(groupBy)];
}

export function isExpanded(groupBy: readonly GroupByDimension[]): boolean {
  return groupBy.includes('link') || groupBy.includes('direction');
}

/** WHERE terms common to every query (everything but the link filter). */
function baseFilters(q: TrafficQuery, params: (string | number)[]): string[] {
  const where = ['bucket_start >= ?', 'bucket_start < ?'];
  params.push(q.fromMs, q.toMs);
  const inList = (column: string, values: readonly (string | number)[] | undefined): void => {
    if (values === undefined || values.length === 0) return;
    where.push(`${column} IN (${values.map(() => '?').join(', ')})`);
    params.push(...values);
  };
  inList('community', q.community);
  inList('activity', q.activity);
  inList('exporter', q.exporter);
  inList('class', q.trafficClass);
  return where;
}

/** `(exporter, <ifColumn>) IN (VALUES (?, ?), ...)` for the link filter. */
function linkTerm(ifColumn: string, q: TrafficQuery, params: (string | number)[]): string {
  const links = q.link ?? [];
  for (const l of links) params.push(l.exporter, l.ifIndex);
  return `(exporter, ${ifColumn}) IN (VALUES ${links.map(() => '(?, ?)').join(', ')})`;
}

function hasLinkFilter(q: TrafficQuery): boolean {
  return q.link !== undefined && q.link.length > 0;
}

export function buildSeriesQuery(q: TrafficQuery): BuiltQuery {
  const stepMs = Math.round(q.stepSeconds * 1000);
  const params: (string | number)[] = [stepMs];
  const dims = uniqueDimensions(q.groupBy);
  const groupColumns = dims.map((dimension) => ({ dimension, columns: COLUMNS[dimension] }));
  const cols = [...new Set(groupColumns.flatMap((g) => g.columns))];
  // `%` works on integers in SQLite whatever the binding (better-sqlite3 binds numbers as REAL,
  // so `bucket_start / ?` would be a float division).
  const select = [
    'bucket_start - bucket_start % ? AS t',
    ...cols,
    'SUM(bytes) AS bytes',
    'SUM(packets) AS packets',
    'SUM(records) AS records',
  ];
  const groupBy = ['t', ...cols].join(', ');

  let sql: string;
  if (isExpanded(dims)) {
    const inner: (string | number)[] = [];
    const where = baseFilters(q, inner);
    const outer: (string | number)[] = [];
    const linkWhere = hasLinkFilter(q) ? `WHERE ${linkTerm('if_index', q, outer)}` : '';
    const columns = 'bucket_start, exporter, class, community, activity, nat64, bytes, packets, records';
    // Unknown is NONE (-1) on both sides, so two unknown sides compare equal here.
    const sameLinkOnce = dims.includes('direction') ? '' : 'WHERE in_if <> out_if';
    sql = `WITH base AS (SELECT bucket_start, exporter, in_if, out_if, class, community, activity, nat64, bytes, packets, records
                         FROM traffic WHERE ${where.join(' AND ')}),
              halves AS (SELECT ${columns}, in_if AS if_index, 'in' AS direction FROM base
                         UNION ALL
                         SELECT ${columns}, out_if AS if_index, 'out' AS direction FROM base ${sameLinkOnce})
           SELECT ${select.join(', ')} FROM halves ${linkWhere} GROUP BY ${groupBy} ORDER BY t`;
    // `?` are numbered by position in the text: CTE filters, then the step, then the link.
    return { sql, params: [...inner, stepMs, ...outer], groupColumns };
  }
  const where = baseFilters(q, params);
  if (hasLinkFilter(q)) where.push(`(${linkTerm('in_if', q, params)} OR ${linkTerm('out_if', q, params)})`);
  sql = `SELECT ${select.join(', ')} FROM traffic WHERE ${where.join(' AND ')} GROUP BY ${groupBy} ORDER BY t`;
  return { sql, params, groupColumns };
}

/** The overall totals: each matching row once, whatever the grouping. */
export function buildTotalsQuery(q: TrafficQuery): { sql: string; params: (string | number)[] } {
  const params: (string | number)[] = [];
  const where = baseFilters(q, params);
  if (hasLinkFilter(q)) where.push(`(${linkTerm('in_if', q, params)} OR ${linkTerm('out_if', q, params)})`);
  return {
    sql: `SELECT COALESCE(SUM(bytes), 0) AS bytes, COALESCE(SUM(packets), 0) AS packets, COALESCE(SUM(records), 0) AS records
          FROM traffic WHERE ${where.join(' AND ')}`,
    params,
  };
}
