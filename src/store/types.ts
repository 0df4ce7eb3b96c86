/**
 * The one store interface. The embedded store (default) and the InfluxDB store implement
 * it; the aggregator writes closed buckets through it and the REST API queries through it.
 *
 * A row is the whole total of one key in one bucket. Writing a row whose key exists
 * replaces it (never adds), so re-writing a bucket after late data is idempotent.
 */

/** Which share of a link's traffic a row counts: marked, unmarked IPv6, IPv4, or unknown. */
export type TrafficClass = 'scitags' | 'ipv6_unmarked' | 'ipv4' | 'unknown';

export interface TrafficRow {
  /** Bucket start, ms since the Unix epoch (a multiple of the bucket width). */
  bucketStartMs: number;
  /** Bucket width in seconds (so stores can serve rates and roll-ups). */
  bucketSeconds: number;
  /** Exporter (router / agent) address, without the UDP port: one router, one exporter. */
  exporter: string;
  /** Input / output ifIndex as reported; null when the exporter did not say. */
  inIf: number | null;
  outIf: number | null;
  trafficClass: TrafficClass;
  /**
   * SciTags ids for class 'scitags'. Both null for unregistered pairs folded into one
   * `unregistered` series (the default, so random RFC 6437 labels cannot explode the series
   * count); numbers for registered pairs and for unregistered pairs kept by configuration.
   * Always null for the unmarked classes.
   */
  community: number | null;
  activity: number | null;
  /** Whether the registry knew (community, activity) when the bucket was written. */
  registered: boolean;
  bytes: number;
  packets: number;
  records: number;
  /**
   * Present (true) on rows of IPv6 traffic to or from a NAT64 prefix (RFC 6052; the part of
   * the class's IPv6 that still needs IPv4 behind a translator); absent on all other rows.
   */
  nat64?: true;
}

export type GroupByDimension = 'community' | 'activity' | 'link' | 'exporter' | 'direction' | 'class' | 'nat64';

/**
 * A site-pair row (src/enrich/enricher.ts): a TrafficRow keyed by the source and destination
 * site of the record's addresses instead of its interfaces. Site names come from the site
 * map ('unknown' when no prefix holds the address, 'other' for folded keys).
 */
export interface SiteTrafficRow extends Omit<TrafficRow, 'inIf' | 'outIf'> {
  srcSite: string;
  dstSite: string;
}

/**
 * 'site' groups a row under both its sites (traffic to or from the site), once when source
 * and destination are the same site; srcSite / dstSite group by one side.
 */
export type SiteGroupByDimension = 'community' | 'activity' | 'exporter' | 'class' | 'nat64' | 'srcSite' | 'dstSite' | 'site';

export interface SiteTrafficQuery {
  fromMs: number;
  toMs: number;
  stepSeconds: number;
  groupBy: SiteGroupByDimension[];
  community?: number[];
  activity?: number[];
  exporter?: string[];
  trafficClass?: TrafficClass[];
  srcSite?: string[];
  dstSite?: string[];
  /** Either side on a listed site (with groupBy 'site': the sides on a listed site). */
  site?: string[];
}

/** What a store offers for the site-pair view (both built-in stores). */
export interface SiteTrafficStore {
  writeSiteRows(rows: SiteTrafficRow[]): Promise<void>;
  querySiteTraffic(query: SiteTrafficQuery): Promise<TrafficQueryResult>;
  /** Rows of buckets starting at or after fromMs (seeding the open buckets at start, like readRows). */
  readSiteRows(fromMs: number): Promise<SiteTrafficRow[]>;
}

/** Whether `store` has every named method: how an optional store capability is recognised. */
export function hasMethods(store: object, names: readonly string[]): boolean {
  return names.every((n) => typeof (store as Record<string, unknown>)[n] === 'function');
}

export function isSiteTrafficStore<S extends object>(store: S): store is S & SiteTrafficStore {
  return hasMethods(store, ['writeSiteRows', 'querySiteTraffic', 'readSiteRows']);
}

