import { mkdtempSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fireflyEvent } from '../support/firefly-events.js';
import type { FireflyFlowEvent } from '../../decoders/firefly/types.js';
import { buildApi, type ApiDeps } from '../../src/api/index.js';
import { influxStoreSchema } from '../../src/config/schema.js';
import { FireflyAggregator } from '../../src/fireflies/aggregate.js';
import { silentLogger } from '../../src/log.js';
import { createMetrics } from '../../src/metrics/index.js';
import { RegistryService } from '../../src/registry/service.js';
import { createInfluxStore, type InfluxTrafficStore } from '../../src/store/influx/store.js';
import { createSqliteStore, type SqliteTrafficStore } from '../../src/store/sqlite/index.js';
import type { FireflyRow } from '../../src/store/types.js';
import { influxQuery } from '../support/dashboards.js';
import { influxdAvailable, startInfluxd, type InfluxdHandle } from '../support/influxd.js';
import { bareApiDeps } from '../support/api-deps.js';

/**
 * Fireflies end to end below the flow table: the same FireflyFlowEvents summed by a
 * FireflyAggregator into SQLite and into a real influxd, then GET /api/v1/fireflies over HTTP
 * on loopback against each store. Exact answers, the two stores answer alike (and refuse the
 * same bad requests alike), and the scitags_firefly points are as docs/influx-schema.md says.
 */
const HOUR = 3_600_000;
const MIN = 60_000;
// Recent buckets: influxd drops points older than its retention policy.
const BASE = Math.floor(Date.now() / HOUR) * HOUR - 3 * HOUR;
const NOW = BASE + 3 * HOUR;

function ev(over: Partial<FireflyFlowEvent>): FireflyFlowEvent {
  return fireflyEvent(over.kind ?? 'started', over.atMs ?? BASE + 1000, over);
}

/** Values exact in binary, so sums in any order (SQL, InfluxQL, JS) are equal. */
const EVENTS: FireflyFlowEvent[] = [
  ev({}),
  ev({ atMs: BASE + 2000 }),
  ev({
    kind: 'ended',
    atMs: BASE + 3000,
    bytes: 1000,
    durationSeconds: 10,
    throughputBitsPerSecond: 800,
    rttMs: 20,
    deliveryRateBitsPerSecond: 4_000_000,
    retransmits: 2,
  }),
  ev({
    kind: 'ended',
    atMs: BASE + 4000,
    bytes: 3000,
    durationSeconds: 2.5,
    throughputBitsPerSecond: 9600,
    rttMs: 10.5,
    deliveryRateBitsPerSecond: 1_000_000.5,
    withoutStart: true,
  }),
  ev({ atMs: BASE + MIN + 1, ipVersion: 4, dstSite: 'unknown' }),
  ev({ kind: 'expired', atMs: BASE + MIN + 2, ipVersion: 4, dstSite: 'unknown' }),
  ev({
    kind: 'ended',
    atMs: BASE + 5 * MIN,
    experimentId: 300,
    activityId: 7,
    srcSite: 'unknown',
    dstSite: 'FNAL',
    bytes: 5000,
    durationSeconds: 4,
    throughputBitsPerSecond: 10_000,
  }),
  ev({ atMs: BASE + 10 * MIN, experimentId: 3, activityId: 5, srcSite: 'FNAL', dstSite: 'CERN-PROD' }),
  ev({
    kind: 'ended',
    atMs: BASE + 10 * MIN + 5,
    experimentId: 3,
    activityId: 5,
    srcSite: 'FNAL',
    dstSite: 'CERN-PROD',
    bytes: 64,
    durationSeconds: 0.5,
    throughputBitsPerSecond: 1024,
    rttMs: 0.25,
  }),
];

interface Totals {
  flowsStarted: number;
  flowsEnded: number;
  flowsExpired: number;
  bytes: number;
  durationSeconds: number;
  durationMeanSeconds: number | null;
  throughputMeanBitsPerSecond: number | null;
  throughputMaxBitsPerSecond: number | null;
  rttMeanMs: number | null;
  rttMaxMs: number | null;
  durationHistogram: number[];
}
interface Answer {
  stepSeconds: number;
  groupBy: string[];
  series: { group: Record<string, string | number>; points: (Totals & { timeMs: number; bitsPerSecond: number })[]; totals: Totals }[];
  totals: Totals & { bitsPerSecond: number };
}

