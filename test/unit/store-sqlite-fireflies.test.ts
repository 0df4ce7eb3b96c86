import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createSqliteStore, type SqliteTrafficStore } from '../../src/store/sqlite/index.js';
import type { FireflyQuery, FireflyRow } from '../../src/store/types.js';
import { fireflyRow } from '../builders/rows.js';

const T0 = Date.UTC(2025, 0, 1, 12, 0, 0);
const MIN = 60_000;

const row = (over: Partial<FireflyRow>): FireflyRow => fireflyRow(T0, over);

const q = (over: Partial<FireflyQuery> = {}): FireflyQuery => ({ fromMs: T0, toMs: T0 + 60 * MIN, stepSeconds: 60, groupBy: [], ...over });

let dir: string;
let file: string;
let store: SqliteTrafficStore;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'store-ff-'));
  file = join(dir, 'scitags.sqlite');
  store = createSqliteStore({ path: file, retentionDays: 1 });
});
afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('sqlite store: fireflies', () => {
  it('round-trips rows (null maxima included) and replaces a key on rewrite instead of adding', async () => {
    const a = row({});
    const b = row({
      ipVersion: 4,
      srcSite: 'unknown',
      throughputSum: 0,
      throughputCount: 0,
      throughputMax: null,
      rttSum: 7.5,
      rttCount: 1,
      rttMax: 7.5,
      deliveryRateSum: 0,
      deliveryRateCount: 0,
      deliveryRateMax: null,
    });
    await store.writeFireflyRows([a, b]);
    const later = { ...a, flowsEnded: 2, bytes: 1500, durationSeconds: 12.5, durationHistogram: [0, 1, 1, 0, 0, 0] };
    await store.writeFireflyRows([later]); // the bucket's new total
    const back = (await store.readFireflyRows(T0)).sort((x, y) => x.ipVersion - y.ipVersion);
    expect(back).toEqual([b, later]);
    expect(await store.readFireflyRows(T0 + MIN)).toEqual([]);
  });

  it('groups per step and dimension: counts and sums add, maxima take the largest, nulls skipped; filters; largest first', async () => {
    await store.writeFireflyRows([
      row({}),
      row({ bucketStartMs: T0 + MIN, bytes: 3000, throughputSum: 500, throughputMax: 500, rttSum: 4, rttCount: 1, rttMax: 4 }),
      row({ bucketStartMs: T0 + 2 * MIN, community: 3, dstSite: 'FNAL', bytes: 99, flowsExpired: 2 }),
      row({ bucketStartMs: T0 + 60 * MIN, bytes: 1 }), // outside [from, to)
    ]);
    const r = await store.queryFireflies(q({ stepSeconds: 300, groupBy: ['community', 'srcSite', 'dstSite'] }));
    expect(r.series.map((s) => s.group)).toEqual([
      { community: 2, srcSite: 'CERN-PROD', dstSite: 'BNL-ATLAS' },
      { community: 3, srcSite: 'CERN-PROD', dstSite: 'FNAL' },
    ]);
    expect(r.series[0]!.points).toEqual([
      {
        timeMs: T0,
        flowsStarted: 2,
        flowsEnded: 2,
        flowsExpired: 0,
        flowsWithoutStart: 0,
        bytes: 4000,
        durationSeconds: 20,
        throughputSum: 1300,
        throughputCount: 2,
        throughputMax: 800,
        rttSum: 4,
        rttCount: 1,
        rttMax: 4,
        deliveryRateSum: 0,
        deliveryRateCount: 0,
        deliveryRateMax: null,
        retransmits: 0,
        durationHistogram: [0, 0, 2, 0, 0, 0],
        throughputHistogram: [2, 0, 0, 0, 0, 0],
      },
    ]);
    expect(r.totals).toMatchObject({ flowsStarted: 3, flowsExpired: 2, bytes: 4099, throughputMax: 800, rttMax: 4 });
    const filtered = await store.queryFireflies(q({ groupBy: ['dstSite'], community: [3], dstSite: ['FNAL', 'nowhere'], ipVersion: [6] }));
    expect(filtered.series.map((s) => [s.group, s.totals.bytes, s.points.map((p) => p.timeMs)])).toEqual([
      [{ dstSite: 'FNAL' }, 99, [T0 + 2 * MIN]],
    ]);
    expect((await store.queryFireflies(q({ ipVersion: [4] }))).series).toEqual([]);
  });

  it('applies retention to firefly rows too', async () => {
    await store.writeFireflyRows([row({}), row({ bucketStartMs: T0 + 2 * 86_400_000 })]);
    expect(await store.applyRetention(T0 + 2 * 86_400_000)).toBe(1);
    expect((await store.readFireflyRows(0)).map((r) => r.bucketStartMs)).toEqual([T0 + 2 * 86_400_000]);
  });

  it('migrates a file of schema version 2 (fireflies without delivery rate): old rows read 0 / 0 / null, new ones keep theirs', async () => {
    await store.writeFireflyRows([row({})]);
    await store.close();
    // A version-2 file: the same table without the columns version 3 appends.
    const db = new Database(file);
    for (const c of ['delivery_rate_sum', 'delivery_rate_count', 'delivery_rate_max']) db.exec(`ALTER TABLE firefly DROP COLUMN ${c}`);
    // ...and without what versions 4 and 5 added (traffic.nat64, site_traffic, nat64_top).
    db.exec('DROP TABLE nat64_top');
    db.exec('DROP TABLE site_traffic');
    db.exec('ALTER TABLE traffic RENAME TO traffic_v4_tmp');
    db.exec(
      'CREATE TABLE traffic AS SELECT bucket_start, exporter, in_if, out_if, class, community, activity, bucket_seconds, registered, bytes, packets, records FROM traffic_v4_tmp',
    );
    db.exec('DROP TABLE traffic_v4_tmp');
    db.pragma('user_version = 2');
    db.close();
    store = createSqliteStore({ path: file });
    expect(await store.readFireflyRows(0)).toEqual([row({})]);
    const rated = row({ bucketStartMs: T0 + MIN, deliveryRateSum: 3e6, deliveryRateCount: 2, deliveryRateMax: 2.5e6 });
    await store.writeFireflyRows([rated]);
    expect(await store.readFireflyRows(T0 + MIN)).toEqual([rated]);
    const totals = (await store.queryFireflies(q({}))).totals;
    expect([totals.deliveryRateSum, totals.deliveryRateCount, totals.deliveryRateMax]).toEqual([3e6, 2, 2.5e6]);
  });

  it('migrates a file of schema version 1 (traffic only) and keeps its rows', async () => {
    await store.close();
    rmSync(file);
    const db = new Database(file);
    db.exec(`CREATE TABLE traffic (bucket_start INTEGER NOT NULL, exporter TEXT NOT NULL, in_if INTEGER NOT NULL, out_if INTEGER NOT NULL,
      class TEXT NOT NULL, community INTEGER NOT NULL, activity INTEGER NOT NULL, bucket_seconds INTEGER NOT NULL, registered INTEGER NOT NULL,
      bytes INTEGER NOT NULL, packets INTEGER NOT NULL, records INTEGER NOT NULL,
      PRIMARY KEY (bucket_start, exporter, in_if, out_if, class, community, activity)) WITHOUT ROWID`);
    db.exec(`INSERT INTO traffic VALUES (${T0}, '192.0.2.1', 1, 2, 'scitags', 2, 3, 60, 1, 500, 5, 1)`);
    db.pragma('user_version = 1');
    db.close();
    store = createSqliteStore({ path: file });
    expect((await store.readRows(0)).map((r) => r.bytes)).toEqual([500]);
    await store.writeFireflyRows([row({})]);
    expect(await store.readFireflyRows(0)).toEqual([row({})]);
  });
});
