import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { RegistryStatus } from '../registry/service.js';
import type { FlowTableStats } from '../fireflies/flow-table.js';
import type { SitesStatus } from '../sites/service.js';
import type { StoreSpoolStats, StoreWriteHealth } from '../store/types.js';
import { VERSION } from '../version.js';
import { DEFAULT_EXPORTER_LABEL_IDLE_SECONDS } from './traffic-defaults.js';
import type { KernelUdpListenerStats } from './procnetudp.js';

/**
 * Every Prometheus metric of the collector, defined in this one place. Components receive the
 * CollectorMetrics object and increment; values that live elsewhere (queue length, kernel
 * drops, registry age) are read at scrape time through the hooks in MetricsOptions.
 *
 * Label cardinality: `exporter` goes through exporterLabel(), which admits at most
 * `maxExporterLabels` distinct addresses and counts the rest as "other", so a scan or spoofed
 * sources cannot grow the scrape without bound. The traffic counters' label sets are capped
 * as a whole (traffic.ts). No label ever carries a flow value.
 */

export const METRIC_PREFIX = 'scitags_';
/** The label value used for exporters beyond the cap. */
export const OTHER_EXPORTER = 'other';
export { DEFAULT_EXPORTER_LABEL_IDLE_SECONDS } from './traffic-defaults.js';

export interface MetricsOptions {
  /** Distinct exporter label values (default 200); later exporters are labelled "other". */
  maxExporterLabels?: number;
  /** An exporter label idle this long (default 10 min) gives its slot to an active newcomer. */
  exporterLabelIdleSeconds?: number;
  /** Also register prom-client's process_* / nodejs_* metrics (default false). */
  defaultMetrics?: boolean;
  /** Clock for ages (ms since the epoch); Date.now by default. */
  now?: () => number;
  /** Registry status, read at scrape time. */
  registryStatus?: () => RegistryStatus;
  /** Kernel UDP drops per listener (e.g. kernelUdpStatsForListeners over readKernelUdpSockets). */
  kernelUdp?: () => KernelUdpListenerStats[];
  /** Datagrams waiting in the decode queue. */
  queueLength?: () => number;
  /** Live aggregation keys. */
  liveKeys?: () => number;
  /** Per listener: the receive path in use and the SO_RCVBUF the kernel granted. */
  receivePaths?: () => ReceivePathInfo[];
  /** Decode threads (1 = the main thread) and worker threads replaced after dying. */
  decodeWorkers?: () => { workers: number; restarts: number };
  /** The store's write spool (InfluxDB); the spool gauges exist only when this is given. */
  spool?: () => StoreSpoolStats;
  /** A retrying store's write path (InfluxDB): dead letters and re-provisioning. */
  storeWrites?: () => StoreWriteHealth;
  /** The newest store write error, any store: when, and its class (http_5xx, timeout, connection, sqlite, ...). */
  storeLastError?: () => { ms: number; errorClass: string } | undefined;
  /** Whether the last decoder state save succeeded; undefined when no state file is kept. */
  decoderStateOk?: () => boolean | undefined;
  /** scitags_build_info labels; the package version and process.version by default. */
  build?: BuildInfo;
  /** The firefly flow table's counters (FireflyTracker.stats); the firefly metrics exist only when given. */
  fireflyFlows?: () => FlowTableStats;
  /** Site attribution (SiteService.status); the site metrics exist only when given. */
  sites?: () => SitesStatus;
  /**
   * The marking check's sums since start per experiment name (registry name, else the id) and
   * outcome (src/fireflies/marking.ts); the marking metrics exist only when given.
   */
  fireflyMarking?: () => {
    flows: number;
    evicted: number;
    byExperiment: readonly { experiment: string; outcome: string; records: number; bytes: number }[];
  };
}

export interface BuildInfo {
  version: string;
  node: string;
  /** The source commit, when the build knows it (the label is left out otherwise). */
  commit?: string | undefined;
}

export interface ReceivePathInfo {
  listener: string;
  port: number;
  /** 'recvmmsg' (native batched receive) or 'dgram' (node:dgram fallback). */
  path: string;
  /** Why the native path is not used ('' when it is). */
  fallbackReason: string;
  grantedBytes: number;
}

/**
 * Caps the distinct values of one label and recycles idle ones. A value is admitted while there
 * is room; when the cap is reached, a newcomer that is itself active takes the slot of the
 * least recently active value if that one has been idle for longer than `idleMs` (the evicted
 * value is handed to `onForget`, which removes its series); otherwise it maps to "other".
 *
 * Why remove instead of folding the evicted counters into "other": Prometheus counters are
 * per series, and rate()/increase() read each series' own increase. Adding an evicted series'
 * value to "other" would show as a burst of traffic in "other" that never happened; a removed
 * series simply goes stale (as when a target disappears), sum(rate(...)) stays right, and if
 * the exporter comes back its series starts again from its next increment.
 */
export class BoundedLabel {
  /** Value -> last activity (ms); Map order is the order of last activity, oldest first. */
  private readonly lastActive = new Map<string, number>();
  /** Values evicted so far. */
  recycled = 0;

