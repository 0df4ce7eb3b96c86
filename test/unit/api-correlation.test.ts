import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApi } from '../../src/api/index.js';
import { createSqliteStore, type SqliteTrafficStore } from '../../src/store/sqlite/index.js';
import type { FireflyRow, SiteTrafficRow } from '../../src/store/types.js';
import { bareApiDeps } from '../support/api-deps.js';
import { fireflyRow } from '../builders/rows.js';

const T0 = Date.UTC(2026, 10, 29, 12, 0, 0);
const MIN = 60_000;
const NOW = T0 + 30 * MIN;

/** A firefly row of ended flows: only what the correlation reads differs between rows. */
function firefly(community: number, srcSite: string, dstSite: string, bytes: number, flowsEnded: number, bucketStartMs = T0): FireflyRow {
  return fireflyRow(bucketStartMs, {
    community,
    activity: 1,
    srcSite,
    dstSite,
    flowsStarted: flowsEnded,
    flowsEnded,
    bytes,
    throughputSum: 0,
    throughputCount: 0,
    throughputMax: null,
    durationHistogram: [0, 0, 0, 0, 0, 0],
    throughputHistogram: [0, 0, 0, 0, 0, 0],
  });
}

function marked(exporter: string, community: number, srcSite: string, dstSite: string, bytes: number, bucketStartMs = T0): SiteTrafficRow {
  return {
    bucketStartMs,
    bucketSeconds: 60,
    exporter,
    srcSite,
    dstSite,
    trafficClass: 'scitags',
    community,
    activity: 1,
    registered: true,
    bytes,
    packets: bytes / 100,
    records: 1,
  };
}

describe('GET /api/v1/correlation (fireflies beside flow-label traffic, SQLite)', () => {
  let store: SqliteTrafficStore;
  beforeAll(async () => {
    store = createSqliteStore({ path: ':memory:' });
    // ATLAS (2): hosts reported 10,000 + 5,000 bytes CERN -> BNL in two buckets; the border
    // router 192.0.2.1 saw 6,000 + 1,500 marked, an inner router 192.0.2.2 the same again.
    await store.writeFireflyRows([
      firefly(2, 'CERN-PROD', 'BNL-ATLAS', 10_000, 4),
      firefly(2, 'CERN-PROD', 'BNL-ATLAS', 5_000, 1, T0 + MIN),
    ]);
    await store.writeSiteRows([
      marked('192.0.2.1', 2, 'CERN-PROD', 'BNL-ATLAS', 6_000),
      marked('192.0.2.1', 2, 'CERN-PROD', 'BNL-ATLAS', 1_500, T0 + MIN),
      marked('192.0.2.2', 2, 'CERN-PROD', 'BNL-ATLAS', 7_500),
      // CMS (3): marked traffic without fireflies, and unmarked traffic that never counts.
      marked('192.0.2.1', 3, 'FNAL', 'CERN-PROD', 2_000),
      {
        ...marked('192.0.2.1', 3, 'FNAL', 'CERN-PROD', 9_999),
        trafficClass: 'ipv6_unmarked',
        community: null,
        activity: null,
        registered: false,
      },
    ]);
    // SKA (7): fireflies only.
    await store.writeFireflyRows([firefly(7, 'CERN-PROD', 'unknown', 3_000, 2)]);
  });
  afterAll(async () => {
    await store.close();
  });

  const get = async (qs: string) => {
    const app = buildApi(bareApiDeps(store, NOW));
    const r = await app.inject({ url: `/api/v1/correlation?from=${T0 / 1000}&to=${(T0 + 10 * MIN) / 1000}&${qs}` });
    await app.close();
    return { status: r.statusCode, body: r.json() };
  };

  it('joins per experiment: firefly bytes and flows, marked bytes and packets, the visible share', async () => {
    const { status, body } = await get('step=600');
    expect(status).toBe(200);
    expect(body.series.map((s: any) => [s.group.communityName, s.totals])).toEqual([
      ['atlas', { fireflyBytes: 15_000, fireflyFlowsEnded: 5, flowLabelBytes: 15_000, flowLabelPackets: 150, visibleShare: 1 }],
      ['ska', { fireflyBytes: 3_000, fireflyFlowsEnded: 2, flowLabelBytes: 0, flowLabelPackets: 0, visibleShare: 0 }],
      ['cms', { fireflyBytes: 0, fireflyFlowsEnded: 0, flowLabelBytes: 2_000, flowLabelPackets: 20, visibleShare: null }],
    ]);
    expect(body.totals).toEqual({
      fireflyBytes: 18_000,
      fireflyFlowsEnded: 7,
      flowLabelBytes: 17_000,
      flowLabelPackets: 170,
      visibleShare: 17_000 / 18_000,
    });
  });

  it('one vantage point per site pair and step: the border router saw half of what the hosts reported', async () => {
    const { body } = await get('step=60&groupBy=community,srcSite,dstSite&exporter=192.0.2.1&community=atlas');
    expect(body.series).toHaveLength(1);
    const s = body.series[0];
    expect(s.group).toEqual({ community: 2, communityName: 'atlas', srcSite: 'CERN-PROD', dstSite: 'BNL-ATLAS' });
    expect(s.points.map((p: any) => [p.timeMs, p.fireflyBytes, p.flowLabelBytes, p.visibleShare])).toEqual([
      [T0, 10_000, 6_000, 0.6],
      [T0 + MIN, 5_000, 1_500, 0.3],
    ]);
    expect(s.totals.visibleShare).toBe(0.5);
  });

  it('answers 400 for a dimension neither view has', async () => {
    const { status, body } = await get('groupBy=link');
    expect(status).toBe(400);
    expect(body.parameter).toBe('groupBy');
  });
});
