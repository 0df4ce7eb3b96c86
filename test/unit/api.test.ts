import { silentLogger } from '../../src/log.js';
import { captureLog } from '../support/logs.js';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApi, parseLinkKey, parseTime } from '../../src/api/index.js';
import type { ApiDeps, ExporterInfo, HealthInfo } from '../../src/api/index.js';
import { createMetrics } from '../../src/metrics/index.js';
import { RegistryService } from '../../src/registry/service.js';
import { createSqliteStore, formatLinkKey } from '../../src/store/sqlite/index.js';
import type { TrafficQuery, TrafficQueryResult, TrafficRow, TrafficSeries, TrafficStore } from '../../src/store/types.js';

// ---------------------------------------------------------------------------------------
// A small in-memory TrafficStore with the semantics of the SQLite store (src/store/sqlite/
// query.ts), which the API relies on; the traffic tests run against both:
//  - a row replaces the row with the same key (bucket, exporter, inIf, outIf, class, pair);
//  - rows with fromMs <= bucketStartMs < toMs; points at multiples of the step counted from
//    the epoch (sparse);
//  - filters are per dimension (a null community / activity never matches an id filter);
//  - grouping by link / direction: a row counts for link (exporter, inIf) with direction "in"
//    and for (exporter, outIf) with direction "out" (once when both are one link and direction
//    is not grouped), a link filter keeps the matching sides;
//    otherwise a row counts once, and a link filter keeps rows with either side on a link;
//    the link group value is formatLinkKey ("exporter#ifIndex");
//  - result totals count each matching row once.
// ---------------------------------------------------------------------------------------

class MemoryStore implements TrafficStore {
  readonly kind = 'memory';
  readonly rows = new Map<string, TrafficRow>();
  fail: Error | undefined;
  lastQuery: TrafficQuery | undefined;

  async readRows(fromMs: number): Promise<TrafficRow[]> {
    return [...this.rows.values()].filter((r) => r.bucketStartMs >= fromMs);
  }

  async writeRows(rows: TrafficRow[]): Promise<void> {
    for (const r of rows) {
      const key = [r.bucketStartMs, r.exporter, r.inIf, r.outIf, r.trafficClass, r.community, r.activity].join('|');
      this.rows.set(key, { ...r });
    }
  }

  async queryTraffic(q: TrafficQuery): Promise<TrafficQueryResult> {
    this.lastQuery = q;
    if (this.fail) throw this.fail;
    const stepMs = q.stepSeconds * 1000;
    const expanded = q.groupBy.includes('link') || q.groupBy.includes('direction');
    const onLink = (exporter: string, ifIndex: number | null) =>
      !q.link || q.link.some((l) => l.exporter === exporter && l.ifIndex === ifIndex);
    const groups = new Map<string, TrafficSeries>();
    const totals = { bytes: 0, packets: 0, records: 0 };
    for (const r of this.rows.values()) {
      if (r.bucketStartMs < q.fromMs || r.bucketStartMs >= q.toMs) continue;
      if (q.community && (r.community === null || !q.community.includes(r.community))) continue;
      if (q.activity && (r.activity === null || !q.activity.includes(r.activity))) continue;
      if (q.exporter && !q.exporter.includes(r.exporter)) continue;
      if (q.trafficClass && !q.trafficClass.includes(r.trafficClass)) continue;
      let members: { link: string | null; direction: string | null }[] = [{ link: null, direction: null }];
      if (expanded) {
        members = (
          [
            [r.inIf, 'in'],
            [r.outIf, 'out'],
          ] as const
        )
          .filter(([ifIndex]) => onLink(r.exporter, ifIndex))
          // Both sides on one link fall in one group unless direction is grouped: once there.
          .filter(([, direction]) => direction === 'in' || q.groupBy.includes('direction') || r.inIf !== r.outIf)
          .map(([ifIndex, direction]) => ({ link: formatLinkKey(r.exporter, ifIndex), direction }));
      } else if (!onLink(r.exporter, r.inIf) && !onLink(r.exporter, r.outIf)) continue;
      if (members.length === 0) continue;
      totals.bytes += r.bytes;
      totals.packets += r.packets;
      totals.records += r.records;
      for (const m of members) {
        const values: Record<string, string | number | null> = {
          community: r.community,
          activity: r.activity,
          link: m.link,
          exporter: r.exporter,
          direction: m.direction,
          class: r.trafficClass,
        };
        const group = Object.fromEntries(q.groupBy.map((d) => [d, values[d] ?? null]));
        const key = JSON.stringify(group);
        let s = groups.get(key);
        if (!s) {
          s = { group, points: [], totals: { bytes: 0, packets: 0, records: 0 } };
          groups.set(key, s);
        }
        const timeMs = r.bucketStartMs - (r.bucketStartMs % stepMs);
        let p = s.points.find((x) => x.timeMs === timeMs);
        if (!p) {
          p = { timeMs, bytes: 0, packets: 0, records: 0, bitsPerSecond: 0, packetsPerSecond: 0 };
          s.points.push(p);
        }
        for (const t of [p, s.totals]) {
          t.bytes += r.bytes;
          t.packets += r.packets;
          t.records += r.records;
        }
        p.bitsPerSecond = (p.bytes * 8) / q.stepSeconds;
        p.packetsPerSecond = p.packets / q.stepSeconds;
      }
    }
    for (const s of groups.values()) s.points.sort((a, b) => a.timeMs - b.timeMs);
    return { series: [...groups.values()], totals };
  }

  async close(): Promise<void> {}
}

