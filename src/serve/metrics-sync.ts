import type { Aggregator, AggregatorStats } from '../aggregate/index.js';
import type { FireflyAggregator } from '../fireflies/aggregate.js';
import type { CollectorMetrics, TrafficCounters } from '../metrics/index.js';
import type { DecodeSnapshot } from '../pipeline/snapshot.js';
import type { QueueStats } from '../pipeline/stage.js';
import type { UdpListener } from '../../collectors/udp.js';
import type { SyslogTcpListener } from '../../collectors/syslog-tcp.js';
import type { Goflow2StreamInput } from '../../collectors/goflow2-stream.js';
import type { ForwardStats } from '../../collectors/firefly-forward.js';

/** What the site-pair and firefly aggregators both report about their buckets. */
type AggregationEvents = Pick<
  AggregatorStats,
  'bucketsWritten' | 'lateUpdates' | 'tooLate' | 'foldedByCardinality' | 'writeFailures' | 'droppedRows'
>;

/**
 * Moves the collector's own counters into the Prometheus metrics. The hot path keeps plain
 * numbers (per exporter, per listener, in the aggregator); this runs before every scrape
 * and on a timer, adding what changed since the last run, so no labelled counter is
 * touched per datagram.
 */
export class MetricsSync {
  private readonly last = new Map<string, number>();

  constructor(
    private readonly metrics: CollectorMetrics,
    private readonly parts: {
      /** The decode stage's latest snapshot (never decoder state itself). */
      snapshot: () => DecodeSnapshot;
      queue: () => QueueStats;
      aggregator: Aggregator;
      /** The firefly per-bucket sums, when the store keeps fireflies. */
      fireflies?: FireflyAggregator;
      /** The site-pair aggregator (absent when the store keeps no site table). */
      siteAggregator?: Pick<Aggregator, 'stats'>;
      /** Per-experiment traffic counters, fed from the aggregator's sums here. */
      traffic?: TrafficCounters;
      listeners: readonly { name: string; listener: UdpListener }[];
      /** TCP syslog listeners (the firefly port). */
      syslogListeners?: readonly { name: string; listener: SyslogTcpListener }[];
      /** goflow2 streams (inputs.streams), labelled by their spec. */
      goflow2Inputs?: readonly Goflow2StreamInput[];
      /** Accepted fireflies by state, and the forwarder's per-destination counters. */
      fireflyIntake?: () => { accepted: Readonly<Record<string, number>>; forwards: readonly ForwardStats[] };
      storeKind: string;
      /** The decoder state file's save failures so far (absent: no state file). */
      stateFile?: () => { failures: number };
      /** A retrying store's own failed writes (InfluxDB), counted in store_write_failures_total too. */
      storeWrites?: () => { failures: number };
      /** The store's liveness probe (InfluxDB): ok undefined before the first probe. */
      storeProbe?: () => { ok: boolean | undefined; lastErrorStatus: number | undefined } | undefined;
      /** InfluxDB answers the failing writes or the /ping probe with 401 / 403. */
      storeAuthFailed?: () => boolean;
    },
  ) {}

  /** Adds `value - previous` for `key` to the counter (counters only go up). */
  private delta(key: string, value: number): number {
    const prev = this.last.get(key) ?? 0;
    this.last.set(key, value);
    return value > prev ? value - prev : 0;
  }

  /** The bucket events of a second aggregator (site pairs, fireflies) into its `event` counter. */
  private syncAggregation(prefix: string, st: AggregationEvents, counter: CollectorMetrics['siteAggregation']): void {
    const events = {
      buckets_written: st.bucketsWritten,
      late_updates: st.lateUpdates,
      too_late: st.tooLate,
      cardinality_folds: st.foldedByCardinality,
      write_failures: st.writeFailures,
      dropped_rows: st.droppedRows,
    };
    for (const [event, n] of Object.entries(events)) {
      const d = this.delta(`${prefix}|${event}`, n);
      if (d > 0) counter.inc({ event }, d);
    }
  }

  private syncGoflow2(): void {
    const m = this.metrics;
    for (const input of this.parts.goflow2Inputs ?? []) {
      const name = `goflow2:${input.config.path}`;
      const s = input.stats;
      const inc = (key: string, value: number, add: (d: number) => void): void => {
        const d = this.delta(`goflow2|${name}|${key}`, value);
        if (d > 0) add(d);
      };
      inc('msg', s.messages, (d) => m.goflow2Messages.inc({ input: name }, d));
      inc('disc', s.discardedBytes, (d) => m.goflow2DiscardedBytes.inc({ input: name }, d));
      const reasons: [string, number][] = [
        ...Object.entries(s.framingErrors),
        ['read-error', s.readErrors],
        ['queue-full', s.queueRefusals],
      ];
      for (const [reason, n] of reasons) inc(`err|${reason}`, n, (d) => m.goflow2StreamErrors.inc({ input: name, reason }, d));
    }
  }

