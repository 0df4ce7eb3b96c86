import { ensureDir } from '../../ensure-dir.js';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { DURATION_BINS, THROUGHPUT_BINS } from '../../fireflies/histogram.js';
import { groupFireflyRows, type StoredFireflyRow } from '../firefly-group.js';
import { groupSiteRows } from '../site-group.js';
import type {
  FireflyQuery,
  FireflyQueryResult,
  FireflyRow,
  FireflyStore,
  SiteTrafficQuery,
  SiteTrafficRow,
  SiteTrafficStore,
  TrafficClass,
  TrafficQuery,
  TrafficQueryResult,
  TrafficRow,
  TrafficSeries,
  TrafficStore,
  TrafficTotals,
} from '../types.js';
import { formatLinkKey } from './link-key.js';
import { buildSeriesQuery, buildTotalsQuery } from './query.js';
import { NONE, migrate } from './schema.js';
import type { Nat64TopQuery, Nat64TopResult, Nat64TopRow, Nat64TopStore } from '../nat64-top.js';
import { queryNat64Top, readNat64Top, writeNat64Top } from './nat64-top.js';

/**
 * The embedded default store: one SQLite file (better-sqlite3) in WAL mode, so API reads
 * do not block the aggregator's writes. better-sqlite3 is synchronous; the async methods are
 * there to satisfy TrafficStore (the InfluxDB store is truly asynchronous).
 */
export interface SqliteStoreConfig {
  /** File path; ':memory:' for a throw-away store. Parent directories are created. */
  path: string;
  /** Rows whose bucket started longer ago than this are deleted by applyRetention; 0 keeps all. */
  retentionDays: number;
}

export const DEFAULT_SQLITE_STORE_CONFIG: Readonly<SqliteStoreConfig> = Object.freeze({
  path: './data/scitags.sqlite',
  retentionDays: 30,
});

const DAY_MS = 86_400_000;
/** Distinct query shapes kept prepared (groupBy x filters x list lengths). */
const STATEMENT_CACHE = 64;

interface SeriesRow {
  t: number;
  bytes: number;
  packets: number;
  records: number;
  [column: string]: string | number;
}

export class SqliteTrafficStore implements TrafficStore, FireflyStore, SiteTrafficStore, Nat64TopStore {
  readonly kind = 'sqlite';
  readonly config: SqliteStoreConfig;
  private readonly db: Database.Database;
  private readonly upsert: Database.Statement;
  private readonly writeAll: (rows: TrafficRow[]) => void;
  private readonly writeFireflies: (rows: FireflyRow[]) => void;
  private readonly writeSites: (rows: SiteTrafficRow[]) => void;
  private readonly statements = new Map<string, Database.Statement>();

