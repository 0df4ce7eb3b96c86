/**
 * The IPv4 services still reached through NAT64 (issue 14): per bucket of receive time, a
 * bounded top N (Space-Saving, src/enrich/space-saving.ts) of the IPv4 addresses embedded in
 * the NAT64 side of NAT64 records, weighted by sampling-scaled bytes. Never an unbounded map:
 * N counters per bucket, and a few buckets at a time.
 *
 * `Nat64TopSketches` is what the enricher feeds (in each decode worker, and inline on the
 * main thread); workers hand theirs to the main thread with take(). `Nat64TopAggregator`
 * (main thread) merges those, writes each bucket's list to the store on the aggregator's
 * schedule (first after bucket end + graceSeconds, again on late updates within
 * lateWindowSeconds, then closed) and continues open buckets from the store after a restart.
 */
import type { FlowRecord } from '../../decoders/record.js';
import type { Logger } from '../log.js';
import type { Nat64TopRow, Nat64TopStore } from '../store/nat64-top.js';
import type { Nat64Prefixes } from './nat64.js';
import { ipv4Number, ipv4Text, SpaceSaving } from './space-saving.js';

/** Sketches kept at once by a feeding side (a worker keeps one or two between flushes). */
export const MAX_FEED_BUCKETS = 4;

/** One bucket's sketch as plain data (a worker's 'nat64Top' message). */
export interface Nat64TopPart {
  index: number;
  /** The sketch had every counter taken (see SpaceSaving.merge). */
  full: boolean;
  /** SpaceSaving.pack(). */
  entries: Float64Array;
}

/** What the enricher calls for a record it flagged NAT64. */
export interface Nat64TopSink {
  addRecord(rec: FlowRecord, receivedMs: number, prefixes: Nat64Prefixes): void;
}

/**
 * The IPv4 address of the record's NAT64 side: the destination when it lies in a NAT64
 * prefix, else the source; undefined when neither does (or no IPv6 addresses).
 */
export function nat64Ipv4(rec: FlowRecord, prefixes: Nat64Prefixes): number | undefined {
  const b = rec.addrBytes;
  if (rec.addrLen !== 16 || b === undefined) return undefined;
  const d = prefixes.match(b, rec.dstAddrAt);
  if (d >= 0) return prefixes.embeddedIpv4(b, rec.dstAddrAt, d);
  const s = prefixes.match(b, rec.srcAddrAt);
  return s >= 0 ? prefixes.embeddedIpv4(b, rec.srcAddrAt, s) : undefined;
}

/** Per-bucket sketches, at most `maxBuckets` at a time (older records are dropped and counted). */
export class Nat64TopSketches implements Nat64TopSink {
  protected readonly sketches = new Map<number, SpaceSaving>();
  protected readonly widthMs: number;
  /** Records (or merged entries) dropped because their bucket was older than every kept one. */
  dropped = 0;
  /** Sketches given up to make room for a newer bucket. */
  evicted = 0;

  constructor(
    readonly capacity: number,
    bucketSeconds: number,
    private readonly maxBuckets = MAX_FEED_BUCKETS,
  ) {
    this.widthMs = bucketSeconds * 1000;
  }

  addRecord(rec: FlowRecord, receivedMs: number, prefixes: Nat64Prefixes): void {
    const ip = nat64Ipv4(rec, prefixes);
    if (ip === undefined) return;
    const index = Math.floor(receivedMs / this.widthMs);
    const sketch = this.sketchFor(index);
    if (sketch === undefined) return;
    sketch.add(ip, rec.bytes * rec.samplingRate, rec.packets * rec.samplingRate);
    this.touched(index);
  }

  /** Every sketch as plain data, and forgets them (a worker's flush). */
  take(): Nat64TopPart[] {
    const parts: Nat64TopPart[] = [];
    for (const [index, s] of this.sketches) if (s.size > 0) parts.push({ index, full: s.full, entries: s.pack() });
    this.sketches.clear();
    return parts;
  }

  protected sketchFor(index: number): SpaceSaving | undefined {
    let s = this.sketches.get(index);
    if (s !== undefined) return s;
    if (!this.accepts(index)) {
      this.dropped++;
      return undefined;
    }
    if (this.sketches.size >= this.maxBuckets) {
      let oldest = Infinity;
      for (const i of this.sketches.keys()) oldest = Math.min(oldest, i);
      if (index < oldest) {
        this.dropped++;
        return undefined;
      }
      this.sketches.delete(oldest);
      this.evicted++;
      this.forget(oldest);
    }
    this.sketches.set(index, (s = new SpaceSaving(this.capacity)));
    return s;
  }

  /** Whether a bucket may still be counted (the main side closes old ones). */
  protected accepts(_index: number): boolean {
    return true;
  }

  /** A bucket changed (the main side marks it for writing). */
  protected touched(_index: number): void {}

  /** A bucket's sketch was given up. */
  protected forget(_index: number): void {}
}

export interface Nat64TopAggregatorConfig {
  capacity: number;
  bucketSeconds: number;
  graceSeconds: number;
  lateWindowSeconds: number;
  tickSeconds: number;
}

export interface Nat64TopAggregatorDeps {
  now(): number;
  store: Pick<Nat64TopStore, 'writeNat64TopRows'>;
  log?: Logger;
}

interface BucketState {
  version: number;
  writtenVersion: number;
}

/**
 * The main thread's per-bucket top lists: fed inline by the enricher (addRecord) or with the
 * workers' partial sketches (mergeParts); written per bucket like the traffic aggregator.
 */
