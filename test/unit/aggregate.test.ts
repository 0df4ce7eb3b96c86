import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { emptyRecord, type FlowRecord } from '../../decoders/record.js';
import { encodeFlowLabel } from '../../decoders/scitags/flowlabel.js';
import { createAggregator, resolveAggregatorConfig, type Aggregator, type AggregatorConfig } from '../../src/aggregate/index.js';
import { defaultConfig } from '../../src/config/schema.js';
import { loadSnapshot } from '../../src/registry/loader.js';
import { Registry } from '../../src/registry/registry.js';
import { createSqliteStore, type SqliteTrafficStore } from '../../src/store/sqlite/index.js';
import type { TrafficQuery, TrafficRow, TrafficStore } from '../../src/store/types.js';
import { captureLog, type CapturedLog } from '../support/logs.js';

const registry = loadSnapshot(0);
const T0 = Date.UTC(2025, 0, 1, 12, 0, 0); // a bucket start for widths up to 1 h
const S = 1000;
const MIN = 60_000;
const HOUR = 3_600_000;
const R1 = '192.0.2.1';
const R2 = '192.0.2.2';
const ATLAS = encodeFlowLabel(2, 1); // registered
const CMS = encodeFlowLabel(3, 2); // registered
const RANDOM = encodeFlowLabel(200, 10); // not registered

/** An sFlow-like record: no timestamps, so it counts at its receive time. */
function sample(over: Partial<FlowRecord> = {}): FlowRecord {
  return { ...emptyRecord('sflow', `${R1}:6343`, 0), ipVersion: 6, flowLabel: ATLAS, bytes: 1000, packets: 1, inIf: 1, outIf: 2, ...over };
}

/** An IPFIX record from a datagram exported at `exportMs` (exporter clock) with a flow span. */
function flow(startMs: number, endMs: number, exportMs: number, over: Partial<FlowRecord> = {}): FlowRecord {
  return {
    ...emptyRecord('ipfix', `${R1}:4739`, 0),
    ipVersion: 6,
    flowLabel: ATLAS,
    bytes: 1000,
    packets: 10,
    inIf: 1,
    outIf: 2,
    startMs,
    endMs,
    exportMs,
    ...over,
  };
}

/** The real SQLite store, recording each writeRows batch so tests can see rewrites. */
class RecordingStore implements TrafficStore {
  readonly kind = 'recording';
  readonly batches: TrafficRow[][] = [];
  failNext = 0;
  constructor(readonly inner: SqliteTrafficStore) {}
  readRows(fromMs: number): Promise<TrafficRow[]> {
    return this.inner.readRows(fromMs);
  }
  async writeRows(rows: TrafficRow[]): Promise<void> {
    if (this.failNext > 0) {
      this.failNext--;
      throw new Error('disk full');
    }
    this.batches.push(rows);
    await this.inner.writeRows(rows);
  }
  queryTraffic(q: TrafficQuery) {
    return this.inner.queryTraffic(q);
  }
  close() {
    return this.inner.close();
  }
}

let dir: string;
let store: RecordingStore;
let captured: CapturedLog;

function aggregator(config: Partial<AggregatorConfig> = {}): Aggregator {
  return createAggregator(config, {
    now: () => T0,
    store,
    registry: () => registry,
    log: captured.log,
  });
}

/** Every row in the store, one key per entry, sorted: the exact state of the store. */
async function stored(): Promise<Record<string, { bytes: number; packets: number; records: number }>> {
  const r = await store.queryTraffic({
    fromMs: 0,
    toMs: 4e12,
    stepSeconds: 1,
    groupBy: ['exporter', 'link', 'direction', 'class', 'community', 'activity'],
  });
  const out: Record<string, { bytes: number; packets: number; records: number }> = {};
  for (const s of r.series) {
    // Keep the in-side only: each row appears once per direction.
    if (s.group.direction !== 'in') continue;
    for (const p of s.points) {
      const g = s.group;
      const key = `${(p.timeMs - T0) / S}s ${g.link} ${g.class} ${g.community}/${g.activity}`;
      out[key] = { bytes: p.bytes, packets: p.packets, records: p.records };
    }
  }
  return out;
}

async function storedTotals(): Promise<{ bytes: number; packets: number; records: number }> {
  return (await store.queryTraffic({ fromMs: 0, toMs: 4e12, stepSeconds: 60, groupBy: [] })).totals;
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'aggregate-'));
  store = new RecordingStore(createSqliteStore({ path: join(dir, 'scitags.sqlite') }));
  captured = captureLog('warn');
});

afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('configuration', () => {
  it("accepts the collector config's aggregation section and fills the rest", () => {
    const agg = aggregator(defaultConfig().aggregation);
    expect(agg.config).toEqual({
      bucketSeconds: 60,
      graceSeconds: 10,
      lateWindowSeconds: 300,
      maxLiveKeys: 100_000,
      maxExporters: 10_000,
      keepUnregistered: [],
      maxFlowSeconds: 3600,
      futureToleranceSeconds: 5,
      maxPendingRows: 1_000_000,
      tickSeconds: 1,
      keyBy: 'link',
    });
  });

  it('rejects values the bucket arithmetic cannot use', () => {
    expect(() => resolveAggregatorConfig({ bucketSeconds: 0 })).toThrow(/bucketSeconds must be > 0/);
    expect(() => resolveAggregatorConfig({ bucketSeconds: 0.0001 })).toThrow(/whole number of milliseconds/);
    expect(() => resolveAggregatorConfig({ graceSeconds: -1 })).toThrow(/graceSeconds must be >= 0/);
  });
});

describe('bucket boundaries and grace', () => {
  it('59.999 s is the first bucket, 60.000 s the second; each is written after its grace', async () => {
    const agg = aggregator({ bucketSeconds: 60, graceSeconds: 10 });
    agg.add(sample({ bytes: 100 }), T0 + 59_999, R1);
    agg.add(sample({ bytes: 200 }), T0 + 60_000, R1);
    await agg.tick(T0 + 60_000 + 9_999);
    expect(store.batches).toHaveLength(0);
    await agg.tick(T0 + 70_000);
    expect(store.batches.map((b) => b.map((r) => [r.bucketStartMs - T0, r.bytes]))).toEqual([[[0, 100]]]);
    await agg.tick(T0 + 129_999);
    expect(store.batches).toHaveLength(1);
    await agg.tick(T0 + 130_000);
    expect(store.batches.map((b) => b.map((r) => [r.bucketStartMs - T0, r.bytes]))).toEqual([[[0, 100]], [[60_000, 200]]]);
    expect(await stored()).toEqual({
      [`0s ${R1}#1 scitags 2/1`]: { bytes: 100, packets: 1, records: 1 },
      [`60s ${R1}#1 scitags 2/1`]: { bytes: 200, packets: 1, records: 1 },
    });
    expect(agg.stats()).toMatchObject({ records: 2, bucketsWritten: 2, rowsWritten: 2, lateUpdates: 0, tooLate: 0 });
  });

  it('writes the row shape the store interface describes', async () => {
    const agg = aggregator({ bucketSeconds: 300 });
    agg.add(sample({ inIf: undefined, outIf: 9 }), T0 + 1, R2);
    await agg.flush();
    expect(store.batches).toEqual([
      [
        {
          bucketStartMs: T0,
          bucketSeconds: 300,
          exporter: R2,
          inIf: null,
          outIf: 9,
          trafficClass: 'scitags',
          community: 2,
          activity: 1,
          registered: true,
          bytes: 1000,
          packets: 1,
          records: 1,
        },
      ],
    ]);
  });

  it('keys ifIndex 0 as no interface (RFC 2863 numbers interfaces from 1), whatever the protocol', async () => {
    const agg = aggregator({ bucketSeconds: 300 });
    agg.add(sample({ inIf: 0, outIf: 0, bytes: 100 }), T0 + 1, R1);
    agg.add(sample({ inIf: undefined, outIf: undefined, bytes: 20 }), T0 + 2, R1);
    agg.add(sample({ protocol: 'ipfix', inIf: 0, outIf: 4, bytes: 3 }), T0 + 3, R1);
    agg.add(sample({ protocol: 'netflow5', inIf: 4, outIf: 0, bytes: 5 }), T0 + 4, R1);
    await agg.flush();
    // One key for 0 and absent; 4 stays an interface.
    expect(store.batches.flat().map((r) => [r.inIf, r.outIf, r.bytes, r.records])).toEqual([
      [null, null, 120, 2],
      [null, 4, 3, 1],
      [4, null, 5, 1],
    ]);
  });
});

