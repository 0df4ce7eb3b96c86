import { closeSync, fsyncSync, openSync, readdirSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { ensureDir } from '../../ensure-dir.js';

/**
 * A bounded, ordered on-disk queue of write batches for when InfluxDB is unreachable.
 * One file per batch, named by a zero-padded sequence number, written to a temp name,
 * fsynced and renamed before the write is acknowledged, so a crash while InfluxDB is down
 * loses nothing that was accepted and never leaves a torn batch. Replay is in order: while
 * the spool is non-empty every new batch goes behind it, so a later re-write of a bucket
 * always lands after the earlier one and InfluxDB keeps the right total.
 */
export interface SpoolStats {
  batches: number;
  bytes: number;
  /** Points (array items) in the spooled batches. */
  rows: number;
  /** When the oldest spooled batch was written (ms since the epoch); undefined when empty. */
  oldestMs: number | undefined;
  /** Batches refused because the spool was full (counted; the only way data is lost). */
  rejectedBatches: number;
}

const SUFFIX = '.batch.json';
/**
 * Batch files are named `<seq>.r<rows>.batch.json`: the row count in the name lets a restart
 * report the spool's depth in rows without reading every batch back. Files of older versions
 * (`<seq>.batch.json`) are read once at start to count them.
 */
const ROWS_IN_NAME = /\.r(\d+)\.batch\.json$/;

interface SpoolFile {
  name: string;
  bytes: number;
  rows: number;
  createdMs: number;
}

function rowsOf(batch: unknown): number {
  return Array.isArray(batch) ? batch.length : 1;
}

export class DiskSpool<T> {
  private readonly files: SpoolFile[] = [];
  private nextSeq = 0;
  private sizeBytes = 0;
  private sizeRows = 0;
  rejectedBatches = 0;

  constructor(
    private readonly dir: string,
    private readonly maxBytes: number,
    /** Clock for the age of batches pushed by this run (files of earlier runs: their mtime). */
    private readonly now: () => number = Date.now,
  ) {
    ensureDir(dir);
    const names = readdirSync(dir)
      .filter((n) => n.endsWith(SUFFIX))
      .sort();
    for (const name of names) {
      const st = statSync(join(dir, name));
      const counted = ROWS_IN_NAME.exec(name)?.[1];
      const rows = counted !== undefined ? Number(counted) : rowsOf(JSON.parse(readFileSync(join(dir, name), 'utf8')));
      this.files.push({ name, bytes: st.size, rows, createdMs: st.mtimeMs });
      this.sizeBytes += st.size;
      this.sizeRows += rows;
      this.nextSeq = Math.max(this.nextSeq, Number.parseInt(name, 10) + 1);
    }
  }

  get length(): number {
    return this.files.length;
  }

  stats(): SpoolStats {
    return {
      batches: this.files.length,
      bytes: this.sizeBytes,
      rows: this.sizeRows,
      oldestMs: this.files[0]?.createdMs,
      rejectedBatches: this.rejectedBatches,
    };
  }

  /** Stores a batch durably; returns false (and counts it) when the spool is full. */
  push(batch: T): boolean {
    const text = JSON.stringify(batch);
    const bytes = Buffer.byteLength(text);
    if (this.sizeBytes + bytes > this.maxBytes) {
      this.rejectedBatches++;
      return false;
    }
    const rows = rowsOf(batch);
    const name = `${String(this.nextSeq++).padStart(12, '0')}.r${rows}${SUFFIX}`;
    const tmp = join(this.dir, `${name}.tmp`);
    const fd = openSync(tmp, 'w');
    try {
      writeSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, join(this.dir, name));
    this.files.push({ name, bytes, rows, createdMs: this.now() });
    this.sizeBytes += bytes;
    this.sizeRows += rows;
    return true;
  }

  /** The oldest batch, read from disk (the spool holds only file names in memory). */
  peek(): T | undefined {
    const first = this.files[0];
    return first ? (JSON.parse(readFileSync(join(this.dir, first.name), 'utf8')) as T) : undefined;
  }

  /** Removes the oldest batch once it has been written. */
  shift(): void {
    const first = this.files.shift();
    if (!first) return;
    unlinkSync(join(this.dir, first.name));
    this.sizeBytes -= first.bytes;
    this.sizeRows -= first.rows;
  }
}
