/**
 * The decode stage: owns the queue loop, the decoders and all their state, crash isolation,
 * and hands records to aggregation. Everything else (API, metrics, stores, persistence)
 * reads the plain-data snapshot it publishes, never decoder internals.
 *
 * Two shapes with one surface: InlineDecodeStage decodes on the main thread (`--workers 1`);
 * WorkerDecodeStage (workers.ts) shards exporters over worker threads.
 */
import { BoundedQueue, type ReceivedDatagram } from '../../collectors/queue.js';
import type { TemplateEvent } from '../../decoders/decoder.js';
import type { FlowDecoderLimits, FlowDecoderState, PersistedFlowState } from '../../decoders/ipfix/index.js';
import { snapshotFlowState } from '../../decoders/ipfix/index.js';
import type { SamplingRule } from '../enrich/sampling.js';
import type { Logger } from '../log.js';
import { DatagramDecoder, type DatagramDecoderOptions, type DecoderCrash, type FireflyTarget, type RecordAggregator } from './decoder.js';

export type { FireflyTarget, RecordAggregator } from './decoder.js';
import type { ListenerKind, ProtocolEntry } from './protocols.js';
import { type DecodeSnapshot, snapshotOf } from './snapshot.js';
import type { RateLimits } from './rate-limit.js';
import { warmUp } from './warmup.js';

/** Datagrams decoded per turn of the event loop before yielding to socket reads. */
export const DRAIN_BATCH = 512;

export interface DecodeStageConfig {
  defaultSamplingRate: number;
  samplingRules: readonly SamplingRule[];
  /** Exporters whose double-header templates are read the outer way (exporters.outerFlowLabel). */
  outerFlowLabelExporters?: readonly string[];
  flowLimits: Partial<FlowDecoderLimits>;
  /** Per-exporter rate limits, checked before decoding (absent: none). */
  rateLimits?: RateLimits;
  crashDir: string;
  /** Datagrams accepted but not yet decoded, over all workers (the global queue budget). */
  queueSize: number;
}

export interface QueueStats {
  length: number;
  capacity: number;
  dropped: number;
  dropsByExporter: ReadonlyMap<string, number>;
}

export interface DecodeStage {
  readonly kind: 'inline' | 'workers';
  readonly workerCount: number;
  /** Worker threads that died and were replaced (always 0 inline). */
  readonly restarts: number;
  /**
   * A datagram received. `transient`: the payload (and `d` itself) are valid only during the
   * call (the batched receiver's shared buffer), so the stage decodes or copies at once;
   * otherwise they stay untouched until decoded (node:dgram hands a fresh buffer per
   * message). False when the queue budget is exhausted: dropped and counted.
   */
  submit(d: ReceivedDatagram, listener: ListenerKind, transient: boolean): boolean;
  /** The latest published snapshot (cheap). */
  snapshot(): DecodeSnapshot;
  /** A fresh snapshot (inline: now; workers: asks each, bounded wait). */
  refresh(): Promise<DecodeSnapshot>;
  /** The IPFIX / NetFlow decoder state of every exporter as one document, for the state file. */
  persistentState(nowMs: number): Promise<PersistedFlowState>;
  queueStats(): QueueStats;
  /** Resolves once the stage can decode (workers started, saved state restored). */
  ready(): Promise<void>;
  /** Decodes everything accepted and hands it to aggregation; then the stage is closed. */
  stop(): Promise<void>;
}

export interface StageDeps {
  now: () => number;
  log: Logger;
  aggregator: RecordAggregator;
  /** Where accepted fireflies go (absent: counted per exporter only). */
  fireflies?: FireflyTarget;
  /** Replaces the protocol table (tests inject a decoder that throws). */
  protocols?: ProtocolEntry[];
}

/** Logs a decoder crash: the stack once per decoder and interval, since it is our bug. */
export function logCrash(log: Logger, c: DecoderCrash): void {
  const stack = c.error instanceof Error ? (c.error.stack ?? c.error.message) : String(c.error);
  log.limited(
    `crash|${c.decoder}`,
    'error',
    `decoder ${c.decoder} crashed on a datagram from ${c.exporter}:${c.port} (counted as decoder-crash; ${c.fixture ? `kept as ${c.fixture}` : 'not kept'}): ${stack}`,
    { decoder: c.decoder, exporter: c.exporter, port: c.port, fixture: c.fixture ?? null },
  );
}

/**
 * The decode path's debug lines: a new exporter, and template changes per exporter, domain
 * and template id (rate-limited per key: an exporter that redefines a template in every
 * datagram gets one line per interval, with the count of the others).
 */
export function watchDecoder(decoder: DatagramDecoder, log: Logger): void {
  // Called once per new exporter only, so always set: the table-full warning is not debug.
  decoder.onNewExporter = (address, port, listener) => {
    if (address === 'other')
      log.limited('exporters-full', 'warn', 'exporter table full: further exporters are counted as "other"', { port, listener });
    else log.limited(`exporter|${address}`, 'debug', `exporter ${address} first seen`, { exporter: address, port, listener });
  };
}