  constructor(config: Partial<SqliteStoreConfig> = {}) {
    this.config = { ...DEFAULT_SQLITE_STORE_CONFIG, ...config };
    try {
      if (this.config.path !== ':memory:') ensureDir(dirname(this.config.path));
      this.db = new Database(this.config.path);
    } catch (err) {
      // SQLite says only "unable to open database file": name the file.
      throw new Error(`cannot open the SQLite store ${this.config.path}: ${(err as Error).message}`, { cause: err });
    }
    try {
      this.db.pragma('journal_mode = WAL');
      // FULL: a write resolves only once it is on disk ("durable" in TrafficStore); with one
      // transaction per bucket write the extra fsync costs nothing that matters.
      this.db.pragma('synchronous = FULL');
      this.db.pragma('busy_timeout = 5000');
      migrate(this.db);
    } catch (err) {
      this.db.close();
      throw err;
    }
    // Replace, never add: a late rewrite of a bucket carries its whole total.
    this.upsert = this.db.prepare(
      `INSERT INTO traffic (bucket_start, exporter, in_if, out_if, class, community, activity, nat64,
                            bucket_seconds, registered, bytes, packets, records)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (bucket_start, exporter, in_if, out_if, class, community, activity, nat64) DO UPDATE SET
         bucket_seconds = excluded.bucket_seconds, registered = excluded.registered,
         bytes = excluded.bytes, packets = excluded.packets, records = excluded.records`,
    );
    this.writeAll = this.db.transaction((rows: TrafficRow[]) => {
      for (const r of rows) {
        this.upsert.run(
          r.bucketStartMs,
          r.exporter,
          r.inIf ?? NONE,
          r.outIf ?? NONE,
          r.trafficClass,
          r.community ?? NONE,
          r.activity ?? NONE,
          r.nat64 === true ? 1 : 0,
          r.bucketSeconds,
          r.registered ? 1 : 0,
          r.bytes,
          r.packets,
          r.records,
        );
      }
    });
    const upsertSite = this.db.prepare(
      `INSERT INTO site_traffic (bucket_start, exporter, src_site, dst_site, class, community, activity, nat64,
                                 bucket_seconds, registered, bytes, packets, records)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (bucket_start, exporter, src_site, dst_site, class, community, activity, nat64) DO UPDATE SET
         bucket_seconds = excluded.bucket_seconds, registered = excluded.registered,
         bytes = excluded.bytes, packets = excluded.packets, records = excluded.records`,
    );
    this.writeSites = this.db.transaction((rows: SiteTrafficRow[]) => {
      for (const r of rows) {
        upsertSite.run(
          r.bucketStartMs,
          r.exporter,
          r.srcSite,
          r.dstSite,
          r.trafficClass,
          r.community ?? NONE,
          r.activity ?? NONE,
          r.nat64 === true ? 1 : 0,
          r.bucketSeconds,
          r.registered ? 1 : 0,
          r.bytes,
          r.packets,
          r.records,
        );
      }
    });
    const upsertFirefly = this.db.prepare(
      `INSERT INTO firefly (bucket_start, community, activity, ip_version, src_site, dst_site, bucket_seconds,
                            flows_started, flows_ended, flows_expired, flows_without_start, bytes, duration_seconds,
                            throughput_sum, throughput_count, throughput_max, rtt_sum, rtt_count, rtt_max, retransmits,
                            delivery_rate_sum, delivery_rate_count, delivery_rate_max,
                            ${BIN_COLUMNS.join(', ')})
       VALUES (${new Array(23 + BIN_COLUMNS.length).fill('?').join(', ')})
       ON CONFLICT (bucket_start, community, activity, ip_version, src_site, dst_site) DO UPDATE SET
         bucket_seconds = excluded.bucket_seconds, flows_started = excluded.flows_started,
         flows_ended = excluded.flows_ended, flows_expired = excluded.flows_expired,
         flows_without_start = excluded.flows_without_start, bytes = excluded.bytes,
         duration_seconds = excluded.duration_seconds, throughput_sum = excluded.throughput_sum,
         throughput_count = excluded.throughput_count, throughput_max = excluded.throughput_max,
         rtt_sum = excluded.rtt_sum, rtt_count = excluded.rtt_count, rtt_max = excluded.rtt_max,
         retransmits = excluded.retransmits, delivery_rate_sum = excluded.delivery_rate_sum,
         delivery_rate_count = excluded.delivery_rate_count, delivery_rate_max = excluded.delivery_rate_max,
         ${BIN_COLUMNS.map((c) => `${c} = excluded.${c}`).join(', ')}`,
    );
    this.writeFireflies = this.db.transaction((rows: FireflyRow[]) => {
      for (const r of rows) {
        upsertFirefly.run(
          r.bucketStartMs,
          r.community,
          r.activity,
          r.ipVersion,
          r.srcSite,
          r.dstSite,
          r.bucketSeconds,
          r.flowsStarted,
          r.flowsEnded,
          r.flowsExpired,
          r.flowsWithoutStart,
          r.bytes,
          r.durationSeconds,
          r.throughputSum,
          r.throughputCount,
          r.throughputMax,
          r.rttSum,
          r.rttCount,
          r.rttMax,
          r.retransmits,
          r.deliveryRateSum,
          r.deliveryRateCount,
          r.deliveryRateMax,
          ...r.durationHistogram,
          ...r.throughputHistogram,
        );
      }
    });
  }

  get path(): string {
    return this.config.path;
  }

  /** All rows in one transaction: a bucket is never half-written. */
  async writeRows(rows: TrafficRow[]): Promise<void> {
    if (rows.length > 0) this.writeAll(rows);
  }

