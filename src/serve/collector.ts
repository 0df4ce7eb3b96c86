import type { FastifyInstance } from 'fastify';
import { ExporterAllowList } from '../../collectors/allowlist.js';
import { nativeReceiveStatus } from '../../collectors/batch-receive.js';
import { UdpListener } from '../../collectors/udp.js';
import { SyslogTcpListener } from '../../collectors/syslog-tcp.js';
import { Goflow2StreamInput } from '../../collectors/goflow2-stream.js';
import { FireflyForwarder } from '../../collectors/firefly-forward.js';
import { FIREFLY_MAX_BYTES } from '../../decoders/firefly/parse.js';
import { FireflyIntake, type FireflySink } from './fireflies.js';
import { type Aggregator, createAggregator } from '../aggregate/index.js';
import { buildApi, defaultAllowedHosts, loadApiTokens } from '../api/index.js';
import type { HealthInfo, HealthReason, HealthStatus } from '../api/types.js';
import { join } from 'node:path';
import { type Config, enabledListeners, flowLimitsOf, resolveDataPaths } from '../config/index.js';
import type { Logger } from '../log.js';
import { createMetrics, kernelUdpStatsForListeners, readKernelUdpSockets, TrafficCounters } from '../metrics/index.js';
import type { ReceivePathInfo } from '../metrics/metrics.js';
import { LinkDirectory } from '../enrich/links.js';
import type { DecodeSnapshot } from '../pipeline/snapshot.js';
import { type DecodeStage, type DecodeStageConfig, InlineDecodeStage } from '../pipeline/stage.js';
import type { ProtocolEntry } from '../pipeline/protocols.js';
import { WorkerDecodeStage } from '../pipeline/workers.js';
import { fetchTextWithTimeout, RegistryService } from '../registry/service.js';
import { FireflyAggregator, type FireflyEventSink } from '../fireflies/aggregate.js';
import { createFireflyTracking, type FireflyTracker } from '../fireflies/index.js';
import type { SiteService } from '../sites/service.js';
import { Enricher } from '../enrich/enricher.js';
import { MarkingCounts, MarkingIndex, MarkingSource, type MarkingUpdate, markedFlowOf } from '../fireflies/marking.js';
import { Nat64Prefixes } from '../enrich/nat64.js';
import { SiteLookup, type SiteDirectory } from '../enrich/site-lookup.js';
import { createStore } from '../store/factory.js';
import {
  type CollectorCounters,
  type CollectorStatsSnapshot,
  isFireflyStore,
  isSiteTrafficStore,
  type SiteTrafficRow,
  type TrafficRow,
  type TrafficStore,
} from '../store/types.js';
import { ensureWritableDir } from '../ensure-dir.js';
import { DecoderStateFile, loadDecoderState } from './decoder-state-file.js';
import { DropWindow } from './drop-window.js';
import { MetricsSync } from './metrics-sync.js';
import { RUN_MARKER_FILE, RunMarker, type UncleanShutdown } from './run-marker.js';
import { COMMIT, VERSION } from '../version.js';
import type { Nat64TopAggregator } from '../enrich/nat64-top.js';
import { createNat64Top, startNat64Top } from './nat64-top.js';

/** How often the decode stage's snapshot is refreshed for metrics, link names and health. */
const SNAPSHOT_MS = 1_000;
const RETENTION_INTERVAL_MS = 3600_000;
const METRICS_SYNC_MS = 5_000;
const STATE_SAVE_MS = 60_000;

export interface CollectorDeps {
  now: () => number;
  /** The root logger: each part logs through a child with its own `component`. */
  log: Logger;
  /** Replaces the protocol table and decodes on the main thread (tests inject a failing decoder). */
  protocols?: ProtocolEntry[];
  /** API tokens instead of api.tokensFile and SCITAGS_API_TOKENS (tests). */
  apiTokens?: readonly string[];
  /** Where accepted fireflies go besides the counters and forwarding, instead of the flow table (tests). */
  fireflySink?: FireflySink;
}

/**
 * The start-up warning for listeners bound to every interface ('::', '0.0.0.0') while
 * exporters.allow is empty: anyone who can reach the port may send flow data (spoofed
 * exporters, forged totals). Undefined when there is nothing to say.
 */
export function openListenerWarning(
  listeners: readonly { name: string; port: number; bind: string }[],
  allow: readonly string[],
): { message: string; fields: { listeners: string[] } } | undefined {
  if (allow.length > 0) return undefined;
  const open = listeners
    .filter((l) => l.bind === '::' || l.bind === '0.0.0.0')
    .map((l) => `${l.name} ${l.bind === '::' ? '[::]' : l.bind}:${l.port}`);
  if (open.length === 0) return undefined;
  return {
    message: `listening on all interfaces (${open.join(', ')}) with an empty exporters.allow: any host that reaches these ports can send flow data; list your exporters in exporters.allow (SCITAGS_EXPORTERS_ALLOW) or bind one address`,
    fields: { listeners: open },
  };
}

/**
 * The daemon: UDP listeners -> bounded queue -> decoder -> aggregator -> store, with the
 * REST API, metrics and the registry around them. Start and stop are the only lifecycle;
 * stop drains everything already accepted before it resolves.
 */
