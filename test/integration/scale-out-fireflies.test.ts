import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
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
import { influxQuery, runDashboard, tableRows, type DashboardJson } from '../support/dashboards.js';
import { influxdAvailable, startInfluxd, type InfluxdHandle } from '../support/influxd.js';

/**
 * Fireflies in the scale-out shape (docs/scale-out.md): two collector instances, each with its
 * own flow table, write scitags_firefly rows of the SAME key (experiment, activity, IP version,
 * site pair) and bucket into one real influxd. Their `instance` tags (fireflies.instance) keep
 * the points disjoint, so GET /api/v1/fireflies on either instance and the dashboard's site-pair
 * table answer the sum of both. The control database shows why: two instances with one name
 * write one series, and the last write wins.
 */
const HOUR = 3_600_000;
const MIN = 60_000;
const BASE = Math.floor(Date.now() / HOUR) * HOUR - 3 * HOUR;
const NOW = BASE + 3 * HOUR;

function ev(over: Partial<FireflyFlowEvent>): FireflyFlowEvent {
  return fireflyEvent(over.kind ?? 'started', over.atMs ?? BASE + 1000, over);
}

// Values exact in binary, so sums in any order are equal.
const A_EVENTS = [
  ev({}),
  ev({ atMs: BASE + 2000 }),
  ev({ kind: 'ended', atMs: BASE + 3000, bytes: 1000, durationSeconds: 10, throughputBitsPerSecond: 800, rttMs: 20, retransmits: 2 }),
];
const B_EVENTS = [
  ev({ atMs: BASE + 1500 }),
  ev({ kind: 'ended', atMs: BASE + 4000, bytes: 3000, durationSeconds: 2.5, throughputBitsPerSecond: 9600, rttMs: 10.5 }),
  ev({
    kind: 'ended',
    atMs: BASE + 5 * MIN,
    experimentId: 3,
    activityId: 5,
    srcSite: 'FNAL',
    dstSite: 'CERN-PROD',
    bytes: 64,
    durationSeconds: 0.5,
  }),
];

interface Totals {
  flowsStarted: number;
  flowsEnded: number;
  bytes: number;
  durationSeconds: number;
  throughputMeanBitsPerSecond: number | null;
  throughputMaxBitsPerSecond: number | null;
  rttMeanMs: number | null;
  rttMaxMs: number | null;
  retransmits: number;
}
interface Answer {
  series: { group: Record<string, string | number>; totals: Totals }[];
  totals: Totals;
}