  async queryTraffic(query: TrafficQuery): Promise<TrafficQueryResult> {
    checkRange(query);
    const built = buildSeriesQuery(query);
    const rows = this.statement(built.sql).all(...built.params) as SeriesRow[];
    const totalsQuery = buildTotalsQuery(query);
    const totals = this.statement(totalsQuery.sql).get(...totalsQuery.params) as TrafficTotals;

    const series = new Map<string, TrafficSeries>();
    for (const row of rows) {
      const group: Record<string, string | number | null> = {};
      for (const { dimension, columns } of built.groupColumns) {
        group[dimension] = groupValue(
          dimension,
          columns.map((c) => row[c]!),
        );
      }
      const key = JSON.stringify(group);
      let s = series.get(key);
      if (s === undefined) series.set(key, (s = { group, points: [], totals: { bytes: 0, packets: 0, records: 0 } }));
      s.points.push({
        timeMs: row.t,
        bytes: row.bytes,
        packets: row.packets,
        records: row.records,
        bitsPerSecond: (row.bytes * 8) / query.stepSeconds,
        packetsPerSecond: row.packets / query.stepSeconds,
      });
      s.totals.bytes += row.bytes;
      s.totals.packets += row.packets;
      s.totals.records += row.records;
    }
    // Largest first (dashboards show the top groups), then by group for a stable order.
    const ordered = [...series.entries()]
      .sort(([ka, a], [kb, b]) => b.totals.bytes - a.totals.bytes || (ka < kb ? -1 : ka > kb ? 1 : 0))
      .map(([, s]) => s);
    return { series: ordered, totals: { bytes: totals.bytes, packets: totals.packets, records: totals.records } };
  }

  async readRows(fromMs: number): Promise<TrafficRow[]> {
    const rows = this.statement(`SELECT ${STORED_COLUMNS}, in_if, out_if FROM traffic WHERE bucket_start >= ?`).all(
      fromMs,
    ) as (StoredDbRow & {
      in_if: number;
      out_if: number;
    })[];
    return rows.map((r) => ({ ...fromStoredDb(r), inIf: orNull(r.in_if), outIf: orNull(r.out_if) }));
  }

  async readSiteRows(fromMs: number): Promise<SiteTrafficRow[]> {
    const rows = this.statement(`SELECT ${STORED_COLUMNS}, src_site, dst_site FROM site_traffic WHERE bucket_start >= ?`).all(
      fromMs,
    ) as (StoredDbRow & { src_site: string; dst_site: string })[];
    return rows.map((r) => ({ ...fromStoredDb(r), srcSite: r.src_site, dstSite: r.dst_site }));
  }

  /** Site-pair rows of a bucket in one transaction, replacing their keys (like writeRows). */
  async writeSiteRows(rows: SiteTrafficRow[]): Promise<void> {
    if (rows.length > 0) this.writeSites(rows);
  }

  /** Rows in range and matching the pushed-down filters, summed per step and key in SQL, grouped by groupSiteRows. */
  async querySiteTraffic(q: SiteTrafficQuery): Promise<TrafficQueryResult> {
    const { where, params } = stepRangeWhere(q, [
      ['community', q.community],
      ['activity', q.activity],
      ['exporter', q.exporter],
      ['class', q.trafficClass],
    ]);
    const rows = this.statement(
      `SELECT bucket_start - bucket_start % ? AS t, exporter, src_site, dst_site, class, community, activity, nat64,
              SUM(bytes) AS bytes, SUM(packets) AS packets, SUM(records) AS records
       FROM site_traffic WHERE ${where}
       GROUP BY t, exporter, src_site, dst_site, class, community, activity, nat64`,
    ).all(...params) as {
      t: number;
      exporter: string;
      src_site: string;
      dst_site: string;
      class: TrafficClass;
      community: number;
      activity: number;
      nat64: number;
      bytes: number;
      packets: number;
      records: number;
    }[];
    return groupSiteRows(
      rows.map((r) => ({
        bucketStartMs: r.t,
        exporter: r.exporter,
        srcSite: r.src_site,
        dstSite: r.dst_site,
        trafficClass: r.class,
        community: orNull(r.community),
        activity: orNull(r.activity),
        nat64: r.nat64 === 1,
        bytes: r.bytes,
        packets: r.packets,
        records: r.records,
      })),
      q,
      true,
    );
  }

  async applyRetention(nowMs: number): Promise<number> {
    if (!(this.config.retentionDays > 0)) return 0;
    const cutoff = nowMs - this.config.retentionDays * DAY_MS;
    return (
      this.statement('DELETE FROM traffic WHERE bucket_start < ?').run(cutoff).changes +
      this.statement('DELETE FROM site_traffic WHERE bucket_start < ?').run(cutoff).changes +
      this.statement('DELETE FROM firefly WHERE bucket_start < ?').run(cutoff).changes +
      this.statement('DELETE FROM nat64_top WHERE bucket_start < ?').run(cutoff).changes
    );
  }