// ---------------------------------------------------------------------------------------
// Fixture: known rows, links, exporters, registry snapshot, metrics
// ---------------------------------------------------------------------------------------

const T0 = 1759276800000; // 2025-10-01T00:00:00Z
const NOW = T0 + 3600_000; // 01:00
const MIN = 60_000;

function row(p: Partial<TrafficRow> & Pick<TrafficRow, 'bucketStartMs' | 'bytes' | 'packets' | 'records'>): TrafficRow {
  return {
    bucketSeconds: 60,
    exporter: '192.0.2.1',
    inIf: 7,
    outIf: 8,
    trafficClass: 'scitags',
    community: null,
    activity: null,
    registered: false,
    ...p,
  };
}

const ROWS: TrafficRow[] = [
  // atlas (2) / Production Input (15)
  row({ bucketStartMs: T0, community: 2, activity: 15, registered: true, bytes: 1000, packets: 10, records: 1 }),
  row({ bucketStartMs: T0 + MIN, community: 2, activity: 15, registered: true, bytes: 3000, packets: 30, records: 2 }),
  // cms (3) / Production Input (12)
  row({ bucketStartMs: T0 + MIN, community: 3, activity: 12, registered: true, bytes: 500, packets: 5, records: 1 }),
  // unregistered pairs folded, on the IPv6 exporter
  row({ bucketStartMs: T0 + 2 * MIN, exporter: '2001:db8::1', inIf: 1, outIf: 2, bytes: 200, packets: 2, records: 1 }),
  // unmarked IPv6 in the other direction
  row({ bucketStartMs: T0 + 2 * MIN, inIf: 8, outIf: 7, trafficClass: 'ipv6_unmarked', bytes: 10000, packets: 100, records: 4 }),
  // IPv4
  row({ bucketStartMs: T0 + 3 * MIN, trafficClass: 'ipv4', bytes: 6000, packets: 60, records: 3 }),
  // an unregistered pair kept by configuration (200, 10)
  row({ bucketStartMs: T0, community: 200, activity: 10, bytes: 100, packets: 1, records: 1 }),
  // an exporter that reports no interfaces, an hour later (outside the usual range)
  row({
    bucketStartMs: T0 + 120 * MIN,
    exporter: '198.51.100.1',
    inIf: null,
    outIf: null,
    trafficClass: 'ipv4',
    bytes: 50,
    packets: 1,
    records: 1,
  }),
  // before the range
  row({ bucketStartMs: T0 - MIN, community: 2, activity: 15, registered: true, bytes: 999999, packets: 999, records: 9 }),
];

const EXPORTERS: ExporterInfo[] = [
  {
    address: '2001:db8::1',
    protocols: ['sflow'],
    sessions: ['[2001:db8::1]:6343'],
    lastSeenMs: NOW - 5000,
    datagrams: 10,
    records: 40,
    errorsByReason: {},
    decoderCrashes: {},
    sequenceGaps: 0,
    lostRecords: 0,
    samplingRates: [{ domain: 3, rate: 4096, source: 'header' }],
    liveTemplates: 0,
    rateLimited: { datagrams: 0, sessions: 0 },
    decoderState: { bytes: 0, evictions: 0 },
    padding: { datagrams: 0, octets: 0 },
  },
  {
    address: '192.0.2.1',
    protocols: ['ipfix'],
    sessions: ['192.0.2.1:50000'],
    lastSeenMs: NOW - 61_500,
    datagrams: 100,
    records: 2500,
    decoderCrashes: {},
    errorsByReason: { truncated: 2, 'template-missing': 5 },
    sequenceGaps: 1,
    lostRecords: 30,
    samplingRates: [{ domain: 0, rate: 1000, source: 'options' }],
    liveTemplates: 3,
    rateLimited: { datagrams: 7, sessions: 2 },
    decoderState: { bytes: 5632, evictions: 4 },
    padding: { datagrams: 2, octets: 128 },
  },
];

let health: HealthInfo = { status: 'ok', checks: { store: { status: 'ok' }, registry: { status: 'ok', message: 'snapshot' } } };

const store = new MemoryStore();
const registry = new RegistryService(
  { url: '', refreshSeconds: 3600, cacheFile: '', timeoutMs: 1000 },
  { now: () => T0 - 3600_000, fetchText: () => Promise.reject(new Error('offline')), log: silentLogger() },
);
const metrics = createMetrics({ registryStatus: () => registry.status(), now: () => NOW });

function deps(extra: Partial<ApiDeps> = {}): ApiDeps {
  return {
    store,
    registry,
    links: [
      { exporter: '192.0.2.1', ifIndex: 7, name: 'cern-geant', capacityBps: 100e9 },
      { exporter: '192.0.2.1', ifIndex: 8, name: 'cern-lan' },
    ],
    learnedInterfaces: () => [
      { exporter: '2001:db8::1', ifIndex: 1, name: 'et-0/0/1' },
      { exporter: '192.0.2.1', ifIndex: 7, name: 'xe-1/0/0' },
    ],
    exporters: () => EXPORTERS,
    health: () => health,
    metricsRegistry: metrics.registry,
    bucketSeconds: 60,
    now: () => NOW,
    ...extra,
  };
}

let app: FastifyInstance;

beforeAll(async () => {
  await store.writeRows(ROWS);
  app = buildApi(deps());
  await app.ready();
});

afterAll(async () => {
  await app.close();
  await sqlite.close();
});

async function get(url: string, a: FastifyInstance = app): Promise<{ status: number; body: any; type: string }> {
  const res = await a.inject({ method: 'GET', url });
  const type = String(res.headers['content-type'] ?? '');
  return { status: res.statusCode, body: type.startsWith('application/json') ? res.json() : res.body, type };
}