/** Template changes at debug, one key per (exporter, domain, template id, event); see watchDecoder. */
export function templateLogger(log: Logger): ((e: TemplateEvent) => void) | undefined {
  if (!log.enabled('debug')) return undefined;
  return (e) =>
    log.limited(
      `template|${e.exporterAddr}:${e.exporterPort}|${e.domain}|${e.templateId}|${e.event}`,
      'debug',
      `template ${e.templateId} ${e.event}`,
      {
        event: e.event,
        exporter: e.exporterAddr,
        port: e.exporterPort,
        protocol: e.protocol,
        domain: e.domain,
        templateId: e.templateId,
        kind: e.kind,
        fields: e.fields,
      },
    );
}

export class InlineDecodeStage implements DecodeStage {
  readonly kind = 'inline';
  readonly workerCount = 1;
  readonly restarts = 0;
  private readonly queue: BoundedQueue<ReceivedDatagram & { listener: ListenerKind }>;
  private readonly decoder: DatagramDecoder;
  /** The live decoder's options (the warm-up copies their shape). */
  private readonly decoderOptions: DatagramDecoderOptions;
  private drainScheduled = false;
  private closed = false;
  /** The latest snapshot: metrics, stats and health read it between refreshes. */
  private published: DecodeSnapshot | undefined;

  constructor(
    config: DecodeStageConfig,
    private readonly deps: StageDeps,
    saved?: FlowDecoderState,
  ) {
    this.queue = new BoundedQueue(config.queueSize);
    this.decoderOptions = {
      withFields: false,
      withAddresses: false,
      defaultSamplingRate: config.defaultSamplingRate,
      samplingRules: config.samplingRules,
      ...(config.outerFlowLabelExporters ? { outerFlowLabelExporters: config.outerFlowLabelExporters } : {}),
      flowLimits: config.flowLimits,
      ...(config.rateLimits ? { rateLimits: config.rateLimits } : {}),
      innerHeaders: false,
      crashDir: config.crashDir,
      onTemplate: templateLogger(deps.log),
    };
    this.decoder = new DatagramDecoder(this.decoderOptions, saved, deps.protocols);
    this.decoder.onCrash = (c) => logCrash(deps.log, c);
    if (deps.fireflies) this.decoder.fireflies = deps.fireflies;
    watchDecoder(this.decoder, deps.log);
  }

  submit(d: ReceivedDatagram, listener: ListenerKind, transient: boolean): boolean {
    if (this.closed) return false;
    if (transient && this.queue.length === 0) {
      // Batched receive: decoding now costs no copy and no queue; the kernel buffer is the queue.
      this.decodeNow(d.payload, d.srcAddr, d.srcPort, listener, d.receivedMs);
      return true;
    }
    if (!this.queue.push({ ...d, payload: transient ? d.payload.slice() : d.payload, listener })) return false;
    if (!this.drainScheduled) {
      this.drainScheduled = true;
      setImmediate(() => this.drain());
    }
    return true;
  }

  /** Decodes one datagram now (the batched receive path, which has no queue of its own). */
  decodeNow(payload: Uint8Array, srcAddr: string, srcPort: number, listener: ListenerKind, receivedMs: number): void {
    const out = this.decoder.decodeInto(payload, srcAddr, srcPort, receivedMs, listener, this.deps.aggregator);
    for (const e of out.errors) {
      if (e.code !== 'decoder-crash') {
        this.deps.log.limited(`decode|${srcAddr}|${e.code}`, 'warn', `exporter ${srcAddr}:${srcPort}: ${e.message}`, {
          exporter: srcAddr,
          port: srcPort,
          code: e.code,
        });
      }
    }
  }

  /** Decodes queued datagrams in batches, yielding between them so sockets keep reading. */
  private drain(): void {
    this.drainScheduled = false;
    for (let i = 0; i < DRAIN_BATCH; i++) {
      const d = this.queue.shift();
      if (!d) return;
      this.decodeNow(d.payload, d.srcAddr, d.srcPort, d.listener, d.receivedMs);
    }
    if (this.queue.length > 0 && !this.drainScheduled) {
      this.drainScheduled = true;
      setImmediate(() => this.drain());
    }
  }

  snapshot(): DecodeSnapshot {
    return this.published ?? this.publish();
  }

  refresh(): Promise<DecodeSnapshot> {
    return Promise.resolve(this.publish());
  }

  /** Builds the snapshot (a walk over every exporter and session): on refresh only. */
  private publish(): DecodeSnapshot {
    this.published = snapshotOf(this.decoder, this.deps.now());
    return this.published;
  }

  persistentState(nowMs: number): Promise<PersistedFlowState> {
    return Promise.resolve(snapshotFlowState(this.decoder.flowState, nowMs));
  }

  /** Warms the decode path up (warmup.ts) so the first live datagrams meet optimised code. */
  ready(): Promise<void> {
    const w = warmUp(undefined, undefined, this.decoderOptions);
    this.deps.log.debug(`decode path warmed up: ${w.datagrams} synthetic datagrams, ${w.records} records in ${Math.round(w.ms)} ms`, {
      datagrams: w.datagrams,
      records: w.records,
      ms: Math.round(w.ms),
    });
    return Promise.resolve();
  }

  queueStats(): QueueStats {
    const q = this.queue;
    return { length: q.length, capacity: q.capacity, dropped: q.dropped, dropsByExporter: q.dropsByExporter };
  }

  stop(): Promise<void> {
    for (let d = this.queue.shift(); d; d = this.queue.shift()) this.decodeNow(d.payload, d.srcAddr, d.srcPort, d.listener, d.receivedMs);
    this.closed = true;
    return Promise.resolve();
  }
}