  private syncFireflies(): void {
    const m = this.metrics;
    for (const { name, listener } of this.parts.syslogListeners ?? []) {
      const s = listener.stats;
      const inc = (key: string, value: number, add: (d: number) => void): void => {
        const d = this.delta(`tcp|${name}|${key}`, value);
        if (d > 0) add(d);
      };
      inc('acc', s.connections, (d) => m.syslogConnections.inc({ listener: name, outcome: 'accepted' }, d));
      inc('ref', s.refused, (d) => m.syslogConnections.inc({ listener: name, outcome: 'refused' }, d));
      inc('den', s.deniedByAllowList, (d) => m.syslogConnections.inc({ listener: name, outcome: 'denied' }, d));
      inc('idle', s.idleTimeouts, (d) => m.syslogClosed.inc({ listener: name, reason: 'idle' }, d));
      inc('frm', s.framingErrors, (d) => m.syslogClosed.inc({ listener: name, reason: 'framing-error' }, d));
      inc('msg', s.messages, (d) => m.syslogMessages.inc({ listener: name }, d));
      m.syslogOpenConnections.set({ listener: name }, listener.openConnections);
    }
    const ff = this.parts.fireflyIntake?.();
    if (!ff) return;
    for (const [state, n] of Object.entries(ff.accepted)) {
      const d = this.delta(`ff|${state}`, n);
      if (d > 0) m.firefliesAccepted.inc({ state }, d);
    }
    for (const f of ff.forwards) {
      for (const [outcome, n] of [
        ['forwarded', f.forwarded],
        ['rate-limited', f.rateLimited],
        ['send-error', f.sendErrors],
      ] as const) {
        const d = this.delta(`fwd|${f.destination}|${outcome}`, n);
        if (d > 0) m.fireflyForwards.inc({ destination: f.destination, outcome }, d);
      }
    }
  }