export interface TrafficQuery {
  fromMs: number;
  toMs: number;
  /** Step of the returned series in seconds (a multiple of the bucket width is best). */
  stepSeconds: number;
  groupBy: GroupByDimension[];
  /** Filters: numeric ids (names are resolved to ids by the API layer through the registry). */
  community?: number[];
  activity?: number[];
  /** Link filter: exporter + ifIndex pairs (the API resolves link names from configuration). */
  link?: { exporter: string; ifIndex: number }[];
  exporter?: string[];
  trafficClass?: TrafficClass[];
}

export interface TrafficTotals {
  bytes: number;
  packets: number;
  records: number;
}

export interface TrafficSeriesPoint extends TrafficTotals {
  timeMs: number;
  /** bytes * 8 / stepSeconds */
  bitsPerSecond: number;
  packetsPerSecond: number;
}

export interface TrafficSeries {
  /** The group's values, one per groupBy dimension, e.g. { community: 2, activity: 1 }. */
  group: Record<string, string | number | null>;
  points: TrafficSeriesPoint[];
  totals: TrafficTotals;
}

export interface TrafficQueryResult {
  series: TrafficSeries[];
  totals: TrafficTotals;
}

/** The collector's own cumulative counters at one moment (InfluxDB `collector_stats`). */
export interface CollectorCounters {
  datagrams: number;
  records: number;
  decode_errors: number;
  template_misses: number;
  sequence_lost: number;
  queue_drops: number;
  store_write_failures: number;
}

export interface CollectorStatsSnapshot {
  timeMs: number;
  /** Per exporter address, with decode errors by catalogue code. */
  exporters: { exporter: string; counters: CollectorCounters; errorsByReason: Record<string, number> }[];
  /** Collector-wide totals (tag exporter=all). */
  all: CollectorCounters;
}

/** Depth and health of a store's write spool (read-only; for metrics). */
/** A retrying store's write path, for /health and the scitags_store_* / scitags_influx_* metrics. */
export interface StoreWriteHealth {
  /** Every failed write request so far (first attempts and retries). */
  failures: number;
  /** Failures since the last successful write. */
  consecutiveFailures: number;
  lastError: string | undefined;
  lastErrorMs: number | undefined;
  /** http_5xx, timeout, connection, http_401, http_404, http_400, ... */
  lastErrorClass: string | undefined;
  lastErrorStatus: number | undefined;
  spooledBatches: number;
  /** Batches refused for good and moved to the dead-letter directory. */
  deadLetterBatches: number;
  /** Re-provisioning attempts (database found missing while running). */
  reprovisions: number;
}

/** The InfluxDB liveness probe (GET /ping while no write succeeds). */
export interface StoreProbeHealth {
  /** The last outcome (a successful write counts as one); undefined before the first. */
  ok: boolean | undefined;
  /** /ping requests sent, and how many failed (non-2xx, timeout, connection error). */
  probes: number;
  failures: number;
  consecutiveFailures: number;
  lastProbeMs: number | undefined;
  lastError: string | undefined;
  /** http_5xx, http_401, timeout, connection, ... */
  lastErrorClass: string | undefined;
  lastErrorStatus: number | undefined;
}

export interface StoreSpoolStats {
  batches: number;
  /** Rows (points) in the spooled batches. */
  rows: number;
  bytes: number;
  /** When the oldest spooled batch was spooled (ms since the epoch); undefined when empty. */
  oldestMs: number | undefined;
  /** Batches refused because the spool was full (data lost). */
  rejectedBatches: number;
  /** When a write to the server last failed (ms since the epoch); undefined when none has. */
  lastErrorMs: number | undefined;
}

