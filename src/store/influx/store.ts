import type { Logger } from '../../log.js';
import { readFileSync } from 'node:fs';
import { FieldType, InfluxDB, type IPoint, type ISingleHostConfig } from 'influx';
import type { InfluxStoreConfig, LinkConfig } from '../../config/index.js';
import type { Registry } from '../../registry/registry.js';
import { groupRows, type StoredRow } from '../group.js';
import { groupFireflyRows } from '../firefly-group.js';
import { groupSiteRows } from '../site-group.js';
import { buildSiteQuery, influxRowToSite, SITE_MEASUREMENT, SITE_TAGS, siteRowsToPoints } from './site.js';
import { groupNat64Top, type Nat64TopQuery, type Nat64TopResult, type Nat64TopRow, type Nat64TopStore } from '../nat64-top.js';
import {
  influxRowToNat64Top,
  NAT64_TOP_FIELDS,
  NAT64_TOP_MEASUREMENT,
  NAT64_TOP_TAGS,
  nat64TopQuery,
  nat64TopToPoints,
} from './nat64-top.js';
import type {
  SiteTrafficQuery,
  SiteTrafficRow,
  SiteTrafficStore,
  CollectorStatsSnapshot,
  FireflyQuery,
  FireflyQueryResult,
  FireflyRow,
  FireflyStore,
  StoreProbeHealth,
  StoreSpoolStats,
  StoreWriteHealth,
  TrafficQuery,
  TrafficQueryResult,
  TrafficRow,
  TrafficStore,
} from '../types.js';
import {
  buildFireflyQuery,
  buildFireflyReadQuery,
  FIREFLY_FIELDS,
  FIREFLY_MEASUREMENT,
  FIREFLY_TAGS,
  fireflyInstanceName,
  fireflyRowsToPoints,
  influxRowToFirefly,
} from './firefly.js';
import { type LinkInfo, rowsToPoints } from './points.js';
import { buildInfluxQueries, influxRowToStored } from './query.js';
import { InfluxProbe } from './probe.js';
import { provisionInflux } from './setup.js';
import { INTEGER_FIELDS, InfluxWriter, type InfluxWriterStats } from './writer.js';

const LINK_TAGS = ['exporter', 'in_link', 'out_link', 'in_if', 'out_if'];
const COUNTER_FIELDS = ['datagrams', 'records', 'decode_errors', 'template_misses', 'sequence_lost', 'queue_drops', 'store_write_failures'];

export interface InfluxStoreDeps {
  registry: () => Registry;
  /** Aggregation bucket width, reported on rows read back. */
  bucketSeconds: number;
  /** Interface names learnt from the exporters ("exporter|ifIndex" -> name), read once per write. */
  learnedLinkNames?: () => ReadonlyMap<string, string>;
  links: readonly LinkConfig[];
  log: Logger;
  /** The scitags_firefly `instance` tag (fireflies.instance); undefined or '': the hostname. */
  instance?: string | undefined;
}

/** node-influx connection options from the store URL and credentials. */
function connection(cfg: InfluxStoreConfig, ca: Buffer | undefined): ISingleHostConfig {
  const url = new URL(cfg.url);
  const https = url.protocol === 'https:';
  return {
    host: url.hostname.replace(/^\[|\]$/g, ''),
    port: Number(url.port || 8086),
    protocol: https ? ('https' as const) : ('http' as const),
    ...(url.pathname && url.pathname !== '/' ? { path: url.pathname } : {}),
    database: cfg.database,
    // node-influx fills a missing username with root:root and sends it as Basic auth, which
    // would also replace the token header below; only a non-string username turns that off.
    // A token (InfluxDB 2.x / 3.x) replaces username / password.
    ...(cfg.username && !cfg.token ? { username: cfg.username, password: cfg.password } : { username: null as unknown as string }),
    options: {
      // node-influx merges host headers into every request, writes and queries alike.
      ...(cfg.token ? { headers: { Authorization: `Token ${cfg.token}` } } : {}),
      ...(https ? { rejectUnauthorized: cfg.tls.rejectUnauthorized, ...(ca ? { ca } : {}) } : {}),
    },
    pool: { requestTimeout: cfg.timeoutMs, maxRetries: 0 },
    schema: [
      {
        measurement: 'scitags_traffic',
        fields: INTEGER_FIELDS,
        tags: [...LINK_TAGS, 'community', 'activity', 'community_id', 'activity_id', 'nat64'],
      },
      {
        measurement: 'link_traffic',
        fields: { ...INTEGER_FIELDS, in_capacity_bps: FieldType.INTEGER, out_capacity_bps: FieldType.INTEGER },
        tags: [...LINK_TAGS, 'class', 'nat64'],
      },
      { measurement: 'collector_stats', fields: Object.fromEntries(COUNTER_FIELDS.map((f) => [f, FieldType.INTEGER])), tags: ['exporter'] },
      { measurement: 'collector_decode_errors', fields: { errors: FieldType.INTEGER }, tags: ['exporter', 'reason'] },
      { measurement: FIREFLY_MEASUREMENT, fields: FIREFLY_FIELDS, tags: FIREFLY_TAGS },
      { measurement: SITE_MEASUREMENT, fields: INTEGER_FIELDS, tags: SITE_TAGS },
      { measurement: NAT64_TOP_MEASUREMENT, fields: NAT64_TOP_FIELDS, tags: NAT64_TOP_TAGS },
    ],
  };
}

