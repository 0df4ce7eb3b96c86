import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/**
 * The run marker: a small file in dataDir that exists while the collector runs and is removed
 * by a clean stop. Found at start, it says the previous run died uncleanly (kill -9, OOM,
 * power loss), and what it last wrote tells how much was lost: the buckets between the last
 * bucket written to the store and the open-bucket horizon at its last heartbeat.
 */
export const RUN_MARKER_FILE = 'collector.running';

export interface RunMarkerState {
  pid: number;
  startedMs: number;
  /** The last heartbeat (about once a second while running). */
  aliveMs: number;
  /** Start of the newest bucket written to the store; undefined before the first write. */
  lastBucketMs: number | undefined;
  bucketSeconds: number;
  /** At the last heartbeat: whether records were waiting in buckets not written yet. */
  pending: boolean;
}

export interface UncleanShutdown {
  previous: RunMarkerState;
  /** Buckets whose records were in memory only, estimated from the marker. */
  bucketsLost: number;
  /** The span they cover: from the end of the last written bucket to the last heartbeat. */
  fromMs: number;
  toMs: number;
}

/** What the marker left by a run that did not stop cleanly says was lost (0 buckets when nothing was waiting). */
export function estimateLoss(previous: RunMarkerState): UncleanShutdown {
  const widthMs = previous.bucketSeconds * 1000;
  const fromMs = previous.lastBucketMs !== undefined ? previous.lastBucketMs + widthMs : Math.floor(previous.startedMs / widthMs) * widthMs;
  const toMs = Math.max(fromMs, previous.aliveMs);
  const bucketsLost = previous.pending ? Math.max(1, Math.floor(toMs / widthMs) - Math.floor(fromMs / widthMs) + 1) : 0;
  return { previous, bucketsLost, fromMs, toMs };
}

export class RunMarker {
  private state: RunMarkerState;
  private failed = false;

  /** Reads what a previous run left (undefined after a clean stop), then marks this run as running. */
  static open(path: string, nowMs: number, bucketSeconds: number): { marker: RunMarker; unclean: UncleanShutdown | undefined } {
    let unclean: UncleanShutdown | undefined;
    try {
      const previous = JSON.parse(readFileSync(path, 'utf8')) as RunMarkerState;
      unclean = estimateLoss(previous);
    } catch (err) {
      // Missing: the previous run stopped cleanly (or this is the first). Unreadable: it died while writing it.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        unclean = estimateLoss({ pid: 0, startedMs: nowMs, aliveMs: nowMs, lastBucketMs: undefined, bucketSeconds, pending: false });
      }
    }
    const marker = new RunMarker(path, {
      pid: process.pid,
      startedMs: nowMs,
      aliveMs: nowMs,
      lastBucketMs: undefined,
      bucketSeconds,
      pending: false,
    });
    marker.write();
    return { marker, unclean };
  }

  private constructor(
    readonly path: string,
    state: RunMarkerState,
  ) {
    this.state = state;
  }

  heartbeat(nowMs: number, pending: boolean): void {
    this.state = { ...this.state, aliveMs: nowMs, pending };
    this.write();
  }

  /** After a bucket reached the store. */
  bucketWritten(bucketStartMs: number): void {
    if (this.state.lastBucketMs === undefined || bucketStartMs > this.state.lastBucketMs)
      this.state = { ...this.state, lastBucketMs: bucketStartMs };
  }

  /** A clean stop: every open bucket is written. */
  remove(): void {
    rmSync(this.path, { force: true });
  }

  private write(): void {
    try {
      mkdirSync(dirname(this.path), { recursive: true });
      const tmp = `${this.path}.tmp`;
      writeFileSync(tmp, JSON.stringify(this.state));
      renameSync(tmp, this.path);
      this.failed = false;
    } catch (err) {
      // A read-only data directory must not stop the collector; the store path reports it anyway.
      if (!this.failed) process.emitWarning(`could not write the run marker ${this.path}: ${(err as Error).message}`);
      this.failed = true;
    }
  }
}
