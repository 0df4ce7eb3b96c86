import type { FireflyFlowEvent } from '../../decoders/firefly/types.js';
import { resolveAggregatorConfig, type AggregatorConfig } from '../aggregate/config.js';
import type { Logger } from '../log.js';
import type { FireflyRow, FireflyStore, FireflySums } from '../store/types.js';
import { binOf, DURATION_BINS, THROUGHPUT_BINS } from './histogram.js';

/**
 * Per-bucket sums of the firefly flow table's events (issue 13, "Store, query, show"): per
 * bucket and (community = experiment-id, activity, IP version, source site, destination
 * site) the flows started, ended and expired, and for ended flows their bytes, durations,
 * throughput, rtt and delivery-rate summaries.
 *
 * Shaped like the traffic Aggregator (src/aggregate/aggregator.ts) and driven by the same
 * `aggregation` options: buckets by the event's `atMs` (the collector's receive time, so a
 * replay of old fireflies is not late), first written bucketSeconds + graceSeconds after
 * the bucket starts, rewritten whole when late events arrive within lateWindowSeconds, then
 * closed (later events are dropped and counted as too late). The store replaces rows, so
 * rewrites are idempotent. A failed write keeps the buckets for the next tick.
 *
 * Cardinality: ids are the host's numbers, bounded by the schema's id space, and site names
 * come from the site map; still, once the live keys reach maxLiveKeys, events that would
 * open a new key are counted under srcSite = dstSite = 'other' (one overflow key per id
 * pair and IP version) and counted in foldedByCardinality.
 */

/** What the flow table calls for each event (part 2's tracker takes one of these). */
export type FireflyEventSink = (e: FireflyFlowEvent) => void;

/** Site name of the overflow keys. */
export const OVERFLOW_SITE = 'other';

export type FireflyAggregatorConfig = Pick<
  AggregatorConfig,
  'bucketSeconds' | 'graceSeconds' | 'lateWindowSeconds' | 'maxLiveKeys' | 'maxPendingRows' | 'tickSeconds'
>;

export interface FireflyAggregatorDeps {
  now(): number;
  store: Pick<FireflyStore, 'kind' | 'writeFireflyRows'>;
  log?: Logger;
  onWriteTimed?: (seconds: number) => void;
}

export interface FireflyAggregatorStats {
  /** add() calls, by kind. */
  events: number;
  /** Events dropped because their bucket was past the late window. */
  tooLate: number;
  /** Events that updated an already written bucket (which is then written again). */
  lateUpdates: number;
  /** Events counted under the overflow key because of maxLiveKeys. */
  foldedByCardinality: number;
  bucketsWritten: number;
  rowsWritten: number;
  writeFailures: number;
  droppedBuckets: number;
  droppedRows: number;
  /** Gauges. */
  openBuckets: number;
  dirtyBuckets: number;
  liveKeys: number;
  pendingRows: number;
  consecutiveWriteFailures: number;
  lastWriteError: string | undefined;
}

type Cell = FireflySums;

export function emptySums(): FireflySums {
  return {
    flowsStarted: 0,
    flowsEnded: 0,
    flowsExpired: 0,
    flowsWithoutStart: 0,
    bytes: 0,
    durationSeconds: 0,
    throughputSum: 0,
    throughputCount: 0,
    throughputMax: null,
    rttSum: 0,
    rttCount: 0,
    rttMax: null,
    deliveryRateSum: 0,
    deliveryRateCount: 0,
    deliveryRateMax: null,
    retransmits: 0,
    durationHistogram: DURATION_BINS.map(() => 0),
    throughputHistogram: THROUGHPUT_BINS.map(() => 0),
  };
}

const maxOf = (a: number | null, b: number | null): number | null => (a === null ? b : b === null ? a : Math.max(a, b));

