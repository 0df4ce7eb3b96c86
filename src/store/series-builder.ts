import type { TrafficQueryResult, TrafficSeries, TrafficTotals } from './types.js';

type Group = TrafficSeries['group'];

const zero = (): TrafficTotals => ({ bytes: 0, packets: 0, records: 0 });

function addInto(into: TrafficTotals, s: TrafficTotals): void {
  into.bytes += s.bytes;
  into.packets += s.packets;
  into.records += s.records;
}

/**
 * Sums into series the way every traffic answer is shaped (links, sites, the provisional
 * merge): one series per group, one point per step start, each with its totals. result() lists
 * the series largest bytes first, ties by group key, and their points in time order with the
 * per-second rates over `stepSeconds`.
 */
export class SeriesBuilder {
  private readonly series = new Map<string, { group: Group; totals: TrafficTotals; byTime: Map<number, TrafficTotals> }>();
  readonly totals = zero();

  constructor(private readonly stepSeconds: number) {}

  /** Adds `sums` at step start `timeMs` to the series of `group` (`key`: its identity, by default its JSON). */
  add(group: Group, timeMs: number, sums: TrafficTotals, key = JSON.stringify(group)): void {
    let s = this.series.get(key);
    if (s === undefined) this.series.set(key, (s = { group, totals: zero(), byTime: new Map() }));
    const p = s.byTime.get(timeMs);
    if (p === undefined) s.byTime.set(timeMs, { bytes: sums.bytes, packets: sums.packets, records: sums.records });
    else addInto(p, sums);
    addInto(s.totals, sums);
  }

  /** Counts `sums` in the answer's totals (each matching row once, however many series it joins). */
  count(sums: TrafficTotals): void {
    addInto(this.totals, sums);
  }

  result(): TrafficQueryResult {
    const step = this.stepSeconds;
    const series = [...this.series.entries()]
      .sort(([ka, a], [kb, b]) => b.totals.bytes - a.totals.bytes || (ka < kb ? -1 : ka > kb ? 1 : 0))
      .map(([, s]) => ({
        group: s.group,
        totals: s.totals,
        points: [...s.byTime.entries()]
          .sort(([a], [b]) => a - b)
          .map(([timeMs, p]) => ({ timeMs, ...p, bitsPerSecond: (p.bytes * 8) / step, packetsPerSecond: p.packets / step })),
      }));
    return { series, totals: this.totals };
  }
}