export class Collector {
  readonly stage: DecodeStage;
  readonly aggregator: Aggregator;
  /** The firefly marking check: flows from accepted fireflies, outcomes of their flow records since start. */
  readonly markingSource: MarkingSource;
  readonly markingCounts = new MarkingCounts();
  private sendMarking: (update: MarkingUpdate) => void = () => {};
  /** Site-pair sums of flow-label traffic (absent when the store keeps no site table). */
  readonly siteAggregator: Aggregator | undefined;
  /**
   * Per-bucket sums of fireflies (issue 13), written to the same store; undefined when the
   * store keeps none (both built-in stores do).
   */
  readonly fireflies: FireflyAggregator | undefined;
  /** What the firefly flow table reports its events to (a no-op without a firefly store). */
  readonly fireflySink: FireflyEventSink;
  /**
   * The firefly flow table with site attribution: the firefly receive path hands it every
   * accepted firefly, and its events go to `fireflySink`. Ticked every second (expiry).
   */
  readonly fireflyTracker: FireflyTracker;
  /** Site attribution (configured prefixes and the CRIC document, refreshed on its timer). */
  readonly sites: SiteService;
  /** Per-bucket top N of the IPv4 destinations behind NAT64 (transition.nat64TopN; undefined: off). */
  readonly nat64Top: Nat64TopAggregator | undefined;
  private fireflyTickTimer: NodeJS.Timeout | undefined;
  readonly links: LinkDirectory;
  readonly listeners: { name: string; listener: UdpListener }[];
  /** TCP syslog (RFC 6587) listeners, one beside each firefly UDP listener, same port and bind. */
  readonly syslogListeners: { name: string; listener: SyslogTcpListener }[];
  /** goflow2 binary streams (inputs.streams: goflow2:PATH), decoded by the same stage. */
  readonly goflow2Inputs: Goflow2StreamInput[];
  /** Accepted fireflies: counted by state, forwarded, handed to the flow table (fireflyTracker). */
  readonly fireflyIntake: FireflyIntake;
  readonly forwarder: FireflyForwarder;
  readonly api: FastifyInstance | undefined;
  private readonly metricsSync: MetricsSync;
  /**
   * The decoder state file (undefined when decoder.stateFile is ''): its status() says
   * whether the last save worked, for the health check.
   */
  readonly stateFile: DecoderStateFile | undefined;
  private stopping = false;
  /** True when stop() could not write every open bucket (the exit code says so). */
  stopFailed = false;
  private timers: NodeJS.Timeout[] = [];
  private apiAddress: string | undefined;
  private readonly log: Logger;
  /** Received / kernel-dropped / queue-dropped datagrams over the last minute, sampled every second. */
  private readonly drops = new DropWindow(60_000);
  private lastRestarts = 0;
  private lastRestartMs: number | undefined;
  private marker: RunMarker | undefined;
  private unclean: (UncleanShutdown & { foundMs: number }) | undefined;
  private readonly startedMs: number;
  private readonly metrics: ReturnType<typeof createMetrics>;