/**
 * The InfluxDB 1.x store (docs/influx-schema.md): whole buckets written as points through a
 * batched, spooling writer; queries in InfluxQL with the grouping done by groupRows.
 */
export class InfluxTrafficStore implements TrafficStore, FireflyStore, SiteTrafficStore, Nat64TopStore {
  readonly kind = 'influx';
  readonly influx: InfluxDB;
  private readonly writer: InfluxWriter;
  private readonly linkIndex = new Map<string, LinkInfo>();
  /** collector_stats / collector_decode_errors series written so far, and when. */
  private readonly statsSeries = new Set<string>();
  private lastStatsTime: Date | undefined;
  private readonly probe: InfluxProbe | undefined;
  /** The scitags_firefly `instance` tag of this collector's points. */
  readonly instance: string;

  constructor(
    private readonly cfg: InfluxStoreConfig,
    private readonly deps: InfluxStoreDeps,
  ) {
    const ca = cfg.tls.caFile ? readFileSync(cfg.tls.caFile) : undefined;
    this.influx = new InfluxDB(connection(cfg, ca));
    this.instance = fireflyInstanceName(deps.instance);
    for (const l of deps.links) this.linkIndex.set(`${l.exporter}|${l.ifIndex}`, { name: l.name, capacityBps: l.capacityBps });
    this.writer = new InfluxWriter(
      this.influx,
      {
        database: cfg.database,
        retentionPolicy: cfg.retentionPolicy,
        batchSize: cfg.batchSize,
        spoolDir: cfg.spoolDir,
        spoolMaxBytes: cfg.spoolMaxBytes,
        retryInitialMs: 1000,
        retryMaxMs: 60_000,
      },
      deps.log,
      Date.now,
      // A database dropped (or created by hand after start) 404s every write: provision again.
      cfg.createDatabase ? () => this.provision() : undefined,
    );
    if (cfg.probeIntervalSeconds > 0) {
      // The writer's URL, TLS settings and credentials (Basic for user / password, else the token).
      const headers: Record<string, string> = cfg.token
        ? { Authorization: `Token ${cfg.token}` }
        : cfg.username
          ? { Authorization: `Basic ${Buffer.from(`${cfg.username}:${cfg.password}`).toString('base64')}` }
          : {};
      this.probe = new InfluxProbe(
        {
          url: cfg.url,
          headers,
          tls: { rejectUnauthorized: cfg.tls.rejectUnauthorized, ...(ca ? { ca } : {}) },
          intervalMs: cfg.probeIntervalSeconds * 1000,
          timeoutMs: Math.min(cfg.timeoutMs, 2000),
        },
        () => this.writer.stats().lastOkMs,
        deps.log,
      );
    }
  }

  private async provision(): Promise<void> {
    await provisionInflux(this.influx, {
      database: this.cfg.database,
      rawPolicy: 'raw',
      rawDuration: this.cfg.rawRetention,
      rollupPolicy: 'rollup_1h',
      rollupDuration: this.cfg.rollupRetention,
      continuousQueries: this.cfg.continuousQueries,
    });
  }

  /** Creates the database, retention policies and roll-ups when configured to. Never throws:
   * an unreachable server at start must not stop the collector (writes spool meanwhile). */
  async init(): Promise<void> {
    this.probe?.start();
    if (!this.cfg.createDatabase) return;
    try {
      await this.provision();
    } catch (err) {
      this.deps.log.warn(`InfluxDB provisioning of ${this.cfg.database} failed; writes spool until it answers`, {
        database: this.cfg.database,
        err,
      });
    }
  }