const FROM = '2025-10-01T00:00:00Z';
const TO = String(T0 / 1000 + 300); // epoch seconds, 00:05
const RANGE = `from=${FROM}&to=${TO}`;

const tot = (bytes: number, packets: number, records: number, seconds: number) => ({
  bytes,
  packets,
  records,
  bitsPerSecond: (bytes * 8) / seconds,
  packetsPerSecond: packets / seconds,
});
const pt = (timeMs: number, bytes: number, packets: number, records: number, step = 60) => ({
  time: new Date(timeMs).toISOString(),
  timeMs,
  bytes,
  packets,
  records,
  bitsPerSecond: (bytes * 8) / step,
  packetsPerSecond: packets / step,
});

// ---------------------------------------------------------------------------------------
// /api/v1/traffic
// ---------------------------------------------------------------------------------------

const sqlite = createSqliteStore({ path: ':memory:' });
const STORES: [string, TrafficStore][] = [
  ['memory', store],
  ['sqlite', sqlite],
];

describe.each(STORES)('GET /api/v1/traffic over the %s store', (_kind, trafficStore) => {
  let a: FastifyInstance;
  beforeAll(async () => {
    if (trafficStore !== store) await trafficStore.writeRows(ROWS);
    a = buildApi(deps({ store: trafficStore }));
    await a.ready();
  });
  afterAll(async () => {
    await a.close();
  });

  it('groups by community and activity (class added) with names, points, totals', async () => {
    const { status, body } = await get(`/api/v1/traffic?${RANGE}&step=60`, a);
    expect(status).toBe(200);
    expect(body).toEqual({
      from: '2025-10-01T00:00:00.000Z',
      to: '2025-10-01T00:05:00.000Z',
      fromMs: T0,
      toMs: T0 + 5 * MIN,
      stepSeconds: 60,
      bucketSeconds: 60,
      groupBy: ['community', 'activity', 'class'],
      filters: {},
      series: [
        {
          group: { community: null, communityName: null, activity: null, activityName: null, class: 'ipv6_unmarked' },
          points: [pt(T0 + 2 * MIN, 10000, 100, 4)],
          totals: tot(10000, 100, 4, 300),
        },
        {
          group: { community: null, communityName: null, activity: null, activityName: null, class: 'ipv4' },
          points: [pt(T0 + 3 * MIN, 6000, 60, 3)],
          totals: tot(6000, 60, 3, 300),
        },
        {
          group: { community: 2, communityName: 'atlas', activity: 15, activityName: 'Production Input', class: 'scitags' },
          points: [pt(T0, 1000, 10, 1), pt(T0 + MIN, 3000, 30, 2)],
          totals: tot(4000, 40, 3, 300),
        },
        {
          group: { community: 3, communityName: 'cms', activity: 12, activityName: 'Production Input', class: 'scitags' },
          points: [pt(T0 + MIN, 500, 5, 1)],
          totals: tot(500, 5, 1, 300),
        },
        {
          group: { community: null, communityName: 'unregistered', activity: null, activityName: 'unregistered', class: 'scitags' },
          points: [pt(T0 + 2 * MIN, 200, 2, 1)],
          totals: tot(200, 2, 1, 300),
        },
        {
          group: { community: 200, communityName: 'unregistered', activity: 10, activityName: 'unregistered', class: 'scitags' },
          points: [pt(T0, 100, 1, 1)],
          totals: tot(100, 1, 1, 300),
        },
      ],
      totals: tot(20800, 208, 13, 300),
      omittedGroups: 0,
    });
  });

  it('filters by experiment names and ids and echoes both', async () => {
    const { status, body } = await get(`/api/v1/traffic?${RANGE}&step=5m&community=ATLAS,3`, a);
    expect(status).toBe(200);
    expect(body.filters).toEqual({
      community: [
        { id: 2, name: 'atlas' },
        { id: 3, name: 'cms' },
      ],
    });
    expect(body.series.map((s: any) => [s.group.communityName, s.group.activityName, s.totals.bytes, s.points])).toEqual([
      ['atlas', 'Production Input', 4000, [pt(T0, 4000, 40, 3, 300)]],
      ['cms', 'Production Input', 500, [pt(T0, 500, 5, 1, 300)]],
    ]);
    expect(body.totals).toEqual(tot(4500, 45, 4, 300));
  });

  it('resolves activity names across experiments, or within the experiments given', async () => {
    const all = await get(`/api/v1/traffic?${RANGE}&activity=Production%20Input&groupBy=community`, a);
    expect(all.body.filters).toEqual({
      activity: [
        { id: 12, name: 'Production Input' },
        { id: 13, name: 'Production Input' },
        { id: 15, name: 'Production Input' },
      ],
    });
    expect(all.body.series.map((s: any) => s.group)).toEqual([
      { community: 2, communityName: 'atlas', class: 'scitags' },
      { community: 3, communityName: 'cms', class: 'scitags' },
    ]);
    const cms = await get(`/api/v1/traffic?${RANGE}&activity=production%20input&community=cms`, a);
    expect(cms.body.filters.activity).toEqual([{ id: 12, name: 'Production Input' }]);
    expect(cms.body.totals).toEqual(tot(500, 5, 1, 300));
    const byId = await get(`/api/v1/traffic?${RANGE}&activity=2&groupBy=activity`, a);
    expect(byId.body.filters.activity).toEqual([{ id: 2, name: 'perfSONAR' }]);
    expect(byId.body.series).toEqual([]);
    expect(byId.body.totals).toEqual(tot(0, 0, 0, 300));
  });

  it('groups by link and direction with configured and learned link names', async () => {
    const { status, body } = await get(`/api/v1/traffic?${RANGE}&step=300&groupBy=link,direction&link=cern-geant`, a);
    expect(status).toBe(200);
    expect(body.groupBy).toEqual(['link', 'direction']);
    expect(body.filters).toEqual({ link: [{ link: '192.0.2.1:7', name: 'cern-geant' }] });
    expect(body.series).toEqual([
      {
        group: { link: '192.0.2.1:7', linkName: 'cern-geant', linkExporter: '192.0.2.1', linkIfIndex: 7, direction: 'in' },
        points: [pt(T0, 10600, 106, 8, 300)],
        totals: tot(10600, 106, 8, 300),
      },
      {
        group: { link: '192.0.2.1:7', linkName: 'cern-geant', linkExporter: '192.0.2.1', linkIfIndex: 7, direction: 'out' },
        points: [pt(T0, 10000, 100, 4, 300)],
        totals: tot(10000, 100, 4, 300),
      },
    ]);
    const v6 = await get(`/api/v1/traffic?${RANGE}&groupBy=link&link=2001:db8::1:1`, a);
    expect(v6.body.filters).toEqual({ link: [{ link: '[2001:db8::1]:1', name: 'et-0/0/1' }] });
    expect(v6.body.series.map((s: any) => [s.group, s.totals.bytes])).toEqual([
      [{ link: '[2001:db8::1]:1', linkName: 'et-0/0/1', linkExporter: '2001:db8::1', linkIfIndex: 1 }, 200],
    ]);
    const unnamed = await get(`/api/v1/traffic?${RANGE}&groupBy=link&link=2001:db8::1:2`, a);
    expect(unnamed.body.series.map((s: any) => s.group)).toEqual([
      { link: '[2001:db8::1]:2', linkName: null, linkExporter: '2001:db8::1', linkIfIndex: 2 },
    ]);
  });

  it('shows a link without interface as exporter:- and names links of every exporter', async () => {
    const { body } = await get(`/api/v1/traffic?${RANGE}&groupBy=link&exporter=2001:db8::1`, a);
    expect(body.series.map((s: any) => [s.group, s.totals.bytes])).toEqual([
      [{ link: '[2001:db8::1]:1', linkName: 'et-0/0/1', linkExporter: '2001:db8::1', linkIfIndex: 1 }, 200],
      [{ link: '[2001:db8::1]:2', linkName: null, linkExporter: '2001:db8::1', linkIfIndex: 2 }, 200],
    ]);
    const none = await get(`/api/v1/traffic?from=2025-10-01T02:00:00Z&to=2025-10-01T02:01:00Z&groupBy=link,direction`, a);
    expect(none.body.series.map((s: any) => [s.group, s.totals.bytes])).toEqual([
      [{ link: '198.51.100.1:-', linkName: null, linkExporter: '198.51.100.1', linkIfIndex: null, direction: 'in' }, 50],
      [{ link: '198.51.100.1:-', linkName: null, linkExporter: '198.51.100.1', linkIfIndex: null, direction: 'out' }, 50],
    ]);
  });

  it('groupBy empty gives one series; exporter and class filters', async () => {
    const { body } = await get(`/api/v1/traffic?${RANGE}&step=5m&groupBy=&exporter=192.0.2.1&class=ipv4,ipv6_unmarked`, a);
    expect(body.groupBy).toEqual([]);
    expect(body.series).toEqual([{ group: {}, points: [pt(T0, 16000, 160, 7, 300)], totals: tot(16000, 160, 7, 300) }]);
  });

  it('accepts relative times and defaults: now-1h .. now, step = bucket width', async () => {
    const { status, body } = await get('/api/v1/traffic', a);
    expect(status).toBe(200);
    expect([body.fromMs, body.toMs, body.stepSeconds]).toEqual([T0, NOW, 60]);
    expect(body.totals).toEqual(tot(20800, 208, 13, 3600));
    const week = await get('/api/v1/traffic?from=now-30d&to=now-0s', a);
    // 30 days at 60 s would be 43200 points: the default step grows to a multiple of 60.
    expect([week.body.fromMs, week.body.toMs, week.body.stepSeconds]).toEqual([NOW - 30 * 86400_000, NOW, 300]);
    const offset = await get('/api/v1/traffic?from=2025-10-01T02:00:00%2B02:00&to=2025-10-01 01:05:00 01:00', a);
    expect([offset.body.fromMs, offset.body.toMs]).toEqual([T0, T0 + 5 * MIN]);
  });

  it('limits the number of groups, reporting how many were left out', async () => {
    const small = buildApi(deps({ store: trafficStore, limits: { maxGroups: 2 } }));
    const { body } = await get(`/api/v1/traffic?${RANGE}`, small);
    expect(body.series.map((s: any) => s.group.class)).toEqual(['ipv6_unmarked', 'ipv4']);
    expect(body.omittedGroups).toBe(4);
    expect(body.totals).toEqual(tot(20800, 208, 13, 300));
    await small.close();
  });
});