  private constructor(
    readonly config: Config,
    readonly store: TrafficStore,
    readonly registry: RegistryService,
    private readonly deps: CollectorDeps,
  ) {
    const { now } = deps;
    const log = deps.log.child({ component: 'collector' });
    this.log = log;
    this.startedMs = now();
    this.links = new LinkDirectory(config.links);
    const tracking = createFireflyTracking(config, { now, log: deps.log });
    this.sites = tracking.sites;
    this.fireflyTracker = tracking.tracker;
    this.markingSource = new MarkingSource({
      maxFlows: config.fireflies.maxFlows,
      liveSeconds: config.fireflies.flowTimeoutSeconds,
      endedSeconds: config.aggregation.lateWindowSeconds + config.aggregation.bucketSeconds,
    });
    // The hooks read the stage, listeners and aggregator at scrape time, after construction.
    const metrics = createMetrics({
      maxExporterLabels: config.metrics.maxExporterLabels,
      exporterLabelIdleSeconds: config.metrics.exporterLabelIdleSeconds,
      defaultMetrics: true,
      build: { version: VERSION, node: process.version, commit: COMMIT },
      registryStatus: () => this.registry.status(),
      kernelUdp: () =>
        kernelUdpStatsForListeners(
          this.listeners.map((l) => ({ name: l.name, port: l.listener.port })),
          readKernelUdpSockets(),
        ),
      queueLength: () => this.stage.queueStats().length,
      liveKeys: () => this.aggregator.stats().liveKeys,
      fireflyFlows: () => this.fireflyTracker.stats(),
      fireflyMarking: () => this.markingByExperiment(),
      sites: () => this.sites.status(),
      receivePaths: () => this.receivePaths(),
      decodeWorkers: () => ({ workers: this.stage.workerCount, restarts: this.stage.restarts }),
      ...(store.spoolStats ? { spool: () => store.spoolStats!() } : {}),
      ...(store.writeHealth ? { storeWrites: () => store.writeHealth!() } : {}),
      storeLastError: () => this.storeLastError(),
      ...(config.decoder.stateFile ? { decoderStateOk: () => this.stateFile?.status().ok } : {}),
    });
    this.metrics = metrics;
    const configuredLinks = new Map(config.links.map((l) => [`${l.exporter}|${l.ifIndex}`, l.name]));
    const traffic = new TrafficCounters(
      metrics,
      config.metrics.maxTrafficSeries,
      {
        registry: () => this.registry.registry,
        linkName: (exporter, ifIndex) => {
          const key = `${exporter}|${ifIndex}`;
          return configuredLinks.get(key) ?? this.links.learntNames().get(key);
        },
        now,
      },
      config.metrics.trafficSeriesIdleSeconds,
    );
    this.aggregator = createAggregator(
      {
        bucketSeconds: config.aggregation.bucketSeconds,
        graceSeconds: config.aggregation.graceSeconds,
        lateWindowSeconds: config.aggregation.lateWindowSeconds,
        maxLiveKeys: config.aggregation.maxLiveKeys,
        keepUnregistered: config.aggregation.keepUnregistered,
      },
      {
        now,
        store,
        registry: () => this.registry.registry,
        traffic,
        log: deps.log.child({ component: 'aggregate' }),
        onWritten: (bucketStartMs) => this.marker?.bucketWritten(bucketStartMs),
        onWriteTimed: (seconds) => metrics.storeWriteSeconds.observe({ store: store.kind }, seconds),
      },
    );
    // Site-pair sums of flow-label traffic: the same machinery keyed by the enricher's site ids,
    // written to the store's site table. Records reach it only while a site table is in force.
    const directory = this.sites.directory;
    const siteStore = isSiteTrafficStore(store) ? store : undefined;
    this.siteAggregator = siteStore
      ? createAggregator(
          {
            bucketSeconds: config.aggregation.bucketSeconds,
            graceSeconds: config.aggregation.graceSeconds,
            lateWindowSeconds: config.aggregation.lateWindowSeconds,
            maxLiveKeys: config.aggregation.maxLiveKeys,
            keepUnregistered: config.aggregation.keepUnregistered,
            keyBy: 'sites',
          },
          {
            now,
            store: { kind: store.kind, writeRows: (rows) => siteStore.writeSiteRows(rows.map((r) => siteRowOf(r, directory))) },
            registry: () => this.registry.registry,
            log: deps.log.child({ component: 'aggregate-sites' }),
            onWriteTimed: (seconds) => metrics.storeWriteSeconds.observe({ store: store.kind }, seconds),
          },
        )
      : undefined;
    const nat64Prefixes = config.transition.nat64Prefixes;
    this.nat64Top = createNat64Top(config, store, now, deps.log.child({ component: 'nat64-top' }));
    // The same bucket width, grace and late window as traffic, so the two line up per bucket.
    this.fireflies = isFireflyStore(store)
      ? new FireflyAggregator(
          {
            bucketSeconds: config.aggregation.bucketSeconds,
            graceSeconds: config.aggregation.graceSeconds,
            lateWindowSeconds: config.aggregation.lateWindowSeconds,
            maxLiveKeys: config.aggregation.maxLiveKeys,
          },
          {
            now,
            store,
            log: deps.log.child({ component: 'fireflies' }),
            onWriteTimed: (seconds) => metrics.storeWriteSeconds.observe({ store: store.kind }, seconds),
          },
        )
      : undefined;
    this.fireflySink = this.fireflies?.sink ?? (() => undefined);
    this.fireflyTracker.onEvent(this.fireflySink);
    const flowLimits = flowLimitsOf(config.decoder);
    const stageConfig: DecodeStageConfig = {
      defaultSamplingRate: config.exporters.defaultSamplingRate,
      samplingRules: config.exporters.sampling,
      outerFlowLabelExporters: config.exporters.outerFlowLabel,
      flowLimits,
      rateLimits: {
        datagramsPerSecond: config.decoder.maxDatagramsPerSecondPerExporter,
        newSessionsPerSecond: config.decoder.maxNewSessionsPerSecondPerExporter,
      },
      crashDir: config.decoder.crashDir,
      queueSize: config.queue.size,
    };
    const inWorkers = config.decoder.workers > 1 && !deps.protocols;
    const saved = loadDecoderState(config.decoder.stateFile, flowLimits, !inWorkers);
    this.stateFile = config.decoder.stateFile
      ? new DecoderStateFile(config.decoder.stateFile, config.decoder.stateBudgetBytes, now)
      : undefined;
    if (saved.warning) log.warn(saved.warning);
    else if (saved.document) {
      log.info(`restored templates of ${saved.document.sessions.length} exporter sessions from ${config.decoder.stateFile}`, {
        sessions: saved.document.sessions.length,
        stateFile: config.decoder.stateFile,
      });
    }
    const decodeLog = deps.log.child({ component: 'decode' });
    const forwardLog = deps.log.child({ component: 'forward' });
    this.forwarder = new FireflyForwarder(config.forward.fireflies, config.forward.maxPerSecond, (destination, err) =>
      forwardLog.limited(`forward|${destination}`, 'warn', `forwarding fireflies to ${destination} failed (counted)`, { destination, err }),
    );
    this.fireflyIntake = new FireflyIntake(this.forwarder);
    const tracker = deps.fireflySink ?? this.fireflyTracker;
    // Every accepted firefly also tells the marking check which 5-tuples are transfers.
    this.fireflyIntake.sink = {
      accept: (f, receivedMs, exporterAddr) => {
        tracker.accept(f, receivedMs, exporterAddr);
        const flow = markedFlowOf(f, this.sites.siteOf(f.srcAddr), this.sites.siteOf(f.dstAddr));
        if (flow !== undefined) this.markingSource.accept(flow, receivedMs, f.state === 'end');
      },
    };
    if (inWorkers) {
      const stage = new WorkerDecodeStage(
        config.decoder.workers,
        stageConfig,
        { bucketSeconds: config.aggregation.bucketSeconds },
        {
          now,
          log: decodeLog,
          logLevel: config.log.level,
          addParts: (parts, exporters) => this.aggregator.addParts(parts, exporters),
          ...(this.siteAggregator ? { addSiteParts: (parts, exporters) => this.siteAggregator!.addParts(parts, exporters) } : {}),
          nat64Prefixes,
          ...(this.nat64Top ? { addNat64Top: (parts) => this.nat64Top!.mergeParts(parts), nat64TopN: config.transition.nat64TopN } : {}),
          sites: this.sites.table(),
          addMarking: (counts) => this.markingCounts.add(counts),
          markingSnapshot: () => this.markingSource.snapshot(),
          fireflies: this.fireflyIntake,
        },
        saved.document,
      );
      this.stage = stage;
      this.sites.onTable((table) => stage.setSites(table));
      this.sendMarking = (update) => stage.setMarking(update);
    } else {
      const enricher = new Enricher(
        new Nat64Prefixes(nat64Prefixes),
        this.aggregator,
        this.siteAggregator,
        new SiteLookup(this.sites.table()),
      );
      this.sites.onTable((table) => enricher.setSites(new SiteLookup(table)));
      const marking = { index: new MarkingIndex(), counts: this.markingCounts };
      enricher.marking = marking;
      this.sendMarking = (update) => marking.index.apply(update);
      enricher.setNat64Top(this.nat64Top);
      this.stage = new InlineDecodeStage(
        stageConfig,
        {
          now,
          log: decodeLog,
          aggregator: enricher,
          fireflies: this.fireflyIntake,
          ...(deps.protocols ? { protocols: deps.protocols } : {}),
        },
        saved.state,
      );
    }
    const allow = new ExporterAllowList(config.exporters.allow);
    this.listeners = enabledListeners(config).map((l) => ({
      name: l.name,
      listener: new UdpListener(
        { protocol: l.protocol, port: l.port, bind: l.bind, receiveBufferBytes: l.receiveBufferBytes },
        // The listener counts datagrams per exporter; the stage decodes or copies at once.
        (d, transient) => this.stage.submit(d, l.protocol, transient),
        allow,
        now,
      ),
    }));
    this.syslogListeners = enabledListeners(config)
      .filter((l) => l.protocol === 'firefly')
      .map((l) => ({
        name: `${l.name}-tcp`,
        listener: new SyslogTcpListener(
          {
            port: l.port,
            bind: l.bind,
            maxConnections: config.syslog.maxConnections,
            idleTimeoutMs: config.syslog.idleTimeoutSeconds * 1000,
            maxMessageBytes: FIREFLY_MAX_BYTES,
          },
          (d, transient) => this.stage.submit(d, 'firefly', transient),
          allow,
          now,
        ),
      }));
    const inputLog = deps.log.child({ component: 'input' });
    this.goflow2Inputs = config.inputs.streams.map(
      (spec) =>
        new Goflow2StreamInput(
          {
            path: spec.slice('goflow2:'.length),
            maxMessageBytes: config.inputs.goflow2MaxMessageBytes,
            separator: config.inputs.goflow2Separator,
          },
          {
            submit: (d, transient) => this.stage.submit(d, 'goflow2', transient),
            queueStats: () => this.stage.queueStats(),
            workerCount: this.stage.workerCount,
          },
          {
            now,
            onEvent: (e) =>
              e.kind === 'opened' || e.kind === 'ended'
                ? inputLog.info(e.message, { input: spec })
                : inputLog.limited(`goflow2|${spec}|${e.kind}`, 'warn', e.message, { input: spec }),
          },
        ),
    );
    this.metricsSync = new MetricsSync(metrics, {
      snapshot: () => this.stage.snapshot(),
      queue: () => this.stage.queueStats(),
      aggregator: this.aggregator,
      ...(this.fireflies ? { fireflies: this.fireflies } : {}),
      ...(this.siteAggregator ? { siteAggregator: this.siteAggregator } : {}),
      traffic,
      listeners: this.listeners,
      syslogListeners: this.syslogListeners,
      goflow2Inputs: this.goflow2Inputs,
      fireflyIntake: () => ({ accepted: this.fireflyIntake.accepted, forwards: this.forwarder.stats() }),
      storeKind: store.kind,
      ...(this.stateFile ? { stateFile: () => this.stateFile! } : {}),
      ...(store.writeHealth ? { storeWrites: () => store.writeHealth!() } : {}),
      ...(store.probeHealth ? { storeProbe: () => store.probeHealth!() } : {}),
      storeAuthFailed: () => {
        const a = this.storeAuth();
        return a.writes || a.probe;
      },
    });
    if (config.api.port !== 0) {
      this.api = buildApi({
        store,
        registry: this.registry,
        links: config.links,
        learnedInterfaces: () => this.links.learnt(),
        // The snapshot the timer publishes (SNAPSHOT_MS): a request never walks decoder state
        // nor waits for the workers.
        exporters: () => this.stage.snapshot().exporters,
        health: () => this.health(),
        // The open buckets of /api/v1/traffic?provisional=true, read per request (one pass over their cells).
        provisional: () => this.aggregator.unwrittenRows(),
        marking: () => ({
          sinceMs: this.startedMs,
          flows: this.markingSource.published,
          evicted: this.markingSource.evicted,
          counts: this.markingCounts.list(),
        }),
        metricsRegistry: metrics.registry,
        bucketSeconds: config.aggregation.bucketSeconds,
        nat64TopN: this.nat64Top ? config.transition.nat64TopN : 0,
        now,
        limits: { maxPoints: config.api.maxPoints, maxGroups: config.api.maxGroups },
        security: {
          tokens: deps.apiTokens ?? loadApiTokens(config.api.tokensFile, process.env['SCITAGS_API_TOKENS']),
          allowedHosts: config.api.allowedHosts.length > 0 ? config.api.allowedHosts : defaultAllowedHosts(config.api.bind),
          corsOrigins: config.api.corsOrigins,
          rateLimitPerMinute: config.api.rateLimitPerMinute,
          maxInFlight: config.api.maxInFlight,
        },
        log: deps.log.child({ component: 'api' }),
        // A sibling of 'api', not its child: pino would repeat the component key.
        ...(config.log.accessLog ? { accessLog: deps.log.child({ component: 'access' }) } : {}),
      });
      // Counters reach Prometheus at scrape time, not per datagram.
      this.api.addHook('onRequest', async (req) => {
        if (req.url.startsWith('/metrics')) this.metricsSync.sync();
      });
    } else {
      this.api = undefined;
    }
  }

