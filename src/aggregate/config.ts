/**
 * Aggregator settings. The collector's config schema (src/config/schema.ts, `aggregation`)
 * validates what operators write; this type is what the aggregator needs, with defaults so
 * tests and `ingest` can pass only what they care about. It accepts the schema's output as is.
 */

/** An unregistered pair (or, with `activity` absent, every activity of a community) to keep. */
export interface PairSelector {
  community: number;
  activity?: number | undefined;
}

export interface AggregatorConfig {
  /** Bucket width. Buckets are aligned to the Unix epoch. */
  bucketSeconds: number;
  /** A bucket is first written this long after it closes (datagrams still in flight). */
  graceSeconds: number;
  /**
   * Records for a bucket up to this long after its first write update it (the whole bucket is
   * written again); later ones are dropped and counted as too late.
   */
  lateWindowSeconds: number;
  /** Cap on live keys (cells of buckets still accepting data); overflow is folded, counted. */
  maxLiveKeys: number;
  /**
   * Distinct exporter addresses tracked; datagrams from further addresses (a spoofed-source
   * flood past a missing allow-list) are counted under the exporter "other".
   */
  maxExporters: number;
  /**
   * Unregistered pairs are folded into community = activity = null by default so random
   * RFC 6437 labels cannot explode the series count. 'all' keeps every pair as numbers;
   * a list keeps the selected ones.
   */
  keepUnregistered: 'none' | 'all' | readonly PairSelector[];
  /** A flow longer than this (after the clock shift) is treated as a bad timestamp. */
  maxFlowSeconds: number;
  /**
   * A flow ending more than this after we received it (after the clock shift) is a bad
   * timestamp. Within it, the flow is slid back to end at the receive time: IPFIX export
   * times have 1 s resolution, so a small overshoot is expected.
   */
  futureToleranceSeconds: number;
  /**
   * Rows of closed buckets kept while the store keeps failing. Beyond it the oldest bucket is
   * dropped (counted, logged): memory must stay bounded through a long store outage.
   */
  maxPendingRows: number;
  /** Interval of the tick timer started by start(). */
  tickSeconds: number;
  /**
   * What a row's two "link" sides are: the record's input and output ifIndex ('link', the
   * traffic view) or its source and destination site ids from the enricher ('sites', the
   * site-pair view, src/enrich/enricher.ts). Everything else (buckets, caps, fair share,
   * writes) is the same machinery.
   */
  keyBy: 'link' | 'sites';
}

export const DEFAULT_AGGREGATOR_CONFIG: Readonly<AggregatorConfig> = Object.freeze({
  bucketSeconds: 60,
  graceSeconds: 10,
  lateWindowSeconds: 300,
  maxLiveKeys: 100_000,
  maxExporters: 10_000,
  keepUnregistered: 'none',
  maxFlowSeconds: 3600,
  futureToleranceSeconds: 5,
  maxPendingRows: 1_000_000,
  tickSeconds: 1,
  keyBy: 'link',
});

/** Fills defaults and rejects values the arithmetic below cannot work with. */
export function resolveAggregatorConfig(partial: Partial<AggregatorConfig> = {}): AggregatorConfig {
  const cfg: AggregatorConfig = { ...DEFAULT_AGGREGATOR_CONFIG };
  for (const [k, v] of Object.entries(partial)) if (v !== undefined) (cfg as unknown as Record<string, unknown>)[k] = v;
  const positive = ['bucketSeconds', 'maxLiveKeys', 'maxExporters', 'maxFlowSeconds', 'maxPendingRows', 'tickSeconds'] as const;
  for (const k of positive) {
    if (!(cfg[k] > 0)) throw new RangeError(`aggregation.${k} must be > 0, got ${cfg[k]}`);
  }
  for (const k of ['graceSeconds', 'lateWindowSeconds', 'futureToleranceSeconds'] as const) {
    if (!(cfg[k] >= 0)) throw new RangeError(`aggregation.${k} must be >= 0, got ${cfg[k]}`);
  }
  if (!Number.isInteger(cfg.bucketSeconds * 1000)) {
    throw new RangeError(`aggregation.bucketSeconds must be a whole number of milliseconds`);
  }
  return cfg;
}