/** Adds `s` into `into` (counts and sums add, maxima take the larger). */
export function addSums(into: FireflySums, s: FireflySums): void {
  into.flowsStarted += s.flowsStarted;
  into.flowsEnded += s.flowsEnded;
  into.flowsExpired += s.flowsExpired;
  into.flowsWithoutStart += s.flowsWithoutStart;
  into.bytes += s.bytes;
  into.durationSeconds += s.durationSeconds;
  into.throughputSum += s.throughputSum;
  into.throughputCount += s.throughputCount;
  into.throughputMax = maxOf(into.throughputMax, s.throughputMax);
  into.rttSum += s.rttSum;
  into.rttCount += s.rttCount;
  into.rttMax = maxOf(into.rttMax, s.rttMax);
  into.deliveryRateSum += s.deliveryRateSum;
  into.deliveryRateCount += s.deliveryRateCount;
  into.deliveryRateMax = maxOf(into.deliveryRateMax, s.deliveryRateMax);
  into.retransmits += s.retransmits;
  for (let i = 0; i < into.durationHistogram.length; i++) into.durationHistogram[i]! += s.durationHistogram[i] ?? 0;
  for (let i = 0; i < into.throughputHistogram.length; i++) into.throughputHistogram[i]! += s.throughputHistogram[i] ?? 0;
}

interface Key {
  community: number;
  activity: number;
  ipVersion: 4 | 6;
  srcSite: string;
  dstSite: string;
}

class FireflyBucket {
  readonly cells = new Map<string, { key: Key; sums: Cell }>();
  version = 0;
  writtenVersion = -1;
  closed = false;
  constructor(readonly index: number) {}
  get dirty(): boolean {
    return this.version !== this.writtenVersion;
  }
}

const FAILURE_LOG_INTERVAL_MS = 60_000;

export class FireflyAggregator {
  readonly config: FireflyAggregatorConfig;
  private readonly widthMs: number;
  private readonly graceMs: number;
  private readonly lateMs: number;
  private readonly buckets = new Map<number, FireflyBucket>();
  private acceptFrom = -Infinity;
  private liveKeys = 0;
  private c = {
    events: 0,
    tooLate: 0,
    lateUpdates: 0,
    foldedByCardinality: 0,
    bucketsWritten: 0,
    rowsWritten: 0,
    writeFailures: 0,
    droppedBuckets: 0,
    droppedRows: 0,
  };
  private consecutiveFailures = 0;
  private lastFailureLogMs = -Infinity;
  private lastWriteError: string | undefined;
  private chain: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  /** add() bound to this aggregator: what the collector hands the flow table. */
  readonly sink: FireflyEventSink = (e) => this.add(e);

  constructor(
    config: Partial<FireflyAggregatorConfig>,
    private readonly deps: FireflyAggregatorDeps,
  ) {
    const full = resolveAggregatorConfig(config);
    this.config = {
      bucketSeconds: full.bucketSeconds,
      graceSeconds: full.graceSeconds,
      lateWindowSeconds: full.lateWindowSeconds,
      maxLiveKeys: full.maxLiveKeys,
      maxPendingRows: full.maxPendingRows,
      tickSeconds: full.tickSeconds,
    };
    this.widthMs = full.bucketSeconds * 1000;
    this.graceMs = full.graceSeconds * 1000;
    this.lateMs = full.lateWindowSeconds * 1000;
  }

  start(): void {
    if (this.timer !== undefined) return;
    // tick() never rejects on store failures; anything else is a bug, logged, not fatal.
    const tick = (): void => {
      this.tick(this.deps.now()).catch((err: unknown) =>
        this.deps.log?.limited('firefly-tick', 'error', 'firefly aggregator tick failed', { err }),
      );
    };
    tick();
    this.timer = setInterval(tick, this.config.tickSeconds * 1000);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    await this.flush();
  }

