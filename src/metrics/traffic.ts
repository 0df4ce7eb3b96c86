import type { TrafficSink } from '../aggregate/aggregator.js';
import { seriesInfo } from '../enrich/series.js';
import type { Registry } from '../registry/registry.js';
import type { CollectorMetrics, TrafficLabel } from './metrics.js';
import { DEFAULT_TRAFFIC_SERIES_IDLE_SECONDS } from './traffic-defaults.js';

/**
 * Per-experiment traffic as Prometheus counters, so a site running Prometheus and Grafana
 * needs no InfluxDB to chart SciTags traffic.
 *
 * Fed by the aggregator's sums (Aggregator.countTraffic, on the metrics timer and before each
 * scrape), never per record. add() only accumulates per label set; flush() increments the
 * counters once per label set, so a sync costs one prom-client update per series touched,
 * not per aggregation key.
 *
 * Labels follow the stores: the exporter address (capped by metrics.maxExporterLabels), the
 * link name (configured, else learnt from the exporter (IE 82), else the ifIndex, `none` when
 * the exporter reported no interface), the direction, the class (`scitags`,
 * `ipv6_unmarked`, `ipv4`, `unknown`), and for class scitags the experiment and activity:
 * registry names, the number for unregistered pairs kept by aggregation.keepUnregistered, or
 * `unregistered` for folded ones (empty for the unmarked classes). As in the API, a key
 * counts once for its input link (direction="in") and once for its output link
 * (direction="out"): sum one direction to count every byte once.
 *
 * Cardinality: at most `maxSeries` label sets; updates for further ones go to the label set
 * with every label `other` except the direction, and are counted in
 * scitags_traffic_series_folded_total. Totals stay exact; only the breakdown is lost.
 *
 * Recycling: when the sets are all taken, a new one takes the slot of the set that has grown
 * least recently if that one has not grown for `idleSeconds` (metrics.trafficSeriesIdleSeconds):
 * its series are removed from both counters (CollectorMetrics.removeTrafficSeries, counted in
 * scitags_traffic_series_recycled_total), as exporter labels are recycled, so that links or
 * series that came and went (ifIndex churn, a burst of forged pairs) cannot hold the budget
 * for good while an active exporter's new series count as `other`. Removed, not folded into
 * `other`: a removed series goes stale and sum(rate(...)) stays right. The sets are kept in
 * order of last growth (a Map re-inserted on growth), so finding the oldest is O(1).
 */

export const TRAFFIC_OTHER = 'other';
/** Link label when the exporter reported no interface (as the InfluxDB tags). */
export const TRAFFIC_NO_LINK = 'none';
export const TRAFFIC_UNREGISTERED = 'unregistered';

export interface TrafficCounterDeps {
  /** The registry in force (names of experiments and activities). */
  registry(): Pick<Registry, 'communityName' | 'activityName'>;
  /** Configured or learnt name of a link; undefined: the ifIndex is used. */
  linkName(exporter: string, ifIndex: number): string | undefined;
  /** Clock (ms) for the idle time of label sets; Date.now by default. */
  now?: () => number;
}

type Labels = Record<TrafficLabel, string>;

interface Pending {
  labels: Labels;
  bytes: number;
  packets: number;
}

interface Admitted {
  labels: Labels;
  /** When the set last grew (ms). */
  grewMs: number;
}

export class TrafficCounters implements TrafficSink {
  /** Admitted label sets by key, least recently grown first. */
  private readonly admitted = new Map<string, Admitted>();
  private readonly pending = new Map<string, Pending>();
  private folded = 0;
  private readonly idleMs: number;
  private readonly now: () => number;

  constructor(
    private readonly metrics: Pick<CollectorMetrics, 'exporterLabel' | 'trafficBytes' | 'trafficPackets' | 'trafficSeriesFolded'> &
      Partial<Pick<CollectorMetrics, 'onExporterForgotten' | 'removeTrafficSeries'>>,
    /** metrics.maxTrafficSeries: label sets admitted (0: everything counts as `other`). */
    readonly maxSeries: number,
    private readonly deps: TrafficCounterDeps,
    /** metrics.trafficSeriesIdleSeconds: a set not grown for this long gives its slot to a new one. */
    idleSeconds: number = DEFAULT_TRAFFIC_SERIES_IDLE_SECONDS,
  ) {
    this.idleMs = idleSeconds * 1000;
    this.now = deps.now ?? Date.now;
    // A recycled exporter label's series are gone: its label sets no longer take room.
    metrics.onExporterForgotten?.((ex) => {
      const prefix = `${JSON.stringify([ex]).slice(0, -1)},`;
      for (const key of this.admitted.keys()) if (key.startsWith(prefix)) this.admitted.delete(key);
    });
  }

