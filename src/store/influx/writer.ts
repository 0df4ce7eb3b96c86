import { type Logger, silentLogger } from '../../log.js';
import { FieldType, InfluxDB, type IPoint } from 'influx';
import { DiskSpool } from './spool.js';

/**
 * Batched, retried writes to InfluxDB 1.x with a disk spool for outages.
 *
 * Order is the invariant: batches reach InfluxDB in the order they were accepted, because
 * a bucket re-written after late data must win over its earlier total. So while anything
 * is spooled, new batches are spooled behind it, and one drain loop writes the spool
 * oldest first with exponential backoff.
 */
export interface InfluxWriterConfig {
  database: string;
  /** Retention policy to write into ('' = the database default). */
  retentionPolicy: string;
  /** Points per HTTP write request (InfluxDB recommends 5,000-10,000). */
  batchSize: number;
  spoolDir: string;
  spoolMaxBytes: number;
  retryInitialMs: number;
  retryMaxMs: number;
}

export interface InfluxWriterStats {
  pointsWritten: number;
  batchesWritten: number;
  writeFailures: number;
  spooledBatches: number;
  spoolBytes: number;
  spoolRejectedBatches: number;
  /** Points waiting in the spool. */
  spoolRows: number;
  /** When the oldest spooled batch was spooled (ms since the epoch); undefined when empty. */
  spoolOldestMs: number | undefined;
  lastError: string | undefined;
  /** When the last write failed (ms since the epoch); undefined when none has. */
  lastErrorMs: number | undefined;
}

/** A point as stored in the spool: the timestamp as epoch ms (JSON has no Date). */
interface SpooledPoint {
  measurement: string;
  tags: Record<string, string>;
  fields: Record<string, number>;
  timeMs: number;
}

export const INTEGER_FIELDS = { bytes: FieldType.INTEGER, packets: FieldType.INTEGER, records: FieldType.INTEGER };

function toSpooled(p: IPoint): SpooledPoint {
  return {
    measurement: p.measurement!,
    tags: (p.tags ?? {}) as Record<string, string>,
    fields: (p.fields ?? {}) as Record<string, number>,
    timeMs: (p.timestamp as Date).getTime(),
  };
}

function fromSpooled(p: SpooledPoint): IPoint {
  return { measurement: p.measurement, tags: p.tags, fields: p.fields, timestamp: new Date(p.timeMs) };
}

export class InfluxWriter {
  private readonly spool: DiskSpool<SpooledPoint[]>;
  private chain: Promise<void> = Promise.resolve();
  private retryTimer: NodeJS.Timeout | undefined;
  private retryDelayMs: number;
  private closed = false;
  private readonly s = {
    pointsWritten: 0,
    batchesWritten: 0,
    writeFailures: 0,
    lastError: undefined as string | undefined,
    lastErrorMs: undefined as number | undefined,
  };

  constructor(
    private readonly influx: InfluxDB,
    private readonly config: InfluxWriterConfig,
    private readonly log: Logger = silentLogger(),
    private readonly now: () => number = Date.now,
  ) {
    this.spool = new DiskSpool(config.spoolDir, config.spoolMaxBytes, now);
    this.retryDelayMs = config.retryInitialMs;
    // Batches spooled by an earlier run go out first.
    if (this.spool.length > 0) this.scheduleDrain(0);
  }

  stats(): InfluxWriterStats {
    const sp = this.spool.stats();
    return {
      ...this.s,
      spooledBatches: sp.batches,
      spoolBytes: sp.bytes,
      spoolRejectedBatches: sp.rejectedBatches,
      spoolRows: sp.rows,
      spoolOldestMs: sp.oldestMs,
    };
  }

  /** Resolves when every point is in InfluxDB or durably spooled; rejects only if the spool is full. */
  write(points: IPoint[]): Promise<void> {
    const run = this.chain.then(() => this.writeNow(points));
    this.chain = run.catch(() => {});
    return run;
  }

  private async writeNow(points: IPoint[]): Promise<void> {
    for (let i = 0; i < points.length; i += this.config.batchSize) {
      const batch = points.slice(i, i + this.config.batchSize);
      if (this.spool.length === 0) {
        try {
          await this.send(batch);
          continue;
        } catch (err) {
          this.noteFailure(err);
        }
      }
      if (!this.spool.push(batch.map(toSpooled))) {
        throw new Error(`InfluxDB spool is full (${this.config.spoolMaxBytes} bytes): ${batch.length} points refused`);
      }
      this.scheduleDrain(this.retryDelayMs);
    }
  }

  private async send(batch: IPoint[]): Promise<void> {
    const started = performance.now();
    await this.influx.writePoints(batch, {
      database: this.config.database,
      precision: 's',
      ...(this.config.retentionPolicy ? { retentionPolicy: this.config.retentionPolicy } : {}),
    });
    this.s.pointsWritten += batch.length;
    this.s.batchesWritten++;
    // Per HTTP write (a bucket can take several): trace, below the aggregator's debug line per batch.
    this.log.trace('InfluxDB points written', { points: batch.length, ms: Math.round((performance.now() - started) * 10) / 10 });
  }

  private noteFailure(err: unknown): void {
    this.s.writeFailures++;
    this.s.lastError = err instanceof Error ? err.message : String(err);
    this.s.lastErrorMs = this.now();
  }

  private scheduleDrain(delayMs: number): void {
    if (this.retryTimer || this.closed) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.chain = this.chain.then(() => this.drain()).catch(() => {});
    }, delayMs);
    this.retryTimer.unref();
  }

  /** Writes spooled batches oldest first; stops at the first failure and backs off. */
  private async drain(): Promise<void> {
    while (this.spool.length > 0) {
      const batch = this.spool.peek()!;
      try {
        await this.send(batch.map(fromSpooled));
      } catch (err) {
        this.noteFailure(err);
        // Rate-limited: while InfluxDB is down this repeats at every retry.
        this.log.limited(
          'write-failed',
          'warn',
          `InfluxDB write failed (${this.s.lastError}); ${this.spool.length} batches spooled, retrying in ${this.retryDelayMs} ms`,
          {
            spooledBatches: this.spool.length,
            retryMs: this.retryDelayMs,
          },
        );
        this.scheduleDrain(this.retryDelayMs);
        this.retryDelayMs = Math.min(this.retryDelayMs * 2, this.config.retryMaxMs);
        return;
      }
      this.spool.shift();
    }
    this.retryDelayMs = this.config.retryInitialMs;
  }

  /** Tries once more to drain the spool now (used at shutdown and by tests). */
  async flush(): Promise<void> {
    if (this.retryTimer) {
      clearTimeout(this.retryTimer);
      this.retryTimer = undefined;
    }
    const run = this.chain.then(() => this.drain());
    this.chain = run.catch(() => {});
    await run;
  }

  get spooled(): number {
    return this.spool.length;
  }

  async close(): Promise<void> {
    await this.flush().catch(() => {});
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
  }
}
