import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  createSqliteStore,
  DEFAULT_SQLITE_STORE_CONFIG,
  formatLinkKey,
  parseLinkKey,
  SCHEMA_VERSION,
  type SqliteTrafficStore,
} from '../../src/store/sqlite/index.js';
import type { GroupByDimension, TrafficQuery, TrafficRow } from '../../src/store/types.js';

const T0 = Date.UTC(2025, 0, 1, 12, 0, 0); // a multiple of 5 min
const MIN = 60_000;
const R1 = '192.0.2.1';
const R2 = '2001:db8::2';

function row(over: Partial<TrafficRow>): TrafficRow {
  return {
    bucketStartMs: T0,
    bucketSeconds: 60,
    exporter: R1,
    inIf: 1,
    outIf: 2,
    trafficClass: 'scitags',
    community: 2,
    activity: 1,
    registered: true,
    bytes: 1000,
    packets: 10,
    records: 1,
    ...over,
  };
}

function query(over: Partial<TrafficQuery> = {}): TrafficQuery {
  return { fromMs: T0, toMs: T0 + 60 * MIN, stepSeconds: 60, groupBy: [], ...over };
}

let dir: string;
let file: string;
let store: SqliteTrafficStore;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'store-sqlite-'));
  file = join(dir, 'sub', 'scitags.sqlite');
  store = createSqliteStore({ path: file });
});

afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('sqlite store: file and schema', () => {
  it('creates the directory, uses WAL and records the schema version', () => {
    const db = new Database(file, { readonly: true });
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    expect(SCHEMA_VERSION).toBe(5);
    db.close();
    expect(store.kind).toBe('sqlite');
    expect(DEFAULT_SQLITE_STORE_CONFIG).toEqual({ path: './data/scitags.sqlite', retentionDays: 30 });
  });

  it('refuses a file written by a newer schema', async () => {
    await store.close();
    const db = new Database(file);
    db.pragma('user_version = 99');
    db.close();
    expect(() => createSqliteStore({ path: file })).toThrow(/schema version 99 is newer/);
  });

  it('keeps the data across close and reopen (restart)', async () => {
    await store.writeRows([row({}), row({ bucketStartMs: T0 + MIN, community: null, activity: null, registered: false, inIf: null })]);
    const q = query({ groupBy: ['community', 'link'] });
    const before = await store.queryTraffic(q);
    await store.close();
    store = createSqliteStore({ path: file });
    const after = await store.queryTraffic(q);
    expect(after).toEqual(before);
    expect(after.totals).toEqual({ bytes: 2000, packets: 20, records: 2 });
  });
});

describe('sqlite store: replace semantics', () => {
  it('a second write of a key replaces its values, never adds', async () => {
    await store.writeRows([row({ bytes: 500, packets: 5, records: 1 })]);
    await store.writeRows([row({ bytes: 1500, packets: 15, records: 3 })]);
    expect((await store.queryTraffic(query())).totals).toEqual({ bytes: 1500, packets: 15, records: 3 });
  });

  it('replaces keys with null interfaces and folded pairs too (stored as -1, not NULL)', async () => {
    const folded = { inIf: null, outIf: null, community: null, activity: null, registered: false } as const;
    await store.writeRows([row({ ...folded, bytes: 7 })]);
    await store.writeRows([row({ ...folded, bytes: 9 })]);
    const r = await store.queryTraffic(query({ groupBy: ['community', 'activity'] }));
    expect(r.series).toHaveLength(1);
    expect(r.series[0]!.group).toEqual({ community: null, activity: null });
    expect(r.totals.bytes).toBe(9);
  });

  it('distinguishes every key dimension', async () => {
    await store.writeRows([
      row({}),
      row({ bucketStartMs: T0 + MIN }),
      row({ exporter: R2 }),
      row({ inIf: 3 }),
      row({ outIf: 3 }),
      row({ trafficClass: 'ipv4', community: null, activity: null }),
      row({ community: 3 }),
      row({ activity: 2 }),
    ]);
    expect((await store.queryTraffic(query())).totals).toEqual({ bytes: 8000, packets: 80, records: 8 });
  });

  it('writes nothing for an empty batch and fails after close', async () => {
    await store.writeRows([]);
    await store.close();
    await expect(store.writeRows([row({})])).rejects.toThrow();
  });
});

