import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';

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
  /** Batches refused because the spool was full (counted; the only way data is lost). */
  rejectedBatches: number;
}

const SUFFIX = '.batch.json';

export class DiskSpool<T> {
  private readonly files: { name: string; bytes: number }[] = [];
  private nextSeq = 0;
  private sizeBytes = 0;
  rejectedBatches = 0;

  constructor(
    private readonly dir: string,
    private readonly maxBytes: number,
  ) {
    mkdirSync(dir, { recursive: true });
    const names = readdirSync(dir)
      .filter((n) => n.endsWith(SUFFIX))
      .sort();
    for (const name of names) {
      const bytes = statSync(join(dir, name)).size;
      this.files.push({ name, bytes });
      this.sizeBytes += bytes;
      this.nextSeq = Math.max(this.nextSeq, Number.parseInt(name, 10) + 1);
    }
  }

  get length(): number {
    return this.files.length;
  }

  stats(): SpoolStats {
    return { batches: this.files.length, bytes: this.sizeBytes, rejectedBatches: this.rejectedBatches };
  }

  /** Stores a batch durably; returns false (and counts it) when the spool is full. */
  push(batch: T): boolean {
    const text = JSON.stringify(batch);
    const bytes = Buffer.byteLength(text);
    if (this.sizeBytes + bytes > this.maxBytes) {
      this.rejectedBatches++;
      return false;
    }
    const name = `${String(this.nextSeq++).padStart(12, '0')}${SUFFIX}`;
    const tmp = join(this.dir, `${name}.tmp`);
    const fd = openSync(tmp, 'w');
    try {
      writeSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, join(this.dir, name));
    this.files.push({ name, bytes });
    this.sizeBytes += bytes;
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
  }
}