  /** Counts one flow-table event in the bucket of its receive time. */
  add(e: FireflyFlowEvent): void {
    this.c.events++;
    const index = Math.floor(e.atMs / this.widthMs);
    if (!(index >= this.acceptFrom)) {
      this.c.tooLate++;
      return;
    }
    const cell = this.cellFor(index, e.experimentId, e.activityId, e.ipVersion, e.srcSite, e.dstSite);
    switch (e.kind) {
      case 'started':
        cell.flowsStarted++;
        break;
      case 'expired':
        cell.flowsExpired++;
        break;
      case 'ended': {
        cell.flowsEnded++;
        if (e.withoutStart) cell.flowsWithoutStart++;
        // The flow table computes these from what a host declared: never let a NaN or a
        // negative value poison a bucket's sums.
        const duration = Number.isFinite(e.durationSeconds) && e.durationSeconds > 0 ? e.durationSeconds : 0;
        // Whole bytes (the stores keep integers; InfluxDB refuses a fractional integer field).
        cell.bytes += Number.isFinite(e.bytes) && e.bytes > 0 ? Math.round(e.bytes) : 0;
        cell.durationSeconds += duration;
        cell.durationHistogram[binOf(DURATION_BINS, duration)]!++;
        if (e.throughputBitsPerSecond !== undefined && Number.isFinite(e.throughputBitsPerSecond) && e.throughputBitsPerSecond >= 0) {
          cell.throughputHistogram[binOf(THROUGHPUT_BINS, e.throughputBitsPerSecond)]!++;
          cell.throughputSum += e.throughputBitsPerSecond;
          cell.throughputCount++;
          cell.throughputMax = maxOf(cell.throughputMax, e.throughputBitsPerSecond);
        }
        if (e.rttMs !== undefined && Number.isFinite(e.rttMs) && e.rttMs >= 0) {
          cell.rttSum += e.rttMs;
          cell.rttCount++;
          cell.rttMax = maxOf(cell.rttMax, e.rttMs);
        }
        const rate = e.deliveryRateBitsPerSecond;
        if (rate !== undefined && Number.isFinite(rate) && rate >= 0) {
          cell.deliveryRateSum += rate;
          cell.deliveryRateCount++;
          cell.deliveryRateMax = maxOf(cell.deliveryRateMax, rate);
        }
        if (e.retransmits !== undefined && Number.isFinite(e.retransmits) && e.retransmits > 0)
          cell.retransmits += Math.round(e.retransmits);
        break;
      }
    }
  }

