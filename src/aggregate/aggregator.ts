import type { FlowRecord } from '../../decoders/record.js';
import type { Logger } from '../log.js';
import type { TrafficRow, TrafficStore } from '../store/types.js';
import { Bucket, Cell } from './bucket.js';
import { resolveAggregatorConfig, type AggregatorConfig } from './config.js';
import { NO_IF, LinkTable, REFUSED_SHARE, linkIf, overFairShare, type ExporterLinks } from './links.js';
import {
  KeepPolicy,
  PairFilter,
  SERIES_SPACE,
  foldPair,
  overflowSeries,
  pairOf,
  seriesInfo,
  seriesOf,
  seriesOfRow,
} from '../enrich/series.js';
import type { PairRegistry } from '../enrich/series.js';
import { cumulativeShare } from './split.js';

/**
 * Sums flow records into (bucket, exporter, inIf, outIf, class, community, activity) cells
 * and writes closed buckets to the store.
 *
 * Time. Buckets follow the collector's receive time. A record with exporter timestamps is
 * shifted by that exporter's clock offset (receive time - export time of its datagram), so
 * a router with a wrong clock still lands in the right bucket; a span covering several
 * buckets is split in proportion to time (split.ts) and its record count goes to the bucket
 * holding its end (a count is not divisible, and the end is when the flow was seen last).
 * Records without timestamps (sFlow samples, templates without times) and records with
 * absurd ones (end before start, longer than maxFlowSeconds, ending in the future or more
 * than maxFlowSeconds before the datagram was exported) count in
 * the bucket of their receive time; absurd ones are counted in `clampedTimestamps`.
 *
 * Lifecycle. tick(now) writes every bucket whose end + grace has passed and that changed
 * since its last write, whole (the store replaces, never adds, so rewrites are idempotent).
 * Buckets stay in memory for the late window and are then closed: records for a closed
 * bucket are dropped and counted as too late. A failed write keeps the bucket for the next
 * tick; nothing accepted is dropped unless the pending rows exceed maxPendingRows.
 *
 * Cardinality. When the live keys reach maxLiveKeys, records that would open a new key are
 * folded into the overflow key of their exporter and class: inIf = outIf = null and, for
 * class 'scitags', community = activity = null (the `unregistered` series). That key is
 * shared with genuinely unregistered traffic of unknown interfaces; `foldedByCardinality`
 * tells how much of it is overflow.
 *
 * Fair share. So that one exporter spraying new keys (random interfaces, forged label pairs)
 * cannot make every other exporter fold, once half of maxLiveKeys is in use an exporter that
 * already holds maxLiveKeys / (exporters holding live keys) or more folds its new keys, while
 * exporters below that share still open theirs up to the hard cap (links.ts overFairShare;
 * the link table applies the same rule to new links). Each exporter keeps its own count of
 * live keys, so the check is two multiplications on the path that opens a key, and nothing on
 * the path that finds one. Folds are counted per exporter and reason (exporterFolds()).
 */

/**
 * Receives what the aggregator summed since the last count, per key (Prometheus traffic
 * counters). Called from countTraffic() and before a bucket is dropped from memory, never
 * per record; bytes and packets are scaled by the sampling rate, as in the stores.
 */
export interface TrafficSink {
  add(exporter: string, inIf: number | null, outIf: number | null, series: number, bytes: number, packets: number): void;
}

export interface AggregatorDeps {
  /** Wall clock for the tick timer and log rate limiting (tests inject a fake one). */
  now(): number;
  /** Where closed buckets are written (the aggregator only writes, and names it in logs). */
  store: Pick<TrafficStore, 'kind' | 'writeRows'>;
  /** The registry in force; called per record, so a refreshed registry applies at once. */
  registry(): PairRegistry;
  log?: Logger;
  /** Where countTraffic() hands the sums (the collector's Prometheus traffic counters). */
  traffic?: TrafficSink;
  /** After a successful store write: the start of the newest bucket in it (the run marker keeps it). */
  onWritten?: (newestBucketStartMs: number) => void;
  /** After every store write attempt, failed ones included: how long the store took (scitags_store_write_seconds). */
  onWriteTimed?: (seconds: number) => void;
}