describe('GET /api/v1/traffic: query handed to the store, store failures', () => {
  it('passes exactly the resolved query to the store', async () => {
    await get(
      `/api/v1/traffic?${RANGE}&step=2m&community=atlas,3&activity=production%20input&link=cern-geant,[2001:db8::1]:1&exporter=192.0.2.1&class=scitags,ipv4&groupBy=exporter`,
    );
    expect(store.lastQuery).toEqual({
      fromMs: T0,
      toMs: T0 + 5 * MIN,
      stepSeconds: 120,
      groupBy: ['exporter'],
      community: [2, 3],
      activity: [12, 15],
      link: [
        { exporter: '192.0.2.1', ifIndex: 7 },
        { exporter: '2001:db8::1', ifIndex: 1 },
      ],
      exporter: ['192.0.2.1'],
      trafficClass: ['scitags', 'ipv4'],
    });
  });

  it('answers 503 when the store fails', async () => {
    store.fail = new Error('database is locked');
    try {
      const { status, body } = await get(`/api/v1/traffic?${RANGE}`);
      expect(status).toBe(503);
      expect(body).toEqual({ error: 'store unavailable', message: 'database is locked' });
    } finally {
      store.fail = undefined;
    }
  });
});

describe('GET /api/v1/traffic: bad parameters answer 400 naming the parameter', () => {
  const cases: [string, string, string][] = [
    ['step=0', 'step', 'must be >= 1 second'],
    ['step=abc', 'step', 'must be a duration in seconds (300) or with a unit (30s, 5m, 1h, 1d)'],
    ['step=-60', 'step', 'must be a duration in seconds (300) or with a unit (30s, 5m, 1h, 1d)'],
    ['step=90', 'step', 'must be a multiple of the bucket width (60 s)'],
    ['step=367d', 'step', 'must be at most 366 days'],
    [
      'from=now-30d&step=60',
      'step',
      'the range with this step gives 43200 points, more than the limit of 10000: use a step of at least 300 s',
    ],
    [
      'from=yesterday',
      'from',
      'must be one of: now, now-<n><s|m|h|d|w> (now-1h), epoch seconds (1735689600) or RFC 3339 (2025-01-01T00:00:00Z, 2025-01-01T01:00:00+01:00)',
    ],
    ['from=2025-02-30T00:00:00Z', 'from', '"2025-02-30T00:00:00Z" is not a valid date and time'],
    ['from=1759276800000', 'from', 'must be epoch seconds; 1759276800000 looks like milliseconds'],
    [
      'to=2025-10-01T00:00:00Z&from=2025-10-01T00:00:00Z',
      'to',
      'must be later than from (from 2025-10-01T00:00:00.000Z, to 2025-10-01T00:00:00.000Z)',
    ],
    ['to=now-2h', 'to', 'must be later than from (from 2025-10-01T00:00:00.000Z, to 2025-09-30T23:00:00.000Z)'],
    [
      'groupBy=community,planet',
      'groupBy',
      'must be a comma-separated list of community, activity, link, exporter, direction, class, nat64, srcSite, dstSite, site',
    ],
    ['community=nosuch', 'community', 'unknown experiment "nosuch": not in the registry (give a numeric id for unregistered ones)'],
    ['community=512', 'community', 'experiment id 512 is out of range 0..511'],
    ['community=', 'community', 'must not be empty'],
    ['community=atlas,,cms', 'community', 'must be a comma-separated list of experiment ids or names'],
    ['community=2&community=3', 'community', 'must be given once (use a comma-separated list for several values)'],
    ['activity=64', 'activity', 'activity id 64 is out of range 0..63'],
    ['activity=Nothing', 'activity', 'unknown activity "Nothing": not in the registry (give a numeric id for unregistered ones)'],
    [
      'activity=Recovery&community=cms',
      'activity',
      'unknown activity "Recovery": not in the registry for the experiments given (give a numeric id for unregistered ones)',
    ],
    [
      'link=nowhere',
      'link',
      'unknown link "nowhere": give a configured link name (cern-geant, cern-lan) or exporter:ifIndex (192.0.2.1:7, [2001:db8::1]:7)',
    ],
    ['exporter=router1', 'exporter', '"router1" is not an IPv4 or IPv6 address'],
    ['class=ipv5', 'class', 'must be a comma-separated list of scitags, ipv6_unmarked, ipv4, unknown'],
    [
      'bogus=1',
      'bogus',
      'unknown parameter (allowed: from, to, step, groupBy, community, activity, link, exporter, class, srcSite, dstSite, site, provisional)',
    ],
  ];
  for (const [query, parameter, message] of cases) {
    it(`${query} -> ${parameter}`, async () => {
      const { status, body } = await get(`/api/v1/traffic?${query}`);
      expect(status).toBe(400);
      expect(body).toEqual({ error: 'bad request', parameter, message });
    });
  }
});