describe.skipIf(!influxdAvailable())('scale-out: two instances counting fireflies share one InfluxDB', () => {
  let db: InfluxdHandle;
  const stores: InfluxTrafficStore[] = [];
  let api: FastifyInstance | undefined;
  let url = '';

  const registry = new RegistryService(
    { url: '', refreshSeconds: 3600, cacheFile: '', timeoutMs: 1000 },
    { now: () => NOW, fetchText: () => Promise.reject(new Error('offline')), log: silentLogger() },
  );
  const open = async (database: string, instance: string): Promise<InfluxTrafficStore> => {
    const base = influxStoreSchema.parse({ type: 'influx', url: db.url });
    const store = await createInfluxStore(
      { ...base, database, spoolDir: mkdtempSync(join(tmpdir(), 'spool-')), continuousQueries: false },
      { registry: () => registry.registry, links: [], log: silentLogger(), bucketSeconds: 60, instance },
    );
    stores.push(store);
    return store;
  };
  /** One instance's flow-table events through its own aggregator into its store. */
  const count = async (store: InfluxTrafficStore, events: FireflyFlowEvent[]): Promise<void> => {
    const agg = new FireflyAggregator({ bucketSeconds: 60 }, { now: () => BASE, store });
    for (const e of events) agg.sink(e);
    await agg.flush();
    await store.flush();
  };

  beforeAll(async () => {
    db = await startInfluxd();
    const a = await open('shared', 'collector-a');
    const b = await open('shared', 'collector-b');
    await count(a, A_EVENTS);
    await count(b, B_EVENTS);
    // Control: both instances left with one name.
    await count(await open('control', 'same'), A_EVENTS);
    await count(await open('control', 'same'), B_EVENTS);
    const deps: ApiDeps = {
      store: a,
      registry,
      links: [],
      exporters: () => [],
      health: () => ({ status: 'ok', checks: {} }),
      metricsRegistry: createMetrics({ registryStatus: () => registry.status(), now: () => NOW }).registry,
      bucketSeconds: 60,
      now: () => NOW,
      security: { rateLimitPerMinute: 0 },
    };
    api = buildApi(deps);
    url = await api.listen({ port: 0, host: '127.0.0.1' });
  }, 60_000);

  afterAll(async () => {
    await api?.close();
    for (const s of stores) await s.close();
    await db?.destroy();
  });

  it('the shared bucket holds one point per instance, tagged with its name', async () => {
    const series = await influxQuery(
      db.url,
      'shared',
      `SELECT "instance", "flows_started", "flows_ended", "bytes" FROM "scitags_firefly" WHERE "community_id" = '2'`,
    );
    expect(series[0]!.values.map((v) => v.slice(1)).sort()).toEqual([
      ['collector-a', 2, 1, 1000],
      ['collector-b', 1, 1, 3000],
    ]);
    expect(series[0]!.values.map((v) => v[0])).toEqual([BASE, BASE]);
  });

  it('GET /api/v1/fireflies on one instance answers the sum of both instances', async () => {
    const res = await fetch(`${url}/api/v1/fireflies?from=${BASE / 1000}&to=${(BASE + HOUR) / 1000}`);
    expect(res.status).toBe(200);
    const a = (await res.json()) as Answer;
    expect(a.series.map((s) => [s.group.community, s.group.activity])).toEqual([
      [2, 3],
      [3, 5],
    ]);
    expect(a.series[0]!.totals).toMatchObject({
      flowsStarted: 3,
      flowsEnded: 2,
      bytes: 4000,
      durationSeconds: 12.5,
      throughputMeanBitsPerSecond: 5200,
      throughputMaxBitsPerSecond: 9600,
      rttMeanMs: 15.25,
      rttMaxMs: 20,
      retransmits: 2,
    });
    expect(a.totals).toMatchObject({ flowsStarted: 3, flowsEnded: 3, bytes: 4064, durationSeconds: 13 });
  });

  it("each instance seeds its open buckets from its own rows only (never another instance's)", async () => {
    const [a, b] = stores;
    expect((await a!.readFireflyRows(BASE)).map((r) => [r.community, r.flowsStarted, r.flowsEnded, r.bytes])).toEqual([[2, 2, 1, 1000]]);
    const fromB = (await b!.readFireflyRows(BASE)).map((r) => [r.community, r.flowsStarted, r.flowsEnded, r.bytes]);
    expect(fromB.sort()).toEqual([
      [2, 1, 1, 3000],
      [3, 0, 1, 64],
    ]);
  });

  it("the dashboard's site-pair table sums the instances", async () => {
    const dashboard = JSON.parse(
      readFileSync(new URL('../../dashboards/scitags-fireflies.json', import.meta.url), 'utf8'),
    ) as DashboardJson;
    const r = await runDashboard(dashboard, { url: db.url, database: 'shared', fromMs: BASE, toMs: BASE + HOUR, intervalMs: 5 * MIN });
    const table = r.targets.find((t) => t.panelId === 3)!;
    const rows = tableRows(table).map((x) => [x.src_site, x.dst_site, x.started, x.ended, x.bytes]);
    expect(rows.sort()).toEqual([
      ['CERN-PROD', 'BNL-ATLAS', 3, 2, 4000],
      ['FNAL', 'CERN-PROD', 0, 1, 64],
    ]);
  });

  it('control: two instances with one name overwrite each other (the last write wins)', async () => {
    const series = await influxQuery(
      db.url,
      'control',
      `SELECT sum("flows_started"), sum("bytes") FROM "scitags_firefly" WHERE "community_id" = '2'`,
    );
    expect(series[0]!.values.map((v) => v.slice(1))).toEqual([[1, 3000]]);
  });
});