  static async create(configured: Config, deps: CollectorDeps): Promise<Collector> {
    const { now, log } = deps;
    // Every file the collector writes is placed once, here: relative paths are in dataDir.
    const config = resolveDataPaths(configured);
    // Before anything is opened: a data directory the collector cannot write (decoder state,
    // registry cache, spool, crash fixtures) is a start-up failure, not a WARN an hour later,
    // and so is a bad tokens file.
    ensureWritableDir(config.dataDir, 'data directory');
    const apiTokens =
      deps.apiTokens ?? (config.api.port !== 0 ? loadApiTokens(config.api.tokensFile, process.env['SCITAGS_API_TOKENS']) : []);
    const registry = new RegistryService(
      {
        url: config.registry.url,
        refreshSeconds: config.registry.refreshSeconds,
        cacheFile: config.registry.cacheFile,
        timeoutMs: config.registry.timeoutMs,
        maxBytes: config.registry.maxBytes,
      },
      { now, fetchText: fetchTextWithTimeout, log: log.child({ component: 'registry' }) },
    );
    // The store names links by interface names the decode stage learns; the stage is built
    // with the collector, after the store, hence the late-bound reference.
    const late: { collector?: Collector } = {};
    const store = await createStore(config.store, {
      links: config.links,
      registry: () => registry.registry,
      log: log.child({ component: 'store' }),
      bucketSeconds: config.aggregation.bucketSeconds,
      learnedLinkNames: () => late.collector?.links.learntNames() ?? new Map<string, string>(),
      instance: config.fireflies.instance,
    });
    let collector: Collector;
    try {
      collector = new Collector(config, store, registry, { ...deps, apiTokens });
    } catch (err) {
      // The caller never sees a collector to stop: release the store here.
      await store.close().catch(() => undefined);
      throw err;
    }
    late.collector = collector;
    return collector;
  }