  constructor(
    readonly max: number,
    readonly idleMs: number = Infinity,
    private readonly now: () => number = Date.now,
    private readonly onForget: (value: string) => void = () => {},
    private readonly other: string = OTHER_EXPORTER,
  ) {}

  /** The label for `v`, active at `activeMs` (default now): itself, or "other". */
  value(v: string, activeMs: number = this.now()): string {
    const prev = this.lastActive.get(v);
    if (prev !== undefined) {
      if (activeMs > prev) {
        this.lastActive.delete(v);
        this.lastActive.set(v, activeMs);
      }
      return v;
    }
    if (this.lastActive.size < this.max) {
      this.lastActive.set(v, activeMs);
      return v;
    }
    const idleBefore = this.now() - this.idleMs;
    // An idle newcomer (an old entry of a snapshot) never evicts anyone.
    if (!(activeMs >= idleBefore)) return this.other;
    const oldest = this.lastActive.entries().next().value;
    if (oldest === undefined || !(oldest[1] < idleBefore)) return this.other;
    this.lastActive.delete(oldest[0]);
    this.recycled++;
    this.onForget(oldest[0]);
    this.lastActive.set(v, activeMs);
    return v;
  }

  get size(): number {
    return this.lastActive.size;
  }
}

/** Remembers the label sets each exporter label was used with, so they can be removed together. */
class SeriesByExporter {
  private readonly byExporter = new Map<string, Map<string, { metric: Counter<string>; labels: Record<string, string> }>>();

  /** Wraps `metric.inc` so every labelled increment is remembered under its exporter label. */
  track<T extends string>(metric: Counter<T>): Counter<T> {
    const inc = metric.inc.bind(metric) as (labels?: unknown, value?: number) => void;
    const name = (metric as unknown as { name: string }).name;
    (metric as { inc: unknown }).inc = (labels?: unknown, value?: number) => {
      if (typeof labels === 'object' && labels !== null) {
        const l = labels as Record<string, string>;
        const ex = l['exporter'];
        if (ex !== undefined && ex !== OTHER_EXPORTER) {
          let set = this.byExporter.get(ex);
          if (!set) this.byExporter.set(ex, (set = new Map()));
          const key = `${name}|${JSON.stringify(l)}`;
          if (!set.has(key)) set.set(key, { metric: metric as unknown as Counter<string>, labels: { ...l } });
        }
      }
      inc(labels, value);
    };
    return metric;
  }

  /** Removes one series (labels exactly as incremented) and forgets it. */
  remove(metric: Counter<string>, labels: Record<string, string>): void {
    metric.remove(labels);
    const ex = labels['exporter'];
    if (ex === undefined) return;
    const set = this.byExporter.get(ex);
    if (set === undefined) return;
    set.delete(`${(metric as unknown as { name: string }).name}|${JSON.stringify(labels)}`);
    if (set.size === 0) this.byExporter.delete(ex);
  }

  /** Removes every series labelled exporter=`ex`. */
  forget(ex: string): void {
    for (const { metric, labels } of this.byExporter.get(ex)?.values() ?? []) metric.remove(labels);
    this.byExporter.delete(ex);
  }
}

export interface CollectorMetrics {
  readonly registry: Registry;
  /**
   * The exporter label for an address (no port), active at `activeMs` (default now): itself,
   * or "other" past the cap when no admitted exporter has been idle long enough to give way.
   */
  exporterLabel(address: string, activeMs?: number): string;
  /** Called with an exporter label whose series were removed (TrafficCounters forgets its sets). */
  onExporterForgotten(listener: (exporter: string) => void): void;
  /**
   * Removes one label set from scitags_traffic_bytes_total and _packets_total (TrafficCounters
   * recycling an idle one) and counts it in scitags_traffic_series_recycled_total.
   */
  removeTrafficSeries(labels: Record<TrafficLabel, string>): void;

  // receive path
  datagramsReceived: Counter<'listener' | 'exporter'>;
  datagramsRejected: Counter<'listener' | 'exporter'>;
  queueDrops: Counter<'exporter'>;
  queueLength: Gauge;
  kernelUdpDrops: Counter<'listener' | 'port'>;
  kernelUdpQueuedBytes: Gauge<'listener' | 'port'>;

  // decoding
  recordsDecoded: Counter<'protocol' | 'exporter'>;
  decodeErrors: Counter<'reason' | 'exporter'>;
  decoderCrashes: Counter<'decoder' | 'exporter'>;
  templateMisses: Counter<'exporter'>;
  sequenceGaps: Counter<'exporter'>;
  recordsLost: Counter<'exporter'>;
  /** Datagrams dropped before decoding by the per-exporter rate limits. */
  datagramsDropped: Counter<'reason' | 'exporter'>;

  // decoder state budget (IPFIX / NetFlow)
  decoderEvictions: Counter<'reason'>;
  decoderExporterEvictions: Counter<'exporter'>;
  decoderStateBytes: Gauge;
  decoderStateBudgetBytes: Gauge;
  decoderSessions: Gauge;
  decoderStateSaveFailures: Counter;