  /** Firefly rows of a bucket in one transaction, replacing their keys (like writeRows). */
  async writeFireflyRows(rows: FireflyRow[]): Promise<void> {
    if (rows.length > 0) this.writeFireflies(rows);
  }

  /**
   * Rows in range and matching the filters, summed per step and key in SQL (SUM ignores
   * nothing here; MAX skips the NULL maxima), then grouped by groupFireflyRows like InfluxDB.
   */
  async queryFireflies(q: FireflyQuery): Promise<FireflyQueryResult> {
    const { where, params } = stepRangeWhere(q, [
      ['community', q.community],
      ['activity', q.activity],
      ['ip_version', q.ipVersion],
      ['src_site', q.srcSite],
      ['dst_site', q.dstSite],
    ]);
    const rows = this.statement(
      `SELECT ${FIREFLY_SELECT_STEP} FROM firefly WHERE ${where}
       GROUP BY t, community, activity, ip_version, src_site, dst_site`,
    ).all(...params) as FireflyDbRow[];
    return groupFireflyRows(rows.map(fromFireflyDb), q, true);
  }

  async readFireflyRows(fromMs: number): Promise<FireflyRow[]> {
    const rows = this.statement(
      `SELECT ${FIREFLY_SELECT_STEP}, bucket_seconds FROM firefly WHERE bucket_start >= ? GROUP BY t, community, activity, ip_version, src_site, dst_site`,
    ).all(1, fromMs) as (FireflyDbRow & { bucket_seconds: number })[];
    return rows.map((r) => ({ ...fromFireflyDb(r), bucketSeconds: r.bucket_seconds }));
  }

  async writeNat64TopRows(rows: Nat64TopRow[]): Promise<void> {
    if (rows.length > 0) writeNat64Top(this.db, rows);
  }

  async queryNat64Top(q: Nat64TopQuery): Promise<Nat64TopResult> {
    return queryNat64Top(this.db, q);
  }

  async readNat64TopRows(fromMs: number): Promise<Nat64TopRow[]> {
    return readNat64Top(this.db, fromMs);
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }

  private statement(sql: string): Database.Statement {
    let stmt = this.statements.get(sql);
    if (stmt === undefined) {
      if (this.statements.size >= STATEMENT_CACHE) this.statements.delete(this.statements.keys().next().value!);
      stmt = this.db.prepare(sql);
    } else {
      this.statements.delete(sql); // re-inserted below: least recently used goes first
    }
    this.statements.set(sql, stmt);
    return stmt;
  }
}

/** The histogram columns (one count per bin), in row order: durations, then throughputs. */
const BIN_COLUMNS = [...DURATION_BINS, ...THROUGHPUT_BINS].map((b) => b.name);

/** Step start `t` (the first parameter is the step in ms) and the sums of one key. */
const FIREFLY_SELECT_STEP = `bucket_start - bucket_start % ? AS t, community, activity, ip_version, src_site, dst_site,
  SUM(flows_started) AS flows_started, SUM(flows_ended) AS flows_ended, SUM(flows_expired) AS flows_expired,
  SUM(flows_without_start) AS flows_without_start, SUM(bytes) AS bytes, SUM(duration_seconds) AS duration_seconds,
  SUM(throughput_sum) AS throughput_sum, SUM(throughput_count) AS throughput_count, MAX(throughput_max) AS throughput_max,
  SUM(rtt_sum) AS rtt_sum, SUM(rtt_count) AS rtt_count, MAX(rtt_max) AS rtt_max, SUM(retransmits) AS retransmits,
  SUM(delivery_rate_sum) AS delivery_rate_sum, SUM(delivery_rate_count) AS delivery_rate_count,
  MAX(delivery_rate_max) AS delivery_rate_max,
  ${BIN_COLUMNS.map((c) => `SUM(${c}) AS ${c}`).join(', ')}`;

interface FireflyDbRow {
  t: number;
  community: number;
  activity: number;
  ip_version: number;
  src_site: string;
  dst_site: string;
  flows_started: number;
  flows_ended: number;
  flows_expired: number;
  flows_without_start: number;
  bytes: number;
  duration_seconds: number;
  throughput_sum: number;
  throughput_count: number;
  throughput_max: number | null;
  rtt_sum: number;
  rtt_count: number;
  rtt_max: number | null;
  retransmits: number;
  delivery_rate_sum: number;
  delivery_rate_count: number;
  delivery_rate_max: number | null;
  [bin: string]: number | string | null;
}