  /** The collector's own counters, for stores that keep them (InfluxDB collector_stats). */
  statsSnapshot(): CollectorStatsSnapshot {
    const zero = (): CollectorCounters => ({
      datagrams: 0,
      records: 0,
      decode_errors: 0,
      template_misses: 0,
      sequence_lost: 0,
      queue_drops: 0,
      store_write_failures: 0,
    });
    const all = zero();
    const exporters: CollectorStatsSnapshot['exporters'] = [];
    const queue = this.stage.queueStats();
    for (const e of this.stage.snapshot().exporters) {
      const c = zero();
      c.datagrams = e.datagrams;
      c.records = e.records;
      for (const n of Object.values(e.errorsByReason)) c.decode_errors += n;
      c.template_misses = e.templateMisses;
      c.sequence_lost = e.lostRecords;
      c.queue_drops = queue.dropsByExporter.get(e.address) ?? 0;
      for (const k of Object.keys(c) as (keyof CollectorCounters)[]) all[k] += c[k];
      exporters.push({ exporter: e.address, counters: c, errorsByReason: { ...e.errorsByReason } });
    }
    // Drops of datagrams never decoded (queue full) count collector-wide even without an exporter entry.
    all.queue_drops = queue.dropped;
    all.store_write_failures = this.aggregator.stats().writeFailures + (this.store.writeHealth?.().failures ?? 0);
    return { timeMs: this.deps.now(), exporters, all };
  }

  /** Binds every listener and the API; resolves once they all listen. */
  async start(): Promise<void> {
    // Before the first datagram: buckets a previous run wrote and that are still open
    // continue from their stored totals (a restart must add, not replace).
    const a = this.config.aggregation;
    const now = this.deps.now();
    const fromMs = Math.floor((now - (a.graceSeconds + a.lateWindowSeconds) * 1000) / (a.bucketSeconds * 1000)) * a.bucketSeconds * 1000;
    try {
      const seeded = this.aggregator.seed(await this.store.readRows(fromMs), now);
      if (seeded > 0) this.log.info(`continuing ${seeded} stored rows of buckets still open`, { rows: seeded });
    } catch (err) {
      this.log.warn(`could not read open buckets back from the ${this.store.kind} store; a restart inside a bucket may undercount it`, {
        store: this.store.kind,
        err,
      });
    }
    if (this.siteAggregator && isSiteTrafficStore(this.store)) {
      const directory = this.sites.directory;
      try {
        const rows = await this.store.readSiteRows(fromMs);
        const seeded = this.siteAggregator.seed(
          rows.map(({ srcSite, dstSite, ...r }) => ({ ...r, inIf: directory.idOf(srcSite), outIf: directory.idOf(dstSite) })),
          now,
        );
        if (seeded > 0) this.log.info(`continuing ${seeded} stored site-pair rows of buckets still open`, { rows: seeded });
      } catch (err) {
        this.log.warn(
          `could not read open site-pair buckets back from the ${this.store.kind} store; a restart inside a bucket may undercount it`,
          { store: this.store.kind, err },
        );
      }
    }
    if (this.fireflies && isFireflyStore(this.store)) {
      try {
        const seeded = this.fireflies.seed(await this.store.readFireflyRows(fromMs), now);
        if (seeded > 0) this.log.info(`continuing ${seeded} stored firefly rows of buckets still open`, { rows: seeded });
      } catch (err) {
        this.log.warn(
          `could not read open firefly buckets back from the ${this.store.kind} store; a restart inside a bucket may undercount it`,
          {
            store: this.store.kind,
            err,
          },
        );
      }
    }
    if (this.nat64Top) await startNat64Top(this.nat64Top, this.store, fromMs, now, this.log);
    // Everything with a one-off start-up cost runs before the sockets open, so the first
    // datagrams meet a ready process: the registry's first refresh (fetch loads its HTTP
    // client on first use, ~50 ms of the main thread), the aggregator's first tick, the API,
    // and the decode path's warm-up.
    this.openRunMarker(now);
    this.registry.start();
    this.aggregator.start();
    this.siteAggregator?.start();
    this.fireflies?.start();
    this.sites.start();
    // Flows whose end never arrives expire on this clock (the table has no timers of its own).
    this.fireflyTickTimer = setInterval(() => {
      const now = this.deps.now();
      this.fireflyTracker.tick(now);
      this.markingSource.tick(now);
      const update = this.markingSource.takeUpdate();
      if (update !== undefined) this.sendMarking(update);
    }, 1000);
    this.fireflyTickTimer.unref();
    if (this.api) this.apiAddress = await this.api.listen({ port: this.config.api.port, host: this.config.api.bind });
    await this.stage.ready();
    await this.forwarder.start();
    for (const { listener } of this.listeners) await listener.start();
    for (const { listener } of this.syslogListeners) await listener.start();
    for (const input of this.goflow2Inputs) input.start();
    const open = openListenerWarning(
      enabledListeners(this.config).map((l) => ({ name: l.name, port: l.port, bind: l.bind })),
      this.config.exporters.allow,
    );
    if (open) this.log.warn(open.message, open.fields);
    const retention = setInterval(() => {
      this.store
        .applyRetention?.(this.deps.now())
        .catch((err: unknown) => this.log.limited('retention', 'warn', 'retention failed', { store: this.store.kind, err }));
    }, RETENTION_INTERVAL_MS);
    const sync = setInterval(() => this.metricsSync.sync(), METRICS_SYNC_MS);
    const snapshots = setInterval(() => {
      void this.refreshSnapshot().catch(() => undefined);
      this.sampleHealth();
    }, SNAPSHOT_MS);
    this.sampleHealth();
    snapshots.unref();
    this.timers.push(snapshots);
    retention.unref();
    sync.unref();
    this.timers.push(retention, sync);
    if (this.config.decoder.stateFile) {
      // Also on a timer, so a crash (not only a clean stop) keeps recent templates.
      const save = setInterval(() => void this.saveDecoderState(), STATE_SAVE_MS);
      save.unref();
      this.timers.push(save);
    }
    if (this.store.writeCollectorStats && this.config.store.type === 'influx') {
      const writeStats = (): void => {
        this.store.writeCollectorStats!(this.statsSnapshot()).catch((err: unknown) =>
          this.log.limited('collector-stats', 'warn', 'writing collector_stats failed', { err }),
        );
      };
      // A zero point at start: counters are differenced, and a restart resets them.
      writeStats();
      const stats = setInterval(writeStats, this.config.store.statsIntervalSeconds * 1000);
      stats.unref();
      this.timers.push(stats);
    }
  }