  sync(): void {
    const m = this.metrics;
    const { aggregator, listeners, storeKind } = this.parts;
    const queue = this.parts.queue();
    this.syncFireflies();
    this.syncGoflow2();
    for (const { name, listener } of listeners) {
      listener.flushReceived();
      for (const [addr, n] of listener.receivedByExporter) {
        const d = this.delta(`rx|${name}|${listener.port}|${addr}`, n);
        if (d > 0) m.datagramsReceived.inc({ listener: name, exporter: m.exporterLabel(addr) }, d);
      }
    }
    for (const { name, listener } of listeners) {
      const s = listener.stats;
      const d = this.delta(`rej|${name}`, s.deniedByAllowList);
      if (d > 0) m.datagramsRejected.inc({ listener: name, exporter: 'denied' }, d);
    }
    // Exporters past the label cap share "other": it shows the latest of them. The label is
    // asked for with the exporter's last datagram time, so an idle exporter never takes (nor
    // keeps alive) a slot an active one needs.
    const lastSeen = new Map<string, number>();
    const snap = this.parts.snapshot();
    for (const e of snap.exporters) {
      const ex = m.exporterLabel(e.address, e.lastSeenMs);
      lastSeen.set(ex, Math.max(lastSeen.get(ex) ?? 0, e.lastSeenMs));
      const a = e.address;
      let d: number;
      for (const [protocol, n] of Object.entries(e.recordsByProtocol)) {
        d = this.delta(`rec|${a}|${protocol}`, n);
        if (d > 0) m.recordsDecoded.inc({ protocol, exporter: ex }, d);
      }
      for (const [code, n] of Object.entries(e.errorsByReason)) {
        d = this.delta(`err|${a}|${code}`, n);
        if (d > 0) m.decodeErrors.inc({ reason: code, exporter: ex }, d);
      }
      for (const [decoder, n] of Object.entries(e.decoderCrashes)) {
        d = this.delta(`crash|${a}|${decoder}`, n);
        if (d > 0) m.decoderCrashes.inc({ decoder, exporter: ex }, d);
      }
      d = this.delta(`tm|${a}`, e.templateMisses);
      if (d > 0) m.templateMisses.inc({ exporter: ex }, d);
      d = this.delta(`gap|${a}`, e.sequenceGaps);
      if (d > 0) m.sequenceGaps.inc({ exporter: ex }, d);
      d = this.delta(`lost|${a}`, e.lostRecords);
      if (d > 0) m.recordsLost.inc({ exporter: ex }, d);
      d = this.delta(`rl|${a}`, e.rateLimited.datagrams);
      if (d > 0) m.datagramsDropped.inc({ reason: 'rate-limit', exporter: ex }, d);
      d = this.delta(`srl|${a}`, e.rateLimited.sessions);
      if (d > 0) m.datagramsDropped.inc({ reason: 'session-rate-limit', exporter: ex }, d);
      d = this.delta(`ev|${a}`, e.decoderState.evictions);
      if (d > 0) m.decoderExporterEvictions.inc({ exporter: ex }, d);
    }
    const ds = snap.decoderState;
    for (const [reason, n] of Object.entries(ds.evictions)) {
      const dd = this.delta(`evr|${reason}`, n);
      if (dd > 0) m.decoderEvictions.inc({ reason }, dd);
    }
    m.decoderStateBytes.set(ds.bytes);
    m.decoderStateBudgetBytes.set(ds.budgetBytes);
    m.decoderSessions.set(ds.sessions);
    if (this.parts.stateFile) {
      const dd = this.delta('state|fail', this.parts.stateFile().failures);
      if (dd > 0) m.decoderStateSaveFailures.inc(dd);
    }
    m.exporterLastSeen.reset();
    for (const [ex, ms] of lastSeen) m.exporterLastSeen.set({ exporter: ex }, ms / 1000);
    for (const [addr, n] of queue.dropsByExporter) {
      const d = this.delta(`qd|${addr}`, n);
      if (d > 0) m.queueDrops.inc({ exporter: m.exporterLabel(addr) }, d);
    }
    m.queueLength.set(queue.length);
    const st = aggregator.stats();
    let d = this.delta('agg|buckets', st.bucketsWritten);
    if (d > 0) m.bucketsWritten.inc(d);
    d = this.delta('agg|late', st.lateUpdates);
    if (d > 0) m.lateRecords.inc(d);
    d = this.delta('agg|toolate', st.tooLate);
    if (d > 0) m.tooLateRecords.inc(d);
    d = this.delta('agg|fold', st.foldedByCardinality);
    if (d > 0) m.cardinalityFolds.inc(d);
    for (const f of aggregator.exporterFolds()) {
      const ex = m.exporterLabel(f.exporter);
      d = this.delta(`fold|share|${f.exporter}`, f.share);
      if (d > 0) m.cardinalityExporterFolds.inc({ reason: 'share', exporter: ex }, d);
      d = this.delta(`fold|budget|${f.exporter}`, f.budget);
      if (d > 0) m.cardinalityExporterFolds.inc({ reason: 'budget', exporter: ex }, d);
    }
    m.liveKeys.set(st.liveKeys);
    if (this.parts.traffic) {
      aggregator.countTraffic();
      this.parts.traffic.flush();
    }
    d = this.delta('store|writes', st.bucketsWritten);
    if (d > 0) m.storeWrites.inc({ store: storeKind }, d);
    d = this.delta('store|rows', st.rowsWritten);
    if (d > 0) m.storeRowsWritten.inc({ store: storeKind }, d);
    // Every failed write: the aggregator's (the store call failed) and the store's own retries.
    d = this.delta('store|fail', st.writeFailures + (this.parts.storeWrites?.().failures ?? 0));
    if (d > 0) m.storeWriteFailures.inc({ store: storeKind }, d);
    // A probe answered 401 / 403 reached a running InfluxDB: it shows in store_auth_failed instead.
    const probe = this.parts.storeProbe?.();
    const probeRefused = probe?.lastErrorStatus === 401 || probe?.lastErrorStatus === 403;
    m.storeProbeOk.set(probe?.ok === false && !probeRefused ? 0 : 1);
    m.storeAuthFailed.set(this.parts.storeAuthFailed?.() === true ? 1 : 0);
    const sites = this.parts.siteAggregator?.stats();
    if (sites) {
      this.syncAggregation('site', sites, m.siteAggregation);
      m.siteLiveKeys.set(sites.liveKeys);
    }
    const ff = this.parts.fireflies?.stats();
    if (ff) this.syncAggregation('ff', ff, m.fireflyAggregation);
  }
}
