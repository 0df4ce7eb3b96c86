import { describe, expect, it } from 'vitest';
import { createAggregator, type Aggregator } from '../../src/aggregate/index.js';
import { emptyRecord, type FlowRecord } from '../../decoders/record.js';
import { BoundedLabel, createMetrics, TrafficCounters } from '../../src/metrics/index.js';
import { emptySnapshot, type DecodeSnapshot, type ExporterSnapshot } from '../../src/pipeline/snapshot.js';
import { MetricsSync } from '../../src/serve/metrics-sync.js';
import type { UdpListener } from '../../collectors/udp.js';
import { SERIES_IPV4 } from '../../src/enrich/series.js';

const MIN = 60_000;

/** An IPFIX exporter with `records` records in one datagram each, last seen at `lastSeenMs`. */
function exporter(address: string, lastSeenMs: number, records: number): ExporterSnapshot {
  const counts = { datagrams: records, records, recordsByProtocol: { ipfix: records }, errorsByReason: {}, decoderCrashes: {} };
  const zero = {
    templateMisses: 0,
    unknownSampling: 0,
    sequenceGaps: 0,
    lostRecords: 0,
    samplingRates: [],
    liveTemplates: 0,
    rateLimited: { datagrams: 0, sessions: 0 },
    decoderState: { bytes: 0, evictions: 0 },
    padding: { datagrams: 0, octets: 0 },
  };
  return { address, protocols: ['ipfix'], sessions: [], firstSeenMs: 0, lastSeenMs, ...counts, ...zero };
}

const lines = (text: string) => text.split('\n').filter((l) => l !== '' && !l.startsWith('#'));