  /** Where the API listens (e.g. http://127.0.0.1:8080), when enabled. */
  get apiUrl(): string | undefined {
    return this.apiAddress;
  }

  /** Per listener: receive path and the receive buffer the kernel granted (start-up log, gauges). */
  receivePaths(): ReceivePathInfo[] {
    const native = nativeReceiveStatus();
    return this.listeners.map(({ name, listener }) => ({
      listener: name,
      port: listener.port,
      path: listener.receivePath ?? 'none',
      fallbackReason: listener.receivePath === 'dgram' ? (native.reason ?? 'disabled') : '',
      grantedBytes: listener.grantedReceiveBufferBytes,
    }));
  }

  /** A fresh decode snapshot; link names learnt by the decoders follow it. */
  private async refreshSnapshot(): Promise<DecodeSnapshot> {
    const snap = await this.stage.refresh();
    this.links.setLearnt(snap.interfaces);
    return snap;
  }

  /** Streams the decoder state to its file; a failure is the file's status (health) and an error line. */
  private async saveDecoderState(): Promise<void> {
    const file = this.stateFile;
    if (!file) return;
    const err = await file.save(() => this.stage.persistentState(this.deps.now()));
    if (err) this.log.limited('decoder-state', 'error', `saving decoder state to ${file.path} failed`, { err, failures: file.failures });
    else if (file.truncated > 0) {
      this.log.limited('decoder-state-cap', 'warn', `decoder state file capped at decoder.stateBudgetBytes`, {
        sessionsLeftOut: file.truncated,
      });
    }
  }

  /**
   * The run marker (dataDir/collector.running): found at start, the previous run died without
   * a clean stop; what it lost is logged once, counted and shown in /health for a while.
   */
  private openRunMarker(now: number): void {
    const { marker, unclean } = RunMarker.open(join(this.config.dataDir, RUN_MARKER_FILE), now, this.config.aggregation.bucketSeconds);
    this.marker = marker;
    if (!unclean) return;
    this.unclean = { ...unclean, foundMs: now };
    this.metrics.uncleanShutdowns.inc();
    this.metrics.bucketsLostUnclean.inc(unclean.bucketsLost);
    this.log.warn(
      `the previous run (pid ${unclean.previous.pid}) did not stop cleanly: about ${unclean.bucketsLost} buckets ` +
        `(${new Date(unclean.fromMs).toISOString()} to ${new Date(unclean.toMs).toISOString()}) were in memory only and are lost`,
      {
        bucketsLost: unclean.bucketsLost,
        fromMs: unclean.fromMs,
        toMs: unclean.toMs,
        lastAliveMs: unclean.previous.aliveMs,
        marker: marker.path,
      },
    );
  }

  /** Once a second: the drop window, worker restarts, the run marker's heartbeat. */
  private sampleHealth(): void {
    const now = this.deps.now();
    let received = 0;
    for (const { listener } of this.listeners) received += listener.stats.datagrams;
    let kernelDrops = 0;
    try {
      const ports = this.listeners.map((l) => ({ name: l.name, port: l.listener.port }));
      for (const k of kernelUdpStatsForListeners(ports, readKernelUdpSockets())) kernelDrops += k.drops;
    } catch {
      // /proc/net/udp unreadable (not Linux): kernel drops are unknown, not zero-by-error.
    }
    this.drops.add(now, { received, kernelDrops, queueDrops: this.stage.queueStats().dropped });
    const restarts = this.stage.restarts;
    if (restarts > this.lastRestarts) this.lastRestartMs = now;
    this.lastRestarts = restarts;
    if (!this.stopping) this.marker?.heartbeat(now, this.aggregator.stats().dirtyBuckets > 0);
  }

  /** The marking check's sums per experiment name and outcome (for /metrics: experiments are bounded by the id space). */
  private markingByExperiment(): {
    flows: number;
    evicted: number;
    byExperiment: { experiment: string; outcome: string; records: number; bytes: number }[];
  } {
    const sums = new Map<string, { experiment: string; outcome: string; records: number; bytes: number }>();
    const reg = this.registry.registry;
    for (const c of this.markingCounts.list()) {
      const experiment = reg.communityName(c.experimentId) ?? String(c.experimentId);
      const key = `${experiment}|${c.outcome}`;
      let e = sums.get(key);
      if (!e) sums.set(key, (e = { experiment, outcome: c.outcome, records: 0, bytes: 0 }));
      e.records += c.records;
      e.bytes += c.bytes;
    }
    return { flows: this.markingSource.published, evicted: this.markingSource.evicted, byExperiment: [...sums.values()] };
  }