export interface AggregatorStats {
  /** add() calls. */
  records: number;
  /** Records whose span covered several buckets. */
  splitRecords: number;
  /** Records with unusable exporter times, counted in their receive-time bucket. */
  clampedTimestamps: number;
  /** Record parts that updated an already written bucket (which is then written again). */
  lateUpdates: number;
  /** Records dropped whole because their (end) bucket was past the late window. */
  tooLate: number;
  /** Scaled bytes / packets dropped as too late: whole records and early parts of split ones. */
  tooLateBytes: number;
  tooLatePackets: number;
  /** Records folded (wholly or, for split records, partly) into an overflow key by the cap. */
  foldedByCardinality: number;
  /** The part of foldedByCardinality folded by the fair share (the exporter held more than its share). */
  foldedByShare: number;
  /** Bucket writes confirmed by the store, rewrites included, and their rows. */
  bucketsWritten: number;
  rowsWritten: number;
  /** Rejected store writes (each is retried on the next tick). */
  writeFailures: number;
  /** Closed buckets dropped because the store failed for too long (pending rows over the cap). */
  droppedBuckets: number;
  droppedRows: number;
  /** Gauges. */
  openBuckets: number;
  /** Buckets with records not yet in the store (open or closed). */
  dirtyBuckets: number;
  liveKeys: number;
  pendingRows: number;
  links: number;
  exporters: number;
  /** Store writes failed since the last one that succeeded (0 while writes succeed). */
  consecutiveWriteFailures: number;
  /** The last store write error and when (ms since the epoch); undefined when none has failed. */
  lastWriteError: string | undefined;
  lastWriteErrorMs: number | undefined;
}

type Counters = Omit<
  AggregatorStats,
  | 'openBuckets'
  | 'dirtyBuckets'
  | 'liveKeys'
  | 'pendingRows'
  | 'links'
  | 'exporters'
  | 'consecutiveWriteFailures'
  | 'lastWriteError'
  | 'lastWriteErrorMs'
>;

interface ExporterState {
  links: ExporterLinks;
  /**
   * receive time - export time of the exporter's latest datagram with an export time; NaN
   * until one arrives. NaN rather than undefined keeps the field a plain double, updated in
   * place: a number|undefined field would allocate a heap number per record.
   */
  offsetMs: number;
  /** Live keys of this exporter (cells in open buckets): its use of maxLiveKeys. */
  keys: number;
  /** Records folded: over the exporter's fair share, and with the live keys at maxLiveKeys. */
  foldedShare: number;
  foldedBudget: number;
}

/** Per-exporter fold counts (exporterFolds()). */
export interface ExporterFolds {
  exporter: string;
  /** Records folded because the exporter held more than its fair share of the live keys. */
  share: number;
  /** Records folded because the live keys (or links) were at maxLiveKeys. */
  budget: number;
}

/** Why a record (part) went to an overflow key; 0: it did not. Numbers, not strings: hot path. */
const NOT_FOLDED = 0;
const FOLD_SHARE = 1;
const FOLD_BUDGET = 2;

/** How often a persisting write failure is logged again. */
const FAILURE_LOG_INTERVAL_MS = 60_000;

/** Numbers per part in takeParts() / addParts(). */
export const PART_FIELDS = 8;

/** Exporter name for addresses beyond maxExporters. */
export const OTHER_EXPORTER = 'other';