  // aggregation
  bucketsWritten: Counter;
  lateRecords: Counter;
  tooLateRecords: Counter;
  cardinalityFolds: Counter;
  /** The same folds per exporter and reason: share (over its fair share) or budget (maxLiveKeys reached). */
  cardinalityExporterFolds: Counter<'reason' | 'exporter'>;
  liveKeys: Gauge;
  /** The firefly per-bucket sums (src/fireflies/aggregate.ts), by event. */
  fireflyAggregation: Counter<'event'>;
  /** The site-pair sums of flow-label traffic (the second aggregator), by event. */
  siteAggregation: Counter<'event'>;
  siteLiveKeys: Gauge;

  // store
  storeWrites: Counter<'store'>;
  storeWriteFailures: Counter<'store'>;
  storeRowsWritten: Counter<'store'>;
  storeWriteSeconds: Histogram<'store'>;
  /** 0 while the last InfluxDB liveness probe (GET /ping) failed, else 1 (also for stores without one). */
  storeProbeOk: Gauge;
  /** 1 while InfluxDB answers the failing writes or the failing /ping probe with 401 / 403. */
  storeAuthFailed: Gauge;
  /** Runs found at start to have died without a clean stop, and the buckets they lost (estimated). */
  uncleanShutdowns: Counter;
  bucketsLostUnclean: Counter;

  // registry
  registryInfo: Gauge<'source' | 'modified'>;
  receivePath: Gauge<'listener' | 'port' | 'path' | 'reason'>;
  receiveBuffer: Gauge<'listener' | 'port'>;
  decodeWorkers: Gauge;
  workerRestarts: Gauge;
  registryAgeSeconds: Gauge;
  registryRefreshes: Counter<'result'>;
  registryRefreshFailures: Counter<'reason'>;
  registryLastRefreshOk: Gauge;

  // exporters and traffic (set by MetricsSync and TrafficCounters)
  exporterLastSeen: Gauge<'exporter'>;
  trafficBytes: Counter<TrafficLabel>;
  trafficPackets: Counter<TrafficLabel>;
  trafficSeriesFolded: Counter;
  trafficSeriesRecycled: Counter;
  exporterLabelsRecycled: Counter;
  /** Fireflies accepted (schema-valid), by flow-lifecycle state. */
  firefliesAccepted: Counter<'state'>;
  /** Accepted fireflies per forward destination and outcome (forwarded, rate-limited, send-error). */
  fireflyForwards: Counter<'destination' | 'outcome'>;
  /** TCP syslog connections per listener and outcome (accepted, refused, denied). */
  syslogConnections: Counter<'listener' | 'outcome'>;
  /** TCP syslog connections closed by the collector, per reason (idle, framing-error). */
  syslogClosed: Counter<'listener' | 'reason'>;
  /** Messages read from TCP syslog connections and handed to the decode stage. */
  syslogMessages: Counter<'listener'>;
  syslogOpenConnections: Gauge<'listener'>;
  /** goflow2 streams (inputs.streams): messages framed and handed to the decode stage. */
  goflow2Messages: Counter<'input'>;
  /** goflow2 stream problems by reason (limit-exceeded, bad-length, bad-separator, truncated, read-error, queue-full). */
  goflow2StreamErrors: Counter<'input' | 'reason'>;
  /** Bytes of goflow2 streams discarded after a framing error. */
  goflow2DiscardedBytes: Counter<'input'>;
}

/** Labels of scitags_traffic_bytes_total / scitags_traffic_packets_total. */
export type TrafficLabel = 'exporter' | 'link' | 'direction' | 'class' | 'community' | 'activity';
export const TRAFFIC_LABELS: readonly TrafficLabel[] = ['exporter', 'link', 'direction', 'class', 'community', 'activity'];