  /** The newest store write error (either the aggregator's or the store's own retries). */
  private storeLastError(): { ms: number; errorClass: string } | undefined {
    const a = this.aggregator.stats();
    const w = this.store.writeHealth?.();
    const fromStore = w?.lastErrorMs !== undefined ? { ms: w.lastErrorMs, errorClass: w.lastErrorClass ?? 'other' } : undefined;
    const fromAggregator =
      a.lastWriteErrorMs !== undefined
        ? { ms: a.lastWriteErrorMs, errorClass: this.store.kind === 'sqlite' ? 'sqlite' : 'spool' }
        : undefined;
    if (!fromStore) return fromAggregator;
    if (!fromAggregator) return fromStore;
    return fromStore.ms >= fromAggregator.ms ? fromStore : fromAggregator;
  }

  /**
   * Whether InfluxDB answered the failing writes (while they fail) or the last /ping probe
   * (while it fails) with 401 / 403, and the status of the newest of them.
   */
  private storeAuth(): { writes: boolean; probe: boolean; status: number | undefined } {
    const isAuth = (status: number | undefined): boolean => status === 401 || status === 403;
    const w = this.store.writeHealth?.();
    const p = this.store.probeHealth?.();
    const writes = w !== undefined && (w.consecutiveFailures > 0 || w.spooledBatches > 0) && isAuth(w.lastErrorStatus);
    const probe = p?.ok === false && isAuth(p.lastErrorStatus);
    return { writes, probe, status: probe ? p.lastErrorStatus : writes ? w.lastErrorStatus : undefined };
  }

  /** Why the collector is degraded, each reason naming the metric that shows it. */
  healthReasons(): HealthReason[] {
    const now = this.deps.now();
    const h = this.config.health;
    const reasons: HealthReason[] = [];
    const a = this.aggregator.stats();
    const w = this.store.writeHealth?.();
    const auth = this.storeAuth();
    if (w && (w.consecutiveFailures > 0 || w.spooledBatches > 0) && !auth.writes) {
      reasons.push({
        reason: 'store_write_failing',
        metric: 'scitags_store_write_failures_total',
        detail:
          `${w.consecutiveFailures} failed writes in a row, ${w.spooledBatches} batches spooled` +
          (w.lastError !== undefined ? `; last error (${w.lastErrorClass}): ${w.lastError}` : ''),
      });
    }
    // A 401 / 403 (from a write or from /ping) means InfluxDB is up and refuses us: a
    // configuration problem for the operator, not an outage, so it has its own reason.
    if (auth.writes || auth.probe) {
      const parts: string[] = [];
      if (w && auth.writes) {
        parts.push(
          `${w.consecutiveFailures} failed writes in a row, ${w.spooledBatches} batches spooled` +
            (w.lastError !== undefined ? `; last error (${w.lastErrorClass}): ${w.lastError}` : ''),
        );
      }
      const p = this.store.probeHealth?.();
      if (p && auth.probe) parts.push(`liveness probe refused ${p.consecutiveFailures} times in a row: ${p.lastError ?? ''}`);
      reasons.push({
        reason: 'store_auth',
        metric: 'scitags_store_auth_failed',
        detail: `InfluxDB refuses the credentials (HTTP ${auth.status}): check store.username / password / token and the grants; ${parts.join('; ')}`,
      });
    }
    const p = this.store.probeHealth?.();
    if (p?.ok === false && !auth.probe) {
      reasons.push({
        reason: 'store_unreachable',
        metric: 'scitags_store_probe_ok',
        detail: `InfluxDB liveness probe failed ${p.consecutiveFailures} times in a row (${p.lastErrorClass}): ${p.lastError ?? ''}`,
      });
    }
    if (a.consecutiveWriteFailures > 0) {
      reasons.push({
        reason: 'store_write_failing',
        metric: 'scitags_store_write_failures_total',
        detail: `${a.consecutiveWriteFailures} ${this.store.kind} writes failed in a row, ${a.pendingRows} rows waiting; last error: ${a.lastWriteError ?? ''}`,
      });
    }
    if (w && w.spooledBatches > h.maxSpoolBatches) {
      reasons.push({
        reason: 'spool_above_threshold',
        metric: 'scitags_influx_spool_batches',
        detail: `${w.spooledBatches} batches in the InfluxDB spool (health.maxSpoolBatches ${h.maxSpoolBatches})`,
      });
    }
    const q = this.stage.queueStats();
    const fill = q.length / q.capacity;
    if (fill > 0.9)
      reasons.push({ reason: 'queue_full', metric: 'scitags_queue_length', detail: `decode queue ${Math.round(fill * 100)}% full` });
    const d = this.drops.fractions();
    const pct = (x: number): string => `${(x * 100).toPrecision(3)}%`;
    if (d.kernelDrops > 0 && d.kernel > h.maxDropFraction) {
      reasons.push({
        reason: 'kernel_drops',
        metric: 'scitags_kernel_udp_drops_total',
        detail: `the kernel dropped ${d.kernelDrops} of ${d.offered} datagrams (${pct(d.kernel)}) in the last ${Math.round(d.spanMs / 1000)} s (health.maxDropFraction ${h.maxDropFraction})`,
      });
    }
    if (d.queueDrops > 0 && d.queue > h.maxDropFraction) {
      reasons.push({
        reason: 'queue_drops',
        metric: 'scitags_queue_drops_total',
        detail: `the decode queue dropped ${d.queueDrops} of ${d.offered} datagrams (${pct(d.queue)}) in the last ${Math.round(d.spanMs / 1000)} s (health.maxDropFraction ${h.maxDropFraction})`,
      });
    }
    const state = this.stateFile?.status();
    if (state && !state.ok) {
      reasons.push({
        reason: 'decoder_state_not_saved',
        metric: 'scitags_decoder_state_last_save_ok',
        detail: `saving ${this.stateFile!.path} failed: ${state.lastError ?? ''}`,
      });
    }
    const reg = this.registry.status();
    const refreshMs = this.config.registry.refreshSeconds * 1000;
    if (reg.lastError !== undefined && this.config.registry.url !== '') {
      // Failing since the refresh after the last good download (or since start, when none succeeded).
      const failingSinceMs = reg.source === 'download' ? reg.loadedAtMs + refreshMs : this.startedMs;
      if (now - failingSinceMs > refreshMs) {
        reasons.push({
          reason: 'registry_refresh_failing',
          metric: 'scitags_registry_last_refresh_ok',
          detail: `registry refreshes failing for ${Math.round((now - failingSinceMs) / 1000)} s (registry.refreshSeconds ${this.config.registry.refreshSeconds}); using the ${reg.source} copy; last error: ${reg.lastError}`,
        });
      }
    }
    const restartWindowMs = h.workerRestartMinutes * 60_000;
    if (this.lastRestartMs !== undefined && now - this.lastRestartMs < restartWindowMs) {
      reasons.push({
        reason: 'worker_restarted',
        metric: 'scitags_decode_worker_restarts',
        detail: `a decode worker died and was replaced ${Math.round((now - this.lastRestartMs) / 1000)} s ago (${this.lastRestarts} restarts since start)`,
      });
    }
    if (this.unclean && now - this.unclean.foundMs < restartWindowMs) {
      const u = this.unclean;
      reasons.push({
        reason: 'unclean_shutdown',
        metric: 'scitags_buckets_lost_unclean_total',
        detail: `the previous run did not stop cleanly: about ${u.bucketsLost} buckets (${new Date(u.fromMs).toISOString()} to ${new Date(u.toMs).toISOString()}) lost`,
      });
    }
    return reasons;
  }