// ---------------------------------------------------------------------------------------
// Other endpoints
// ---------------------------------------------------------------------------------------

describe('GET /api/v1/experiments', () => {
  it('lists the registry in use with source, modified date and ages', async () => {
    const { status, body } = await get('/api/v1/experiments');
    expect(status).toBe(200);
    expect(body.registry).toEqual({
      source: 'snapshot',
      modified: '2025-09-04T12:01:55.844133+00:00',
      modifiedAgeSeconds: 2293084,
      loadedAt: '2025-09-30T23:00:00.000Z',
      loadedAgeSeconds: 7200,
      lastAttempt: null,
      lastError: null,
      refreshes: 0,
      failures: 0,
    });
    expect(body.communities.map((c: any) => [c.id, c.name])).toEqual([
      [1, 'default'],
      [2, 'atlas'],
      [3, 'cms'],
      [4, 'lhcb'],
      [5, 'alice'],
      [6, 'belleii'],
      [7, 'ska'],
      [8, 'dune'],
      [9, 'lsst'],
      [10, 'ilc'],
      [11, 'auger'],
      [12, 'juno'],
      [13, 'nova'],
      [14, 'xenon'],
    ]);
    expect(body.communities[3]).toEqual({
      id: 4,
      name: 'lhcb',
      activities: [
        { id: 1, name: 'default' },
        { id: 2, name: 'perfSONAR' },
        { id: 3, name: 'Cache' },
        { id: 4, name: 'Data Challenge' },
      ],
    });
    expect(body.communities[1].activities).toHaveLength(23);
  });
});