describe('exporter label slots recycle', () => {
  it('a spoofed burst of 200 sources takes every slot; once they are idle, the real exporter gets its own label', async () => {
    let now = 100 * MIN;
    const metrics = createMetrics({ maxExporterLabels: 200, exporterLabelIdleSeconds: 600, now: () => now });
    const listener = {
      receivedByExporter: new Map<string, number>(),
      flushReceived: () => {},
      stats: { deniedByAllowList: 0 },
      port: 4739,
    };
    let snapshot: DecodeSnapshot = emptySnapshot(now);
    const aggregator = {
      stats: () => ({
        bucketsWritten: 0,
        lateUpdates: 0,
        tooLate: 0,
        foldedByCardinality: 0,
        liveKeys: 0,
        rowsWritten: 0,
        writeFailures: 0,
      }),
      exporterFolds: () => [],
    } as unknown as Aggregator;
    const sync = new MetricsSync(metrics, {
      snapshot: () => snapshot,
      queue: () => ({ length: 0, capacity: 1, dropped: 0, dropsByExporter: new Map() }),
      aggregator,
      listeners: [{ name: 'ipfix', listener: listener as unknown as UdpListener }],
      storeKind: 'sqlite',
    });
    const spoofed = Array.from({ length: 200 }, (_, i) => `198.51.100.${i + 1}`);
    // The burst: one datagram (one record) from each spoofed source.
    for (const a of spoofed) listener.receivedByExporter.set(a, 1);
    snapshot = { ...emptySnapshot(now), exporters: spoofed.map((a) => exporter(a, now, 1)) };
    sync.sync();
    // The real exporter starts a minute later: every slot is taken, it counts as other.
    now += MIN;
    listener.receivedByExporter.set('192.0.2.1', 10);
    snapshot = { ...emptySnapshot(now), exporters: [...snapshot.exporters, exporter('192.0.2.1', now, 10)] };
    sync.sync();
    const before = await metrics.registry.getSingleMetricAsString('scitags_records_decoded_total');
    expect(lines(before).filter((l) => !l.includes('198.51.100.'))).toEqual([
      'scitags_records_decoded_total{protocol="ipfix",exporter="other"} 10',
    ]);
    expect(lines(before)).toHaveLength(201);

    // Ten minutes of silence from the spoofed sources are not enough (idle must exceed 600 s)...
    now += 9 * MIN;
    listener.receivedByExporter.set('192.0.2.1', 20);
    snapshot = { ...emptySnapshot(now), exporters: [...snapshot.exporters.slice(0, 200), exporter('192.0.2.1', now, 20)] };
    sync.sync();
    expect(lines(await metrics.registry.getSingleMetricAsString('scitags_records_decoded_total')).at(-1)).toBe(
      'scitags_records_decoded_total{protocol="ipfix",exporter="other"} 20',
    );
    // ...eleven are: the real exporter takes the slot of the oldest spoofed one, whose series go.
    now += 2 * MIN;
    listener.receivedByExporter.set('192.0.2.1', 25);
    snapshot = { ...emptySnapshot(now), exporters: [...snapshot.exporters.slice(0, 200), exporter('192.0.2.1', now, 25)] };
    sync.sync();
    const after = lines(await metrics.registry.getSingleMetricAsString('scitags_records_decoded_total'));
    expect(after.filter((l) => !l.includes('198.51.100.'))).toEqual([
      'scitags_records_decoded_total{protocol="ipfix",exporter="other"} 20',
      'scitags_records_decoded_total{protocol="ipfix",exporter="192.0.2.1"} 5',
    ]);
    expect(after).toHaveLength(201);
    expect(after.some((l) => l.includes('exporter="198.51.100.1"'))).toBe(false);
    const received = lines(await metrics.registry.getSingleMetricAsString('scitags_datagrams_received_total'));
    expect(received.filter((l) => !l.includes('198.51.100.'))).toEqual([
      'scitags_datagrams_received_total{listener="ipfix",exporter="other"} 20',
      'scitags_datagrams_received_total{listener="ipfix",exporter="192.0.2.1"} 5',
    ]);
    expect(received.some((l) => l.includes('exporter="198.51.100.1"'))).toBe(false);
    expect(lines(await metrics.registry.getSingleMetricAsString('scitags_exporter_labels_recycled_total'))).toEqual([
      'scitags_exporter_labels_recycled_total 1',
    ]);
    const seen = lines(await metrics.registry.getSingleMetricAsString('scitags_exporter_last_seen_seconds'));
    // The evicted source is one of the "other" exporters now: their latest last-seen time.
    expect(seen.filter((l) => !l.includes('198.51.100.'))).toEqual([
      `scitags_exporter_last_seen_seconds{exporter="other"} ${(100 * MIN) / 1000}`,
      `scitags_exporter_last_seen_seconds{exporter="192.0.2.1"} ${now / 1000}`,
    ]);
    // An idle spoofed source listed again in the snapshot does not take a slot back.
    sync.sync();
    expect(lines(await metrics.registry.getSingleMetricAsString('scitags_exporter_labels_recycled_total'))).toEqual([
      'scitags_exporter_labels_recycled_total 1',
    ]);
  });

  it('BoundedLabel: the least recently active value gives way only when idle longer than idleMs, and only to an active newcomer', () => {
    let now = 0;
    const forgotten: string[] = [];
    const b = new BoundedLabel(
      2,
      1000,
      () => now,
      (v) => forgotten.push(v),
    );
    expect([b.value('a'), b.value('b'), b.value('c')]).toEqual(['a', 'b', 'other']);
    now = 1000;
    expect(b.value('c')).toBe('other');
    now = 1001;
    expect(b.value('a', 1001)).toBe('a');
    expect(b.value('c', 0)).toBe('other');
    expect(b.value('c')).toBe('c');
    expect([forgotten, b.recycled, b.size]).toEqual([['b'], 1, 2]);
  });

  it('traffic label sets of a recycled exporter are freed too', async () => {
    let now = 0;
    const metrics = createMetrics({ maxExporterLabels: 1, exporterLabelIdleSeconds: 60, now: () => now });
    const traffic = new TrafficCounters(metrics, 2, { registry: () => ({}) as never, linkName: () => undefined });
    traffic.add('192.0.2.1', 1, 2, SERIES_IPV4, 100, 1);
    traffic.flush();
    expect(traffic.series).toBe(2);
    now = 61_000;
    traffic.add('192.0.2.2', 1, 2, SERIES_IPV4, 50, 1);
    traffic.flush();
    expect(traffic.series).toBe(2);
    const text = lines(await metrics.registry.getSingleMetricAsString('scitags_traffic_bytes_total'));
    expect(text.map((l) => /exporter="([^"]+)"/.exec(l)?.[1])).toEqual(['192.0.2.2', '192.0.2.2']);
  });
});

