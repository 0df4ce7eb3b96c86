/**
 * The decode stage over worker threads. The main thread receives, shards datagrams by
 * exporter address into per-worker batches (one transferable buffer per batch, never one
 * message per datagram), merges the workers' partial bucket sums into the aggregator and
 * serves their snapshots. Accepted-but-undecoded datagrams over all workers are bounded by
 * one budget (queue.size); beyond it datagrams are dropped and counted per exporter.
 *
 * A worker that dies (a bug outside the decoders' own isolation) is logged, its in-flight
 * datagrams are counted as dropped, and a fresh worker takes its shard.
 */
import { Worker } from 'node:worker_threads';
import type { ReceivedDatagram } from '../../collectors/queue.js';
import type { PersistedFlowState } from '../../decoders/ipfix/index.js';
import type { AggregatorConfig } from '../aggregate/config.js';
import { WELL_KNOWN_NAT64_PREFIX } from '../enrich/nat64.js';
import { EMPTY_SITE_TABLE, type SiteTableSpec } from '../enrich/site-lookup.js';
import type { MarkingCount, MarkingUpdate } from '../fireflies/marking.js';
import type { LogThreshold } from '../log.js';
import type { ListenerKind } from './protocols.js';
import { BatchWriter, shardOf } from './shard.js';
import { type DecodeSnapshot, emptySnapshot, mergeSnapshots } from './snapshot.js';
import type { DecodeStage, DecodeStageConfig, QueueStats } from './stage.js';
import type { FromWorker, ToWorker, WorkerInit } from './worker-protocol.js';

const FLUSH_MS = 200;
/** A batch goes to its worker when it holds this many datagrams... */
const FULL_BATCH = 256;
/** ...or this long after its first datagram. */
const GATHER_MS = 2;
/** How long a snapshot or state request waits for a worker before using what it has. */
const REQUEST_TIMEOUT_MS = 2000;
const MAX_DROP_KEYS = 1024;
const WORKER_YOUNG_GENERATION_MB = 8;

export interface WorkerStageDeps {
  now: () => number;
  log: import('../log.js').Logger;
  logLevel: LogThreshold;
  /** Partial sums from a worker (Aggregator.addParts). */
  addParts: (parts: Float64Array, exporters: string[]) => void;
  /** Partial site-pair sums from a worker (the site aggregator's addParts); absent: dropped (no site table). */
  addSiteParts?: (parts: Float64Array, exporters: string[]) => void;
  /** Partial NAT64 IPv4 top lists from a worker (Nat64TopAggregator.mergeParts); absent: off. */
  addNat64Top?: (parts: import('../enrich/nat64-top.js').Nat64TopPart[]) => void;
  /** transition.nat64TopN, for the workers' sketches (0 or absent: off). */
  nat64TopN?: number;
  /** Enrichment settings every worker starts with (default: the well-known NAT64 prefix, no sites). */
  nat64Prefixes?: readonly string[];
  sites?: SiteTableSpec;
  /** Marking-check outcomes a worker counted; and the flows a starting worker gets. */
  addMarking?: (counts: MarkingCount[]) => void;
  markingSnapshot?: () => MarkingUpdate;
  /** Where fireflies the workers accepted go (absent: counted per exporter only). */
  fireflies?: import('./decoder.js').FireflyTarget;
}

interface Slot {
  worker: Worker;
  writer: BatchWriter;
  /** Datagrams posted and not yet reported decoded. */
  inflight: number;
  ready: Promise<void>;
  snapshot: DecodeSnapshot;
  exited: boolean;
}

export class WorkerDecodeStage implements DecodeStage {
  readonly kind = 'workers';
  private readonly slots: Slot[] = [];
  private readonly pending = new Map<number, (m: FromWorker) => void>();
  private nextId = 1;
  private flushScheduled = false;
  private closed = false;
  private dropped = 0;
  private readonly dropsByExporter = new Map<string, number>();
  private readonly perWorkerBudget: number;
  /** Worker threads replaced after dying. */
  restarts = 0;
  private lastSnapshot: DecodeSnapshot;
  /** The workers' state as they stopped (the state file is written after stop()). */
  private finalState: PersistedFlowState | undefined;
  private sites: SiteTableSpec;

  constructor(
    readonly workerCount: number,
    private readonly config: DecodeStageConfig,
    private readonly aggregation: Partial<AggregatorConfig>,
    private readonly deps: WorkerStageDeps,
    saved: PersistedFlowState | undefined,
  ) {
    this.perWorkerBudget = Math.max(1, Math.floor(config.queueSize / workerCount));
    this.sites = deps.sites ?? EMPTY_SITE_TABLE;
    this.lastSnapshot = emptySnapshot(deps.now());
    const shares = splitState(saved, workerCount);
    for (let i = 0; i < workerCount; i++) this.slots.push(this.spawn(i, shares[i]));
  }

