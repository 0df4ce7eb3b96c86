/**
 * Not a small integer: a field whose first value it is gets V8's double representation
 * (and keeps it when integers are stored later).
 */
export const AS_DOUBLE = 0.5;

/**
 * Totals of one key (link, series) in one bucket. Mutated in place on the hot path.
 *
 * The byte and packet sums are born doubles (AS_DOUBLE, then 0). A field that starts as a
 * small integer changes representation the first time its sum passes 2^31 (a busy link
 * within one bucket, seconds at 100k datagrams/s); that retires the class's hidden class and
 * deoptimised the record path in the middle of every side-by-side run (--trace-deopt:
 * "wrong map" at `cell.bytes += bytes`), after which it ran unoptimised until TurboFan
 * compiled it again. `records` grows by one per record and stays a small integer.
 */
export class Cell {
  bytes = AS_DOUBLE;
  packets = AS_DOUBLE;
  records = 0;
  /** The part of bytes / packets already handed to the traffic counters (Aggregator.countTraffic). */
  countedBytes = AS_DOUBLE;
  countedPackets = AS_DOUBLE;

  constructor() {
    this.bytes = 0;
    this.packets = 0;
    this.countedBytes = 0;
    this.countedPackets = 0;
  }
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