describe('exporter clocks', () => {
  it('a router one hour behind lands in the receive-time bucket', async () => {
    const agg = aggregator();
    const received = T0 + 50 * S;
    const routerNow = received - HOUR; // the router's clock at export
    agg.add(flow(routerNow - 20 * S, routerNow - 5 * S, routerNow), received, R1);
    // And one an hour ahead, on another exporter.
    const aheadNow = received + HOUR;
    agg.add(flow(aheadNow - 20 * S, aheadNow - 5 * S, aheadNow, { bytes: 7 }), received, R2);
    await agg.flush();
    expect(await stored()).toEqual({
      [`0s ${R1}#1 scitags 2/1`]: { bytes: 1000, packets: 10, records: 1 },
      [`0s ${R2}#1 scitags 2/1`]: { bytes: 7, packets: 10, records: 1 },
    });
    expect(agg.stats().clampedTimestamps).toBe(0);
  });

  it('a record without its own export time uses the exporter offset from its latest datagram', async () => {
    const agg = aggregator();
    const received = T0 + 50 * S;
    agg.add(flow(received - HOUR - 2 * S, received - HOUR - S, received - HOUR), received, R1);
    agg.add(flow(received - HOUR - 2 * S, received - HOUR - S, 0, { exportMs: undefined, bytes: 1 }), received + S, R1);
    // Unknown offset (new exporter, no export time): the receive bucket, not the flow's times.
    agg.add(flow(T0 - 3 * HOUR, T0 - 3 * HOUR, 0, { exportMs: undefined, bytes: 2 }), received, R2);
    await agg.flush();
    expect(await stored()).toEqual({
      [`0s ${R1}#1 scitags 2/1`]: { bytes: 1001, packets: 20, records: 2 },
      [`0s ${R2}#1 scitags 2/1`]: { bytes: 2, packets: 10, records: 1 },
    });
  });

  it('absurd times count at the receive time and are counted', async () => {
    const agg = aggregator({ maxFlowSeconds: 3600, futureToleranceSeconds: 5 });
    const r = T0 + 30 * S;
    agg.add(flow(r - 10 * S, r - 20 * S, r), r, R1); // end before start
    agg.add(flow(r - 2 * HOUR, r - S, r), r, R1); // lasting two hours
    agg.add(flow(r + 5 * MIN, r + 6 * MIN, r), r, R1); // ending in the future
    agg.add(flow(r - 3 * S, r + 2 * S, r), r, R1); // 2 s ahead: within tolerance, slid back
    // ended two years before its export time (pmacct reading a pcap: packet times in the
    // flow, wall clock in the header): no offset can fix it
    agg.add(flow(r - 730 * 24 * HOUR - S, r - 730 * 24 * HOUR, r), r, R1);
    await agg.flush();
    expect(agg.stats().clampedTimestamps).toBe(4);
    expect(await stored()).toEqual({ [`0s ${R1}#1 scitags 2/1`]: { bytes: 5000, packets: 50, records: 5 } });
  });
});

describe('proportional split', () => {
  it('splits a span over three buckets by time, integers summing exactly, records at the end', async () => {
    const agg = aggregator({ graceSeconds: 0 });
    const end = T0 + 150 * S;
    // 120 s span: 30 s in bucket 0, 60 s in bucket 1, 30 s in bucket 2. Sampling 1:3.
    agg.add(flow(T0 + 30 * S, end, end, { bytes: 1001, packets: 7, samplingRate: 3 }), end, R1);
    await agg.flush();
    expect(await stored()).toEqual({
      [`0s ${R1}#1 scitags 2/1`]: { bytes: 750, packets: 5, records: 0 },
      [`60s ${R1}#1 scitags 2/1`]: { bytes: 1502, packets: 10, records: 0 },
      [`120s ${R1}#1 scitags 2/1`]: { bytes: 751, packets: 6, records: 1 },
    });
    expect(await storedTotals()).toEqual({ bytes: 3003, packets: 21, records: 1 });
    expect(agg.stats().splitRecords).toBe(1);
  });

  it('a span ending exactly on a boundary does not touch the next bucket', async () => {
    const agg = aggregator();
    const end = T0 + 60 * S;
    agg.add(flow(T0 + 30 * S, end, end + 100, { bytes: 10, packets: 2 }), end + 100, R1);
    agg.add(flow(end, end, end + 100, { bytes: 5, packets: 1 }), end + 100, R1); // a point at 60 s
    await agg.flush();
    expect(await stored()).toEqual({
      [`0s ${R1}#1 scitags 2/1`]: { bytes: 10, packets: 2, records: 1 },
      [`60s ${R1}#1 scitags 2/1`]: { bytes: 5, packets: 1, records: 1 },
    });
  });
});