describe('traffic label sets recycle within an active exporter', () => {
  it('a set that has not grown for trafficSeriesIdleSeconds gives its slot to a new one, removed from both counters and counted', async () => {
    let now = 0;
    const metrics = createMetrics({ now: () => now });
    const traffic = new TrafficCounters(metrics, 4, { registry: () => ({}) as never, linkName: () => undefined, now: () => now }, 60);
    const R1 = '192.0.2.1';
    const sync = async () => {
      traffic.flush();
      const links = (name: string) =>
        metrics.registry
          .getSingleMetricAsString(name)
          .then((t) => lines(t).map((l) => `${/link="([^"]+)"/.exec(l)![1]} ${l.split(' ').pop()}`));
      return {
        bytes: await links('scitags_traffic_bytes_total'),
        packets: await links('scitags_traffic_packets_total'),
        recycled: lines(await metrics.registry.getSingleMetricAsString('scitags_traffic_series_recycled_total')),
        folded: lines(await metrics.registry.getSingleMetricAsString('scitags_traffic_series_folded_total')),
      };
    };
    traffic.add(R1, 1, 2, SERIES_IPV4, 100, 1);
    traffic.add(R1, 3, 4, SERIES_IPV4, 300, 3);
    expect((await sync()).bytes).toEqual(['1 100', '2 100', '3 300', '4 300']);
    now = 30_000;
    traffic.add(R1, 1, 2, SERIES_IPV4, 10, 1); // link 1 -> 2 keeps growing
    await sync();
    now = 70_000; // link 3 -> 4 idle for 70 s > 60 s: a new link takes its two sets
    traffic.add(R1, 5, 6, SERIES_IPV4, 500, 5);
    expect(await sync()).toEqual({
      bytes: ['1 110', '2 110', '5 500', '6 500'],
      packets: ['1 2', '2 2', '5 5', '6 5'],
      recycled: ['scitags_traffic_series_recycled_total 2'],
      folded: ['scitags_traffic_series_folded_total 0'],
    });
    expect([traffic.series, traffic.recycled]).toEqual([4, 2]);
    now = 80_000; // link 1 -> 2 grew 50 s ago: not idle, so the next new link counts as other
    traffic.add(R1, 7, 8, SERIES_IPV4, 700, 7);
    expect(await sync()).toEqual({
      bytes: ['1 110', '2 110', '5 500', '6 500', 'other 700', 'other 700'],
      packets: ['1 2', '2 2', '5 5', '6 5', 'other 7', 'other 7'],
      recycled: ['scitags_traffic_series_recycled_total 2'],
      folded: ['scitags_traffic_series_folded_total 2'],
    });
    // A recycled set that grows again is a new series, starting from its next increment.
    now = 200_000;
    traffic.add(R1, 3, 4, SERIES_IPV4, 30, 1);
    expect((await sync()).bytes).toEqual(['5 500', '6 500', 'other 700', 'other 700', '3 30', '4 30']);
    expect(traffic.recycled).toBe(4);
  });
});

describe('aggregation folds per exporter', () => {
  it('reach scitags_cardinality_exporter_folds_total under the exporter label, by reason, as deltas', async () => {
    const metrics = createMetrics();
    const aggregator = createAggregator(
      { maxLiveKeys: 10 },
      { now: () => 0, store: { kind: 'none', writeRows: () => Promise.resolve() }, registry: () => ({ isRegistered: () => true }) },
    );
    const sync = new MetricsSync(metrics, {
      snapshot: () => emptySnapshot(0),
      queue: () => ({ length: 0, capacity: 1, dropped: 0, dropsByExporter: new Map() }),
      aggregator,
      listeners: [],
      storeKind: 'sqlite',
    });
    const rec = (inIf: number): FlowRecord => ({
      ...emptyRecord('sflow', '192.0.2.1:6343', 0),
      ipVersion: 4,
      bytes: 1,
      packets: 1,
      inIf,
      outIf: 0,
    });
    aggregator.add(rec(1), 1000, '192.0.2.2'); // a second exporter holding a key
    for (let i = 0; i < 20; i++) aggregator.add(rec(100 + i), 1000, '198.51.100.7'); // share 10 / 2 = 5: 15 fold
    sync.sync();
    for (let i = 0; i < 3; i++) aggregator.add(rec(200 + i), 1000, '198.51.100.7');
    for (let i = 0; i < 9; i++) aggregator.add(rec(2 + i), 1000, '192.0.2.2'); // 3 open (10 keys + overflow), 6 fold
    sync.sync();
    expect(lines(await metrics.registry.getSingleMetricAsString('scitags_cardinality_exporter_folds_total'))).toEqual([
      'scitags_cardinality_exporter_folds_total{reason="share",exporter="198.51.100.7"} 18',
      'scitags_cardinality_exporter_folds_total{reason="budget",exporter="192.0.2.2"} 6',
    ]);
    expect(lines(await metrics.registry.getSingleMetricAsString('scitags_cardinality_folds_total'))).toEqual([
      'scitags_cardinality_folds_total 24',
    ]);
  });
});