export class Aggregator {
  readonly config: AggregatorConfig;
  private readonly widthMs: number;
  private readonly graceMs: number;
  private readonly lateMs: number;
  private readonly maxFlowMs: number;
  private readonly futureMs: number;
  private readonly pairs: PairFilter;
  private readonly links: LinkTable;
  /** config.keyBy === 'sites'. */
  private readonly bySites: boolean;
  private readonly exporters = new Map<string, ExporterState>();
  private readonly buckets = new Map<number, Bucket>();
  /** Rows of a previous run waiting for their exporter to send again (seed()). */
  private readonly seeded = new Map<string, TrafficRow[]>();
  /** Buckets with a lower index are closed (past the late window). */
  private acceptFrom = -Infinity;
  private liveKeys = 0;
  /** Exporters with live keys (ExporterState.keys > 0): the fair share's divisor. */
  private keyHolders = 0;
  private linksAfterCompaction = 0;
  /**
   * A new link was refused by the fair share since the last compaction. The link table counts
   * an exporter's links until compaction, dead ones included, so the next tick compacts to
   * give the share back the links of closed buckets.
   */
  private linkShareRefused = false;
  private lastExporterAddr: string | undefined;
  private lastExporter: ExporterState | undefined;
  private lastBucket: Bucket | undefined;
  /** The link of the previous record (add()); forgotten whenever link ids are renumbered. */
  private lastLinkExporter: ExporterState | undefined;
  private lastInIf = NO_IF;
  private lastOutIf = NO_IF;
  private lastLink = -1;
  /** Out-parameter of cellFor(): NOT_FOLDED, FOLD_SHARE or FOLD_BUDGET. */
  private folded = NOT_FOLDED;
  private readonly c: Counters = {
    records: 0,
    splitRecords: 0,
    clampedTimestamps: 0,
    lateUpdates: 0,
    tooLate: 0,
    tooLateBytes: 0,
    tooLatePackets: 0,
    foldedByCardinality: 0,
    foldedByShare: 0,
    bucketsWritten: 0,
    rowsWritten: 0,
    writeFailures: 0,
    droppedBuckets: 0,
    droppedRows: 0,
  };
  private consecutiveFailures = 0;
  private lastFailureLogMs = -Infinity;
  private lastWriteError: string | undefined;
  private lastWriteErrorMs: number | undefined;
  /** Ticks and flushes run one at a time, in call order. */
  private chain: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    config: Partial<AggregatorConfig>,
    private readonly deps: AggregatorDeps,
  ) {
    this.config = resolveAggregatorConfig(config);
    this.widthMs = this.config.bucketSeconds * 1000;
    this.graceMs = this.config.graceSeconds * 1000;
    this.lateMs = this.config.lateWindowSeconds * 1000;
    this.maxFlowMs = this.config.maxFlowSeconds * 1000;
    this.futureMs = this.config.futureToleranceSeconds * 1000;
    this.pairs = new PairFilter(new KeepPolicy(this.config.keepUnregistered));
    this.links = new LinkTable(this.config.maxLiveKeys);
    this.bySites = this.config.keyBy === 'sites';
  }

  /** Starts the tick timer (serve). Tests and `ingest` call tick() themselves. */
  start(): void {
    if (this.timer !== undefined) return;
    // tick() handles store failures itself; anything reaching here is a bug, not a reason to
    // take the daemon down with an unhandled rejection.
    const tick = (): void => {
      this.tick(this.deps.now()).catch((err: unknown) => this.deps.log?.limited('tick', 'error', 'aggregator tick failed', { err }));
    };
    // One tick now, so the late window applies from the first datagram, not the first second.
    tick();
    this.timer = setInterval(tick, this.config.tickSeconds * 1000);
    this.timer.unref();
  }

  /** Stops the timer and writes every open bucket. */
  async stop(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    await this.flush();
  }

  /**
   * Counts one record. `receivedMs` is when the collector received its datagram (`ingest`:
   * the capture time); `exporterAddr` the exporter's address without port.
   */
  add(rec: FlowRecord, receivedMs: number, exporterAddr: string): void {
    this.c.records++;
    const ex = this.exporter(exporterAddr);
    if (rec.exportMs !== undefined) ex.offsetMs = receivedMs - rec.exportMs;
    const series = seriesOf(rec, this.deps.registry(), this.pairs);
    const bytes = rec.bytes * rec.samplingRate;
    const packets = rec.packets * rec.samplingRate;
    // Seeded rows (applySeed) keep their stored ifIndex: re-keying them would leave the stored
    // row in place beside its re-keyed copy.
    // A site-pair aggregator keys its "links" by the enricher's site ids instead of ifIndexes.
    const inIf = this.bySites ? rec.srcSite : linkIf(rec.inIf);
    const outIf = this.bySites ? rec.dstSite : linkIf(rec.outIf);
    let link: number;
    let folded = NOT_FOLDED;
    // Consecutive records of an exporter often share their link: skip the two map lookups.
    if (ex === this.lastLinkExporter && inIf === this.lastInIf && outIf === this.lastOutIf) link = this.lastLink;
    else {
      link = this.links.intern(ex.links, inIf, outIf, false);
      if (link < 0) {
        folded = this.linkRefused(link);
        link = this.overflowLink(ex);
      } else {
        this.lastLinkExporter = ex;
        this.lastInIf = inIf;
        this.lastOutIf = outIf;
        this.lastLink = link;
      }
    }

    // Exporter times shifted into our clock; undefined when they cannot be used.
    let start = rec.startMs ?? rec.endMs;
    let end = rec.endMs ?? rec.startMs;
    if (start !== undefined && end !== undefined && !Number.isNaN(ex.offsetMs)) {
      start += ex.offsetMs;
      end += ex.offsetMs;
      // A flow is exported at most an active timeout after its end, so one that ended more
      // than maxFlowSeconds before its datagram was sent carries a clock the offset cannot
      // fix (e.g. pmacct reading a pcap: packet times in flows, wall clock in the header).
      if (!(end >= start) || end - start > this.maxFlowMs || end > receivedMs + this.futureMs || end < receivedMs - this.maxFlowMs) {
        this.c.clampedTimestamps++;
        start = end = undefined;
      } else if (end > receivedMs) {
        // Export times have 1 s resolution: nothing can end after we received it.
        start -= end - receivedMs;
        end = receivedMs;
      }
    } else {
      start = end = undefined;
    }

    if (start === undefined || end === undefined || end === start) {
      const index = Math.floor((end ?? receivedMs) / this.widthMs);
      if (index < this.acceptFrom) return this.dropTooLate(bytes, packets);
      const cell = this.cellFor(index, ex, link, series, folded);
      cell.bytes += bytes;
      cell.packets += packets;
      cell.records += 1;
      if (this.folded !== NOT_FOLDED) this.countFold(ex, this.folded);
      return;
    }

    // [start, end) over buckets first..last; the record count goes with the last part.
    const first = Math.floor(start / this.widthMs);
    const last = Math.ceil(end / this.widthMs) - 1;
    if (last < this.acceptFrom) return this.dropTooLate(bytes, packets);
    if (last > first) this.c.splitRecords++;
    const span = end - start;
    let anyFolded = NOT_FOLDED;
    for (let i = first; i <= last; i++) {
      const a = Math.max(start, i * this.widthMs) - start;
      const b = Math.min(end, (i + 1) * this.widthMs) - start;
      const pb = cumulativeShare(bytes, a, b, span);
      const pp = cumulativeShare(packets, a, b, span);
      if (i < this.acceptFrom) {
        this.c.tooLateBytes += pb;
        this.c.tooLatePackets += pp;
        continue;
      }
      const records = i === last ? 1 : 0;
      if (pb === 0 && pp === 0 && records === 0) continue;
      const cell = this.cellFor(i, ex, link, series, folded);
      cell.bytes += pb;
      cell.packets += pp;
      cell.records += records;
      if (this.folded !== NOT_FOLDED) anyFolded = this.folded;
    }
    if (anyFolded !== NOT_FOLDED) this.countFold(ex, anyFolded);
  }

  /**
   * Seeds the buckets still open at `nowMs` (within grace + late window) with the rows a
   * previous run stored for them. Without this, the first write after a restart would
   * replace the stored total of the current bucket with the new run's partial one. Call
   * once, before the first add(). Returns the rows taken.
   *
   * The rows of an exporter are applied when that exporter first sends to this run, not
   * before: with several instances writing one InfluxDB (each owning some exporters), an
   * instance must never write back another instance's series with values it read earlier.
   */
  seed(rows: readonly TrafficRow[], nowMs: number): number {
    const from = Math.floor((nowMs - this.graceMs - this.lateMs) / this.widthMs);
    let taken = 0;
    for (const row of rows) {
      const index = Math.floor(row.bucketStartMs / this.widthMs);
      if (index < from || index < this.acceptFrom) continue;
      let list = this.seeded.get(row.exporter);
      if (!list) this.seeded.set(row.exporter, (list = []));
      list.push(row);
      taken++;
    }
    // Exporters that already sent (none, when seed is called first as it should be).
    for (const addr of [...this.seeded.keys()]) if (this.exporters.has(addr)) this.applySeed(addr);
    return taken;
  }

  /** Adds an exporter's seeded rows to their (still open) buckets. */
  private applySeed(addr: string): void {
    const rows = this.seeded.get(addr);
    if (!rows) return;
    this.seeded.delete(addr);
    const ex = this.exporters.get(addr)!;
    for (const row of rows) {
      const index = Math.floor(row.bucketStartMs / this.widthMs);
      if (index < this.acceptFrom) continue;
      let link = this.links.intern(ex.links, row.inIf ?? NO_IF, row.outIf ?? NO_IF, false);
      let folded = NOT_FOLDED;
      if (link < 0) {
        folded = this.linkRefused(link);
        link = this.overflowLink(ex);
      }
      const series = seriesOfRow(row);
      const cell = this.cellFor(index, ex, link, series, folded);
      cell.bytes += row.bytes;
      cell.packets += row.packets;
      cell.records += row.records;
      // The previous run counted these in its own (since reset) Prometheus counters.
      cell.countedBytes += row.bytes;
      cell.countedPackets += row.packets;
    }
  }

  /**
   * Worker side of sharded decoding: hands over every cell summed since the last call as
   * numeric parts (PART_FIELDS numbers each: bucket index, exporter index into `exporters`,
   * inIf, outIf (NO_IF when absent), series code, bytes, packets, records) and forgets them.
   * Per-exporter clock offsets stay. The buckets were never closed here: the main thread's
   * aggregator decides what is too late (addParts).
   */
  takeParts(): { parts: Float64Array; exporters: string[] } {
    this.countTraffic();
    let n = 0;
    for (const b of this.buckets.values()) n += b.cells.size;
    const parts = new Float64Array(n * PART_FIELDS);
    const exporters: string[] = [];
    const exporterIndex = new Map<string, number>();
    const { exporterOf, inOf, outOf } = this.links;
    let o = 0;
    for (const b of this.buckets.values()) {
      for (const [key, cell] of b.cells) {
        const link = Math.floor(key / SERIES_SPACE);
        const addr = exporterOf[link]!;
        let xi = exporterIndex.get(addr);
        if (xi === undefined) {
          xi = exporters.length;
          exporters.push(addr);
          exporterIndex.set(addr, xi);
        }
        parts[o++] = b.index;
        parts[o++] = xi;
        parts[o++] = inOf[link]!;
        parts[o++] = outOf[link]!;
        parts[o++] = key - link * SERIES_SPACE;
        parts[o++] = cell.bytes;
        parts[o++] = cell.packets;
        parts[o++] = cell.records;
      }
    }
    this.buckets.clear();
    this.lastBucket = undefined;
    this.liveKeys = 0;
    this.keyHolders = 0;
    for (const ex of this.exporters.values()) ex.keys = 0;
    // Nothing references a link id any more: start numbering again once the table is large.
    if (this.links.size > 4096) {
      this.links.reset();
      this.lastLinkExporter = undefined;
    }
    return { parts, exporters };
  }

  /**
   * Main side of sharded decoding: adds the parts a worker summed (takeParts). Pairs are
   * checked against the registry here (workers keep every pair), parts for closed buckets
   * are dropped and counted as too late, and the live-key cap folds as for add().
   */
  addParts(parts: Float64Array, exporters: readonly string[]): void {
    const registry = this.deps.registry();
    for (let o = 0; o + PART_FIELDS <= parts.length; o += PART_FIELDS) {
      const index = parts[o]!;
      const bytes = parts[o + 5]!;
      const packets = parts[o + 6]!;
      const records = parts[o + 7]!;
      this.c.records += records;
      if (index < this.acceptFrom) {
        if (records > 0) this.c.tooLate += records;
        this.c.tooLateBytes += bytes;
        this.c.tooLatePackets += packets;
        continue;
      }
      let series = parts[o + 4]!;
      const pair = pairOf(series);
      if (pair >= 0 && !this.pairs.keeps(registry, pair)) series = foldPair(series);
      const ex = this.exporter(exporters[parts[o + 1]!]!);
      let link = this.links.intern(ex.links, parts[o + 2]!, parts[o + 3]!, false);
      let folded = NOT_FOLDED;
      if (link < 0) {
        folded = this.linkRefused(link);
        link = this.overflowLink(ex);
      }
      const cell = this.cellFor(index, ex, link, series, folded);
      cell.bytes += bytes;
      cell.packets += packets;
      cell.records += records;
      if (this.folded !== NOT_FOLDED) this.countFold(ex, this.folded);
    }
  }

  /** Writes the buckets due at `nowMs` and closes those past the late window. Never rejects. */
  tick(nowMs: number): Promise<void> {
    return this.serial(async () => {
      const closeBefore = Math.floor((nowMs - this.graceMs - this.lateMs) / this.widthMs);
      if (closeBefore > this.acceptFrom) this.close(closeBefore);
      const dueBefore = Math.floor((nowMs - this.graceMs) / this.widthMs);
      await this.write((b) => b.index < dueBefore, false);
      this.evict();
      this.capPending();
      this.maybeCompactLinks();
    });
  }

  /** Writes every bucket with unwritten data (shutdown, end of `ingest`). Rejects on failure. */
  flush(): Promise<void> {
    return this.serial(async () => {
      await this.write(() => true, true);
      this.evict();
    });
  }

  /**
   * Hands every sum added since the last call to the traffic sink (deps.traffic), once: each
   * cell remembers what it has handed over, so the sink sees only growth and counters built
   * on it stay monotonic and, summed, equal what the store holds. Runs on the metrics timer
   * and before each scrape, and before any bucket leaves memory (evict, capPending), so
   * nothing is missed. Unchanged buckets are skipped by version.
   */
  countTraffic(): void {
    if (this.deps.traffic === undefined) return;
    for (const b of this.buckets.values()) this.countBucket(b);
  }

  private countBucket(b: Bucket): void {
    const sink = this.deps.traffic;
    if (sink === undefined || b.countedVersion === b.version) return;
    const { exporterOf, inOf, outOf } = this.links;
    for (const [key, cell] of b.cells) {
      const bytes = cell.bytes - cell.countedBytes;
      const packets = cell.packets - cell.countedPackets;
      if (bytes <= 0 && packets <= 0) continue;
      cell.countedBytes = cell.bytes;
      cell.countedPackets = cell.packets;
      const link = Math.floor(key / SERIES_SPACE);
      const inIf = inOf[link]!;
      const outIf = outOf[link]!;
      sink.add(exporterOf[link]!, inIf === NO_IF ? null : inIf, outIf === NO_IF ? null : outIf, key - link * SERIES_SPACE, bytes, packets);
    }
    b.countedVersion = b.version;
  }

  stats(): AggregatorStats {
    let pendingRows = 0;
    let openBuckets = 0;
    let dirtyBuckets = 0;
    for (const b of this.buckets.values()) {
      if (b.closed) pendingRows += b.cells.size;
      else openBuckets++;
      if (b.dirty) dirtyBuckets++;
    }
    return {
      ...this.c,
      openBuckets,
      dirtyBuckets,
      consecutiveWriteFailures: this.consecutiveFailures,
      lastWriteError: this.lastWriteError,
      lastWriteErrorMs: this.lastWriteErrorMs,
      liveKeys: this.liveKeys,
      pendingRows,
      links: this.links.size,
      exporters: this.exporters.size,
    };
  }

  /** Exporters that had records folded, with their counts (metrics; one pass over the exporters). */
  exporterFolds(): ExporterFolds[] {
    const out: ExporterFolds[] = [];
    for (const [exporter, ex] of this.exporters) {
      if (ex.foldedShare > 0 || ex.foldedBudget > 0) out.push({ exporter, share: ex.foldedShare, budget: ex.foldedBudget });
    }
    return out;
  }

  // ---------------------------------------------------------------------------------------
  // Hot path helpers
  // ---------------------------------------------------------------------------------------

  private exporter(addr: string): ExporterState {
    if (addr === this.lastExporterAddr) return this.lastExporter!;
    let ex = this.exporters.get(addr);
    if (ex === undefined) {
      const key = this.exporters.size < this.config.maxExporters ? addr : OTHER_EXPORTER;
      ex = this.exporters.get(key);
      if (ex === undefined) {
        this.exporters.set(key, (ex = { links: this.links.exporter(key), offsetMs: NaN, keys: 0, foldedShare: 0, foldedBudget: 0 }));
        if (this.seeded.size > 0) this.applySeed(key);
      }
    }
    this.lastExporterAddr = addr;
    this.lastExporter = ex;
    return ex;
  }

  private overflowLink(ex: ExporterState): number {
    return this.links.intern(ex.links, NO_IF, NO_IF, true);
  }

  /** Why a refused link folds its record (links.ts REFUSED_*). */
  private linkRefused(refusal: number): number {
    if (refusal !== REFUSED_SHARE) return FOLD_BUDGET;
    this.linkShareRefused = true;
    return FOLD_SHARE;
  }

  /** Off the common path: only records that went to an overflow key get here. */
  private countFold(ex: ExporterState, reason: number): void {
    this.c.foldedByCardinality++;
    if (reason === FOLD_SHARE) {
      this.c.foldedByShare++;
      ex.foldedShare++;
    } else ex.foldedBudget++;
  }

  private dropTooLate(bytes: number, packets: number): void {
    this.c.tooLate++;
    this.c.tooLateBytes += bytes;
    this.c.tooLatePackets += packets;
  }

  /**
   * The cell a record (part) adds to, marking its bucket updated; sets `this.folded` to why it
   * is an overflow key (NOT_FOLDED when it is not). Counts are added by the caller: passing
   * doubles to a call that is not inlined would box them, one allocation per record.
   */
  private cellFor(index: number, ex: ExporterState, link: number, series: number, folded: number): Cell {
    let bucket = this.lastBucket;
    if (bucket === undefined || bucket.index !== index) {
      bucket = this.buckets.get(index);
      if (bucket === undefined) this.buckets.set(index, (bucket = new Bucket(index)));
      this.lastBucket = bucket;
    }
    let key = link * SERIES_SPACE + (folded !== NOT_FOLDED ? overflowSeries(series) : series);
    let cell = bucket.cells.get(key);
    if (cell === undefined) {
      if (folded === NOT_FOLDED) {
        const max = this.config.maxLiveKeys;
        if (this.liveKeys >= max) folded = FOLD_BUDGET;
        else if (overFairShare(this.liveKeys, max, ex.keys, this.keyHolders)) folded = FOLD_SHARE;
        if (folded !== NOT_FOLDED) {
          key = this.overflowLink(ex) * SERIES_SPACE + overflowSeries(series);
          cell = bucket.cells.get(key);
        }
      }
      if (cell === undefined) {
        // Overflow keys are created past the cap too: at most one per exporter and class.
        bucket.cells.set(key, (cell = new Cell()));
        this.liveKeys++;
        if (ex.keys++ === 0) this.keyHolders++;
      }
    }
    if (bucket.everWritten) this.c.lateUpdates++;
    bucket.version++;
    this.folded = folded;
    return cell;
  }

  // ---------------------------------------------------------------------------------------
  // Lifecycle
  // ---------------------------------------------------------------------------------------

  private serial(fn: () => Promise<void>): Promise<void> {
    const run = this.chain.then(fn);
    this.chain = run.catch(() => undefined);
    return run;
  }

  /**
   * Closes buckets below `index`: they stop accepting records and leave the live keys, of the
   * whole and of each exporter (one lookup per cell, once per bucket: off the record path).
   */
  private close(index: number): void {
    const { exporterOf } = this.links;
    for (const b of this.buckets.values()) {
      if (b.index < index && !b.closed) {
        b.closed = true;
        this.liveKeys -= b.cells.size;
        let addr: string | undefined;
        let ex: ExporterState | undefined;
        for (const key of b.cells.keys()) {
          const a = exporterOf[Math.floor(key / SERIES_SPACE)]!;
          if (a !== addr) {
            addr = a;
            ex = this.exporters.get(a);
          }
          if (ex !== undefined && --ex.keys === 0) this.keyHolders--;
        }
      }
    }
    this.acceptFrom = index;
    this.lastBucket = undefined;
  }

  private evict(): void {
    for (const [index, b] of this.buckets) {
      if (b.closed && !b.dirty) {
        this.countBucket(b);
        this.buckets.delete(index);
      }
    }
  }

  /**
   * Writes the dirty buckets selected by `due`, whole, in one store call (one transaction in
   * the embedded store). On failure the buckets stay dirty and are retried next time.
   */
  private async write(due: (b: Bucket) => boolean, rethrow: boolean): Promise<void> {
    const batch: { bucket: Bucket; version: number }[] = [];
    const rows: TrafficRow[] = [];
    const registry = this.deps.registry();
    const buckets = [...this.buckets.values()].sort((x, y) => x.index - y.index);
    for (const b of buckets) {
      if (!b.dirty || !due(b)) continue;
      batch.push({ bucket: b, version: b.version });
      this.rowsOf(b, registry, rows);
    }
    if (batch.length === 0) return;
    const started = performance.now();
    try {
      try {
        await this.deps.store.writeRows(rows);
      } finally {
        this.deps.onWriteTimed?.((performance.now() - started) / 1000);
      }
    } catch (err) {
      this.c.writeFailures++;
      this.consecutiveFailures++;
      const now = this.deps.now();
      this.lastWriteError = err instanceof Error ? err.message : String(err);
      this.lastWriteErrorMs = now;
      if (now - this.lastFailureLogMs >= FAILURE_LOG_INTERVAL_MS) {
        this.lastFailureLogMs = now;
        this.deps.log?.error('store write failed; buckets kept for retry', {
          err,
          store: this.deps.store.kind,
          failures: this.consecutiveFailures,
          buckets: batch.length,
          rows: rows.length,
        });
      }
      if (rethrow) throw err;
      return;
    }
    if (this.consecutiveFailures > 0) {
      this.deps.log?.warn('store writes recovered', { store: this.deps.store.kind, failures: this.consecutiveFailures });
      this.consecutiveFailures = 0;
      this.lastFailureLogMs = -Infinity;
    }
    // Once per bucket width (and per late update): debug, so an operator can see writes happen and their cost.
    this.deps.log?.debug('store batch written', {
      store: this.deps.store.kind,
      buckets: batch.length,
      rows: rows.length,
      ms: Math.round((performance.now() - started) * 10) / 10,
    });
    for (const { bucket, version } of batch) bucket.writtenVersion = version;
    this.deps.onWritten?.(batch[batch.length - 1]!.bucket.index * this.widthMs);
    this.c.bucketsWritten += batch.length;
    this.c.rowsWritten += rows.length;
  }

  private rowsOf(b: Bucket, registry: PairRegistry, out: TrafficRow[]): void {
    const bucketStartMs = b.index * this.widthMs;
    const { exporterOf, inOf, outOf } = this.links;
    for (const [key, cell] of b.cells) {
      const link = Math.floor(key / SERIES_SPACE);
      const info = seriesInfo(key - link * SERIES_SPACE);
      const inIf = inOf[link]!;
      const outIf = outOf[link]!;
      out.push({
        bucketStartMs,
        bucketSeconds: this.config.bucketSeconds,
        exporter: exporterOf[link]!,
        inIf: inIf === NO_IF ? null : inIf,
        outIf: outIf === NO_IF ? null : outIf,
        trafficClass: info.trafficClass,
        community: info.community,
        activity: info.activity,
        registered: info.community !== null && registry.isRegistered(info.community, info.activity!),
        bytes: cell.bytes,
        packets: cell.packets,
        records: cell.records,
        ...(info.nat64 ? { nat64: true as const } : {}),
      });
    }
  }

  /** Store down for long: drop the oldest closed, unwritten buckets beyond the cap, loudly. */
  private capPending(): void {
    let pending = 0;
    const closed = [...this.buckets.values()].filter((b) => b.closed).sort((x, y) => y.index - x.index);
    for (const b of closed) {
      pending += b.cells.size;
      if (pending <= this.config.maxPendingRows) continue;
      // Counted even though the store never gets it: Prometheus counts what was received.
      this.countBucket(b);
      this.buckets.delete(b.index);
      this.c.droppedBuckets++;
      this.c.droppedRows += b.cells.size;
      this.deps.log?.error('store unavailable for too long: dropped an unwritten bucket', {
        bucketStartMs: b.index * this.widthMs,
        rows: b.cells.size,
        maxPendingRows: this.config.maxPendingRows,
      });
    }
  }

  /**
   * Link ids are never freed one by one; when the table has grown well past what the buckets
   * in memory use (ifIndex churn, a flood), renumber the live ones. Amortised O(1) per link.
   * Also when the table is full or the fair share refused a link: at most once per tick, so the
   * per-exporter link counts the share reads drop the links of closed buckets.
   */
  private maybeCompactLinks(): void {
    const size = this.links.size;
    const full = size >= this.config.maxLiveKeys || this.linkShareRefused;
    if (size <= 2 * this.linksAfterCompaction + 1024 && !(full && size > this.linksAfterCompaction)) {
      return;
    }
    this.linkShareRefused = false;
    const old = this.links.reset();
    this.lastLinkExporter = undefined;
    for (const b of this.buckets.values()) {
      const cells = new Map<number, Cell>();
      for (const [key, cell] of b.cells) {
        const link = Math.floor(key / SERIES_SPACE);
        const ex = this.links.exporter(old.exporterOf[link]!);
        const next = this.links.intern(ex, old.inOf[link]!, old.outOf[link]!, true);
        cells.set(next * SERIES_SPACE + (key - link * SERIES_SPACE), cell);
      }
      b.cells = cells;
    }
    this.linksAfterCompaction = this.links.size;
  }

  /**
   * The buckets in memory whose sums the store does not have yet (open, or changed since their
   * last write), whole, as store rows: what GET /api/v1/traffic?provisional=true shows in place
   * of the stored rows of those buckets. Off the record path (one pass over their cells).
   */
  unwrittenRows(): TrafficRow[] {
    const rows: TrafficRow[] = [];
    const registry = this.deps.registry();
    for (const b of this.buckets.values()) if (b.dirty) this.rowsOf(b, registry, rows);
    return rows;
  }
}

export function createAggregator(config: Partial<AggregatorConfig>, deps: AggregatorDeps): Aggregator {
  return new Aggregator(config, deps);
}