  writerStats(): InfluxWriterStats {
    return this.writer.stats();
  }

  spoolStats(): StoreSpoolStats {
    const w = this.writer.stats();
    return {
      batches: w.spooledBatches,
      rows: w.spoolRows,
      bytes: w.spoolBytes,
      oldestMs: w.spoolOldestMs,
      rejectedBatches: w.spoolRejectedBatches,
      lastErrorMs: w.lastErrorMs,
    };
  }

  writeHealth(): StoreWriteHealth {
    const w = this.writer.stats();
    return {
      failures: w.writeFailures,
      consecutiveFailures: w.consecutiveFailures,
      lastError: w.lastError,
      lastErrorMs: w.lastErrorMs,
      lastErrorClass: w.lastErrorClass,
      lastErrorStatus: w.lastErrorStatus,
      spooledBatches: w.spooledBatches,
      deadLetterBatches: w.deadLetterBatches,
      reprovisions: w.reprovisions,
    };
  }

  probeHealth(): StoreProbeHealth | undefined {
    return this.probe?.health();
  }

  async writeRows(rows: TrafficRow[]): Promise<void> {
    if (rows.length === 0) return;
    // Configured names first; else a name the exporter sent in its interface options (IE 82).
    const learned = this.deps.learnedLinkNames?.();
    const points = rowsToPoints(rows, {
      registry: this.deps.registry,
      link: (e, i) => {
        const key = `${e}|${i}`;
        const configured = this.linkIndex.get(key);
        if (configured) return configured;
        const name = learned?.get(key);
        return name === undefined ? undefined : { name };
      },
    });
    await this.writer.write(points);
  }

  /**
   * Writes cumulative counters. Dashboards take differences of consecutive points, so a
   * series must start from zero: a series seen for the first time (a new exporter, a new
   * error reason) also gets a zero point at the previous stats time; otherwise everything it
   * counted before its first point would never show.
   */
  async writeCollectorStats(s: CollectorStatsSnapshot): Promise<void> {
    const timestamp = new Date(Math.floor(s.timeMs / 1000) * 1000);
    const previous = this.lastStatsTime;
    const points: IPoint[] = [];
    const push = (measurement: string, tags: Record<string, string>, fields: Record<string, number>, key: string): void => {
      if (!this.statsSeries.has(key)) {
        if (previous && previous.getTime() < timestamp.getTime()) {
          points.push({ measurement, tags, fields: Object.fromEntries(Object.keys(fields).map((k) => [k, 0])), timestamp: previous });
        }
        if (this.statsSeries.size < 100_000) this.statsSeries.add(key);
      }
      points.push({ measurement, tags, fields, timestamp });
    };
    push('collector_stats', { exporter: 'all' }, { ...s.all }, 'all');
    for (const e of s.exporters) {
      push('collector_stats', { exporter: e.exporter }, { ...e.counters }, `e|${e.exporter}`);
      for (const [reason, errors] of Object.entries(e.errorsByReason)) {
        push('collector_decode_errors', { exporter: e.exporter, reason }, { errors }, `r|${e.exporter}|${reason}`);
      }
    }
    this.lastStatsTime = timestamp;
    await this.writer.write(points);
  }

  async queryTraffic(q: TrafficQuery): Promise<TrafficQueryResult> {
    const { scitags, links } = buildInfluxQueries(q);
    const rows: StoredRow[] = [];
    if (scitags) for (const r of await this.influx.query<Record<string, unknown>>(scitags)) rows.push(influxRowToStored(r, 'scitags'));
    if (links) for (const r of await this.influx.query<Record<string, unknown>>(links)) rows.push(influxRowToStored(r, undefined));
    return groupRows(rows, q, true);
  }