  /**
   * Adds the rows a previous run stored for buckets still open at `nowMs`, so the first
   * write after a restart continues their totals instead of replacing them. Call before the
   * first add(). Returns the rows taken.
   */
  seed(rows: readonly FireflyRow[], nowMs: number): number {
    const from = Math.floor((nowMs - this.graceMs - this.lateMs) / this.widthMs);
    let taken = 0;
    for (const r of rows) {
      const index = Math.floor(r.bucketStartMs / this.widthMs);
      if (index < from || index < this.acceptFrom) continue;
      addSums(this.cellFor(index, r.community, r.activity, r.ipVersion, r.srcSite, r.dstSite), r);
      taken++;
    }
    return taken;
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
    });
  }

  /** Writes every bucket with unwritten data (shutdown). Rejects on failure. */
  flush(): Promise<void> {
    return this.serial(async () => {
      await this.write(() => true, true);
      this.evict();
    });
  }

  stats(): FireflyAggregatorStats {
    let openBuckets = 0;
    let dirtyBuckets = 0;
    let pendingRows = 0;
    for (const b of this.buckets.values()) {
      if (b.closed) pendingRows += b.cells.size;
      else openBuckets++;
      if (b.dirty) dirtyBuckets++;
    }
    return {
      ...this.c,
      openBuckets,
      dirtyBuckets,
      liveKeys: this.liveKeys,
      pendingRows,
      consecutiveWriteFailures: this.consecutiveFailures,
      lastWriteError: this.lastWriteError,
    };
  }

  private cellFor(index: number, community: number, activity: number, ipVersion: 4 | 6, srcSite: string, dstSite: string): Cell {
    let bucket = this.buckets.get(index);
    if (bucket === undefined) this.buckets.set(index, (bucket = new FireflyBucket(index)));
    let id = `${community}|${activity}|${ipVersion}|${srcSite}|${dstSite}`;
    let cell = bucket.cells.get(id);
    if (cell === undefined && this.liveKeys >= this.config.maxLiveKeys) {
      // Past the cap: the overflow key of this id pair (created past the cap too, so a
      // flood of site pairs costs at most one key per id pair and IP version).
      id = `${community}|${activity}|${ipVersion}|${OVERFLOW_SITE}|${OVERFLOW_SITE}`;
      srcSite = dstSite = OVERFLOW_SITE;
      cell = bucket.cells.get(id);
      this.c.foldedByCardinality++;
    }
    if (cell === undefined) {
      bucket.cells.set(id, (cell = { key: { community, activity, ipVersion, srcSite, dstSite }, sums: emptySums() }));
      this.liveKeys++;
    }
    if (bucket.writtenVersion >= 0) this.c.lateUpdates++;
    bucket.version++;
    return cell.sums;
  }

  private serial(fn: () => Promise<void>): Promise<void> {
    const run = this.chain.then(fn);
    this.chain = run.catch(() => undefined);
    return run;
  }

  private close(index: number): void {
    for (const b of this.buckets.values()) {
      if (b.index < index && !b.closed) {
        b.closed = true;
        this.liveKeys -= b.cells.size;
      }
    }
    this.acceptFrom = index;
  }

  private evict(): void {
    for (const [index, b] of this.buckets) if (b.closed && !b.dirty) this.buckets.delete(index);
  }

  private async write(due: (b: FireflyBucket) => boolean, rethrow: boolean): Promise<void> {
    const batch: { bucket: FireflyBucket; version: number }[] = [];
    const rows: FireflyRow[] = [];
    for (const b of [...this.buckets.values()].sort((x, y) => x.index - y.index)) {
      if (!b.dirty || !due(b)) continue;
      batch.push({ bucket: b, version: b.version });
      const bucketStartMs = b.index * this.widthMs;
      // Copies: a write in flight must not see events added meanwhile (they go in the next one).
      for (const { key, sums } of b.cells.values()) {
        rows.push({
          bucketStartMs,
          bucketSeconds: this.config.bucketSeconds,
          ...key,
          ...sums,
          durationHistogram: [...sums.durationHistogram],
          throughputHistogram: [...sums.throughputHistogram],
        });
      }
    }
    if (batch.length === 0) return;
    const started = performance.now();
    try {
      try {
        await this.deps.store.writeFireflyRows(rows);
      } finally {
        this.deps.onWriteTimed?.((performance.now() - started) / 1000);
      }
    } catch (err) {
      this.c.writeFailures++;
      this.consecutiveFailures++;
      this.lastWriteError = err instanceof Error ? err.message : String(err);
      const now = this.deps.now();
      if (now - this.lastFailureLogMs >= FAILURE_LOG_INTERVAL_MS) {
        this.lastFailureLogMs = now;
        this.deps.log?.error('firefly store write failed; buckets kept for retry', {
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
      this.deps.log?.warn('firefly store writes recovered', { store: this.deps.store.kind, failures: this.consecutiveFailures });
      this.consecutiveFailures = 0;
      this.lastFailureLogMs = -Infinity;
    }
    for (const { bucket, version } of batch) bucket.writtenVersion = version;
    this.c.bucketsWritten += batch.length;
    this.c.rowsWritten += rows.length;
  }

  /** Store down for long: drop the oldest closed, unwritten buckets beyond the cap, loudly. */
  private capPending(): void {
    let pending = 0;
    const closed = [...this.buckets.values()].filter((b) => b.closed).sort((x, y) => y.index - x.index);
    for (const b of closed) {
      pending += b.cells.size;
      if (pending <= this.config.maxPendingRows) continue;
      this.buckets.delete(b.index);
      this.c.droppedBuckets++;
      this.c.droppedRows += b.cells.size;
      this.deps.log?.error('store unavailable for too long: dropped an unwritten firefly bucket', {
        bucketStartMs: b.index * this.widthMs,
        rows: b.cells.size,
        maxPendingRows: this.config.maxPendingRows,
      });
    }
  }
}