describe('late data', () => {
  it('a late record rewrites the whole bucket; beyond the window it is counted too late', async () => {
    const agg = aggregator({ bucketSeconds: 60, graceSeconds: 10, lateWindowSeconds: 300 });
    agg.add(sample({ bytes: 100, packets: 1 }), T0 + 10 * S, R1);
    agg.add(sample({ bytes: 50, packets: 1, flowLabel: CMS }), T0 + 20 * S, R1);
    await agg.tick(T0 + 70 * S);
    expect(await storedTotals()).toEqual({ bytes: 150, packets: 2, records: 2 });

    // Received at 80 s, the flow ended at 50 s: it belongs to the written bucket 0.
    const r = T0 + 80 * S;
    agg.add(flow(T0 + 40 * S, T0 + 50 * S, r, { bytes: 30, packets: 3 }), r, R1);
    expect(agg.stats().lateUpdates).toBe(1);
    await agg.tick(T0 + 81 * S);
    // The whole bucket again (both keys), and the store holds the full total: not only the
    // late part, not the first write doubled.
    expect(store.batches.map((b) => b.length)).toEqual([2, 2]);
    expect(await stored()).toEqual({
      [`0s ${R1}#1 scitags 2/1`]: { bytes: 130, packets: 4, records: 2 },
      [`0s ${R1}#1 scitags 3/2`]: { bytes: 50, packets: 1, records: 1 },
    });
    // Unchanged buckets are not written again.
    await agg.tick(T0 + 90 * S);
    expect(store.batches).toHaveLength(2);

    // The window closes at 60 + 10 + 300 s.
    await agg.tick(T0 + 370 * S);
    const r2 = T0 + 371 * S;
    agg.add(flow(T0 + 40 * S, T0 + 50 * S, r2, { bytes: 999, packets: 9 }), r2, R1);
    await agg.tick(T0 + 372 * S);
    expect(agg.stats()).toMatchObject({ tooLate: 1, tooLateBytes: 999, tooLatePackets: 9, lateUpdates: 1 });
    expect(await storedTotals()).toEqual({ bytes: 180, packets: 5, records: 3 });
  });

  it('drops only the parts of a split record that fall before the window', async () => {
    const agg = aggregator({ graceSeconds: 0, lateWindowSeconds: 60 });
    await agg.tick(T0 + 120 * S); // buckets before 60 s are closed
    const end = T0 + 90 * S;
    agg.add(flow(T0 + 30 * S, end, end, { bytes: 600, packets: 6 }), end, R1);
    await agg.flush();
    expect(agg.stats()).toMatchObject({ tooLate: 0, tooLateBytes: 300, tooLatePackets: 3 });
    expect(await stored()).toEqual({ [`60s ${R1}#1 scitags 2/1`]: { bytes: 300, packets: 3, records: 1 } });
  });

  it('records arriving while a write is in flight are written on the next tick', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const inner = store.writeRows.bind(store);
    store.writeRows = async (rows) => {
      await gate;
      return inner(rows);
    };
    const agg = aggregator({ graceSeconds: 0 });
    agg.add(sample({ bytes: 1 }), T0 + S, R1);
    const first = agg.tick(T0 + 60 * S);
    for (let i = 0; i < 5; i++) await Promise.resolve(); // the write is now waiting on the gate
    agg.add(sample({ bytes: 2 }), T0 + 60 * S, R1 /* bucket 60 s */);
    agg.add(flow(T0 + 2 * S, T0 + 2 * S, T0 + 60 * S, { bytes: 4 }), T0 + 60 * S, R1 /* bucket 0 */);
    release();
    await first;
    await agg.tick(T0 + 61 * S);
    await agg.flush();
    expect(await stored()).toEqual({
      [`0s ${R1}#1 scitags 2/1`]: { bytes: 5, packets: 11, records: 2 },
      [`60s ${R1}#1 scitags 2/1`]: { bytes: 2, packets: 1, records: 1 },
    });
  });
});

describe('classes, folding and sampling', () => {
  it('classes records like ingest and scales bytes and packets by the sampling rate', async () => {
    const agg = aggregator();
    const r = T0 + S;
    agg.add(sample({ flowLabel: ATLAS, samplingRate: 1000, bytes: 1500, packets: 1 }), r, R1);
    agg.add(sample({ flowLabel: 0, bytes: 10 }), r, R1); // IPv6, label 0
    agg.add(sample({ flowLabel: undefined, bytes: 20 }), r, R1); // IPv6, no label
    agg.add(sample({ ipVersion: 4, flowLabel: undefined, bytes: 30, samplingRate: 2, packets: 3 }), r, R1);
    agg.add(sample({ ipVersion: 0, flowLabel: undefined, bytes: 40 }), r, R1);
    agg.add(sample({ ipVersion: 0, flowLabel: CMS, bytes: 50 }), r, R1); // a label says IPv6
    await agg.flush();
    expect(await stored()).toEqual({
      [`0s ${R1}#1 scitags 2/1`]: { bytes: 1_500_000, packets: 1000, records: 1 },
      [`0s ${R1}#1 scitags 3/2`]: { bytes: 50, packets: 1, records: 1 },
      [`0s ${R1}#1 ipv6_unmarked null/null`]: { bytes: 30, packets: 2, records: 2 },
      [`0s ${R1}#1 ipv4 null/null`]: { bytes: 60, packets: 6, records: 1 },
      [`0s ${R1}#1 unknown null/null`]: { bytes: 40, packets: 1, records: 1 },
    });
  });

  it('folds unregistered pairs into community = activity = null by default', async () => {
    const agg = aggregator();
    agg.add(sample({ flowLabel: RANDOM, bytes: 1 }), T0, R1);
    agg.add(sample({ flowLabel: encodeFlowLabel(2, 63), bytes: 2 }), T0, R1); // atlas, unknown activity
    agg.add(sample({ flowLabel: ATLAS, bytes: 4 }), T0, R1);
    await agg.flush();
    const rows = store.batches.flat().map((r) => [r.community, r.activity, r.registered, r.bytes]);
    expect(rows).toEqual([
      [null, null, false, 3],
      [2, 1, true, 4],
    ]);
  });

  it('keeps listed unregistered pairs (or whole communities) as numbers', async () => {
    const agg = aggregator({ keepUnregistered: [{ community: 200, activity: 10 }, { community: 300 }] });
    agg.add(sample({ flowLabel: RANDOM, bytes: 1 }), T0, R1);
    agg.add(sample({ flowLabel: encodeFlowLabel(200, 11), bytes: 2 }), T0, R1);
    agg.add(sample({ flowLabel: encodeFlowLabel(300, 5), bytes: 4 }), T0, R1);
    agg.add(sample({ flowLabel: encodeFlowLabel(300, 6), bytes: 8 }), T0, R1);
    await agg.flush();
    const rows = store.batches.flat().map((r) => [r.community, r.activity, r.registered, r.bytes]);
    expect(rows).toEqual([
      [200, 10, false, 1],
      [null, null, false, 2],
      [300, 5, false, 4],
      [300, 6, false, 8],
    ]);
  });

  it("keepUnregistered 'all' keeps every pair", async () => {
    const agg = aggregator({ keepUnregistered: 'all' });
    agg.add(sample({ flowLabel: RANDOM }), T0, R1);
    agg.add(sample({ flowLabel: encodeFlowLabel(511, 63) }), T0, R1);
    await agg.flush();
    expect(store.batches.flat().map((r) => [r.community, r.activity])).toEqual([
      [200, 10],
      [511, 63],
    ]);
  });
});