  health(): HealthInfo {
    const checks: HealthInfo['checks'] = {};
    const q = this.stage.queueStats();
    const fill = q.length / q.capacity;
    checks.queue = fill > 0.9 ? { status: 'degraded', message: `queue ${Math.round(fill * 100)}% full` } : { status: 'ok' };
    const reasons = this.healthReasons();
    const storeReasons = reasons.filter((r) => r.reason.startsWith('store_') || r.reason === 'spool_above_threshold');
    checks.store =
      storeReasons.length > 0 ? { status: 'degraded', message: storeReasons.map((r) => r.detail).join('; ') } : { status: 'ok' };
    const reg = this.registry.status();
    checks.registry = reg.lastError
      ? { status: 'ok', message: `using ${reg.source} copy; last refresh failed: ${reg.lastError}` }
      : { status: 'ok' };
    checks.listeners = this.stopping ? { status: 'down', message: 'shutting down' } : { status: 'ok' };
    const order: HealthStatus[] = ['ok', 'degraded', 'down'];
    const status = Object.values(checks).reduce<HealthStatus>(
      (worst, c) => (order.indexOf(c.status) > order.indexOf(worst) ? c.status : worst),
      reasons.length > 0 ? 'degraded' : 'ok',
    );
    return { status, reasons, checks, strict: this.config.health.strict };
  }

  /**
   * Graceful stop: close the sockets (nothing new is accepted), decode everything queued,
   * write every open bucket, save the decoder state, close the store and the API.
   */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const t of this.timers) clearInterval(t);
    await Promise.all(this.listeners.map(({ listener }) => listener.stop()));
    await Promise.all(this.syslogListeners.map(({ listener }) => listener.stop()));
    await Promise.all(this.goflow2Inputs.map((i) => i.stop()));
    await this.stage.stop();
    // After the stage: fireflies still queued are forwarded as they are decoded.
    await this.forwarder.stop();
    await this.refreshSnapshot().catch(() => undefined);
    this.registry.stop();
    this.sites.stop();
    if (this.fireflyTickTimer !== undefined) clearInterval(this.fireflyTickTimer);
    this.fireflyTickTimer = undefined;
    try {
      await this.aggregator.stop();
    } catch (err) {
      // The store refused the last buckets (disk full, spool full): say so, and still close
      // everything else so the process exits instead of hanging.
      this.log.error('writing the open buckets at shutdown failed', { store: this.store.kind, err });
      this.stopFailed = true;
    }
    try {
      await this.siteAggregator?.stop();
    } catch (err) {
      this.log.error('writing the open site-pair buckets at shutdown failed', { store: this.store.kind, err });
      this.stopFailed = true;
    }
    try {
      await this.nat64Top?.stop();
    } catch (err) {
      this.log.error('writing the open NAT64 top lists at shutdown failed', { store: this.store.kind, err });
      this.stopFailed = true;
    }
    // After the traffic buckets (the flow-label accounting matters most), before the store closes.
    try {
      await this.fireflies?.stop();
    } catch (err) {
      this.log.error('writing the open firefly buckets at shutdown failed', { store: this.store.kind, err });
      this.stopFailed = true;
    }
    // After the open buckets: the traffic matters more than templates, and a state save that
    // fails (or is slow) must never cost the last minute of data.
    await this.saveDecoderState();
    this.metricsSync.sync();
    if (this.store.writeCollectorStats) await this.store.writeCollectorStats(this.statsSnapshot()).catch(() => {});
    if (this.api) await this.api.close();
    await this.store.close();
    // Clean: every open bucket reached the store (or is durably spooled). Otherwise the marker stays.
    if (!this.stopFailed) this.marker?.remove();
  }
}

/** A site aggregator's row (its "links" are site ids) as the store's site-pair row. */
function siteRowOf(r: TrafficRow, directory: SiteDirectory): SiteTrafficRow {
  const { inIf, outIf, ...rest } = r;
  return { ...rest, srcSite: directory.nameOf(inIf), dstSite: directory.nameOf(outIf) };
}
