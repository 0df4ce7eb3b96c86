/**
 * Drops over a sliding window (the last minute by default), for /health: cumulative counters
 * (datagrams the collector received, datagrams the kernel dropped on its sockets, datagrams
 * the decode queue dropped) are sampled on a timer; the fractions compare the newest sample
 * with the oldest one still inside the window. Offered = received + kernel drops (a datagram
 * the kernel dropped never reached the collector); queue drops are part of the received ones.
 */
export interface DropSample {
  received: number;
  kernelDrops: number;
  queueDrops: number;
}

export interface DropFractions {
  /** Datagrams offered in the window (received + kernel drops). */
  offered: number;
  kernelDrops: number;
  queueDrops: number;
  /** kernelDrops / offered (0 when nothing was offered). */
  kernel: number;
  /** queueDrops / offered. */
  queue: number;
  /** Milliseconds the window covers (shorter just after start). */
  spanMs: number;
}

export class DropWindow {
  private readonly samples: (DropSample & { atMs: number })[] = [];

  constructor(private readonly windowMs: number = 60_000) {}

  add(atMs: number, s: DropSample): void {
    this.samples.push({ atMs, ...s });
    // Keep the newest sample at or before the window's start, so the window is always covered.
    while (this.samples.length > 2 && this.samples[1]!.atMs <= atMs - this.windowMs) this.samples.shift();
  }

  fractions(): DropFractions {
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    if (!first || !last || first === last) return { offered: 0, kernelDrops: 0, queueDrops: 0, kernel: 0, queue: 0, spanMs: 0 };
    // A counter that went down (a socket re-opened) restarts from zero.
    const diff = (a: number, b: number): number => (b >= a ? b - a : b);
    const kernelDrops = diff(first.kernelDrops, last.kernelDrops);
    const queueDrops = diff(first.queueDrops, last.queueDrops);
    const offered = diff(first.received, last.received) + kernelDrops;
    return {
      offered,
      kernelDrops,
      queueDrops,
      kernel: offered > 0 ? kernelDrops / offered : 0,
      queue: offered > 0 ? queueDrops / offered : 0,
      spanMs: last.atMs - first.atMs,
    };
  }
}