  /** The stage config one worker gets: its share (1/N) of the decoder state budget. */
  private workerConfig(): DecodeStageConfig {
    const budget = this.config.flowLimits.stateBudgetBytes;
    if (budget === undefined) return this.config;
    const share = Math.max(1, Math.floor(budget / this.workerCount));
    return { ...this.config, flowLimits: { ...this.config.flowLimits, stateBudgetBytes: share } };
  }

  /** Installs a new site table in every worker (and in workers started later). */
  setSites(sites: SiteTableSpec): void {
    this.sites = sites;
    for (const slot of this.slots) if (!slot.exited) slot.worker.postMessage({ type: 'sites', sites } satisfies ToWorker);
  }

  /** Sends firefly flow changes for the marking check to every worker. */
  setMarking(update: MarkingUpdate): void {
    for (const slot of this.slots) if (!slot.exited) slot.worker.postMessage({ type: 'marking', update } satisfies ToWorker);
  }

  /** Resolves once every worker has started (restored its state). */
  async ready(): Promise<void> {
    await Promise.all(this.slots.map((s) => s.ready));
  }

  private spawn(index: number, saved: PersistedFlowState | undefined): Slot {
    const init: WorkerInit = {
      index,
      stage: this.workerConfig(),
      aggregation: this.aggregation,
      saved,
      logLevel: this.deps.logLevel,
      flushMs: FLUSH_MS,
      nat64Prefixes: this.deps.nat64Prefixes ?? [WELL_KNOWN_NAT64_PREFIX],
      marking: this.deps.markingSnapshot?.() ?? { upserts: [], deletes: [] },
      sites: this.sites,
      ...(this.deps.addNat64Top && this.deps.nat64TopN ? { nat64TopN: this.deps.nat64TopN } : {}),
    };
    const startedMs = this.deps.now();
    // Every line of this worker (its own, forwarded, and the ones about it) names it.
    const log = this.deps.log.child({ worker: index });
    const worker = new Worker(new URL('./worker.js', import.meta.url), {
      workerData: init,
      // A worker holds decoder state and one bucket's partial sums: a small young generation
      // is plenty, and each thread's default (up to 32 MB semi-spaces) multiplies RSS by workers.
      resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_GENERATION_MB },
    });
    let markReady: () => void = () => {};
    const slot: Slot = {
      worker,
      writer: new BatchWriter(),
      inflight: 0,
      ready: new Promise<void>((r) => (markReady = r)),
      snapshot: emptySnapshot(this.deps.now()),
      exited: false,
    };
    worker.on('message', (m: FromWorker) => {
      switch (m.type) {
        case 'ready':
          log.debug(`decode worker ${index} started`, { ms: this.deps.now() - startedMs, restarts: this.restarts });
          markReady();
          return;
        case 'sums':
          if (m.parts.length > 0) this.deps.addParts(m.parts, m.exporters);
          if (m.siteParts.length > 0) this.deps.addSiteParts?.(m.siteParts, m.siteExporters);
          if (m.marking.length > 0) this.deps.addMarking?.(m.marking);
          return;
        case 'nat64Top':
          this.deps.addNat64Top?.(m.parts);
          return;
        case 'fireflies':
          if (this.deps.fireflies) for (const f of m.items) this.deps.fireflies.accept(f.firefly, f.receivedMs, f.exporterAddr, f.payload);
          return;
        case 'done':
          slot.inflight = Math.max(0, slot.inflight - m.count);
          slot.writer.recycle(m.buffer);
          return;
        case 'log':
          log.log(m.level, m.msg, m.fields);
          return;
        case 'snapshot':
          slot.snapshot = m.snapshot;
          this.pending.get(m.id)?.(m);
          return;
        case 'state':
          this.pending.get(m.id)?.(m);
          return;
        case 'stopped': // awaited by stop()
          return;
      }
    });
    worker.on('error', (err) => {
      log.error(`decode worker ${index} failed (restarting it; ${slot.inflight} datagrams in flight counted as dropped)`, {
        err,
        inflight: slot.inflight,
      });
    });
    worker.on('exit', (code) => {
      slot.exited = true;
      markReady();
      if (this.closed) return;
      this.dropped += slot.inflight;
      this.restarts++;
      if (code !== 0)
        this.deps.log.warn(`decode worker ${index} exited with code ${code}; a new one takes its exporters`, {
          worker: index,
          code,
          restarts: this.restarts,
        });
      this.slots[index] = this.spawn(index, undefined);
    });
    return slot;
  }

  /** The payload is copied into the worker's batch at once, so a transient one is fine. */
  submit(d: ReceivedDatagram, listener: ListenerKind): boolean {
    if (this.closed) return false;
    const slot = this.slots[shardOf(d.srcAddr, this.workerCount)]!;
    if (slot.inflight + slot.writer.count >= this.perWorkerBudget) {
      this.countDrop(d.srcAddr);
      return false;
    }
    if (!slot.writer.add(d.payload, d.srcAddr, d.srcPort, listener, d.receivedMs)) {
      this.post(slot);
      slot.writer.add(d.payload, d.srcAddr, d.srcPort, listener, d.receivedMs);
    }
    if (slot.writer.count >= FULL_BATCH) this.post(slot);
    else if (!this.flushScheduled) {
      // Gather for a moment rather than posting every event-loop turn: a receive turn holds
      // only a few datagrams, and each message between threads costs as much as decoding
      // dozens of records (measured: 2.5x the CPU per record with per-turn batches).
      this.flushScheduled = true;
      setTimeout(() => this.flushBatches(), GATHER_MS);
    }
    return true;
  }

  private countDrop(addr: string): void {
    this.dropped++;
    const key = this.dropsByExporter.has(addr) || this.dropsByExporter.size < MAX_DROP_KEYS ? addr : 'other';
    this.dropsByExporter.set(key, (this.dropsByExporter.get(key) ?? 0) + 1);
  }

  private post(slot: Slot): void {
    if (slot.writer.count === 0) return;
    const b = slot.writer.take();
    slot.inflight += b.count;
    const m: ToWorker = { type: 'batch', buffer: b.buffer, length: b.length, count: b.count };
    slot.worker.postMessage(m, [b.buffer]);
  }

  /** Every partly filled batch goes to its worker (GATHER_MS after the first datagram). */
  private flushBatches(): void {
    this.flushScheduled = false;
    for (const s of this.slots) this.post(s);
  }

  private request<T extends FromWorker>(slot: Slot, make: (id: number) => ToWorker): Promise<T | undefined> {
    if (slot.exited) return Promise.resolve(undefined);
    const id = this.nextId++;
    return new Promise<T | undefined>((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        resolve(undefined);
      }, REQUEST_TIMEOUT_MS);
      timer.unref();
      this.pending.set(id, (m) => {
        clearTimeout(timer);
        this.pending.delete(id);
        resolve(m as T);
      });
      slot.worker.postMessage(make(id));
    });
  }

  snapshot(): DecodeSnapshot {
    return this.lastSnapshot;
  }

  async refresh(): Promise<DecodeSnapshot> {
    this.flushBatches();
    await Promise.all(this.slots.map((s) => this.request(s, (id) => ({ type: 'snapshot', id }))));
    this.lastSnapshot = mergeSnapshots(
      this.slots.map((s) => s.snapshot),
      this.deps.now(),
    );
    return this.lastSnapshot;
  }

  async persistentState(nowMs: number): Promise<PersistedFlowState> {
    if (this.finalState) return this.finalState;
    const parts = await Promise.all(
      this.slots.map((s) => this.request<Extract<FromWorker, { type: 'state' }>>(s, (id) => ({ type: 'state', id, nowMs }))),
    );
    return mergeStates(
      parts.map((p) => p?.state),
      nowMs,
    );
  }

  queueStats(): QueueStats {
    let length = 0;
    for (const s of this.slots) length += s.inflight + s.writer.count;
    return { length, capacity: this.perWorkerBudget * this.workerCount, dropped: this.dropped, dropsByExporter: this.dropsByExporter };
  }

  /**
   * Every batch reaches its worker, every worker decodes it and hands in its last sums; the
   * last snapshot and decoder state are taken before the threads end.
   */
  async stop(): Promise<void> {
    this.flushBatches();
    this.closed = true;
    await Promise.all(
      this.slots.map(async (s) => {
        if (s.exited) return;
        await new Promise<void>((resolve) => {
          const onMessage = (m: FromWorker): void => {
            if (m.type !== 'stopped') return;
            s.worker.off('message', onMessage);
            resolve();
          };
          s.worker.on('message', onMessage);
          s.worker.once('exit', () => resolve());
          s.worker.postMessage({ type: 'stop' } satisfies ToWorker);
        });
      }),
    );
    await this.refresh();
    this.finalState = await this.persistentState(this.deps.now());
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }
}

/** Each worker's share of a saved state document: sessions and sampling tables by exporter shard. */
export function splitState(doc: PersistedFlowState | undefined, workers: number): (PersistedFlowState | undefined)[] {
  if (!doc) return new Array<undefined>(workers).fill(undefined);
  return Array.from({ length: workers }, (_, w) => ({
    ...doc,
    sessions: doc.sessions.filter((s) => shardOf(s.address, workers) === w),
    exporterSampling: doc.exporterSampling.filter(([key]) => shardOf(key.slice(0, key.lastIndexOf('|')), workers) === w),
  }));
}

/** One document from the workers' (disjoint) shares. */
export function mergeStates(parts: readonly (PersistedFlowState | undefined)[], nowMs: number): PersistedFlowState {
  const first = parts.find((p) => p !== undefined);
  return {
    version: first?.version ?? 1,
    savedMs: nowMs,
    sessions: parts.flatMap((p) => p?.sessions ?? []),
    exporterSampling: parts.flatMap((p) => p?.exporterSampling ?? []),
  } as PersistedFlowState;
}
