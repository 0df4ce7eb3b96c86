import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApi } from '../../src/api/index.js';
import type { ApiDeps } from '../../src/api/index.js';
import { influxStoreSchema } from '../../src/config/schema.js';
import { silentLogger } from '../../src/log.js';
import { createMetrics } from '../../src/metrics/index.js';
import { RegistryService } from '../../src/registry/service.js';
import { createInfluxStore } from '../../src/store/influx/store.js';
import { createSqliteStore } from '../../src/store/sqlite/index.js';
import type { TrafficRow, TrafficStore } from '../../src/store/types.js';
import { influxdAvailable, startInfluxd, type InfluxdHandle } from '../support/influxd.js';

/**
 * Links through the real HTTP API (fastify listening on loopback), over SQLite and over
 * Debian's influxd fed the same rows (the InfluxDB half skips when influxd is absent
 * locally, and is mandatory under CI): a row never counts twice in one group (issue 12).
 */
const MIN = 60_000;
// Recent buckets: influxd drops points older than its retention policy (30 d).
const T0 = Math.floor(Date.now() / (60 * MIN)) * 60 * MIN - 2 * 60 * MIN;
const NOW = T0 + 2 * 60 * MIN;
const R1 = '192.0.2.1';
const R2 = '2001:db8::2';
const LINKS = [{ exporter: R1, ifIndex: 7, name: 'cern-geant', capacityBps: 1e11 }];