  /** Label sets admitted (at most maxSeries). */
  get series(): number {
    return this.admitted.size;
  }

  /** Label sets removed to give their slot to a new one. */
  recycled = 0;

  add(exporter: string, inIf: number | null, outIf: number | null, series: number, bytes: number, packets: number): void {
    const ex = this.metrics.exporterLabel(exporter);
    const info = seriesInfo(series);
    let community = '';
    let activity = '';
    if (info.trafficClass === 'scitags') {
      if (info.community === null || info.activity === null) community = activity = TRAFFIC_UNREGISTERED;
      else {
        const reg = this.deps.registry();
        community = reg.communityName(info.community) ?? String(info.community);
        activity = reg.activityName(info.community, info.activity) ?? String(info.activity);
      }
    }
    const nowMs = this.now();
    this.side(ex, this.link(exporter, inIf), 'in', info.trafficClass, community, activity, bytes, packets, nowMs);
    this.side(ex, this.link(exporter, outIf), 'out', info.trafficClass, community, activity, bytes, packets, nowMs);
  }

  /** Increments the counters by everything added since the last flush. */
  flush(): void {
    const m = this.metrics;
    for (const p of this.pending.values()) {
      // Both counters get every label set, so bytes and packets always list the same series.
      m.trafficBytes.inc(p.labels, p.bytes);
      m.trafficPackets.inc(p.labels, p.packets);
    }
    this.pending.clear();
    if (this.folded > 0) m.trafficSeriesFolded.inc(this.folded);
    this.folded = 0;
  }

  private link(exporter: string, ifIndex: number | null): string {
    if (ifIndex === null) return TRAFFIC_NO_LINK;
    return this.deps.linkName(exporter, ifIndex) ?? String(ifIndex);
  }

  private side(
    exporter: string,
    link: string,
    direction: 'in' | 'out',
    cls: string,
    community: string,
    activity: string,
    bytes: number,
    packets: number,
    nowMs: number,
  ): void {
    // JSON keeps the key unambiguous whatever the names contain; this runs per key per sync.
    let key = JSON.stringify([exporter, link, direction, cls, community, activity]);
    let labels: Labels | undefined;
    const seen = this.admitted.get(key);
    if (seen !== undefined) {
      // Re-inserted so the Map stays in order of growth (add() is only called with growth).
      if (seen.grewMs !== nowMs) {
        seen.grewMs = nowMs;
        this.admitted.delete(key);
        this.admitted.set(key, seen);
      }
    } else {
      labels = { exporter, link, direction, class: cls, community, activity };
      if (this.admitted.size < this.maxSeries || this.recycleIdle(nowMs)) this.admitted.set(key, { labels, grewMs: nowMs });
      else {
        this.folded++;
        key = JSON.stringify([direction]);
        labels = {
          exporter: TRAFFIC_OTHER,
          link: TRAFFIC_OTHER,
          direction,
          class: TRAFFIC_OTHER,
          community: TRAFFIC_OTHER,
          activity: TRAFFIC_OTHER,
        };
      }
    }
    const p = this.pending.get(key);
    if (p) {
      p.bytes += bytes;
      p.packets += packets;
      return;
    }
    labels ??= { exporter, link, direction, class: cls, community, activity };
    this.pending.set(key, { labels, bytes, packets });
  }

  /** Frees the slot of the least recently grown set if it has been idle long enough. */
  private recycleIdle(nowMs: number): boolean {
    const oldest = this.admitted.entries().next().value;
    if (oldest === undefined || !(oldest[1].grewMs < nowMs - this.idleMs)) return false;
    this.admitted.delete(oldest[0]);
    this.recycled++;
    this.metrics.removeTrafficSeries?.(oldest[1].labels);
    return true;
  }
}