describe('sqlite store: queries', () => {
  beforeEach(async () => {
    await store.writeRows([
      // R1: in 1 -> out 2, atlas default and cms default, two minutes
      row({ bucketStartMs: T0, community: 2, activity: 1, bytes: 1000, packets: 10, records: 1 }),
      row({ bucketStartMs: T0 + MIN, community: 2, activity: 1, bytes: 2000, packets: 20, records: 2 }),
      row({ bucketStartMs: T0, community: 3, activity: 1, bytes: 300, packets: 3, records: 1 }),
      // R1: in 2 -> out 1, atlas perfSONAR
      row({ bucketStartMs: T0 + 2 * MIN, inIf: 2, outIf: 1, community: 2, activity: 2, bytes: 40, packets: 4, records: 4 }),
      // R1: unmarked on 1 -> 2
      row({
        bucketStartMs: T0,
        trafficClass: 'ipv6_unmarked',
        community: null,
        activity: null,
        registered: false,
        bytes: 5000,
        packets: 50,
        records: 5,
      }),
      row({
        bucketStartMs: T0,
        trafficClass: 'ipv4',
        community: null,
        activity: null,
        registered: false,
        bytes: 700,
        packets: 7,
        records: 7,
      }),
      // R2: no interfaces, unregistered folded
      row({
        bucketStartMs: T0 + 5 * MIN,
        exporter: R2,
        inIf: null,
        outIf: null,
        community: null,
        activity: null,
        registered: false,
        bytes: 11,
        packets: 1,
        records: 1,
      }),
      // outside the default range
      row({ bucketStartMs: T0 + 60 * MIN, bytes: 1e6 }),
      row({ bucketStartMs: T0 - MIN, bytes: 1e6 }),
    ]);
  });

  it('totals over [from, to): the end is exclusive', async () => {
    const r = await store.queryTraffic(query());
    expect(r.totals).toEqual({ bytes: 9051, packets: 95, records: 21 });
    expect(r.series).toHaveLength(1);
    expect(r.series[0]!.group).toEqual({});
    expect(r.series[0]!.totals).toEqual(r.totals);
    const narrow = await store.queryTraffic(query({ fromMs: T0 + MIN, toMs: T0 + 2 * MIN }));
    expect(narrow.totals).toEqual({ bytes: 2000, packets: 20, records: 2 });
  });

  it('groups by community and activity, largest first', async () => {
    const r = await store.queryTraffic(query({ groupBy: ['community', 'activity'] }));
    expect(r.series.map((s) => [s.group, s.totals.bytes])).toEqual([
      [{ community: null, activity: null }, 5711],
      [{ community: 2, activity: 1 }, 3000],
      [{ community: 3, activity: 1 }, 300],
      [{ community: 2, activity: 2 }, 40],
    ]);
    const atlas = r.series[1]!;
    expect(atlas.points).toEqual([
      { timeMs: T0, bytes: 1000, packets: 10, records: 1, bitsPerSecond: (1000 * 8) / 60, packetsPerSecond: 10 / 60 },
      { timeMs: T0 + MIN, bytes: 2000, packets: 20, records: 2, bitsPerSecond: (2000 * 8) / 60, packetsPerSecond: 20 / 60 },
    ]);
  });

  it('groups by class and exporter', async () => {
    const r = await store.queryTraffic(query({ groupBy: ['exporter', 'class'] }));
    expect(r.series.map((s) => [s.group, s.totals.bytes])).toEqual([
      [{ exporter: R1, class: 'ipv6_unmarked' }, 5000],
      [{ exporter: R1, class: 'scitags' }, 3340],
      [{ exporter: R1, class: 'ipv4' }, 700],
      [{ exporter: R2, class: 'scitags' }, 11],
    ]);
  });

  it('re-buckets to the step, aligned to the epoch', async () => {
    const r = await store.queryTraffic(query({ stepSeconds: 300, groupBy: ['class'] }));
    const scitags = r.series.find((s) => s.group.class === 'scitags')!;
    expect(scitags.points.map((p) => [p.timeMs, p.bytes, p.records])).toEqual([
      [T0, 3340, 8],
      [T0 + 5 * MIN, 11, 1],
    ]);
    expect(scitags.points[0]!.bitsPerSecond).toBe((3340 * 8) / 300);
    // A range starting mid-step still returns epoch-aligned points.
    const shifted = await store.queryTraffic(query({ fromMs: T0 + MIN, stepSeconds: 300, groupBy: [] }));
    expect(shifted.series[0]!.points.map((p) => [p.timeMs, p.bytes])).toEqual([
      [T0, 2040],
      [T0 + 5 * MIN, 11],
    ]);
  });

  it('groups by link: a row counts for its in-link and its out-link, once when both are one link', async () => {
    const r = await store.queryTraffic(query({ groupBy: ['link'] }));
    expect(r.series.map((s) => [s.group.link, s.totals.bytes])).toEqual([
      [formatLinkKey(R1, 1), 9040],
      [formatLinkKey(R1, 2), 9040],
      // Both sides unknown: one link, counted once (not 22).
      [formatLinkKey(R2, null), 11],
    ]);
    // The overall totals count each row once.
    expect(r.totals.bytes).toBe(9051);
  });

  it('counts a row with the same interface on both sides once per group, whatever else is grouped', async () => {
    await store.writeRows([
      row({ bucketStartMs: T0 + 3 * MIN, inIf: 4, outIf: 4, community: 2, activity: 1, bytes: 70, packets: 7, records: 1 }),
      row({ bucketStartMs: T0 + 3 * MIN, exporter: R2, inIf: null, outIf: 4, community: 2, activity: 1, bytes: 5, packets: 1, records: 1 }),
    ]);
    const series = async (groupBy: GroupByDimension[]) =>
      (await store.queryTraffic(query({ groupBy }))).series.map((s) => [
        ...groupBy.map((d) => s.group[d]),
        s.totals.bytes,
        s.totals.records,
      ]);
    expect(await series(['link'])).toEqual([
      [formatLinkKey(R1, 1), 9040, 20],
      [formatLinkKey(R1, 2), 9040, 20],
      [formatLinkKey(R1, 4), 70, 1],
      [formatLinkKey(R2, null), 16, 2],
      [formatLinkKey(R2, 4), 5, 1],
    ]);
    expect(await series(['exporter', 'link', 'class'])).toContainEqual([R1, formatLinkKey(R1, 4), 'scitags', 70, 1]);
    expect(await series(['exporter', 'link', 'class'])).toContainEqual([R2, formatLinkKey(R2, null), 'scitags', 16, 2]);
    // Direction tells the two sides apart: once in each.
    const byDirection = await series(['link', 'direction']);
    expect(byDirection).toContainEqual([formatLinkKey(R1, 4), 'in', 70, 1]);
    expect(byDirection).toContainEqual([formatLinkKey(R1, 4), 'out', 70, 1]);
    // A link filter on the hairpin interface: one row, once.
    const filtered = await store.queryTraffic(query({ groupBy: ['link'], link: [{ exporter: R1, ifIndex: 4 }] }));
    expect(filtered.series.map((s) => [s.group.link, s.totals.bytes])).toEqual([[formatLinkKey(R1, 4), 70]]);
    expect(filtered.totals.bytes).toBe(70);
  });

  it('groups by link and direction', async () => {
    const r = await store.queryTraffic(query({ groupBy: ['link', 'direction'] }));
    expect(r.series.map((s) => [s.group.link, s.group.direction, s.totals.bytes])).toEqual([
      [formatLinkKey(R1, 1), 'in', 9000],
      [formatLinkKey(R1, 2), 'out', 9000],
      [formatLinkKey(R1, 1), 'out', 40],
      [formatLinkKey(R1, 2), 'in', 40],
      [formatLinkKey(R2, null), 'in', 11],
      [formatLinkKey(R2, null), 'out', 11],
    ]);
    const byDirection = await store.queryTraffic(query({ groupBy: ['direction'] }));
    expect(byDirection.series.map((s) => [s.group.direction, s.totals.bytes])).toEqual([
      ['in', 9051],
      ['out', 9051],
    ]);
  });

  it('filters by community, activity, exporter and class', async () => {
    expect((await store.queryTraffic(query({ community: [2] }))).totals.bytes).toBe(3040);
    expect((await store.queryTraffic(query({ community: [2, 3], activity: [1] }))).totals.bytes).toBe(3300);
    expect((await store.queryTraffic(query({ exporter: [R2] }))).totals.bytes).toBe(11);
    expect((await store.queryTraffic(query({ trafficClass: ['ipv4', 'ipv6_unmarked'] }))).totals.bytes).toBe(5700);
    expect((await store.queryTraffic(query({ community: [] }))).totals.bytes).toBe(9051);
    expect(await store.queryTraffic(query({ community: [99] }))).toEqual({
      series: [],
      totals: { bytes: 0, packets: 0, records: 0 },
    });
  });

  it('filters by link: either side without link grouping, the matching side with it', async () => {
    const link = [{ exporter: R1, ifIndex: 2 }];
    // Rows 1 -> 2 (out-link matches) and 2 -> 1 (in-link matches): each once.
    expect((await store.queryTraffic(query({ link }))).totals.bytes).toBe(9040);
    const byDir = await store.queryTraffic(query({ link, groupBy: ['link', 'direction'] }));
    expect(byDir.series.map((s) => [s.group.link, s.group.direction, s.totals.bytes])).toEqual([
      [formatLinkKey(R1, 2), 'out', 9000],
      [formatLinkKey(R1, 2), 'in', 40],
    ]);
    const two = [
      { exporter: R1, ifIndex: 1 },
      { exporter: R1, ifIndex: 2 },
    ];
    // Both sides match: still counted once without link grouping.
    expect((await store.queryTraffic(query({ link: two }))).totals.bytes).toBe(9040);
    expect((await store.queryTraffic(query({ link: [{ exporter: R2, ifIndex: 2 }] }))).totals.bytes).toBe(0);
  });

  it('rejects a non-positive step and a reversed range', async () => {
    await expect(store.queryTraffic(query({ stepSeconds: 0 }))).rejects.toThrow(RangeError);
    await expect(store.queryTraffic(query({ fromMs: T0 + 1, toMs: T0 }))).rejects.toThrow(RangeError);
  });
});