it('applies a refreshed registry from the next record on', async () => {
  // The registry in force is asked per record; the aggregator's pair table follows it.
  let current = registry;
  const agg = createAggregator({}, { now: () => T0, store, registry: () => current });
  agg.add(sample({ flowLabel: RANDOM, bytes: 1 }), T0, R1); // 200/10 not registered: folded
  const doc = structuredClone(registry.document);
  doc.experiments.push({ expName: 'test-200', expId: 200, activities: [{ activityName: 'test-10', activityId: 10 }] });
  current = new Registry(doc, 'cache', T0);
  agg.add(sample({ flowLabel: RANDOM, bytes: 2 }), T0, R1);
  current = registry;
  agg.add(sample({ flowLabel: RANDOM, bytes: 4 }), T0, R1);
  await agg.flush();
  const rows = store.batches.flat().map((r) => [r.community, r.activity, r.bytes]);
  expect(rows).toEqual([
    [null, null, 5],
    [200, 10, 2],
  ]);
});

describe('cardinality cap', () => {
  it('folds new keys beyond the cap into the exporter/class overflow key and counts them', async () => {
    const agg = aggregator({ maxLiveKeys: 3, keepUnregistered: 'all' });
    for (let i = 1; i <= 6; i++) agg.add(sample({ flowLabel: encodeFlowLabel(100 + i, 1), bytes: i, inIf: i }), T0, R1);
    agg.add(sample({ flowLabel: encodeFlowLabel(101, 1), bytes: 100, inIf: 1 }), T0, R1); // existing key: no fold
    agg.add(sample({ ipVersion: 4, flowLabel: undefined, bytes: 1000, inIf: 9 }), T0, R1);
    agg.add(sample({ ipVersion: 4, flowLabel: undefined, bytes: 1000, inIf: 9 }), T0, R2);
    expect(agg.stats()).toMatchObject({ foldedByCardinality: 5 });
    await agg.flush();
    expect(await stored()).toEqual({
      [`0s ${R1}#1 scitags 101/1`]: { bytes: 101, packets: 2, records: 2 },
      [`0s ${R1}#2 scitags 102/1`]: { bytes: 2, packets: 1, records: 1 },
      [`0s ${R1}#3 scitags 103/1`]: { bytes: 3, packets: 1, records: 1 },
      [`0s ${R1}#- scitags null/null`]: { bytes: 4 + 5 + 6, packets: 3, records: 3 },
      [`0s ${R1}#- ipv4 null/null`]: { bytes: 1000, packets: 1, records: 1 },
      [`0s ${R2}#- ipv4 null/null`]: { bytes: 1000, packets: 1, records: 1 },
    });
  });

  it('frees live keys when buckets close, so later buckets are not folded', async () => {
    const agg = aggregator({ maxLiveKeys: 2, graceSeconds: 0, lateWindowSeconds: 0 });
    agg.add(sample({ inIf: 1 }), T0, R1);
    agg.add(sample({ inIf: 2 }), T0, R1);
    await agg.tick(T0 + MIN);
    expect(agg.stats()).toMatchObject({ liveKeys: 0, openBuckets: 0 });
    agg.add(sample({ inIf: 3 }), T0 + MIN, R1);
    agg.add(sample({ inIf: 4 }), T0 + MIN, R1);
    expect(agg.stats().foldedByCardinality).toBe(0);
  });

  it('renumbers links once the table has grown well past the live ones', async () => {
    const agg = aggregator({ graceSeconds: 0, lateWindowSeconds: 0 });
    for (let i = 0; i < 3000; i++) agg.add(sample({ inIf: i, bytes: 1 }), T0, R1);
    agg.add(sample({ inIf: 5000, bytes: 7 }), T0 + MIN, R2); // live in the next bucket
    await agg.tick(T0 + MIN); // bucket 0 written and evicted; its 3000 links are garbage
    expect(agg.stats().links).toBe(1);
    agg.add(sample({ inIf: 5000, bytes: 7 }), T0 + MIN, R2); // finds its renumbered cell
    agg.add(sample({ inIf: 6000, bytes: 9 }), T0 + MIN, R2);
    await agg.tick(T0 + 2 * MIN);
    expect(await storedTotals()).toEqual({ bytes: 3023, packets: 3003, records: 3003 });
    expect(await stored()).toMatchObject({
      [`60s ${R2}#5000 scitags 2/1`]: { bytes: 14, packets: 2, records: 2 },
      [`60s ${R2}#6000 scitags 2/1`]: { bytes: 9, packets: 1, records: 1 },
    });
  });
});

