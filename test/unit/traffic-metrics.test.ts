import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { emptyRecord, type FlowRecord } from '../../decoders/record.js';
import { encodeFlowLabel } from '../../decoders/scitags/flowlabel.js';
import { createAggregator, type AggregatorConfig } from '../../src/aggregate/index.js';
import { createMetrics, TrafficCounters, type CollectorMetrics } from '../../src/metrics/index.js';
import { loadSnapshot } from '../../src/registry/loader.js';
import { createSqliteStore } from '../../src/store/sqlite/index.js';
import type { TrafficStore } from '../../src/store/types.js';

/**
 * The per-experiment traffic counters fed by the real aggregator writing to the real SQLite
 * store: what the exposition says after each sync, and that it always equals what the store
 * holds once the buckets are written.
 */

const registry = loadSnapshot(0);
const T0 = Date.UTC(2025, 0, 1, 12, 0, 0);
const S = 1000;
const R1 = '192.0.2.1';
const R2 = '192.0.2.2';
const ATLAS = encodeFlowLabel(2, 1); // registered: atlas / default
const CMS = encodeFlowLabel(3, 2); // registered
const RANDOM = encodeFlowLabel(200, 10); // not registered: folded

function sample(over: Partial<FlowRecord> = {}): FlowRecord {
  return { ...emptyRecord('sflow', `${R1}:6343`, 0), ipVersion: 6, flowLabel: ATLAS, bytes: 1000, packets: 1, inIf: 1, outIf: 2, ...over };
}

function setup(maxSeries = 100, config: Partial<AggregatorConfig> = {}, store?: TrafficStore) {
  const metrics = createMetrics();
  const names = new Map([[`${R1}|1`, 'geant-in']]);
  const traffic = new TrafficCounters(metrics, maxSeries, { registry: () => registry, linkName: (e, i) => names.get(`${e}|${i}`) });
  const db = store ?? createSqliteStore({ path: join(mkdtempSync(join(tmpdir(), 'scitags-traffic-')), 'db.sqlite'), retentionDays: 0 });
  const agg = createAggregator(
    { bucketSeconds: 60, graceSeconds: 0, lateWindowSeconds: 120, ...config },
    { now: () => T0, store: db, registry: () => registry, traffic },
  );
  const sync = (): void => {
    agg.countTraffic();
    traffic.flush();
  };
  return { metrics, traffic, agg, db, sync };
}

async function lines(m: CollectorMetrics, name: string): Promise<string[]> {
  return (await m.registry.getSingleMetricAsString(name)).split('\n').filter((l) => l !== '' && !l.startsWith('#'));
}