describe('GET /api/v1/links', () => {
  const side = (s?: { totals: { bytes: number; packets: number; records: number } }) => ({
    bytes: s?.totals.bytes ?? 0,
    packets: s?.totals.packets ?? 0,
    records: s?.totals.records ?? 0,
  });

  it('lists configured links, then learned interface names not configured, then links seen only in the store', async () => {
    const { status, body } = await get('/api/v1/links');
    expect(status).toBe(200);
    expect(body).toMatchObject({ from: new Date(NOW - 3600_000).toISOString(), fromMs: NOW - 3600_000, toMs: NOW, omittedLinks: 0 });
    expect(body.links.map((l: { link: string; name: string | null; source: string }) => [l.link, l.name, l.source])).toEqual([
      ['192.0.2.1:7', 'cern-geant', 'config'],
      ['192.0.2.1:8', 'cern-lan', 'config'],
      ['[2001:db8::1]:1', 'et-0/0/1', 'learned'],
      ['[2001:db8::1]:2', null, 'traffic'],
    ]);
    expect(body.links[0]).toMatchObject({ exporter: '192.0.2.1', ifIndex: 7, capacityBps: 100e9 });
    expect(body.links[3]).toMatchObject({ exporter: '2001:db8::1', ifIndex: 2, capacityBps: null });
    // Each entry's traffic is what /api/v1/traffic says for that link and direction over the same range.
    const traffic = (await get(`/api/v1/traffic?from=${(NOW - 3600_000) / 1000}&to=${NOW / 1000}&groupBy=link,direction`)).body as {
      series: { group: { link: string; direction: string }; totals: { bytes: number; packets: number; records: number } }[];
    };
    for (const l of body.links as { link: string; traffic: unknown }[]) {
      const find = (d: string) => traffic.series.find((s) => s.group.link === l.link && s.group.direction === d);
      expect(l.traffic, l.link).toEqual({ in: side(find('in')), out: side(find('out')) });
    }
    expect(body.links[0].traffic.in.bytes).toBeGreaterThan(0);
  });

  it('bounds the links only the store knows with limit, and counts the rest', async () => {
    const { body } = await get('/api/v1/links?limit=0');
    expect(body.links.map((l: { source: string }) => l.source)).toEqual(['config', 'config', 'learned']);
    expect(body.omittedLinks).toBe(1);
    expect((await get('/api/v1/links?limit=10001')).body).toEqual({
      error: 'bad request',
      parameter: 'limit',
      message: 'must be an integer from 0 to 10000',
    });
    expect((await get('/api/v1/links?limit=-1')).status).toBe(400);
    expect((await get('/api/v1/links?from=now&to=now-1h')).body).toMatchObject({ parameter: 'to' });
  });

  it('answers 503 when the store fails', async () => {
    store.fail = new Error('disk I/O error');
    try {
      const { status, body } = await get('/api/v1/links');
      expect(status).toBe(503);
      expect(body).toEqual({ error: 'store unavailable', message: 'disk I/O error' });
    } finally {
      store.fail = undefined;
    }
  });
});

describe('GET /api/v1/exporters', () => {
  it('lists exporters by address with counters, errors, sampling and templates', async () => {
    const { status, body } = await get('/api/v1/exporters');
    expect(status).toBe(200);
    expect(body).toEqual({
      exporters: [
        {
          address: '192.0.2.1',
          protocols: ['ipfix'],
          sessions: ['192.0.2.1:50000'],
          lastSeen: '2025-10-01T00:58:58.500Z',
          lastSeenMs: NOW - 61_500,
          lastSeenAgeSeconds: 61,
          datagrams: 100,
          records: 2500,
          errorsByReason: { truncated: 2, 'template-missing': 5 },
          decoderCrashes: {},
          sequenceGaps: 1,
          lostRecords: 30,
          samplingRates: [{ domain: 0, rate: 1000, source: 'options' }],
          liveTemplates: 3,
          rateLimited: { datagrams: 7, sessions: 2 },
          decoderState: { bytes: 5632, evictions: 4 },
          padding: { datagrams: 2, octets: 128 },
        },
        {
          address: '2001:db8::1',
          protocols: ['sflow'],
          sessions: ['[2001:db8::1]:6343'],
          lastSeen: '2025-10-01T00:59:55.000Z',
          lastSeenMs: NOW - 5000,
          lastSeenAgeSeconds: 5,
          datagrams: 10,
          records: 40,
          errorsByReason: {},
          decoderCrashes: {},
          sequenceGaps: 0,
          lostRecords: 0,
          samplingRates: [{ domain: 3, rate: 4096, source: 'header' }],
          liveTemplates: 0,
          rateLimited: { datagrams: 0, sessions: 0 },
          decoderState: { bytes: 0, evictions: 0 },
          padding: { datagrams: 0, octets: 0 },
        },
      ],
    });
  });
});

