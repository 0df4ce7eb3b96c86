/** Totals of one key (link, series) in one bucket. Mutated in place on the hot path. */
export class Cell {
  bytes = 0;
  packets = 0;
  records = 0;
  /** The part of bytes / packets already handed to the traffic counters (Aggregator.countTraffic). */
  countedBytes = 0;
  countedPackets = 0;
}

/**
 * One time bucket's cells, keyed by link id * SERIES_SPACE + series code.
 *
 * `version` counts updates and `writtenVersion` is the version the store last confirmed, so
 * records that arrive while a write is in flight leave the bucket dirty and it is written
 * again, whole, on the next tick.
 */
export class Bucket {
  cells = new Map<number, Cell>();
  version = 0;
  /** -1: never written. */
  writtenVersion = -1;
  /** Past the late window: no longer accepts records; kept only until written. */
  closed = false;
  /** The version whose sums the traffic counters have (countTraffic skips unchanged buckets). */
  countedVersion = 0;

  constructor(readonly index: number) {}

  get dirty(): boolean {
    return this.version !== this.writtenVersion;
  }

  get everWritten(): boolean {
    return this.writtenVersion >= 0;
  }
}
