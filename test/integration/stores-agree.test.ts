import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
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
 * The InfluxDB and SQLite stores fed the same rows answer every valid /api/v1/traffic request
 * alike (and refuse the same invalid ones alike): random queries over filters, groupings, steps
 * and extreme but valid times (the epoch, 2262-04-11T23:47:16.854Z). Bounded: 30 queries.
 */
const HOUR = 3_600_000;
// Recent buckets: influxd drops points older than its retention policy (30 d).
const BASE = Math.floor(Date.now() / HOUR) * HOUR - 3 * HOUR;
const NOW = BASE + 3 * HOUR;
const LINKS = [{ exporter: '192.0.2.1', ifIndex: 7, name: 'cern-geant', capacityBps: 1e11 }];

function rows(): TrafficRow[] {
  const out: TrafficRow[] = [];
  const exporters = ['192.0.2.1', '2001:db8::1', '198.51.100.1'];
  const kinds = [
    { trafficClass: 'scitags', community: 2, activity: 15, registered: true },
    { trafficClass: 'scitags', community: 3, activity: 12, registered: true },
    { trafficClass: 'scitags', community: null, activity: null, registered: false },
    { trafficClass: 'ipv6_unmarked', community: null, activity: null, registered: false },
    { trafficClass: 'ipv4', community: null, activity: null, registered: false },
  ] as const;
  for (let i = 0; i < 60; i++) {
    const k = kinds[i % kinds.length]!;
    const exporter = exporters[i % exporters.length]!;
    out.push({
      bucketStartMs: BASE + ((i * 7) % 150) * 60_000,
      bucketSeconds: 60,
      exporter,
      inIf: i % 11 === 0 ? null : exporter === '2001:db8::1' ? 1 : 7,
      outIf: i % 11 === 0 ? null : 8 + (i % 2),
      ...k,
      bytes: 1000 + i * 37,
      packets: 10 + i,
      records: 1 + (i % 3),
    });
  }
  return out;
}

const subset = <T>(xs: readonly T[]) => fc.subarray([...xs], { minLength: 1 });
const list = <T extends string>(xs: readonly T[]) =>
  fc.option(
    subset(xs).map((s) => s.join(',')),
    { nil: undefined },
  );
const epoch = (ms: number) => String(Math.floor(ms / 1000));

const query = fc.record({
  from: fc.constantFrom('1970-01-01T00:00:00Z', '0', epoch(BASE - HOUR), epoch(BASE + 30 * 60_000), 'now-1h', 'now-7d', 'now-999999w'),
  to: fc.constantFrom('2262-04-11T23:47:16.854Z', 'now', epoch(BASE + HOUR), epoch(NOW + 86_400_000), '2262-04-11T23:47:16Z'),
  step: fc.option(fc.constantFrom('60', '5m', '1h', '1d', '30d'), { nil: undefined }),
  groupBy: fc.option(
    fc.subarray(['community', 'activity', 'link', 'exporter', 'direction', 'class']).map((s) => s.join(',')),
    {
      nil: undefined,
    },
  ),
  community: list(['2', '3', 'atlas', '200']),
  activity: list(['12', '15', '1']),
  exporter: list(['192.0.2.1', '::ffff:192.0.2.1', '2001:db8::1', '2001:DB8:0::1', '203.0.113.9']),
  link: list(['cern-geant', '192.0.2.1:8', '[2001:db8::1]:1', '[::ffff:192.0.2.1]:9']),
  class: list(['scitags', 'ipv6_unmarked', 'ipv4', 'unknown']),
});

function url(q: Record<string, string | undefined>): string {
  const params = Object.entries(q).filter((e): e is [string, string] => e[1] !== undefined);
  return `/api/v1/traffic?${new URLSearchParams(params).toString()}`;
}

describe.skipIf(!influxdAvailable())('InfluxDB and SQLite answer alike', () => {
  let db: InfluxdHandle;
  const stores: TrafficStore[] = [];
  beforeAll(async () => {
    db = await startInfluxd();
  }, 60_000);
  afterAll(async () => {
    for (const s of stores) await s.close();
    await db?.destroy();
  });

  it('for 30 random valid (and some invalid) traffic queries, including extreme times', { timeout: 120_000 }, async () => {
    const registry = new RegistryService(
      { url: '', refreshSeconds: 3600, cacheFile: '', timeoutMs: 1000 },
      { now: () => NOW, fetchText: () => Promise.reject(new Error('offline')), log: silentLogger() },
    );
    const base = influxStoreSchema.parse({ type: 'influx', url: `http://127.0.0.1:${db.port}` });
    const influx = await createInfluxStore(
      { ...base, database: 'agree', spoolDir: mkdtempSync(join(tmpdir(), 'spool-')), continuousQueries: false },
      { registry: () => registry.registry, links: LINKS, log: silentLogger(), bucketSeconds: 60 },
    );
    const sqlite = createSqliteStore({ path: ':memory:' });
    stores.push(influx, sqlite);
    const data = rows();
    await influx.writeRows(data);
    await sqlite.writeRows(data);
    const metrics = createMetrics({ registryStatus: () => registry.status(), now: () => NOW });
    const api = (store: TrafficStore) => {
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
      return buildApi(deps);
    };
    const overInflux = api(influx);
    const overSqlite = api(sqlite);
    const statuses = new Map<number, number>();
    let seriesSeen = 0;
    await fc.assert(
      fc.asyncProperty(query, async (q) => {
        const path = url(q);
        const a = await overInflux.inject({ url: path });
        const b = await overSqlite.inject({ url: path });
        expect([a.statusCode, a.json<unknown>()], path).toEqual([b.statusCode, b.json<unknown>()]);
        statuses.set(a.statusCode, (statuses.get(a.statusCode) ?? 0) + 1);
        if (a.statusCode === 200) seriesSeen += a.json<{ series: unknown[] }>().series.length;
      }),
      { numRuns: 30, seed: 11, endOnFailure: true },
    );
    // Both kinds of answer were compared, and the valid ones were not all empty.
    expect([...statuses.keys()].sort()).toEqual([200, 400]);
    expect(seriesSeen).toBeGreaterThan(0);
    // The full extremes, explicitly.
    const extreme = url({ from: '1970-01-01T00:00:00Z', to: '2262-04-11T23:47:16.854Z', groupBy: 'exporter,class' });
    const a = await overInflux.inject({ url: extreme });
    const b = await overSqlite.inject({ url: extreme });
    expect(a.statusCode).toBe(200);
    expect(a.json<{ totals: unknown }>().totals).toEqual(b.json<{ totals: unknown }>().totals);
    expect(a.json<unknown>()).toEqual(b.json<unknown>());
    expect(a.json<{ totals: { bytes: number } }>().totals.bytes).toBe(data.reduce((n, r) => n + r.bytes, 0));
  });
});