export interface TrafficStore {
  readonly kind: string;
  /**
   * Replaces every given row's key in its bucket. Resolves once the rows are durable.
   * Contract with the aggregator: the rows of one bucket are always written together (the
   * whole bucket), so a store may derive per-link sums from one call (InfluxDB link_traffic).
   */
  writeRows(rows: TrafficRow[]): Promise<void>;
  queryTraffic(query: TrafficQuery): Promise<TrafficQueryResult>;
  /**
   * The stored rows of buckets starting at or after `fromMs`. At start the aggregator seeds
   * the buckets still open with them, so a restart adds to what the previous run wrote for
   * the current bucket instead of replacing it with a partial total.
   */
  readRows(fromMs: number): Promise<TrafficRow[]>;
  /** Stores the collector's own counters, where the store keeps them (InfluxDB). */
  writeCollectorStats?(snapshot: CollectorStatsSnapshot): Promise<void>;
  /** Deletes data older than the retention; returns rows removed (embedded store). */
  applyRetention?(nowMs: number): Promise<number>;
  /** The on-disk spool of writes waiting for the server, where the store has one (InfluxDB). */
  spoolStats?(): StoreSpoolStats;
  /** The write path's own view (stores that retry and spool: InfluxDB). */
  writeHealth?(): StoreWriteHealth;
  /** The liveness probe's state (InfluxDB; undefined with store.probeIntervalSeconds 0). */
  probeHealth?(): StoreProbeHealth | undefined;
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------------------
// Fireflies (issue 13): per-bucket sums of the flow table's events (src/fireflies/aggregate.ts)
// ---------------------------------------------------------------------------------------

/** One firefly row: the whole total of one key in one bucket (replaced, never added, on rewrite). */
export interface FireflyRow {
  /** Bucket start (receive time of the fireflies), ms since the Unix epoch. */
  bucketStartMs: number;
  bucketSeconds: number;
  /** experiment-id and activity-id as the host declared them (bounded by the id space). */
  community: number;
  activity: number;
  ipVersion: 4 | 6;
  /** Site names from the site map, 'unknown', or 'other' for keys folded by the cardinality cap. */
  srcSite: string;
  dstSite: string;
  flowsStarted: number;
  flowsEnded: number;
  flowsExpired: number;
  /** Of flowsEnded: ends without a start seen by this collector. */
  flowsWithoutStart: number;
  /** Of ended flows: bytes in both directions, and summed durations. */
  bytes: number;
  durationSeconds: number;
  /** Ended flows with a throughput: sum (for the mean), count and maximum, bit/s. */
  throughputSum: number;
  throughputCount: number;
  throughputMax: number | null;
  /** Ended flows with an rtt (flowd-go netlink): sum, count and maximum, ms. */
  rttSum: number;
  rttCount: number;
  rttMax: number | null;
  /** Ended flows with a delivery rate (flowd-go netlink deliveryRate x 8): sum, count and maximum, bit/s. */
  deliveryRateSum: number;
  deliveryRateCount: number;
  deliveryRateMax: number | null;
  /** Retransmitted segments of ended flows (netlink), summed. */
  retransmits: number;
  /** Ended flows per duration bin (DURATION_BINS, src/fireflies/histogram.ts). */
  durationHistogram: number[];
  /** Ended flows with a throughput per throughput bin (THROUGHPUT_BINS). */
  throughputHistogram: number[];
}

export type FireflyGroupByDimension = 'community' | 'activity' | 'ipVersion' | 'srcSite' | 'dstSite';

export interface FireflyQuery {
  fromMs: number;
  toMs: number;
  stepSeconds: number;
  groupBy: FireflyGroupByDimension[];
  community?: number[];
  activity?: number[];
  ipVersion?: (4 | 6)[];
  srcSite?: string[];
  dstSite?: string[];
}

/** The summable part of a FireflyRow (what a step or a series total holds). */
export type FireflySums = Omit<
  FireflyRow,
  'bucketStartMs' | 'bucketSeconds' | 'community' | 'activity' | 'ipVersion' | 'srcSite' | 'dstSite'
>;

export interface FireflySeries {
  group: Record<string, string | number>;
  points: (FireflySums & { timeMs: number })[];
  totals: FireflySums;
}

export interface FireflyQueryResult {
  series: FireflySeries[];
  totals: FireflySums;
}

/** What a store offers for fireflies (both the embedded store and InfluxDB implement it). */
export interface FireflyStore {
  readonly kind: string;
  /** Replaces every given row's key in its bucket, like writeRows. */
  writeFireflyRows(rows: FireflyRow[]): Promise<void>;
  queryFireflies(query: FireflyQuery): Promise<FireflyQueryResult>;
  /** Rows of buckets starting at or after fromMs (seeding the open buckets at start). */
  readFireflyRows(fromMs: number): Promise<FireflyRow[]>;
}

/** Whether a store keeps fireflies (both built-in stores do; test doubles may not). */
export function isFireflyStore<S extends object>(store: S): store is S & FireflyStore {
  return hasMethods(store, ['writeFireflyRows', 'queryFireflies', 'readFireflyRows']);
}