describe('fair share of the live keys', () => {
  const FLOODER = '198.51.100.66';

  it('folds a flooding exporter into its overflow key while a legitimate one keeps opening exact keys', async () => {
    const agg = aggregator({ maxLiveKeys: 100 });
    // The legitimate exporter is already sending: 10 links.
    for (let i = 1; i <= 10; i++) agg.add(sample({ inIf: i, bytes: 10 }), T0 + S, R2);
    // The flooder sprays 1000 new interfaces. With 2 exporters holding keys, its share is
    // 100 / 2 = 50; half the budget (50) is in use by then, so keys 51..1000 fold.
    for (let i = 0; i < 1000; i++) agg.add(sample({ inIf: 1000 + i, bytes: 1 }), T0 + 2 * S, FLOODER);
    // The legitimate exporter still opens 30 new keys and adds to its old ones.
    for (let i = 1; i <= 40; i++) agg.add(sample({ inIf: i, bytes: 10 }), T0 + 3 * S, R2);
    expect(agg.stats()).toMatchObject({ foldedByCardinality: 950, foldedByShare: 950, liveKeys: 10 + 30 + 50 + 1 });
    expect(agg.exporterFolds()).toEqual([{ exporter: FLOODER, share: 950, budget: 0 }]);

    // The cap stays hard: past 100 live keys (links), even an exporter within its share folds.
    for (let i = 41; i <= 60; i++) agg.add(sample({ inIf: i, bytes: 10 }), T0 + 4 * S, R2);
    expect(agg.stats()).toMatchObject({ foldedByCardinality: 961, foldedByShare: 950, liveKeys: 100 + 1 });
    expect(agg.exporterFolds()).toEqual([
      { exporter: R2, share: 0, budget: 11 },
      { exporter: FLOODER, share: 950, budget: 0 },
    ]);

    await agg.flush();
    const rows = await stored();
    for (let i = 1; i <= 49; i++)
      expect(rows[`0s ${R2}#${i} scitags 2/1`]).toEqual(
        i <= 10 ? { bytes: 20, packets: 2, records: 2 } : { bytes: 10, packets: 1, records: 1 },
      );
    expect(rows[`0s ${R2}#- scitags null/null`]).toEqual({ bytes: 110, packets: 11, records: 11 });
    for (let i = 0; i < 50; i++) expect(rows[`0s ${FLOODER}#${1000 + i} scitags 2/1`]).toEqual({ bytes: 1, packets: 1, records: 1 });
    expect(rows[`0s ${FLOODER}#${1050} scitags 2/1`]).toBeUndefined();
    // Nothing lost: the flooder's other 950 records are in its overflow key.
    expect(rows[`0s ${FLOODER}#- scitags null/null`]).toEqual({ bytes: 950, packets: 950, records: 950 });
    expect(Object.keys(rows)).toHaveLength(49 + 1 + 50 + 1);
    expect(await storedTotals()).toEqual({ bytes: 10 * 10 + 40 * 10 + 20 * 10 + 1000, packets: 10 + 40 + 20 + 1000, records: 1070 });
  });

  it('lets a lone exporter use the whole budget', () => {
    const agg = aggregator({ maxLiveKeys: 100 });
    for (let i = 0; i < 100; i++) agg.add(sample({ inIf: i }), T0 + S, FLOODER);
    expect(agg.stats()).toMatchObject({ foldedByCardinality: 0, liveKeys: 100 });
    agg.add(sample({ inIf: 100 }), T0 + S, FLOODER);
    expect(agg.exporterFolds()).toEqual([{ exporter: FLOODER, share: 0, budget: 1 }]);
  });

  it('gives an exporter its keys back when its buckets close', async () => {
    const agg = aggregator({ maxLiveKeys: 100, graceSeconds: 0, lateWindowSeconds: 0 });
    agg.add(sample({ inIf: 1 }), T0, R2);
    for (let i = 0; i < 60; i++) agg.add(sample({ inIf: 1000 + i }), T0, FLOODER);
    expect(agg.stats()).toMatchObject({ foldedByShare: 10, liveKeys: 1 + 50 + 1 });
    await agg.tick(T0 + MIN); // bucket 0 closes: nobody holds live keys any more
    expect(agg.stats().liveKeys).toBe(0);
    // Alone now, the former flooder opens 60 keys (above its old share) without a fold.
    for (let i = 0; i < 60; i++) agg.add(sample({ inIf: 2000 + i }), T0 + MIN, FLOODER);
    expect(agg.stats()).toMatchObject({ foldedByCardinality: 10, liveKeys: 60 });
  });

  it('applies the share to parts merged from decode workers', () => {
    const worker = aggregator({ maxLiveKeys: 1_000_000 });
    for (let i = 0; i < 200; i++) worker.add(sample({ inIf: i }), T0 + S, FLOODER);
    worker.add(sample({ inIf: 1 }), T0 + S, R2);
    const main = aggregator({ maxLiveKeys: 100 });
    main.add(sample({ inIf: 7 }), T0 + S, R2);
    const { parts, exporters } = worker.takeParts();
    main.addParts(parts, exporters);
    expect(main.stats()).toMatchObject({ foldedByShare: 150, liveKeys: 1 + 1 + 50 + 1 });
    expect(main.exporterFolds()).toEqual([{ exporter: FLOODER, share: 150, budget: 0 }]);
  });
});