/** The columns every stored sums row has, whatever its key (traffic, site_traffic). */
const STORED_COLUMNS = 'bucket_start, bucket_seconds, exporter, class, community, activity, nat64, registered, bytes, packets, records';

interface StoredDbRow {
  bucket_start: number;
  bucket_seconds: number;
  exporter: string;
  class: TrafficClass;
  community: number;
  activity: number;
  nat64: number;
  registered: number;
  bytes: number;
  packets: number;
  records: number;
}

/** NONE (-1, "not known") back to null. */
function orNull(v: number): number | null {
  return v === NONE ? null : v;
}

/** The key-independent part of a stored row; the nat64 flag only on NAT64 rows, as written. */
function fromStoredDb(r: StoredDbRow) {
  return {
    bucketStartMs: r.bucket_start,
    bucketSeconds: r.bucket_seconds,
    exporter: r.exporter,
    trafficClass: r.class,
    community: orNull(r.community),
    activity: orNull(r.activity),
    registered: r.registered === 1,
    bytes: r.bytes,
    packets: r.packets,
    records: r.records,
    ...(r.nat64 === 1 ? { nat64: true as const } : {}),
  };
}

/** A query's step and range, checked as every store checks them (the API validates before). */
function checkRange(q: { stepSeconds: number; fromMs: number; toMs: number }): number {
  const stepMs = Math.round(q.stepSeconds * 1000);
  if (!(stepMs >= 1)) throw new RangeError(`stepSeconds must be at least 0.001, got ${q.stepSeconds}`);
  if (!(q.toMs >= q.fromMs)) throw new RangeError(`toMs (${q.toMs}) is before fromMs (${q.fromMs})`);
  return stepMs;
}

/**
 * WHERE over [fromMs, toMs) plus `column IN (...)` for each non-empty filter, and its
 * parameters led by the step in ms (the SELECT's `bucket_start - bucket_start % ?`).
 */
function stepRangeWhere(
  q: { stepSeconds: number; fromMs: number; toMs: number },
  filters: readonly (readonly [column: string, values: readonly (string | number)[] | undefined])[],
): { where: string; params: (string | number)[] } {
  const where = ['bucket_start >= ?', 'bucket_start < ?'];
  const params: (string | number)[] = [checkRange(q), q.fromMs, q.toMs];
  for (const [column, values] of filters) {
    if (values === undefined || values.length === 0) continue;
    where.push(`${column} IN (${values.map(() => '?').join(', ')})`);
    params.push(...values);
  }
  return { where: where.join(' AND '), params };
}
function fromFireflyDb(r: FireflyDbRow): StoredFireflyRow {
  return {
    bucketStartMs: r.t,
    community: r.community,
    activity: r.activity,
    ipVersion: r.ip_version === 6 ? 6 : 4,
    srcSite: r.src_site,
    dstSite: r.dst_site,
    flowsStarted: r.flows_started,
    flowsEnded: r.flows_ended,
    flowsExpired: r.flows_expired,
    flowsWithoutStart: r.flows_without_start,
    bytes: r.bytes,
    durationSeconds: r.duration_seconds,
    throughputSum: r.throughput_sum,
    throughputCount: r.throughput_count,
    throughputMax: r.throughput_max,
    rttSum: r.rtt_sum,
    rttCount: r.rtt_count,
    rttMax: r.rtt_max,
    deliveryRateSum: r.delivery_rate_sum,
    deliveryRateCount: r.delivery_rate_count,
    deliveryRateMax: r.delivery_rate_max,
    retransmits: r.retransmits,
    durationHistogram: DURATION_BINS.map((b) => r[b.name] as number),
    throughputHistogram: THROUGHPUT_BINS.map((b) => r[b.name] as number),
  };
}

function groupValue(dimension: string, values: (string | number)[]): string | number | null {
  switch (dimension) {
    case 'community':
    case 'activity': {
      const v = values[0] as number;
      return v === NONE ? null : v;
    }
    case 'link': {
      const ifIndex = values[1] as number;
      return formatLinkKey(values[0] as string, ifIndex === NONE ? null : ifIndex);
    }
    case 'class':
      return values[0] as TrafficClass;
    case 'nat64':
      return values[0] === 1 ? 'true' : 'false';
    default:
      return values[0]!;
  }
}

export function createSqliteStore(config: Partial<SqliteStoreConfig> = {}): SqliteTrafficStore {
  return new SqliteTrafficStore(config);
}