describe('traffic counters', () => {
  it('count scaled bytes and packets per exporter, link, direction, class, experiment and activity, each key once per direction', async () => {
    const { metrics, agg, sync } = setup();
    agg.add(sample({ samplingRate: 10 }), T0 + 1 * S, R1);
    agg.add(sample({ flowLabel: CMS, inIf: 3, outIf: undefined }), T0 + 2 * S, R1);
    agg.add(sample({ flowLabel: RANDOM }), T0 + 3 * S, R2);
    agg.add(sample({ flowLabel: 0, bytes: 70, packets: 7 }), T0 + 4 * S, R1);
    agg.add(sample({ flowLabel: undefined, ipVersion: 4, bytes: 40, packets: 4 }), T0 + 5 * S, R1);
    sync();
    expect(await lines(metrics, 'scitags_traffic_bytes_total')).toEqual([
      'scitags_traffic_bytes_total{exporter="192.0.2.1",link="geant-in",direction="in",class="scitags",community="atlas",activity="default"} 10000',
      'scitags_traffic_bytes_total{exporter="192.0.2.1",link="2",direction="out",class="scitags",community="atlas",activity="default"} 10000',
      'scitags_traffic_bytes_total{exporter="192.0.2.1",link="3",direction="in",class="scitags",community="cms",activity="perfSONAR"} 1000',
      'scitags_traffic_bytes_total{exporter="192.0.2.1",link="none",direction="out",class="scitags",community="cms",activity="perfSONAR"} 1000',
      'scitags_traffic_bytes_total{exporter="192.0.2.2",link="1",direction="in",class="scitags",community="unregistered",activity="unregistered"} 1000',
      'scitags_traffic_bytes_total{exporter="192.0.2.2",link="2",direction="out",class="scitags",community="unregistered",activity="unregistered"} 1000',
      'scitags_traffic_bytes_total{exporter="192.0.2.1",link="geant-in",direction="in",class="ipv6_unmarked",community="",activity=""} 70',
      'scitags_traffic_bytes_total{exporter="192.0.2.1",link="2",direction="out",class="ipv6_unmarked",community="",activity=""} 70',
      'scitags_traffic_bytes_total{exporter="192.0.2.1",link="geant-in",direction="in",class="ipv4",community="",activity=""} 40',
      'scitags_traffic_bytes_total{exporter="192.0.2.1",link="2",direction="out",class="ipv4",community="",activity=""} 40',
    ]);
    expect(await lines(metrics, 'scitags_traffic_packets_total')).toContain(
      'scitags_traffic_packets_total{exporter="192.0.2.1",link="geant-in",direction="in",class="scitags",community="atlas",activity="default"} 10',
    );
    expect(await lines(metrics, 'scitags_traffic_series_folded_total')).toEqual(['scitags_traffic_series_folded_total 0']);
  });

  it('add only what changed since the last sync, including late records rewriting a written bucket', async () => {
    const { metrics, agg, sync, db } = setup();
    const atlasIn = async () =>
      (await lines(metrics, 'scitags_traffic_bytes_total')).find((l) => l.includes('direction="in"') && l.includes('atlas'));
    agg.add(sample(), T0 + S, R1);
    sync();
    sync(); // nothing new: no change
    expect(await atlasIn()).toMatch(/} 1000$/);
    await agg.tick(T0 + 61 * S); // the bucket is written
    agg.add(sample({ bytes: 234 }), T0 + 2 * S, R1); // late, within the window: rewrites it
    agg.add(sample({ bytes: 5 }), T0 + 62 * S, R1); // the next bucket
    sync();
    expect(await atlasIn()).toMatch(/} 1239$/);
    await agg.flush();
    const stored = await db.queryTraffic({ fromMs: 0, toMs: 4e12, stepSeconds: 86400, groupBy: [] });
    expect(stored.totals.bytes).toBe(1239);
  });

  it('count a bucket that leaves memory between syncs, and never the rows a previous run stored', async () => {
    const { metrics, agg, sync, db } = setup();
    // What a previous run stored for the bucket still open: 5 packets of atlas on link 1 -> 2.
    const previous = { bucketStartMs: T0, bucketSeconds: 60, exporter: R1, inIf: 1, outIf: 2, trafficClass: 'scitags' as const };
    await db.writeRows([{ ...previous, community: 2, activity: 1, registered: true, bytes: 5000, packets: 5, records: 5 }]);
    agg.seed(await db.readRows(T0 - 3600 * S), T0 + 10 * S);
    agg.add(sample({ bytes: 300, packets: 3 }), T0 + 20 * S, R1); // continues the seeded bucket
    // Written, closed and evicted by ticks alone, with no sync in between.
    await agg.tick(T0 + 61 * S);
    await agg.tick(T0 + 200 * S);
    expect(agg.stats().openBuckets).toBe(0);
    sync();
    expect(await lines(metrics, 'scitags_traffic_packets_total')).toEqual([
      'scitags_traffic_packets_total{exporter="192.0.2.1",link="geant-in",direction="in",class="scitags",community="atlas",activity="default"} 3',
      'scitags_traffic_packets_total{exporter="192.0.2.1",link="2",direction="out",class="scitags",community="atlas",activity="default"} 3',
    ]);
    // The store holds both runs' sums; this run's counters only its own.
    expect((await db.queryTraffic({ fromMs: 0, toMs: 4e12, stepSeconds: 86400, groupBy: [] })).totals.packets).toBe(8);
  });

  it('fold label sets past the cap into one "other" set per direction, keeping totals exact', async () => {
    const { metrics, agg, sync, traffic } = setup(3);
    for (let i = 0; i < 5; i++) agg.add(sample({ inIf: 10 + i, bytes: 100 + i }), T0 + S, R1);
    sync();
    expect(traffic.series).toBe(3);
    expect(await lines(metrics, 'scitags_traffic_bytes_total')).toEqual([
      'scitags_traffic_bytes_total{exporter="192.0.2.1",link="10",direction="in",class="scitags",community="atlas",activity="default"} 100',
      'scitags_traffic_bytes_total{exporter="192.0.2.1",link="2",direction="out",class="scitags",community="atlas",activity="default"} 510',
      'scitags_traffic_bytes_total{exporter="192.0.2.1",link="11",direction="in",class="scitags",community="atlas",activity="default"} 101',
      'scitags_traffic_bytes_total{exporter="other",link="other",direction="in",class="other",community="other",activity="other"} 309',
    ]);
    // Three keys' "in" sides were refused (the "out" sides share one admitted label set).
    expect(await lines(metrics, 'scitags_traffic_series_folded_total')).toEqual(['scitags_traffic_series_folded_total 3']);
    // Admitted sets keep counting; new ones keep folding.
    agg.add(sample({ inIf: 10, bytes: 1 }), T0 + 2 * S, R1);
    agg.add(sample({ inIf: 99, bytes: 1 }), T0 + 2 * S, R1);
    sync();
    const text = await lines(metrics, 'scitags_traffic_bytes_total');
    expect(text).toContain(
      'scitags_traffic_bytes_total{exporter="192.0.2.1",link="10",direction="in",class="scitags",community="atlas",activity="default"} 101',
    );
    expect(text).toContain(
      'scitags_traffic_bytes_total{exporter="other",link="other",direction="in",class="other",community="other",activity="other"} 310',
    );
    expect(await lines(metrics, 'scitags_traffic_series_folded_total')).toEqual(['scitags_traffic_series_folded_total 4']);
  });

  it('with a cap of 0 keep only the totals per direction', async () => {
    const { metrics, agg, sync } = setup(0);
    agg.add(sample(), T0 + S, R1);
    agg.add(sample({ flowLabel: CMS, bytes: 10 }), T0 + S, R2);
    sync();
    expect(await lines(metrics, 'scitags_traffic_bytes_total')).toEqual([
      'scitags_traffic_bytes_total{exporter="other",link="other",direction="in",class="other",community="other",activity="other"} 1010',
      'scitags_traffic_bytes_total{exporter="other",link="other",direction="out",class="other",community="other",activity="other"} 1010',
    ]);
  });
});