describe('GET /health', () => {
  it('answers 200 when ok or degraded, 503 when down', async () => {
    const ok = await get('/health');
    expect(ok.status).toBe(200);
    expect(ok.body).toEqual({
      status: 'ok',
      version: expect.stringMatching(/^\d+\.\d+\.\d+/),
      time: '2025-10-01T01:00:00.000Z',
      reasons: [],
      checks: { store: { status: 'ok' }, registry: { status: 'ok', message: 'snapshot' } },
    });
    const reason = { reason: 'kernel_drops', metric: 'scitags_kernel_udp_drops_total', detail: 'the kernel dropped 94 of 100' };
    health = { status: 'degraded', reasons: [reason], checks: { registry: { status: 'degraded', message: 'refresh failed' } } };
    const degraded = await get('/health');
    expect(degraded.status).toBe(200);
    expect(degraded.body.reasons).toEqual([reason]);
    // Strict: degraded is a 503, asked per request or configured (health.strict); ?strict=0 overrides.
    expect((await get('/health?strict=1')).status).toBe(503);
    expect((await get('/health?strict=true')).status).toBe(503);
    health = { ...health, strict: true };
    expect((await get('/health')).status).toBe(503);
    expect((await get('/health?strict=0')).status).toBe(200);
    expect((await get('/health?strict=yes')).body).toEqual({
      error: 'bad request',
      parameter: 'strict',
      message: 'must be 0, 1, true or false',
    });
    health = { status: 'down', checks: { store: { status: 'down', message: 'disk full' } } };
    const down = await get('/health');
    expect(down.status).toBe(503);
    expect(down.body.checks).toEqual({ store: { status: 'down', message: 'disk full' } });
    health = { status: 'ok', checks: {} };
  });
});

describe('GET /metrics', () => {
  it('serves the Prometheus text of the metrics registry', async () => {
    metrics.datagramsReceived.inc({ listener: 'ipfix', exporter: metrics.exporterLabel('192.0.2.1') }, 3);
    const { status, body, type } = await get('/metrics');
    expect(status).toBe(200);
    expect(type).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(body).toContain('scitags_datagrams_received_total{listener="ipfix",exporter="192.0.2.1"} 3');
    expect(body).toContain('scitags_registry_info{source="snapshot",modified="2025-09-04T12:01:55.844133+00:00"} 1');
    expect(body).toContain('scitags_registry_age_seconds 7200');
    for (const name of [
      'scitags_decode_errors_total',
      'scitags_queue_drops_total',
      'scitags_kernel_udp_drops_total',
      'scitags_store_writes_total',
    ]) {
      expect(body).toContain(`# TYPE ${name} counter`);
    }
  });
});

describe('other routes and parameters', () => {
  it('rejects parameters on endpoints that take none', async () => {
    for (const url of ['/api/v1/experiments?x=1', '/api/v1/exporters?x=1', '/metrics?x=1']) {
      const { status, body } = await get(url);
      expect(status).toBe(400);
      expect(body).toEqual({ error: 'bad request', parameter: 'x', message: 'unknown parameter (this endpoint takes none)' });
    }
    expect((await get('/api/v1/links?x=1')).body).toEqual({
      error: 'bad request',
      parameter: 'x',
      message: 'unknown parameter (allowed: from, to, limit)',
    });
    expect((await get('/health?x=1')).body).toEqual({
      error: 'bad request',
      parameter: 'x',
      message: 'unknown parameter (allowed: strict)',
    });
  });

  it('answers 404 in JSON for unknown routes', async () => {
    const { status, body } = await get('/api/v1/nothing?x=1');
    expect(status).toBe(404);
    expect(body).toEqual({ error: 'not found', message: 'no route GET /api/v1/nothing' });
  });

  it('GET /api/v1/fireflies answers 503 from a store that keeps no fireflies, after checking the parameters', async () => {
    const { status, body } = await get(`/api/v1/fireflies?${RANGE}`);
    expect([status, body]).toEqual([503, { error: 'store unavailable', message: 'the memory store does not keep fireflies' }]);
    expect((await get(`/api/v1/fireflies?${RANGE}&ipVersion=5`)).status).toBe(400);
  });

  it('GET /api/v1/transition/nat64-destinations: summed per address from the store, limit checked, 503 when off', async () => {
    const topStore = createSqliteStore({ path: ':memory:' });
    const row = (bucketStartMs: number, rank: number, address: string, bytes: number, errorBytes = 0) => ({
      bucketStartMs,
      bucketSeconds: 60,
      rank,
      address,
      bytes,
      packets: bytes / 100,
      errorBytes,
    });
    await topStore.writeNat64TopRows([
      row(T0, 1, '192.0.2.33', 5000),
      row(T0, 2, '203.0.113.5', 2500),
      row(T0 + MIN, 1, '192.0.2.33', 1000, 100),
    ]);
    await topStore.writeNat64TopRows([row(T0 + 10 * MIN, 1, '198.51.100.1', 9000)]); // outside the range
    const a = buildApi(deps({ store: topStore, nat64TopN: 5 }));
    await a.ready();
    try {
      const { status, body } = await get(`/api/v1/transition/nat64-destinations?${RANGE}`, a);
      expect(status).toBe(200);
      expect(body).toEqual({
        from: '2025-10-01T00:00:00.000Z',
        to: '2025-10-01T00:05:00.000Z',
        fromMs: T0,
        toMs: T0 + 5 * MIN,
        bucketSeconds: 60,
        approximate: true,
        topN: 5,
        buckets: 2,
        destinations: [
          { address: '192.0.2.33', bytes: 6000, packets: 60, errorBytes: 100, buckets: 2 },
          { address: '203.0.113.5', bytes: 2500, packets: 25, errorBytes: 0, buckets: 1 },
        ],
        omitted: 0,
      });
      const one = await get(`/api/v1/transition/nat64-destinations?${RANGE}&limit=1`, a);
      expect([one.body.destinations.length, one.body.omitted]).toEqual([1, 1]);
      expect((await get(`/api/v1/transition/nat64-destinations?${RANGE}&limit=6`, a)).status).toBe(400);
      expect((await get(`/api/v1/transition/nat64-destinations?${RANGE}&limit=x`, a)).status).toBe(400);
    } finally {
      await a.close();
      await topStore.close();
    }
    // The memory store keeps no top lists; nat64TopN absent means off.
    expect((await get(`/api/v1/transition/nat64-destinations?${RANGE}`)).status).toBe(503);
  });

  it('serves an OpenAPI document listing every route and the traffic parameters', async () => {
    const { status, body } = await get('/api/v1/openapi.json');
    expect(status).toBe(200);
    expect(body.openapi).toBe('3.1.0');
    expect(Object.keys(body.paths).sort()).toEqual([
      '/api/v1/correlation',
      '/api/v1/experiments',
      '/api/v1/exporters',
      '/api/v1/fireflies',
      '/api/v1/fireflies/marking',
      '/api/v1/links',
      '/api/v1/traffic',
      '/api/v1/transition',
      '/api/v1/transition/nat64-destinations',
      '/health',
      '/metrics',
    ]);
    const top = body.paths['/api/v1/transition/nat64-destinations'].get;
    expect(top.description).toContain('approximate: true');
    expect(top.parameters.map((p: any) => p.name)).toEqual(['from', 'to', 'limit']);
    const params = body.paths['/api/v1/traffic'].get.parameters.map((p: any) => [p.name, p.in]);
    expect(params).toEqual(
      [
        'from',
        'to',
        'step',
        'groupBy',
        'community',
        'activity',
        'link',
        'exporter',
        'class',
        'srcSite',
        'dstSite',
        'site',
        'provisional',
      ].map((n) => [n, 'query']),
    );
    expect(Object.keys(body.paths['/api/v1/traffic'].get.responses).sort()).toEqual(['200', '400', '503']);
  });
});