export function createMetrics(options: MetricsOptions = {}): CollectorMetrics {
  const registry = new Registry();
  const registers = [registry];
  const now = options.now ?? Date.now;
  const series = new SeriesByExporter();
  const forgotten: ((exporter: string) => void)[] = [];
  const exporters = new BoundedLabel(
    options.maxExporterLabels ?? 200,
    (options.exporterLabelIdleSeconds ?? DEFAULT_EXPORTER_LABEL_IDLE_SECONDS) * 1000,
    now,
    (ex) => {
      series.forget(ex);
      for (const l of forgotten) l(ex);
    },
  );
  const n = (s: string) => `${METRIC_PREFIX}${s}`;

  if (options.defaultMetrics) collectDefaultMetrics({ register: registry });

  const build = options.build ?? { version: VERSION, node: process.version };
  new Gauge({
    name: n('build_info'),
    help: 'The running build (value 1): package version, Node.js version and, when known, the source commit',
    labelNames: ['version', 'node', 'commit'] as const,
    registers,
  }).set({ version: build.version, node: build.node, ...(build.commit ? { commit: build.commit } : {}) }, 1);

  const spoolHook = options.spool;
  if (spoolHook) {
    // One read of the spool per scrape would do; each gauge reads it (cheap: counters in memory).
    const spoolGauge = (name: string, help: string, value: (s: StoreSpoolStats, nowMs: number) => number): void => {
      new Gauge({
        name: n(name),
        help,
        registers,
        collect() {
          this.set(value(spoolHook(), now()));
        },
      });
    };
    spoolGauge('influx_spool_batches', 'Write batches waiting in the InfluxDB spool (on disk) for the server', (s) => s.batches);
    spoolGauge('influx_spool_rows', 'Points waiting in the InfluxDB spool', (s) => s.rows);
    spoolGauge('influx_spool_bytes', 'Bytes of the InfluxDB spool files (capped by store.spoolMaxBytes)', (s) => s.bytes);
    spoolGauge('influx_spool_oldest_age_seconds', 'Age of the oldest batch in the InfluxDB spool; 0 when empty', (s, t) =>
      s.oldestMs === undefined ? 0 : Math.max(0, (t - s.oldestMs) / 1000),
    );
    spoolGauge('influx_last_error_timestamp_seconds', 'Unix time of the last failed InfluxDB write; 0 if none since start', (s) =>
      s.lastErrorMs === undefined ? 0 : s.lastErrorMs / 1000,
    );
    new Counter({
      name: n('influx_spool_rejected_batches_total'),
      help: 'Write batches refused because the InfluxDB spool was full (lost)',
      registers,
      collect() {
        // The writer keeps the running count: mirror it.
        this.reset();
        this.inc(spoolHook().rejectedBatches);
      },
    });
  }

  const writesHook = options.storeWrites;
  if (writesHook) {
    const mirror = (name: string, help: string, value: (w: StoreWriteHealth) => number): void => {
      new Counter({
        name: n(name),
        help,
        registers,
        collect() {
          this.reset();
          this.inc(value(writesHook()));
        },
      });
    };
    mirror(
      'influx_dead_letter_batches_total',
      'Write batches InfluxDB refused for good (400 / 413 / 422), moved to <spoolDir>/dead-letter',
      (w) => w.deadLetterBatches,
    );
    mirror('influx_reprovisions_total', 'Re-provisioning attempts after InfluxDB answered 404 database not found', (w) => w.reprovisions);
  }
  const lastErrorHook = options.storeLastError;
  if (lastErrorHook) {
    new Gauge({
      name: n('store_last_error_timestamp_seconds'),
      help: 'Unix time of the last failed store write (any store); 0 if none since start',
      registers,
      collect() {
        this.set((lastErrorHook()?.ms ?? 0) / 1000);
      },
    });
    new Gauge({
      name: n('store_last_error_info'),
      help: 'The class of the last failed store write (value 1): http_5xx, timeout, connection, http_401, http_404, http_400, sqlite, ...',
      labelNames: ['class'] as const,
      registers,
      collect() {
        this.reset();
        const e = lastErrorHook();
        if (e) this.set({ class: e.errorClass }, 1);
      },
    });
  }
  const flowsHook = options.fireflyFlows;
  if (flowsHook) {
    // The table keeps running counts: mirror them at scrape time (reset + inc sets the value).
    const FLOW_EVENTS = [
      ['started', 'started'],
      ['ended', 'ended'],
      ['expired', 'expired'],
      ['without_start', 'withoutStart'],
      ['duplicate', 'duplicates'],
      ['evicted', 'evicted'],
    ] as const;
    new Counter({
      name: n('firefly_flows_total'),
      help: 'Firefly flows by event: started, ended, expired (no end within fireflies.flowTimeoutSeconds), without_start (ended, start never seen; also in ended), duplicate (a copy of a firefly already counted), evicted (dropped for room: fireflies.maxFlows)',
      labelNames: ['event'] as const,
      registers,
      collect() {
        const st = flowsHook();
        this.reset();
        for (const [event, key] of FLOW_EVENTS) this.inc({ event }, st[key]);
      },
    });
    new Gauge({
      name: n('firefly_flows_live'),
      help: 'Firefly flows open in the flow table',
      registers,
      collect() {
        this.set(flowsHook().flows);
      },
    });
    new Gauge({
      name: n('firefly_flow_table_bytes'),
      help: 'Estimated memory of the firefly flow table (open flows and remembered ends)',
      registers,
      collect() {
        this.set(flowsHook().estimatedBytes);
      },
    });
  }
  const markingHook = options.fireflyMarking;
  if (markingHook) {
    // Running sums since start, mirrored at scrape time like the flow table's.
    const counter = (name: string, help: string, pick: (r: { records: number; bytes: number }) => number): void => {
      new Counter({
        name: n(name),
        help,
        labelNames: ['experiment', 'outcome'] as const,
        registers,
        collect() {
          this.reset();
          for (const r of markingHook().byExperiment) this.inc({ experiment: r.experiment, outcome: r.outcome }, pick(r));
        },
      });
    };
    counter(
      'firefly_marking_records_total',
      'Flow records of firefly flows (same 5-tuple) by the experiment the host declared and outcome: agree (the flow label carried the declared pair), mismatch, unmarked (label 0), notExported (the exporter sends no label), ipv4',
      (r) => r.records,
    );
    counter('firefly_marking_bytes_total', 'Bytes (scaled by sampling) of those flow records, by experiment and outcome', (r) => r.bytes);
    new Gauge({
      name: n('firefly_marking_flows'),
      help: 'Firefly flows the marking check holds (live, or ended within the late window)',
      registers,
      collect() {
        this.set(markingHook().flows);
      },
    });
  }
  const sitesHook = options.sites;
  if (sitesHook) {
    new Gauge({
      name: n('site_prefixes'),
      help: 'Prefixes in the site lookup, by source (configured: sites.prefixes; cric: the CRIC document)',
      labelNames: ['source'] as const,
      registers,
      collect() {
        const st = sitesHook();
        this.set({ source: 'configured' }, st.configuredPrefixes);
        this.set({ source: 'cric' }, st.cricPrefixes);
      },
    });
    new Gauge({
      name: n('site_names'),
      help: 'Distinct site names given out as tags (at most sites.maxSites)',
      registers,
      collect() {
        this.set(sitesHook().names);
      },
    });
    new Counter({
      name: n('site_lookups_folded_total'),
      help: "Site lookups answered 'other' because sites.maxSites names were given out",
      registers,
      collect() {
        this.reset();
        this.inc(sitesHook().folded);
      },
    });
    new Counter({
      name: n('site_prefixes_refused_total'),
      help: 'Prefixes not used, by reason: invalid (not a CIDR), duplicate (claimed by an earlier site), cap (sites.maxPrefixes reached), skipped (CRIC entries of the wrong type)',
      labelNames: ['reason'] as const,
      registers,
      collect() {
        const st = sitesHook();
        this.reset();
        this.inc({ reason: 'invalid' }, st.invalidPrefixes);
        this.inc({ reason: 'duplicate' }, st.duplicatePrefixes);
        this.inc({ reason: 'cap' }, st.prefixesOverCap);
        this.inc({ reason: 'skipped' }, st.cricSkipped);
      },
    });
    new Counter({
      name: n('cric_refresh_failures_total'),
      help: 'CRIC loads refused, by reason: oversize (above sites.cric.maxBytes), timeout (sites.cric.timeoutMs), http (not 2xx), network, invalid (not a CRIC rcsite object), file (cannot be read)',
      labelNames: ['reason'] as const,
      registers,
      collect() {
        this.reset();
        for (const [reason, count] of Object.entries(sitesHook().failuresByReason)) this.inc({ reason }, count);
      },
    });
    new Counter({
      name: n('cric_refreshes_total'),
      help: 'CRIC documents loaded and installed',
      registers,
      collect() {
        this.reset();
        this.inc(sitesHook().refreshes);
      },
    });
  }

  const stateHook = options.decoderStateOk;
  if (stateHook) {
    new Gauge({
      name: n('decoder_state_last_save_ok'),
      help: 'Whether the last save of the decoder state file succeeded (1) or failed (0)',
      registers,
      collect() {
        this.set(stateHook() === false ? 0 : 1);
      },
    });
  }

  const kernelHook = options.kernelUdp;
  const kernelUdpQueuedBytes = new Gauge({
    name: n('kernel_udp_queued_bytes'),
    help: 'Bytes waiting in the kernel receive buffer of each listener socket (/proc/net/udp, udp6)',
    labelNames: ['listener', 'port'] as const,
    registers,
    collect() {
      if (!kernelHook) return;
      this.reset();
      for (const s of kernelHook()) this.set({ listener: s.listener, port: String(s.port) }, s.rxQueueBytes);
    },
  });

  const kernelUdpDrops = new Counter({
    name: n('kernel_udp_drops_total'),
    help: 'Datagrams the kernel dropped on each listener socket, receive buffer full (/proc/net/udp, udp6)',
    labelNames: ['listener', 'port'] as const,
    registers,
    collect() {
      if (!kernelHook) return;
      // The kernel keeps the running count: mirror it (reset + inc sets the absolute value).
      this.reset();
      for (const s of kernelHook()) this.inc({ listener: s.listener, port: String(s.port) }, s.drops);
    },
  });

  const queueHook = options.queueLength;
  const liveKeysHook = options.liveKeys;
  const statusHook = options.registryStatus;

  const receiveHook = options.receivePaths;
  const receivePath = new Gauge({
    name: n('receive_path_info'),
    help: "Receive path per listener (value 1): 'recvmmsg' (batched, native addon) or 'dgram' (node:dgram fallback, with the reason)",
    labelNames: ['listener', 'port', 'path', 'reason'] as const,
    registers,
    collect() {
      if (!receiveHook) return;
      this.reset();
      for (const r of receiveHook()) this.set({ listener: r.listener, port: String(r.port), path: r.path, reason: r.fallbackReason }, 1);
    },
  });
  const receiveBuffer = new Gauge({
    name: n('socket_receive_buffer_bytes'),
    help: 'SO_RCVBUF the kernel granted per listener (it caps requests at net.core.rmem_max without an error)',
    labelNames: ['listener', 'port'] as const,
    registers,
    collect() {
      if (!receiveHook) return;
      this.reset();
      for (const r of receiveHook()) this.set({ listener: r.listener, port: String(r.port) }, r.grantedBytes);
    },
  });
  const workersHook = options.decodeWorkers;
  const decodeWorkers = new Gauge({
    name: n('decode_workers'),
    help: 'Decode threads (1 = decoding on the main thread)',
    registers,
    collect() {
      if (workersHook) this.set(workersHook().workers);
    },
  });
  const workerRestarts = new Gauge({
    name: n('decode_worker_restarts'),
    help: 'Decode worker threads that died (a bug) and were replaced since start',
    registers,
    collect() {
      if (workersHook) this.set(workersHook().restarts);
    },
  });

  const registryInfo = new Gauge({
    name: n('registry_info'),
    help: 'The SciTags registry in use (value 1): source (snapshot, cache, download) and its modified date',
    labelNames: ['source', 'modified'] as const,
    registers,
    collect() {
      if (!statusHook) return;
      const s = statusHook();
      this.reset();
      this.set({ source: s.source, modified: s.modified ?? '' }, 1);
    },
  });

  const m: CollectorMetrics = {
    registry,
    exporterLabel: (address, activeMs) => exporters.value(address, activeMs),
    onExporterForgotten: (listener) => forgotten.push(listener),
    removeTrafficSeries: (labels) => {
      series.remove(m.trafficBytes as Counter<string>, labels);
      series.remove(m.trafficPackets as Counter<string>, labels);
      m.trafficSeriesRecycled.inc();
    },

    datagramsReceived: new Counter({
      name: n('datagrams_received_total'),
      help: 'UDP datagrams received, per listener and exporter',
      labelNames: ['listener', 'exporter'] as const,
      registers,
    }),
    datagramsRejected: new Counter({
      name: n('datagrams_rejected_total'),
      help: 'Datagrams dropped because the exporter is not in exporters.allow',
      labelNames: ['listener', 'exporter'] as const,
      registers,
    }),
    queueDrops: new Counter({
      name: n('queue_drops_total'),
      help: 'Datagrams dropped because the decode queue was full, per exporter',
      labelNames: ['exporter'] as const,
      registers,
    }),
    queueLength: new Gauge({
      name: n('queue_length'),
      help: 'Datagrams waiting in the decode queue',
      registers,
      collect() {
        if (queueHook) this.set(queueHook());
      },
    }),
    kernelUdpDrops,
    kernelUdpQueuedBytes,

    recordsDecoded: new Counter({
      name: n('records_decoded_total'),
      help: 'Flow records and sFlow samples decoded, per protocol and exporter',
      labelNames: ['protocol', 'exporter'] as const,
      registers,
    }),
    decodeErrors: new Counter({
      name: n('decode_errors_total'),
      help: 'Decode errors by reason (error catalogue code) and exporter',
      labelNames: ['reason', 'exporter'] as const,
      registers,
    }),
    decoderCrashes: new Counter({
      name: n('decoder_crashes_total'),
      help: 'Datagrams that made a decoder throw (a bug in the collector, isolated; also in decode_errors_total as decoder-crash), per decoder and exporter',
      labelNames: ['decoder', 'exporter'] as const,
      registers,
    }),
    templateMisses: new Counter({
      name: n('template_misses_total'),
      help: 'IPFIX / NetFlow v9 data sets whose template was not (yet) known',
      labelNames: ['exporter'] as const,
      registers,
    }),
    sequenceGaps: new Counter({
      name: n('sequence_gaps_total'),
      help: 'Sequence number discontinuities seen, per exporter',
      labelNames: ['exporter'] as const,
      registers,
    }),
    recordsLost: new Counter({
      name: n('records_lost_total'),
      help: 'Records (or datagrams, for NetFlow v9 / sFlow) missing according to sequence numbers',
      labelNames: ['exporter'] as const,
      registers,
    }),
    datagramsDropped: new Counter({
      name: n('datagrams_dropped_total'),
      help: 'Datagrams dropped before decoding: rate-limit (datagrams/s per exporter) or session-rate-limit (new sessions/s per exporter)',
      labelNames: ['reason', 'exporter'] as const,
      registers,
    }),
    decoderEvictions: new Counter({
      name: n('decoder_evictions_total'),
      help: 'IPFIX / NetFlow decoder state evicted or refused, per reason (session-lru, budget, session-refused, template-cap, template-budget, pending-age, pending-cap, pending-budget)',
      labelNames: ['reason'] as const,
      registers,
    }),
    decoderExporterEvictions: new Counter({
      name: n('decoder_exporter_evictions_total'),
      help: 'IPFIX / NetFlow decoder state evicted or refused, per exporter (all reasons)',
      labelNames: ['exporter'] as const,
      registers,
    }),
    decoderStateBytes: new Gauge({
      name: n('decoder_state_bytes'),
      help: 'Estimated bytes of IPFIX / NetFlow decoder state (templates, held data, sampling, sequence)',
      registers,
    }),
    decoderStateBudgetBytes: new Gauge({
      name: n('decoder_state_budget_bytes'),
      help: 'The decoder state budget (decoder.stateBudgetBytes)',
      registers,
    }),
    decoderSessions: new Gauge({
      name: n('decoder_sessions'),
      help: 'IPFIX / NetFlow transport sessions with decoder state',
      registers,
    }),
    decoderStateSaveFailures: new Counter({
      name: n('decoder_state_save_failures_total'),
      help: 'Failed writes of the decoder state file (decoder.stateFile)',
      registers,
    }),

    bucketsWritten: new Counter({
      name: n('buckets_written_total'),
      help: 'Aggregation buckets written to the store (rewrites included)',
      registers,
    }),
    lateRecords: new Counter({
      name: n('late_records_total'),
      help: 'Records that arrived after their bucket was written and rewrote it',
      registers,
    }),
    tooLateRecords: new Counter({
      name: n('too_late_records_total'),
      help: 'Records older than aggregation.lateWindowSeconds, dropped',
      registers,
    }),
    cardinalityFolds: new Counter({
      name: n('cardinality_folds_total'),
      help: 'Records folded into an overflow key because aggregation.maxLiveKeys was reached',
      registers,
    }),
    cardinalityExporterFolds: new Counter({
      name: n('cardinality_exporter_folds_total'),
      help: "Records folded into their exporter's overflow key, per exporter and reason: share (the exporter held more than aggregation.maxLiveKeys / exporters with live keys, once half of it was in use) or budget (aggregation.maxLiveKeys reached)",
      labelNames: ['reason', 'exporter'] as const,
      registers,
    }),
    liveKeys: new Gauge({
      name: n('live_keys'),
      help: 'Aggregation keys held in open buckets',
      registers,
      collect() {
        if (liveKeysHook) this.set(liveKeysHook());
      },
    }),

    fireflyAggregation: new Counter({
      name: n('firefly_aggregation_total'),
      help: 'Firefly per-bucket sums: buckets_written (rewrites included), late_updates, too_late (events dropped past the late window), cardinality_folds, write_failures, dropped_rows (store down too long)',
      labelNames: ['event'] as const,
      registers,
    }),

    siteAggregation: new Counter({
      name: n('site_aggregation_total'),
      help: "Site-pair sums of flow-label traffic (while a site map is in force): buckets_written (rewrites included), late_updates, too_late (records dropped past the late window), cardinality_folds (keys folded into site other at aggregation.maxLiveKeys or over an exporter's fair share), write_failures, dropped_rows (store down too long)",
      labelNames: ['event'] as const,
      registers,
    }),
    siteLiveKeys: new Gauge({
      name: n('site_live_keys'),
      help: 'Live keys of the site-pair sums (its own aggregation.maxLiveKeys budget)',
      registers,
    }),

    storeWrites: new Counter({
      name: n('store_writes_total'),
      help: 'Store write batches that succeeded',
      labelNames: ['store'] as const,
      registers,
    }),
    storeWriteFailures: new Counter({
      name: n('store_write_failures_total'),
      help: 'Store write batches that failed',
      labelNames: ['store'] as const,
      registers,
    }),
    storeRowsWritten: new Counter({
      name: n('store_rows_written_total'),
      help: 'Rows written to the store',
      labelNames: ['store'] as const,
      registers,
    }),
    storeWriteSeconds: new Histogram({
      name: n('store_write_seconds'),
      help: 'Duration of store write batches',
      labelNames: ['store'] as const,
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10],
      registers,
    }),
    storeProbeOk: new Gauge({
      name: n('store_probe_ok'),
      help: 'Whether the last InfluxDB liveness probe (GET /ping, store.probeIntervalSeconds) succeeded (1) or failed (0); 1 for stores without one, and when the probe was answered 401 / 403 (InfluxDB is up: see scitags_store_auth_failed)',
      registers,
    }),
    storeAuthFailed: new Gauge({
      name: n('store_auth_failed'),
      help: 'InfluxDB refuses the credentials: 1 while the failing writes or the failing liveness probe are answered HTTP 401 / 403, else 0',
      registers,
    }),

    uncleanShutdowns: new Counter({
      name: n('unclean_shutdowns_total'),
      help: 'Previous runs found at start (run marker in dataDir) to have ended without a clean stop',
      registers,
    }),
    bucketsLostUnclean: new Counter({
      name: n('buckets_lost_unclean_total'),
      help: 'Buckets estimated lost (in memory only) by runs that ended without a clean stop',
      registers,
    }),

    registryInfo,
    receivePath,
    receiveBuffer,
    decodeWorkers,
    workerRestarts,
    registryAgeSeconds: new Gauge({
      name: n('registry_age_seconds'),
      help: 'Seconds since the registry in use was loaded (downloaded, or read at start)',
      registers,
      collect() {
        if (statusHook) this.set(Math.max(0, (now() - statusHook().loadedAtMs) / 1000));
      },
    }),
    registryRefreshes: new Counter({
      name: n('registry_refreshes_total'),
      help: 'Registry download attempts by result (ok, error)',
      labelNames: ['result'] as const,
      registers,
      collect() {
        if (!statusHook) return;
        const s = statusHook();
        this.reset();
        this.inc({ result: 'ok' }, s.refreshes);
        this.inc({ result: 'error' }, s.failures);
      },
    }),
    registryRefreshFailures: new Counter({
      name: n('registry_refresh_failures_total'),
      help: 'Registry downloads refused, by reason: oversize (above registry.maxBytes), timeout (no complete answer within registry.timeoutMs), http (not 2xx), network, invalid (not a valid registry document)',
      labelNames: ['reason'] as const,
      registers,
      collect() {
        if (!statusHook) return;
        this.reset();
        for (const [reason, count] of Object.entries(statusHook().failuresByReason)) this.inc({ reason }, count);
      },
    }),
    registryLastRefreshOk: new Gauge({
      name: n('registry_last_refresh_ok'),
      help: '1 if the last registry download attempt succeeded (or none was made), 0 if it failed',
      registers,
      collect() {
        if (statusHook) this.set(statusHook().lastError === undefined ? 1 : 0);
      },
    }),

    exporterLastSeen: new Gauge({
      name: n('exporter_last_seen_seconds'),
      help: 'Unix time of the last datagram decoded from each exporter (exporters past metrics.maxExporterLabels: the latest of them, as "other")',
      labelNames: ['exporter'] as const,
      registers,
    }),
    trafficBytes: new Counter({
      name: n('traffic_bytes_total'),
      help: 'Bytes (scaled by the sampling rate) per exporter, link, direction, class, experiment and activity; each byte counts once with direction="in" (its input link) and once with direction="out" (its output link)',
      labelNames: TRAFFIC_LABELS,
      registers,
    }),
    trafficPackets: new Counter({
      name: n('traffic_packets_total'),
      help: 'Packets (scaled by the sampling rate), labelled as scitags_traffic_bytes_total',
      labelNames: TRAFFIC_LABELS,
      registers,
    }),
    trafficSeriesFolded: new Counter({
      name: n('traffic_series_folded_total'),
      help: 'Traffic counter updates that went to the "other" label set because metrics.maxTrafficSeries label sets exist',
      registers,
    }),
    trafficSeriesRecycled: new Counter({
      name: n('traffic_series_recycled_total'),
      help: 'Traffic label sets removed (from both traffic counters) to give their slot to a new one, after metrics.trafficSeriesIdleSeconds without growth while metrics.maxTrafficSeries sets existed',
      registers,
    }),
    firefliesAccepted: new Counter({
      name: n('fireflies_accepted_total'),
      help: 'SciTags fireflies that passed validation, by flow-lifecycle state (refused ones are in decode_errors_total by reason)',
      labelNames: ['state'] as const,
      registers,
    }),
    fireflyForwards: new Counter({
      name: n('firefly_forwards_total'),
      help: 'Accepted fireflies per forward destination (forward.fireflies) and outcome: forwarded, rate-limited (forward.maxPerSecond), send-error',
      labelNames: ['destination', 'outcome'] as const,
      registers,
    }),
    syslogConnections: new Counter({
      name: n('syslog_tcp_connections_total'),
      help: 'TCP syslog (RFC 6587) connections on the firefly port: accepted, refused (syslog.maxConnections) or denied (exporters.allow)',
      labelNames: ['listener', 'outcome'] as const,
      registers,
    }),
    syslogClosed: new Counter({
      name: n('syslog_tcp_closed_total'),
      help: 'TCP syslog connections the collector closed: idle (syslog.idleTimeoutSeconds) or framing-error (an unreadable RFC 6587 MSG-LEN)',
      labelNames: ['listener', 'reason'] as const,
      registers,
    }),
    syslogMessages: new Counter({
      name: n('syslog_tcp_messages_total'),
      help: 'Messages framed from TCP syslog connections and handed to the decode stage',
      labelNames: ['listener'] as const,
      registers,
    }),
    syslogOpenConnections: new Gauge({
      name: n('syslog_tcp_open_connections'),
      help: 'TCP syslog connections open now',
      labelNames: ['listener'] as const,
      registers,
    }),
    goflow2Messages: new Counter({
      name: n('goflow2_messages_total'),
      help: 'FlowMessages framed from a goflow2 stream (inputs.streams) and handed to the decode stage (their decoding is counted per sampler like datagrams)',
      labelNames: ['input'] as const,
      registers,
    }),
    goflow2StreamErrors: new Counter({
      name: n('goflow2_stream_errors_total'),
      help: 'goflow2 stream problems: limit-exceeded or bad-length (a length prefix over inputs.goflow2MaxMessageBytes or unreadable: the rest of the stream is discarded), truncated (it ended inside a message), read-error, queue-full (the decode stage refused a message: offered again after a pause, not lost)',
      labelNames: ['input', 'reason'] as const,
      registers,
    }),
    goflow2DiscardedBytes: new Counter({
      name: n('goflow2_discarded_bytes_total'),
      help: 'Bytes of a goflow2 stream discarded from a framing error on (the bad length prefix included; a FIFO: until its writer closes)',
      labelNames: ['input'] as const,
      registers,
    }),
    exporterLabelsRecycled: new Counter({
      name: n('exporter_labels_recycled_total'),
      help: 'Exporter label values removed (with all their series) to give their slot to an active exporter, after metrics.exporterLabelIdleSeconds without traffic',
      registers,
      collect() {
        this.reset();
        this.inc(exporters.recycled);
      },
    }),
  };
  // Every counter labelled by exporter: its series go when the exporter's label is recycled.
  for (const c of [
    m.datagramsReceived,
    m.queueDrops,
    m.recordsDecoded,
    m.decodeErrors,
    m.decoderCrashes,
    m.templateMisses,
    m.sequenceGaps,
    m.recordsLost,
    m.cardinalityExporterFolds,
    m.trafficBytes,
    m.trafficPackets,
  ] as Counter<string>[]) {
    series.track(c);
  }
  return m;
}