describe('sqlite store: retention', () => {
  it('deletes rows whose bucket started more than retentionDays ago', async () => {
    await store.close();
    store = createSqliteStore({ path: file, retentionDays: 2 });
    const DAY = 86_400_000;
    const now = T0 + 10 * DAY;
    await store.writeRows([
      row({ bucketStartMs: now - 2 * DAY - MIN }),
      row({ bucketStartMs: now - 2 * DAY - 2 * MIN, exporter: R2 }),
      row({ bucketStartMs: now - 2 * DAY }),
      row({ bucketStartMs: now - MIN }),
    ]);
    expect(await store.applyRetention(now)).toBe(2);
    expect(await store.applyRetention(now)).toBe(0);
    const r = await store.queryTraffic(query({ fromMs: 0, toMs: now }));
    expect(r.totals.records).toBe(2);
  });

  it('keeps everything with retentionDays 0', async () => {
    await store.close();
    store = createSqliteStore({ path: file, retentionDays: 0 });
    await store.writeRows([row({ bucketStartMs: 0 })]);
    expect(await store.applyRetention(T0)).toBe(0);
  });
});

describe('link keys', () => {
  it('round-trips IPv4, IPv6 and absent interfaces', () => {
    for (const [exporter, ifIndex] of [
      [R1, 7],
      [R2, 4294967295],
      [R2, null],
    ] as const) {
      expect(parseLinkKey(formatLinkKey(exporter, ifIndex))).toEqual({ exporter, ifIndex });
    }
    expect(parseLinkKey('nohash')).toBeUndefined();
    expect(parseLinkKey('192.0.2.1#x')).toBeUndefined();
  });
});