describe('store failures', () => {
  it('keeps a bucket whose write failed and writes it on the next tick', async () => {
    const agg = aggregator({ graceSeconds: 0 });
    agg.add(sample({ bytes: 5 }), T0, R1);
    store.failNext = 2;
    await agg.tick(T0 + MIN);
    await agg.tick(T0 + MIN + S);
    expect(agg.stats()).toMatchObject({ writeFailures: 2, bucketsWritten: 0 });
    // One line for two failures: the aggregator logs a failing store once per interval.
    expect(captured.lines).toEqual([
      {
        level: 'error',
        msg: 'store write failed; buckets kept for retry',
        err: expect.objectContaining({ type: 'Error', message: 'disk full' }),
        store: 'recording',
        failures: 1,
        buckets: 1,
        rows: 1,
      },
    ]);
    await agg.tick(T0 + MIN + 2 * S);
    expect(agg.stats()).toMatchObject({ writeFailures: 2, bucketsWritten: 1 });
    expect(captured.lines[1]).toEqual({ level: 'warn', msg: 'store writes recovered', store: 'recording', failures: 2 });
    expect(await storedTotals()).toEqual({ bytes: 5, packets: 1, records: 1 });
  });

  it('logs each store batch at debug: store, buckets, rows and the write time', async () => {
    captured = captureLog('debug');
    const agg = aggregator({ graceSeconds: 0 });
    agg.add(sample({ bytes: 5, inIf: 1 }), T0, R1);
    agg.add(sample({ bytes: 5, inIf: 2 }), T0, R1);
    await agg.tick(T0 + MIN);
    expect(captured.lines).toEqual([
      { level: 'debug', msg: 'store batch written', store: 'recording', buckets: 1, rows: 2, ms: expect.any(Number) },
    ]);
  });

  it('keeps failed buckets past the late window, dropping the oldest (counted) beyond maxPendingRows', async () => {
    const agg = aggregator({ graceSeconds: 0, lateWindowSeconds: 0, maxPendingRows: 2 });
    store.failNext = 1000;
    for (let m = 0; m < 3; m++) {
      agg.add(sample({ bytes: 1, inIf: 1 }), T0 + m * MIN, R1);
      agg.add(sample({ bytes: 1, inIf: 2 }), T0 + m * MIN, R1);
    }
    await agg.tick(T0 + 3 * MIN);
    expect(agg.stats()).toMatchObject({ droppedBuckets: 2, droppedRows: 4, pendingRows: 2 });
    store.failNext = 0;
    await agg.tick(T0 + 3 * MIN + S);
    expect(agg.stats()).toMatchObject({ pendingRows: 0, bucketsWritten: 1 });
    expect(await stored()).toEqual({
      [`120s ${R1}#1 scitags 2/1`]: { bytes: 1, packets: 1, records: 1 },
      [`120s ${R1}#2 scitags 2/1`]: { bytes: 1, packets: 1, records: 1 },
    });
  });

  it('times every store write attempt, failed ones included (scitags_store_write_seconds)', async () => {
    const timed: number[] = [];
    const agg = createAggregator(
      { graceSeconds: 0 },
      { now: () => T0, store, registry: () => registry, onWriteTimed: (s) => timed.push(s) },
    );
    agg.add(sample({ bytes: 5 }), T0, R1);
    store.failNext = 1;
    await agg.tick(T0 + MIN); // fails
    await agg.tick(T0 + MIN + S); // written
    await agg.tick(T0 + MIN + 2 * S); // nothing dirty: no write, no timing
    expect(timed).toHaveLength(2);
    for (const s of timed) expect(s).toBeGreaterThanOrEqual(0);
    expect(agg.stats()).toMatchObject({ writeFailures: 1, bucketsWritten: 1 });
  });

  it('flush rejects when the store fails and succeeds on retry', async () => {
    const agg = aggregator();
    agg.add(sample(), T0, R1);
    store.failNext = 1;
    await expect(agg.flush()).rejects.toThrow('disk full');
    await agg.flush();
    expect(await storedTotals()).toEqual({ bytes: 1000, packets: 1, records: 1 });
  });
});

