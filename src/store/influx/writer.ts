import { type Logger, silentLogger } from '../../log.js';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
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

/**
 * What a failed write means (docs: README "InfluxDB faults"):
 * - `retry`: 5xx, timeouts, connection errors, anything unknown: the batch waits in the spool;
 * - `auth`: 401 / 403, a configuration error: retried (an operator may fix the grant), health says why;
 * - `missing-database`: 404 "database not found": re-provision (createDatabase on), then retry;
 * - `dead`: 400 / 413 / 422, a batch InfluxDB will never take (bad point, field type
 *   conflict, too large): moved to a dead-letter file so it never blocks later batches.
 */
export type WriteErrorKind = 'retry' | 'auth' | 'missing-database' | 'dead';

export interface ClassifiedWriteError {
  kind: WriteErrorKind;
  /** A short label for scitags_store_last_error_info{class}: http_5xx, timeout, connection, http_404, http_400, ... */
  errorClass: string;
  status: number | undefined;
  message: string;
}

const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPIPE',
  'ETIMEDOUT',
]);
const NEVER_ACCEPTED = new Set([400, 413, 422]);

export function classifyWriteError(err: unknown): ClassifiedWriteError {
  const message = err instanceof Error ? err.message : String(err);
  const res = (err as { res?: { statusCode?: unknown } } | null)?.res;
  const status = typeof res?.statusCode === 'number' ? res.statusCode : undefined;
  if (status !== undefined) {
    if (status === 404 && /database not found/i.test(message)) return { kind: 'missing-database', errorClass: 'http_404', status, message };
    if (status === 401 || status === 403) return { kind: 'auth', errorClass: `http_${status}`, status, message };
    if (NEVER_ACCEPTED.has(status)) return { kind: 'dead', errorClass: `http_${status}`, status, message };
    return { kind: 'retry', errorClass: status >= 500 ? 'http_5xx' : `http_${status}`, status, message };
  }
  // node-influx: ServiceNotAvailableError for 5xx (its message is the status text) and timeouts.
  if (/timed out/i.test(message)) return { kind: 'retry', errorClass: 'timeout', status, message };
  if ((err as Error | null)?.constructor?.name === 'ServiceNotAvailableError')
    return { kind: 'retry', errorClass: 'http_5xx', status, message };
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && CONNECTION_CODES.has(code)) return { kind: 'retry', errorClass: 'connection', status, message };
  return { kind: 'retry', errorClass: 'other', status, message };
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
  /** classifyWriteError's class of the last failure (http_5xx, timeout, connection, http_404, http_400, ...). */
  lastErrorClass: string | undefined;
  /** The HTTP status of the last failure, when there was an answer. */
  lastErrorStatus: number | undefined;
  /** Failures since the last successful write (0 while writes succeed). */
  consecutiveFailures: number;
  /** When a write last succeeded (ms since the epoch). */
  lastOkMs: number | undefined;
  /** Batches InfluxDB refused for good (400 / 413 / 422), moved to the dead-letter directory. */
  deadLetterBatches: number;
  deadLetterPoints: number;
  /** Re-provisioning attempts after a 404 "database not found", and how many failed. */
  reprovisions: number;
  reprovisionFailures: number;
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
    lastErrorClass: undefined as string | undefined,
    lastErrorStatus: undefined as number | undefined,
    consecutiveFailures: 0,
    lastOkMs: undefined as number | undefined,
    deadLetterBatches: 0,
    deadLetterPoints: 0,
    reprovisions: 0,
    reprovisionFailures: 0,
  };
  /** Set by a 404 "database not found": the next drain provisions before it writes. */
  private provisionDue = false;
  private deadLetterSeq = 0;

  constructor(
    private readonly influx: InfluxDB,
    private readonly config: InfluxWriterConfig,
    private readonly log: Logger = silentLogger(),
    private readonly now: () => number = Date.now,
    /** Creates the database (and retention policies) again; undefined when createDatabase is off. */
    private readonly reprovision?: () => Promise<void>,
    /** [0, 1): the jitter of the retry delays (tests pin it). */
    private readonly random: () => number = Math.random,
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
          const failure = this.noteFailure(err);
          if (failure.kind === 'dead') {
            this.deadLetter(batch.map(toSpooled), failure);
            continue;
          }
        }
      }
      if (!this.spool.push(batch.map(toSpooled))) {
        throw new Error(`InfluxDB spool is full (${this.config.spoolMaxBytes} bytes): ${batch.length} points refused`);
      }
      if (!this.retryTimer) this.scheduleDrain(this.nextDelay());
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
    this.s.consecutiveFailures = 0;
    this.s.lastOkMs = this.now();
    // Per HTTP write (a bucket can take several): trace, below the aggregator's debug line per batch.
    this.log.trace('InfluxDB points written', { points: batch.length, ms: Math.round((performance.now() - started) * 10) / 10 });
  }

  /** Counts a failed write (every failed HTTP write, first attempts and retries alike). */
  private noteFailure(err: unknown): ClassifiedWriteError {
    const failure = classifyWriteError(err);
    this.s.writeFailures++;
    this.s.consecutiveFailures++;
    this.s.lastError = failure.message;
    this.s.lastErrorMs = this.now();
    this.s.lastErrorClass = failure.errorClass;
    this.s.lastErrorStatus = failure.status;
    if (failure.kind === 'missing-database' && this.reprovision) this.provisionDue = true;
    return failure;
  }

  /**
   * Moves a batch InfluxDB will never accept to `<spoolDir>/dead-letter/`, one JSON file with
   * the status, the error text and the points, so an operator can see (and replay) it.
   */
  private deadLetter(points: SpooledPoint[], failure: ClassifiedWriteError): void {
    const dir = join(this.config.spoolDir, 'dead-letter');
    const at = this.now();
    const name = `${new Date(at).toISOString().replace(/[:.]/g, '-')}-${process.pid}-${this.deadLetterSeq++}.json`;
    try {
      mkdirSync(dir, { recursive: true });
      const tmp = join(dir, `${name}.tmp`);
      writeFileSync(
        tmp,
        JSON.stringify({ deadLetteredAt: new Date(at).toISOString(), status: failure.status, error: failure.message, points }),
      );
      renameSync(tmp, join(dir, name));
    } catch (err) {
      this.log.error('could not write the dead-letter file; the refused batch is dropped', { dir, err });
    }
    this.s.deadLetterBatches++;
    this.s.deadLetterPoints += points.length;
    this.log.error(`InfluxDB refused a batch for good (${failure.errorClass}): moved to the dead-letter directory`, {
      status: failure.status,
      error: failure.message,
      points: points.length,
      file: join(dir, name),
    });
  }

  /** The next retry delay: exponential, with jitter (half fixed, half random) so restarts do not stampede. */
  private nextDelay(): number {
    const base = this.retryDelayMs;
    this.retryDelayMs = Math.min(this.retryDelayMs * 2, this.config.retryMaxMs);
    return Math.round(base / 2 + (base / 2) * this.random());
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
      if (this.provisionDue && this.reprovision) {
        this.s.reprovisions++;
        try {
          await this.reprovision();
          this.provisionDue = false;
          this.log.warn(`InfluxDB database ${this.config.database} was missing: provisioned it again`, { database: this.config.database });
        } catch (err) {
          this.s.reprovisionFailures++;
          this.noteFailure(err);
          const retryMs = this.nextDelay();
          this.log.limited('reprovision-failed', 'warn', `InfluxDB re-provisioning failed; retrying in ${retryMs} ms`, { err, retryMs });
          this.scheduleDrain(retryMs);
          return;
        }
      }
      const batch = this.spool.peek()!;
      try {
        await this.send(batch.map(fromSpooled));
      } catch (err) {
        const failure = this.noteFailure(err);
        if (failure.kind === 'dead') {
          this.deadLetter(batch, failure);
          this.spool.shift();
          continue;
        }
        const retryMs = this.nextDelay();
        // Rate-limited: while InfluxDB is down this repeats at every retry.
        this.log.limited(
          'write-failed',
          failure.kind === 'auth' ? 'error' : 'warn',
          `InfluxDB write failed (${failure.errorClass}: ${failure.message}); ${this.spool.length} batches spooled, retrying in ${retryMs} ms`,
          {
            spooledBatches: this.spool.length,
            retryMs,
            status: failure.status,
          },
        );
        this.scheduleDrain(retryMs);
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