export class Nat64TopAggregator extends Nat64TopSketches {
  private readonly state = new Map<number, BucketState>();
  private acceptFrom = -Infinity;
  private readonly graceMs: number;
  private readonly lateMs: number;
  private chain: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  readonly stats = { tooLate: 0, bucketsWritten: 0, rowsWritten: 0, writeFailures: 0 };

  constructor(
    private readonly config: Nat64TopAggregatorConfig,
    private readonly deps: Nat64TopAggregatorDeps,
  ) {
    // Every bucket between the oldest still accepting late data and the current one, and a spare.
    super(config.capacity, config.bucketSeconds, Math.ceil((config.graceSeconds + config.lateWindowSeconds) / config.bucketSeconds) + 3);
    this.graceMs = config.graceSeconds * 1000;
    this.lateMs = config.lateWindowSeconds * 1000;
  }

  /** A worker's partial sketches. */
  mergeParts(parts: readonly Nat64TopPart[]): void {
    for (const p of parts) {
      const s = this.sketchFor(p.index);
      if (s === undefined) continue;
      s.merge(p.entries, p.full);
      this.touched(p.index);
    }
  }

  /** Continues the buckets a previous run stored and that are still open at `nowMs`. Returns the rows taken. */
  seed(rows: readonly Nat64TopRow[], nowMs: number): number {
    const from = Math.floor((nowMs - this.graceMs - this.lateMs) / this.widthMs);
    let taken = 0;
    for (const r of rows) {
      const index = Math.floor(r.bucketStartMs / this.widthMs);
      const ip = ipv4Number(r.address);
      if (index < from || ip === undefined) continue;
      const s = this.sketchFor(index);
      if (s === undefined) continue;
      s.add(ip, r.bytes, r.packets, r.errorBytes);
      // Already in the store as it is: written again only once something is added.
      this.state.set(index, { version: 0, writtenVersion: 0 });
      taken++;
    }
    return taken;
  }

  start(): void {
    if (this.timer !== undefined) return;
    const tick = (): void => {
      this.tick(this.deps.now()).catch((err: unknown) =>
        this.deps.log?.limited('nat64-top-tick', 'error', 'NAT64 top-list tick failed', { err }),
      );
    };
    this.timer = setInterval(tick, this.config.tickSeconds * 1000);
    this.timer.unref();
  }

  /** Writes every bucket with unwritten data (shutdown). Rejects on failure. */
  async stop(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    await this.serial(() => this.write(() => true, true));
  }

  /** Writes the buckets due at `nowMs`, closes (and forgets) those past the late window. */
  tick(nowMs: number): Promise<void> {
    return this.serial(async () => {
      const dueBefore = Math.floor((nowMs - this.graceMs) / this.widthMs);
      await this.write((index) => index < dueBefore, false);
      const closeBefore = Math.floor((nowMs - this.graceMs - this.lateMs) / this.widthMs);
      if (closeBefore > this.acceptFrom) this.acceptFrom = closeBefore;
      for (const index of [...this.sketches.keys()]) {
        const st = this.state.get(index);
        // Kept while its last write failed: retried next tick.
        if (index < this.acceptFrom && (st === undefined || st.version === st.writtenVersion)) {
          this.sketches.delete(index);
          this.state.delete(index);
        }
      }
    });
  }

  /** The rows of one bucket, rank 1 first (exported for tests). */
  rowsOf(index: number): Nat64TopRow[] {
    const s = this.sketches.get(index);
    if (s === undefined) return [];
    return s.entries().map((e, i) => ({
      bucketStartMs: index * this.widthMs,
      bucketSeconds: this.config.bucketSeconds,
      rank: i + 1,
      address: ipv4Text(e.key),
      // Whole numbers: the stores keep integers.
      bytes: Math.round(e.bytes),
      packets: Math.round(e.packets),
      errorBytes: Math.round(e.errorBytes),
    }));
  }

  protected override accepts(index: number): boolean {
    if (index >= this.acceptFrom) return true;
    this.stats.tooLate++;
    return false;
  }

  protected override touched(index: number): void {
    const st = this.state.get(index);
    if (st === undefined) this.state.set(index, { version: 1, writtenVersion: 0 });
    else st.version++;
  }

  protected override forget(index: number): void {
    this.state.delete(index);
  }

  private serial(fn: () => Promise<void>): Promise<void> {
    const run = this.chain.then(fn);
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async write(due: (index: number) => boolean, rethrow: boolean): Promise<void> {
    const batch: { index: number; version: number }[] = [];
    const rows: Nat64TopRow[] = [];
    for (const index of [...this.sketches.keys()].sort((a, b) => a - b)) {
      const st = this.state.get(index);
      if (st === undefined || st.version === st.writtenVersion || !due(index)) continue;
      batch.push({ index, version: st.version });
      rows.push(...this.rowsOf(index));
    }
    if (batch.length === 0) return;
    try {
      await this.deps.store.writeNat64TopRows(rows);
    } catch (err) {
      this.stats.writeFailures++;
      this.deps.log?.limited('nat64-top-write', 'error', 'writing NAT64 top lists failed; buckets kept for retry', {
        err,
        buckets: batch.length,
      });
      if (rethrow) throw err;
      return;
    }
    for (const { index, version } of batch) {
      const st = this.state.get(index);
      if (st !== undefined) st.writtenVersion = version;
    }
    this.stats.bucketsWritten += batch.length;
    this.stats.rowsWritten += rows.length;
  }
}