describe('timer', () => {
  it('start() ticks with the injected clock; stop() flushes the open buckets', async () => {
    vi.useFakeTimers();
    try {
      let now = T0;
      const agg = createAggregator({ graceSeconds: 0 }, { now: () => now, store, registry: () => registry });
      agg.start();
      agg.add(sample({ bytes: 3 }), T0, R1);
      now = T0 + MIN;
      await vi.advanceTimersByTimeAsync(1000);
      expect(agg.stats().bucketsWritten).toBe(1);
      agg.add(sample({ bytes: 4 }), T0 + MIN, R1);
      await agg.stop();
      expect(agg.stats().bucketsWritten).toBe(2);
      expect(await storedTotals()).toEqual({ bytes: 7, packets: 2, records: 2 });
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('restart', () => {
  it('data flushed before closing the store is answered after reopening the file', async () => {
    const agg = aggregator();
    agg.add(sample({ bytes: 10 }), T0, R1);
    agg.add(sample({ bytes: 20, flowLabel: CMS }), T0 + MIN, R2);
    await agg.stop();
    const q: TrafficQuery = { fromMs: T0, toMs: T0 + HOUR, stepSeconds: 60, groupBy: ['community', 'exporter'] };
    const before = await store.queryTraffic(q);
    await store.close();
    store = new RecordingStore(createSqliteStore({ path: join(dir, 'scitags.sqlite') }));
    expect(await store.queryTraffic(q)).toEqual(before);
    expect(before.totals).toEqual({ bytes: 30, packets: 2, records: 2 });
  });
});

describe('exporter cap', () => {
  it('counts addresses beyond maxExporters under "other", losing no bytes', async () => {
    const agg = aggregator({ maxExporters: 2 });
    for (const addr of [R1, R2, '192.0.2.3', '192.0.2.4', R1]) agg.add(sample({ bytes: 100 }), T0 + S, addr);
    await agg.flush();
    expect(await stored()).toEqual({
      [`0s ${R1}#1 scitags 2/1`]: { bytes: 200, packets: 2, records: 2 },
      [`0s ${R2}#1 scitags 2/1`]: { bytes: 100, packets: 1, records: 1 },
      ['0s other#1 scitags 2/1']: { bytes: 200, packets: 2, records: 2 },
    });
    expect(agg.stats().exporters).toBe(3);
  });
});

describe('restart inside a bucket', () => {
  it('a new aggregator seeded from the store adds to the stored total instead of replacing it', async () => {
    const first = aggregator();
    first.add(sample({ bytes: 100 }), T0 + S, R1);
    first.add(sample({ bytes: 40, flowLabel: 0 }), T0 + S, R1);
    await first.stop(); // shutdown: the open bucket is written with the first run's part
    const second = aggregator();
    expect(second.seed(await store.readRows(T0 - HOUR), T0 + 2 * S)).toBe(2);
    second.add(sample({ bytes: 7 }), T0 + 3 * S, R1);
    await second.flush();
    expect(await stored()).toEqual({
      [`0s ${R1}#1 scitags 2/1`]: { bytes: 107, packets: 2, records: 2 },
      [`0s ${R1}#1 ipv6_unmarked null/null`]: { bytes: 40, packets: 1, records: 1 },
    });
  });

  it('never writes back stored rows of exporters that do not send to this run (another instance owns them)', async () => {
    const first = aggregator();
    first.add(sample({ bytes: 100 }), T0 + S, R1);
    first.add(sample({ bytes: 30 }), T0 + S, R2);
    await first.stop();
    const second = aggregator();
    expect(second.seed(await store.readRows(T0 - HOUR), T0 + 2 * S)).toBe(2);
    second.add(sample({ bytes: 7 }), T0 + 3 * S, R1);
    // R2 is written meanwhile by its owner; this run must not replace that with what it read.
    await store.writeRows([
      {
        bucketStartMs: T0,
        bucketSeconds: 60,
        exporter: R2,
        inIf: 1,
        outIf: 2,
        trafficClass: 'scitags',
        community: 2,
        activity: 1,
        registered: true,
        bytes: 55,
        packets: 2,
        records: 2,
      },
    ]);
    await second.flush();
    expect(await stored()).toEqual({
      [`0s ${R1}#1 scitags 2/1`]: { bytes: 107, packets: 2, records: 2 },
      [`0s ${R2}#1 scitags 2/1`]: { bytes: 55, packets: 2, records: 2 },
    });
  });

  it('ignores stored rows of buckets already past the late window', async () => {
    const agg = aggregator({ lateWindowSeconds: 60, graceSeconds: 0 });
    const old = {
      bucketStartMs: T0,
      bucketSeconds: 60,
      exporter: R1,
      inIf: 1,
      outIf: 2,
      trafficClass: 'ipv4' as const,
      community: null,
      activity: null,
      registered: false,
      bytes: 1,
      packets: 1,
      records: 1,
    };
    expect(agg.seed([old, { ...old, bucketStartMs: T0 + 10 * MIN }], T0 + 10 * MIN)).toBe(1);
  });
});
