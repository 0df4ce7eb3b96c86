/**
 * Fixed bins for the per-bucket distributions of ended flows' durations and throughputs
 * (issue 13: "a histogram where cheap"): a count per bin in every firefly row, so a
 * distribution over any range and group is a sum, in SQLite and InfluxDB alike. Bin i holds
 * values v with upper[i - 1] <= v < upper[i]; the last bin has no upper bound. Decades,
 * because transfers span seconds to hours and kbit/s to 100 Gbit/s.
 *
 * The names are the SQLite columns and the InfluxDB fields (docs/influx-schema.md). Never
 * change a released bin: stored counts would change meaning.
 */
export interface HistogramBin {
  name: string;
  /** Exclusive upper bound; null for the last bin. */
  upper: number | null;
}

export const DURATION_BINS: readonly HistogramBin[] = [
  { name: 'duration_under_1s', upper: 1 },
  { name: 'duration_1s_10s', upper: 10 },
  { name: 'duration_10s_1m', upper: 60 },
  { name: 'duration_1m_10m', upper: 600 },
  { name: 'duration_10m_1h', upper: 3600 },
  { name: 'duration_over_1h', upper: null },
];

export const THROUGHPUT_BINS: readonly HistogramBin[] = [
  { name: 'throughput_under_1m', upper: 1e6 },
  { name: 'throughput_1m_10m', upper: 1e7 },
  { name: 'throughput_10m_100m', upper: 1e8 },
  { name: 'throughput_100m_1g', upper: 1e9 },
  { name: 'throughput_1g_10g', upper: 1e10 },
  { name: 'throughput_over_10g', upper: null },
];

/** The bin of a value (NaN never reaches here: the aggregator skips non-finite values). */
export function binOf(bins: readonly HistogramBin[], value: number): number {
  for (let i = 0; i < bins.length - 1; i++) if (value < bins[i]!.upper!) return i;
  return bins.length - 1;
}