describe('logging: the access log and fastify on the same pino', () => {
  it('writes one access line per request when asked: method, url, status, response time, remote address', async () => {
    const { log, lines } = captureLog('info');
    const app = buildApi(deps({ log: log.child({ component: 'api' }), accessLog: log.child({ component: 'access' }) }));
    try {
      await app.inject({ method: 'GET', url: '/health', remoteAddress: '192.0.2.50' });
      await app.inject({ method: 'GET', url: '/api/v1/traffic?nonsense=1', remoteAddress: '2001:db8::50' });
      expect(lines).toEqual([
        {
          level: 'info',
          component: 'access',
          method: 'GET',
          url: '/health',
          status: 200,
          responseTimeMs: expect.any(Number),
          remoteAddress: '192.0.2.50',
          reqId: 'req-1',
          msg: 'GET /health 200',
        },
        {
          level: 'info',
          component: 'access',
          method: 'GET',
          url: '/api/v1/traffic?nonsense=1',
          status: 400,
          responseTimeMs: expect.any(Number),
          remoteAddress: '2001:db8::50',
          reqId: 'req-2',
          msg: 'GET /api/v1/traffic?nonsense=1 400',
        },
      ]);
    } finally {
      await app.close();
    }
  });

  it("writes no request lines without the access log (fastify's own request logging is off)", async () => {
    const { log, lines } = captureLog('trace');
    const app = buildApi(deps({ log: log.child({ component: 'api' }) }));
    try {
      await app.inject({ method: 'GET', url: '/health' });
      await app.inject({ method: 'GET', url: '/nowhere' });
      expect(lines).toEqual([]);
    } finally {
      await app.close();
    }
  });

  it('logs a failed request through the same logger, with the request id', async () => {
    const { log, lines } = captureLog('info');
    const app = buildApi(deps({ log: log.child({ component: 'api' }), exporters: () => Promise.reject(new Error('worker gone')) }));
    try {
      expect((await app.inject({ method: 'GET', url: '/api/v1/exporters' })).statusCode).toBe(500);
      expect(lines).toEqual([
        {
          level: 'error',
          component: 'api',
          reqId: 'req-1',
          err: expect.objectContaining({ type: 'Error', message: 'worker gone' }),
          msg: 'API request failed',
        },
      ]);
    } finally {
      await app.close();
    }
  });
});

describe('parameter helpers', () => {
  it('parses times in every documented form', () => {
    expect(parseTime('now', NOW, 'from')).toBe(NOW);
    expect(parseTime('now-90s', NOW, 'from')).toBe(NOW - 90_000);
    expect(parseTime('now-1w', NOW, 'from')).toBe(NOW - 7 * 86400_000);
    expect(parseTime('1759276800.5', NOW, 'from')).toBe(T0 + 500);
    expect(parseTime('2025-10-01T00:00:00.25Z', NOW, 'from')).toBe(T0 + 250);
    expect(parseTime('2025-09-30t19:30:00-04:30', NOW, 'from')).toBe(T0);
  });

  it('parses link keys, IPv6 with or without brackets', () => {
    expect(parseLinkKey('192.0.2.1:7')).toEqual({ exporter: '192.0.2.1', ifIndex: 7 });
    expect(parseLinkKey('[2001:db8::1]:7')).toEqual({ exporter: '2001:db8::1', ifIndex: 7 });
    expect(parseLinkKey('2001:db8::1:7')).toEqual({ exporter: '2001:db8::1', ifIndex: 7 });
    expect(parseLinkKey('router:7')).toBeUndefined();
    expect(parseLinkKey('192.0.2.1')).toBeUndefined();
  });
});