  async readRows(fromMs: number): Promise<TrafficRow[]> {
    // Spooled batches are not in InfluxDB yet: send them first so the read is complete.
    await this.writer.flush().catch(() => {});
    const since = `time >= ${Math.floor(fromMs)}ms`;
    const stored: StoredRow[] = [];
    for (const r of await this.influx.query<Record<string, unknown>>(`SELECT * FROM "scitags_traffic" WHERE ${since}`))
      stored.push(influxRowToStored(r, 'scitags'));
    for (const r of await this.influx.query<Record<string, unknown>>(
      `SELECT * FROM "link_traffic" WHERE ${since} AND "class" != 'scitags'`,
    )) {
      stored.push(influxRowToStored(r, undefined));
    }
    const registry = this.deps.registry();
    return stored.map(({ nat64, ...r }) => ({
      ...r,
      bucketSeconds: this.deps.bucketSeconds,
      registered: r.community !== null && r.activity !== null && registry.isRegistered(r.community, r.activity),
      ...(nat64 === true ? { nat64: true as const } : {}),
    }));
  }

  /** Site-pair rows go through the same writer as traffic. */
  async writeSiteRows(rows: SiteTrafficRow[]): Promise<void> {
    if (rows.length === 0) return;
    await this.writer.write(siteRowsToPoints(rows, this.deps.registry()));
  }

  async querySiteTraffic(q: SiteTrafficQuery): Promise<TrafficQueryResult> {
    const rows = await this.influx.query<Record<string, unknown>>(buildSiteQuery(q));
    return groupSiteRows(
      rows.map((r) => influxRowToSite(r)),
      q,
      true,
    );
  }

  async readSiteRows(fromMs: number): Promise<SiteTrafficRow[]> {
    await this.writer.flush().catch(() => {});
    const registry = this.deps.registry();
    const rows = await this.influx.query<Record<string, unknown>>(
      `SELECT * FROM "${SITE_MEASUREMENT}" WHERE time >= ${Math.floor(fromMs)}ms`,
    );
    return rows.map((row) => {
      const { nat64, ...r } = influxRowToSite(row);
      return {
        ...r,
        bucketSeconds: this.deps.bucketSeconds,
        registered: r.community !== null && r.activity !== null && registry.isRegistered(r.community, r.activity),
        ...(nat64 ? { nat64: true as const } : {}),
      };
    });
  }

  /** NAT64 top lists go through the same writer as traffic (scitags_nat64_top, rank tag, address field). */
  async writeNat64TopRows(rows: Nat64TopRow[]): Promise<void> {
    if (rows.length === 0) return;
    await this.writer.write(nat64TopToPoints(rows));
  }

  async queryNat64Top(q: Nat64TopQuery): Promise<Nat64TopResult> {
    const rows = await this.influx.query<Record<string, unknown>>(nat64TopQuery(q.fromMs, q.toMs));
    return groupNat64Top(
      rows.map((r) => influxRowToNat64Top(r, this.deps.bucketSeconds)),
      q.limit,
    );
  }

  async readNat64TopRows(fromMs: number): Promise<Nat64TopRow[]> {
    await this.writer.flush().catch(() => {});
    const rows = await this.influx.query<Record<string, unknown>>(nat64TopQuery(fromMs));
    return rows.map((r) => influxRowToNat64Top(r, this.deps.bucketSeconds));
  }

  /** Firefly rows go through the same writer as traffic: batching, retries, spool, dead letters. */
  async writeFireflyRows(rows: FireflyRow[]): Promise<void> {
    if (rows.length === 0) return;
    await this.writer.write(fireflyRowsToPoints(rows, this.deps.registry(), this.instance));
  }

  async queryFireflies(q: FireflyQuery): Promise<FireflyQueryResult> {
    const rows = await this.influx.query<Record<string, unknown>>(buildFireflyQuery(q));
    return groupFireflyRows(
      rows.map((r) => influxRowToFirefly(r)),
      q,
      true,
    );
  }

  async readFireflyRows(fromMs: number): Promise<FireflyRow[]> {
    await this.writer.flush().catch(() => {});
    const rows = await this.influx.query<Record<string, unknown>>(buildFireflyReadQuery(fromMs, this.instance));
    return rows.map((r) => ({ ...influxRowToFirefly(r), bucketSeconds: this.deps.bucketSeconds }));
  }

  /** Waits for spooled batches to drain (tests, shutdown). */
  async flush(): Promise<void> {
    await this.writer.flush();
  }

  get spooled(): number {
    return this.writer.spooled;
  }

  async close(): Promise<void> {
    this.probe?.stop();
    await this.writer.close();
  }
}

export async function createInfluxStore(cfg: InfluxStoreConfig, deps: InfluxStoreDeps): Promise<InfluxTrafficStore> {
  const store = new InfluxTrafficStore(cfg, deps);
  await store.init();
  return store;
}
