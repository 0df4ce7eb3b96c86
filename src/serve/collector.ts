import type { FastifyInstance } from 'fastify';
import { ExporterAllowList } from '../../collectors/allowlist.js';
import { nativeReceiveStatus } from '../../collectors/batch-receive.js';
import { UdpListener } from '../../collectors/udp.js';
import { type Aggregator, createAggregator } from '../aggregate/index.js';
import { buildApi, defaultAllowedHosts, loadApiTokens } from '../api/index.js';
import type { HealthInfo, HealthStatus } from '../api/types.js';
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
import { createStore } from '../store/factory.js';
import type { CollectorCounters, CollectorStatsSnapshot, TrafficStore } from '../store/types.js';
import { loadDecoderState, saveDecoderState } from './decoder-state-file.js';
import { MetricsSync } from './metrics-sync.js';
import { COMMIT, VERSION } from '../version.js';

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
  readonly links: LinkDirectory;
  readonly listeners: { name: string; listener: UdpListener }[];
  readonly api: FastifyInstance | undefined;
  private readonly metricsSync: MetricsSync;
  private stopping = false;
  /** True when stop() could not write every open bucket (the exit code says so). */
  stopFailed = false;
  private timers: NodeJS.Timeout[] = [];
  private apiAddress: string | undefined;
  private readonly log: Logger;

  private constructor(
    readonly config: Config,
    readonly store: TrafficStore,
    readonly registry: RegistryService,
    private readonly deps: CollectorDeps,
  ) {
    const { now } = deps;
    const log = deps.log.child({ component: 'collector' });
    this.log = log;
    this.links = new LinkDirectory(config.links);
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
      receivePaths: () => this.receivePaths(),
      decodeWorkers: () => ({ workers: this.stage.workerCount, restarts: this.stage.restarts }),
      ...(store.spoolStats ? { spool: () => store.spoolStats!() } : {}),
    });
    const configuredLinks = new Map(config.links.map((l) => [`${l.exporter}|${l.ifIndex}`, l.name]));
    const traffic = new TrafficCounters(metrics, config.metrics.maxTrafficSeries, {
      registry: () => this.registry.registry,
      linkName: (exporter, ifIndex) => {
        const key = `${exporter}|${ifIndex}`;
        return configuredLinks.get(key) ?? this.links.learntNames().get(key);
      },
    });
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
      },
    );
    const flowLimits = flowLimitsOf(config.decoder);
    const stageConfig: DecodeStageConfig = {
      defaultSamplingRate: config.exporters.defaultSamplingRate,
      samplingRules: config.exporters.sampling,
      flowLimits,
      crashDir: config.decoder.crashDir,
      queueSize: config.queue.size,
    };
    const inWorkers = config.decoder.workers > 1 && !deps.protocols;
    const saved = loadDecoderState(config.decoder.stateFile, flowLimits, !inWorkers);
    if (saved.warning) log.warn(saved.warning);
    else if (saved.document) {
      log.info(`restored templates of ${saved.document.sessions.length} exporter sessions from ${config.decoder.stateFile}`, {
        sessions: saved.document.sessions.length,
        stateFile: config.decoder.stateFile,
      });
    }
    const decodeLog = deps.log.child({ component: 'decode' });
    if (inWorkers) {
      this.stage = new WorkerDecodeStage(
        config.decoder.workers,
        stageConfig,
        { bucketSeconds: config.aggregation.bucketSeconds },
        { now, log: decodeLog, logLevel: config.log.level, addParts: (parts, exporters) => this.aggregator.addParts(parts, exporters) },
        saved.document,
      );
    } else {
      const aggregator = this.aggregator;
      this.stage = new InlineDecodeStage(
        stageConfig,
        { now, log: decodeLog, aggregator, ...(deps.protocols ? { protocols: deps.protocols } : {}) },
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
    this.metricsSync = new MetricsSync(metrics, {
      snapshot: () => this.stage.snapshot(),
      queue: () => this.stage.queueStats(),
      aggregator: this.aggregator,
      traffic,
      listeners: this.listeners,
      storeKind: store.kind,
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
        metricsRegistry: metrics.registry,
        bucketSeconds: config.aggregation.bucketSeconds,
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
    // Read before anything is opened: a bad tokens file is a start-up failure with nothing to close.
    const apiTokens =
      deps.apiTokens ?? (config.api.port !== 0 ? loadApiTokens(config.api.tokensFile, process.env['SCITAGS_API_TOKENS']) : []);
    const registry = new RegistryService(
      {
        url: config.registry.url,
        refreshSeconds: config.registry.refreshSeconds,
        cacheFile: config.registry.cacheFile,
        timeoutMs: config.registry.timeoutMs,
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
    });
    const collector = new Collector(config, store, registry, { ...deps, apiTokens });
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
    all.store_write_failures = this.aggregator.stats().writeFailures;
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
    // Everything with a one-off start-up cost runs before the sockets open, so the first
    // datagrams meet a ready process: the registry's first refresh (fetch loads its HTTP
    // client on first use, ~50 ms of the main thread), the aggregator's first tick, the API,
    // and the decode path's warm-up.
    this.registry.start();
    this.aggregator.start();
    if (this.api) this.apiAddress = await this.api.listen({ port: this.config.api.port, host: this.config.api.bind });
    await this.stage.ready();
    for (const { listener } of this.listeners) await listener.start();
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
    const snapshots = setInterval(() => void this.refreshSnapshot().catch(() => undefined), SNAPSHOT_MS);
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

  private async saveDecoderState(): Promise<void> {
    if (!this.config.decoder.stateFile) return;
    try {
      const doc = await this.stage.persistentState(this.deps.now());
      saveDecoderState(this.config.decoder.stateFile, doc);
    } catch (err) {
      this.log.limited('decoder-state', 'warn', `saving decoder state to ${this.config.decoder.stateFile} failed`, { err });
    }
  }

  health(): HealthInfo {
    const checks: HealthInfo['checks'] = {};
    const q = this.stage.queueStats();
    const fill = q.length / q.capacity;
    checks.queue = fill > 0.9 ? { status: 'degraded', message: `queue ${Math.round(fill * 100)}% full` } : { status: 'ok' };
    const st = this.aggregator.stats();
    checks.store =
      st.pendingRows > 0 && st.writeFailures > 0
        ? { status: 'degraded', message: `${st.pendingRows} rows waiting for the ${this.store.kind} store` }
        : { status: 'ok' };
    const reg = this.registry.status();
    checks.registry = reg.lastError
      ? { status: 'ok', message: `using ${reg.source} copy; last refresh failed: ${reg.lastError}` }
      : { status: 'ok' };
    checks.listeners = this.stopping ? { status: 'down', message: 'shutting down' } : { status: 'ok' };
    const order: HealthStatus[] = ['ok', 'degraded', 'down'];
    const status = Object.values(checks).reduce<HealthStatus>(
      (worst, c) => (order.indexOf(c.status) > order.indexOf(worst) ? c.status : worst),
      'ok',
    );
    return { status, checks };
  }

  /**
   * Graceful stop: close the sockets (nothing new is accepted), decode everything queued,
   * write every open bucket, close the store and the API.
   */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const t of this.timers) clearInterval(t);
    await Promise.all(this.listeners.map(({ listener }) => listener.stop()));
    await this.stage.stop();
    await this.refreshSnapshot().catch(() => undefined);
    await this.saveDecoderState();
    this.registry.stop();
    try {
      await this.aggregator.stop();
    } catch (err) {
      // The store refused the last buckets (disk full, spool full): say so, and still close
      // everything else so the process exits instead of hanging.
      this.log.error('writing the open buckets at shutdown failed', { store: this.store.kind, err });
      this.stopFailed = true;
    }
    this.metricsSync.sync();
    if (this.store.writeCollectorStats) await this.store.writeCollectorStats(this.statsSnapshot()).catch(() => {});
    if (this.api) await this.api.close();
    await this.store.close();
  }
}