function row(over: Partial<TrafficRow>): TrafficRow {
  return {
    bucketStartMs: T0,
    bucketSeconds: 60,
    exporter: R1,
    inIf: 7,
    outIf: 8,
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

const ROWS: TrafficRow[] = [
  // R1: 7 -> 8, two buckets, and unmarked IPv4 on it
  row({ bytes: 1000, packets: 10, records: 1 }),
  row({ bucketStartMs: T0 + MIN, bytes: 2000, packets: 20, records: 2 }),
  row({ trafficClass: 'ipv4', community: null, activity: null, registered: false, bytes: 300, packets: 3, records: 3 }),
  // R1: neither side known (sFlow 0x3FFFFFFF, ifIndex 0, or absent): one link "-"
  row({ inIf: null, outIf: null, bytes: 50, packets: 5, records: 5 }),
  // R1: in and out on one interface (hairpin)
  row({ bucketStartMs: T0 + 2 * MIN, inIf: 9, outIf: 9, community: 3, activity: 2, bytes: 70, packets: 7, records: 7 }),
  // R2: 1 -> unknown
  row({
    exporter: R2,
    inIf: 1,
    outIf: null,
    trafficClass: 'ipv6_unmarked',
    community: null,
    activity: null,
    registered: false,
    bytes: 4,
    packets: 1,
    records: 1,
  }),
];

interface Totals {
  bytes: number;
  packets: number;
  records: number;
}
interface Answer {
  series: { group: Record<string, string | number | null>; totals: Totals }[];
  totals: Totals;
}

const t = (bytes: number, packets: number, records: number): Totals => ({ bytes, packets, records });

const STORES = ['sqlite', 'influx'] as const;
const withInflux = influxdAvailable();

describe.each(STORES)('links over the HTTP API, %s store', (kind) => {
  let db: InfluxdHandle | undefined;
  let store: TrafficStore;
  let app: FastifyInstance;
  let base: string;

  beforeAll(async () => {
    const registry = new RegistryService(
      { url: '', refreshSeconds: 3600, cacheFile: '', timeoutMs: 1000 },
      { now: () => NOW, fetchText: () => Promise.reject(new Error('offline')), log: silentLogger() },
    );
    if (kind === 'influx') {
      if (!withInflux) return;
      db = await startInfluxd();
      const cfg = influxStoreSchema.parse({ type: 'influx', url: `http://127.0.0.1:${db.port}` });
      store = await createInfluxStore(
        { ...cfg, database: 'links', spoolDir: mkdtempSync(join(tmpdir(), 'spool-')), continuousQueries: false },
        { registry: () => registry.registry, links: LINKS, log: silentLogger(), bucketSeconds: 60 },
      );
    } else {
      store = createSqliteStore({ path: ':memory:' });
    }
    await store.writeRows(ROWS);
    const metrics = createMetrics({ registryStatus: () => registry.status(), now: () => NOW });
    const deps: ApiDeps = {
      store,
      registry,
      links: LINKS,
      exporters: () => [],
      health: () => ({ status: 'ok', checks: {} }),
      metricsRegistry: metrics.registry,
      bucketSeconds: 60,
      now: () => NOW,
      security: { rateLimitPerMinute: 0 },
    };
    app = buildApi(deps);
    base = await app.listen({ host: '127.0.0.1', port: 0 });
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await store?.close();
    await db?.destroy();
  });

  const get = async <T>(path: string): Promise<T> => {
    const res = await fetch(`${base}${path}`);
    expect(res.status, path).toBe(200);
    return (await res.json()) as T;
  };
  const range = `from=${T0 / 1000}&to=${NOW / 1000}&step=1h`;
  const groups = (a: Answer, dims: string[]) =>
    a.series.map((s) => [...dims.map((d) => s.group[d]), t(s.totals.bytes, s.totals.packets, s.totals.records)]);

  it.skipIf(kind === 'influx' && !withInflux)('groupBy=link counts a row once in a group its two sides share', async () => {
    const a = await get<Answer>(`/api/v1/traffic?${range}&groupBy=link`);
    expect(groups(a, ['link'])).toEqual([
      [`${R1}:7`, t(3300, 33, 6)],
      [`${R1}:8`, t(3300, 33, 6)],
      [`${R1}:9`, t(70, 7, 7)],
      [`${R1}:-`, t(50, 5, 5)],
      [`[${R2}]:-`, t(4, 1, 1)],
      [`[${R2}]:1`, t(4, 1, 1)],
    ]);
    expect(a.totals).toMatchObject(t(3424, 46, 19));
  });

  it.skipIf(kind === 'influx' && !withInflux)(
    'groupBy=exporter,link and link,class agree; direction still splits in from out',
    async () => {
      const a = await get<Answer>(`/api/v1/traffic?${range}&groupBy=exporter,link`);
      expect(groups(a, ['exporter', 'link'])).toEqual([
        [R1, `${R1}:7`, t(3300, 33, 6)],
        [R1, `${R1}:8`, t(3300, 33, 6)],
        [R1, `${R1}:9`, t(70, 7, 7)],
        [R1, `${R1}:-`, t(50, 5, 5)],
        [R2, `[${R2}]:-`, t(4, 1, 1)],
        [R2, `[${R2}]:1`, t(4, 1, 1)],
      ]);
      const c = await get<Answer>(`/api/v1/traffic?${range}&groupBy=link,class&exporter=${R1}`);
      expect(groups(c, ['link', 'class'])).toEqual([
        [`${R1}:7`, 'scitags', t(3000, 30, 3)],
        [`${R1}:8`, 'scitags', t(3000, 30, 3)],
        [`${R1}:7`, 'ipv4', t(300, 3, 3)],
        [`${R1}:8`, 'ipv4', t(300, 3, 3)],
        [`${R1}:9`, 'scitags', t(70, 7, 7)],
        [`${R1}:-`, 'scitags', t(50, 5, 5)],
      ]);
      const d = await get<Answer>(`/api/v1/traffic?${range}&groupBy=link,direction&exporter=${R1}`);
      expect(groups(d, ['link', 'direction'])).toEqual([
        [`${R1}:7`, 'in', t(3300, 33, 6)],
        [`${R1}:8`, 'out', t(3300, 33, 6)],
        [`${R1}:9`, 'in', t(70, 7, 7)],
        [`${R1}:9`, 'out', t(70, 7, 7)],
        [`${R1}:-`, 'in', t(50, 5, 5)],
        [`${R1}:-`, 'out', t(50, 5, 5)],
      ]);
    },
  );

  const z = t(0, 0, 0);
  const entry = (link: string, exporter: string, ifIndex: number | null, inT: Totals, outT: Totals) => ({
    name: null,
    link,
    exporter,
    ifIndex,
    capacityBps: null,
    source: 'traffic',
    traffic: { in: inT, out: outT },
  });

  it.skipIf(kind === 'influx' && !withInflux)(
    '/api/v1/links lists configured links, then every link carrying traffic in the range, largest first',
    async () => {
      const a = await get<{ links: unknown[]; omittedLinks: number; fromMs: number; toMs: number }>(
        `/api/v1/links?from=${T0 / 1000}&to=${NOW / 1000}`,
      );
      expect(a).toEqual({
        from: new Date(T0).toISOString(),
        to: new Date(NOW).toISOString(),
        fromMs: T0,
        toMs: NOW,
        links: [
          {
            name: 'cern-geant',
            link: `${R1}:7`,
            exporter: R1,
            ifIndex: 7,
            capacityBps: 1e11,
            source: 'config',
            traffic: { in: t(3300, 33, 6), out: z },
          },
          entry(`${R1}:8`, R1, 8, z, t(3300, 33, 6)),
          // The hairpin and the unknown link: once in each direction.
          entry(`${R1}:9`, R1, 9, t(70, 7, 7), t(70, 7, 7)),
          entry(`${R1}:-`, R1, null, t(50, 5, 5), t(50, 5, 5)),
          entry(`[${R2}]:-`, R2, null, z, t(4, 1, 1)),
          entry(`[${R2}]:1`, R2, 1, t(4, 1, 1), z),
        ],
        omittedLinks: 0,
      });
      // A later start leaves the first bucket out; limit keeps the largest links only the store knows.
      const b = await get<{ links: { link: string; traffic: unknown }[]; omittedLinks: number }>(
        `/api/v1/links?from=${(T0 + MIN) / 1000}&to=${NOW / 1000}&limit=2`,
      );
      expect(b.links.map((l) => [l.link, l.traffic])).toEqual([
        [`${R1}:7`, { in: t(2000, 20, 2), out: z }],
        [`${R1}:8`, { in: z, out: t(2000, 20, 2) }],
        [`${R1}:9`, { in: t(70, 7, 7), out: t(70, 7, 7) }],
      ]);
      expect(b.omittedLinks).toBe(0);
      const c = await get<{ links: { link: string }[]; omittedLinks: number }>(`/api/v1/links?from=${T0 / 1000}&to=${NOW / 1000}&limit=2`);
      expect(c.links.map((l) => l.link)).toEqual([`${R1}:7`, `${R1}:8`, `${R1}:9`]);
      expect(c.omittedLinks).toBe(3);
    },
  );
});