describe.skipIf(!influxdAvailable())('GET /api/v1/fireflies over SQLite and InfluxDB', () => {
  let db: InfluxdHandle;
  let influx: InfluxTrafficStore;
  let sqlite: SqliteTrafficStore;
  const apis: FastifyInstance[] = [];
  const urls: Record<'influx' | 'sqlite', string> = { influx: '', sqlite: '' };

  beforeAll(async () => {
    db = await startInfluxd();
    const registry = new RegistryService(
      { url: '', refreshSeconds: 3600, cacheFile: '', timeoutMs: 1000 },
      { now: () => NOW, fetchText: () => Promise.reject(new Error('offline')), log: silentLogger() },
    );
    const base = influxStoreSchema.parse({ type: 'influx', url: db.url });
    influx = await createInfluxStore(
      { ...base, database: 'fireflies', spoolDir: mkdtempSync(join(tmpdir(), 'spool-')), continuousQueries: false },
      { registry: () => registry.registry, links: [], log: silentLogger(), bucketSeconds: 60 },
    );
    sqlite = createSqliteStore({ path: ':memory:' });
    for (const store of [influx, sqlite]) {
      const agg = new FireflyAggregator({ bucketSeconds: 60 }, { now: () => BASE, store });
      for (const e of EVENTS) agg.sink(e);
      await agg.flush();
    }
    await influx.flush();
    const metrics = createMetrics({ registryStatus: () => registry.status(), now: () => NOW });
    for (const [name, store] of [
      ['influx', influx],
      ['sqlite', sqlite],
    ] as const) {
      const deps: ApiDeps = bareApiDeps(store, NOW, { registry, metricsRegistry: metrics.registry, security: { rateLimitPerMinute: 0 } });
      const api = buildApi(deps);
      apis.push(api);
      urls[name] = await api.listen({ port: 0, host: '127.0.0.1' });
    }
  }, 60_000);

  afterAll(async () => {
    for (const a of apis) await a.close();
    await influx?.close();
    await sqlite?.close();
    await db?.destroy();
  });

  const get = async (store: 'influx' | 'sqlite', path: string) => {
    const res = await fetch(`${urls[store]}${path}`);
    return { status: res.status, body: (await res.json()) as unknown };
  };
  const both = async (path: string) => {
    const a = await get('influx', path);
    const b = await get('sqlite', path);
    expect(a, path).toEqual(b);
    return a;
  };
  const range = `from=${BASE / 1000}&to=${(BASE + HOUR) / 1000}`;

  it('InfluxDB holds one scitags_firefly point per row with the documented tags and fields', async () => {
    const series = await influxQuery(
      db.url,
      'fireflies',
      `SELECT * FROM "scitags_firefly" WHERE "community_id" = '2' AND "ip_version" = '6'`,
    );
    expect(series).toHaveLength(1);
    const s = series[0]!;
    const at = (name: string) => s.values[0]![s.columns.indexOf(name)];
    expect(s.values).toHaveLength(1);
    expect(
      Object.fromEntries(
        ['community', 'activity', 'community_id', 'activity_id', 'ip_version', 'src_site', 'dst_site', 'instance'].map((t) => [t, at(t)]),
      ),
    ).toEqual({
      community: 'atlas',
      activity: 'Data Brokering',
      community_id: '2',
      activity_id: '3',
      ip_version: '6',
      src_site: 'CERN-PROD',
      dst_site: 'BNL-ATLAS',
      // No fireflies.instance given: the hostname.
      instance: hostname(),
    });
    expect(at('time')).toBe(BASE);
    expect(
      [
        'flows_started',
        'flows_ended',
        'flows_expired',
        'flows_without_start',
        'bytes',
        'duration_seconds',
        'throughput_sum_bps',
        'throughput_count',
        'throughput_max_bps',
        'rtt_sum_ms',
        'rtt_count',
        'rtt_max_ms',
        'delivery_rate_sum_bps',
        'delivery_rate_count',
        'delivery_rate_max_bps',
        'retransmits',
        'duration_1s_10s',
        'duration_10s_1m',
        'duration_over_1h',
        'throughput_under_1m',
      ].map(at),
    ).toEqual([2, 2, 0, 1, 4000, 12.5, 10400, 2, 9600, 30.5, 2, 20, 5_000_000.5, 2, 4_000_000, 2, 1, 1, 0, 2]);
    // Unregistered ids are kept as their numbers; a missing maximum is no field.
    const other = await influxQuery(
      db.url,
      'fireflies',
      `SELECT "community", "activity", "bytes", "rtt_max_ms" FROM "scitags_firefly" WHERE "community_id" = '300'`,
    );
    expect(other[0]!.values).toEqual([[BASE + 5 * MIN, '300', '7', 5000, null]]);
  });

  it('both stores read back the same rows (restart seeding)', async () => {
    const order = (rows: FireflyRow[]) => [...rows].sort((a, b) => a.bucketStartMs - b.bucketStartMs || a.community - b.community);
    const fromSqlite = order(await sqlite.readFireflyRows(BASE));
    expect(fromSqlite).toHaveLength(4);
    expect(order(await influx.readFireflyRows(BASE))).toEqual(fromSqlite);
  });

  it('per experiment and activity: exact totals and names, largest first', async () => {
    const { status, body } = await both(`/api/v1/fireflies?${range}`);
    expect(status).toBe(200);
    const a = body as Answer;
    expect(a.stepSeconds).toBe(60);
    expect(a.groupBy).toEqual(['community', 'activity']);
    expect(a.series.map((s) => s.group)).toEqual([
      { community: 300, communityName: '300', activity: 7, activityName: '7' },
      { community: 2, communityName: 'atlas', activity: 3, activityName: 'Data Brokering' },
      { community: 3, communityName: 'cms', activity: 5, activityName: 'Data Brokering' },
    ]);
    expect(a.series[1]!.totals).toEqual({
      flowsStarted: 3,
      flowsEnded: 2,
      flowsExpired: 1,
      flowsWithoutStart: 1,
      bytes: 4000,
      durationSeconds: 12.5,
      durationMeanSeconds: 6.25,
      bitsPerSecond: (4000 * 8) / 3600,
      throughputMeanBitsPerSecond: 5200,
      throughputMaxBitsPerSecond: 9600,
      rttMeanMs: 15.25,
      rttMaxMs: 20,
      // flowd-go deliveryRate of the two ended flows, bit/s
      deliveryRateMeanBitsPerSecond: 2_500_000.25,
      deliveryRateMaxBitsPerSecond: 4_000_000,
      retransmits: 2,
      durationHistogram: [0, 1, 1, 0, 0, 0],
      throughputHistogram: [2, 0, 0, 0, 0, 0],
    });
    expect((body as { bins: unknown }).bins).toEqual({
      durationSeconds: [1, 10, 60, 600, 3600, null],
      throughputBitsPerSecond: [1e6, 1e7, 1e8, 1e9, 1e10, null],
    });
    expect(a.series[1]!.points.map((p) => [p.timeMs, p.flowsStarted, p.flowsEnded, p.flowsExpired, p.bytes, p.bitsPerSecond])).toEqual([
      [BASE, 2, 2, 0, 4000, (4000 * 8) / 60],
      [BASE + MIN, 1, 0, 1, 0, 0],
    ]);
    expect(a.series[0]!.totals).toMatchObject({
      throughputMeanBitsPerSecond: 10_000,
      rttMeanMs: null,
      rttMaxMs: null,
      deliveryRateMeanBitsPerSecond: null,
      deliveryRateMaxBitsPerSecond: null,
      durationMeanSeconds: 4,
    });
    expect(a.totals).toMatchObject({ flowsStarted: 4, flowsEnded: 4, flowsExpired: 1, bytes: 9064, durationSeconds: 17, rttMaxMs: 20 });
    expect(a.totals.throughputMeanBitsPerSecond).toBe((800 + 9600 + 10_000 + 1024) / 4);
  });

  it('groupBy=srcSite,dstSite: the site-pair table; filters by site, IP version and experiment name', async () => {
    const pairs = (await both(`/api/v1/fireflies?${range}&groupBy=srcSite,dstSite&step=1h`)).body as Answer;
    expect(pairs.series.map((s) => [s.group, s.totals.flowsStarted, s.totals.flowsEnded, s.totals.bytes])).toEqual([
      [{ srcSite: 'unknown', dstSite: 'FNAL' }, 0, 1, 5000],
      [{ srcSite: 'CERN-PROD', dstSite: 'BNL-ATLAS' }, 2, 2, 4000],
      [{ srcSite: 'FNAL', dstSite: 'CERN-PROD' }, 1, 1, 64],
      [{ srcSite: 'CERN-PROD', dstSite: 'unknown' }, 1, 0, 0],
    ]);
    expect(pairs.series[1]!.points.map((p) => p.timeMs)).toEqual([BASE]);
    const filtered = (await both(`/api/v1/fireflies?${range}&groupBy=ipVersion&srcSite=CERN-PROD&community=atlas&ipVersion=4`))
      .body as Answer;
    expect(filtered.series.map((s) => [s.group, s.totals.flowsStarted, s.totals.flowsExpired])).toEqual([[{ ipVersion: 4 }, 1, 1]]);
    const none = (await both(`/api/v1/fireflies?${range}&dstSite=nowhere&groupBy=`)).body as Answer;
    expect([none.series, none.totals.flowsStarted, none.totals.throughputMaxBitsPerSecond]).toEqual([[], 0, null]);
  });

  it('bad parameters are 400s naming the parameter, alike in both stores', async () => {
    const cases: [string, string][] = [
      ['groupBy=link', 'groupBy'],
      ['ipVersion=5', 'ipVersion'],
      ['srcSite=', 'srcSite'],
      ['srcSite=a,,b', 'srcSite'],
      ['community=nosuch', 'community'],
      ['step=7', 'step'],
      ['class=ipv4', 'class'],
    ];
    for (const [q, parameter] of cases) {
      const { status, body } = await both(`/api/v1/fireflies?${range}&${q}`);
      expect([q, status, (body as { parameter: string }).parameter]).toEqual([q, 400, parameter]);
    }
    const g = (await get('sqlite', `/api/v1/fireflies?groupBy=exporter`)).body as { message: string };
    expect(g.message).toBe('must be a comma-separated list of community, activity, ipVersion, srcSite, dstSite');
  });

  it('the OpenAPI document describes the route', async () => {
    const doc = (await get('sqlite', '/api/v1/openapi.json')).body as {
      paths: Record<string, { get: { parameters: { name: string }[] } }>;
    };
    expect(doc.paths['/api/v1/fireflies']!.get.parameters.map((p) => p.name).sort()).toEqual(
      ['activity', 'community', 'dstSite', 'from', 'groupBy', 'ipVersion', 'srcSite', 'step', 'to'].sort(),
    );
  });

  it('20 random queries answer alike in both stores', { timeout: 60_000 }, async () => {
    const list = (xs: string[]) =>
      fc.option(
        fc.subarray(xs, { minLength: 1 }).map((s) => s.join(',')),
        { nil: undefined },
      );
    const query = fc.record({
      from: fc.constantFrom(String(BASE / 1000), String((BASE + 2 * MIN) / 1000), 'now-1d', '0'),
      to: fc.constantFrom(String((BASE + HOUR) / 1000), 'now', '2262-04-11T23:47:16Z'),
      step: fc.option(fc.constantFrom('60', '5m', '1h', '1d'), { nil: undefined }),
      groupBy: fc.option(
        fc.subarray(['community', 'activity', 'ipVersion', 'srcSite', 'dstSite']).map((s) => s.join(',')),
        { nil: undefined },
      ),
      community: list(['2', '3', '300', 'cms']),
      activity: list(['3', '5', '7']),
      ipVersion: list(['4', '6']),
      srcSite: list(['CERN-PROD', 'unknown', 'FNAL']),
      dstSite: list(['BNL-ATLAS', 'FNAL', "it's"]),
    });
    let series = 0;
    await fc.assert(
      fc.asyncProperty(query, async (q) => {
        const params = Object.entries(q).filter((e): e is [string, string] => e[1] !== undefined);
        const { status, body } = await both(`/api/v1/fireflies?${new URLSearchParams(params).toString()}`);
        if (status === 200) series += (body as Answer).series.length;
      }),
      { numRuns: 20, seed: 13, endOnFailure: true },
    );
    expect(series).toBeGreaterThan(0);
  });

  it('a rewritten bucket replaces its row in both stores (idempotent), maxima included', async () => {
    const row: FireflyRow = {
      bucketStartMs: BASE - HOUR,
      bucketSeconds: 60,
      community: 4,
      activity: 1,
      ipVersion: 6,
      srcSite: 'A',
      dstSite: 'B',
      flowsStarted: 1,
      flowsEnded: 1,
      flowsExpired: 0,
      flowsWithoutStart: 0,
      bytes: 10,
      durationSeconds: 1,
      throughputSum: 80,
      throughputCount: 1,
      throughputMax: 80,
      rttSum: 0,
      rttCount: 0,
      rttMax: null,
      deliveryRateSum: 0,
      deliveryRateCount: 0,
      deliveryRateMax: null,
      retransmits: 0,
      durationHistogram: [0, 1, 0, 0, 0, 0],
      throughputHistogram: [1, 0, 0, 0, 0, 0],
    };
    const later = {
      ...row,
      durationHistogram: [0, 2, 0, 0, 0, 0],
      throughputHistogram: [2, 0, 0, 0, 0, 0],
      flowsEnded: 2,
      bytes: 30,
      durationSeconds: 3,
      throughputSum: 240,
      throughputCount: 2,
      throughputMax: 160,
      rttSum: 1.5,
      rttCount: 1,
      rttMax: 1.5,
      deliveryRateSum: 0,
      deliveryRateCount: 0,
      deliveryRateMax: null,
    };
    for (const store of [influx, sqlite]) {
      await store.writeFireflyRows([row]);
      await store.writeFireflyRows([later]);
      await store.writeFireflyRows([later]);
    }
    await influx.flush();
    const path = `/api/v1/fireflies?from=${(BASE - HOUR) / 1000}&to=${BASE / 1000}&groupBy=community`;
    const a = (await both(path)).body as Answer;
    expect(
      a.series.map((s) => [
        s.group.community,
        s.totals.flowsEnded,
        s.totals.bytes,
        s.totals.throughputMaxBitsPerSecond,
        s.totals.rttMaxMs,
        s.totals.durationHistogram,
      ]),
    ).toEqual([[4, 2, 30, 160, 1.5, [0, 2, 0, 0, 0, 0]]]);
  });
});
