import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InfluxDB } from 'influx';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fireflyEvent } from '../support/firefly-events.js';
import { influxStoreSchema } from '../../src/config/schema.js';
import { FireflyAggregator } from '../../src/fireflies/aggregate.js';
import { silentLogger } from '../../src/log.js';
import { RegistryService } from '../../src/registry/service.js';
import { createInfluxStore, type InfluxTrafficStore } from '../../src/store/influx/store.js';
import type { SiteTrafficRow, TrafficClass, TrafficRow } from '../../src/store/types.js';
import type { Nat64TopRow } from '../../src/store/nat64-top.js';
import {
  allPanels,
  nonZero,
  runDashboard,
  tableRows,
  timeSeriesByName,
  type DashboardJson,
  type DashboardRun,
  type RunOptions,
  type TargetRun,
} from '../support/dashboards.js';
import { influxdAvailable, startInfluxd, type InfluxdHandle } from '../support/influxd.js';

/**
 * Runs every panel query and variable of dashboards/ipv6-transition.json as Grafana would
 * against a private influxd holding link_traffic / scitags_traffic (with the nat64 tag),
 * scitags_site_traffic and scitags_firefly points written by the collector's own store
 * (InfluxTrafficStore.writeRows / writeSiteRows, FireflyAggregator). Each answer is computed
 * here from the rows, in plain TypeScript, independently of InfluxQL; the tables' Grafana
 * transformations (merge, the share columns, the IPv4-only filter) are applied here to the
 * answers and compared with shares computed from the rows.
 */
const DB = 'scitags';
type PanelWithTransformations = DashboardJson['panels'][number] & { transformations?: { id: string; options: Record<string, unknown> }[] };
const dashboard = JSON.parse(readFileSync(new URL('../../dashboards/ipv6-transition.json', import.meta.url), 'utf8')) as DashboardJson;

const HOUR = 3_600_000;
const MIN = 60_000;
const T0 = Math.floor(Date.now() / HOUR) * HOUR - 3 * HOUR;
const FROM = T0;
const TO = T0 + HOUR;
const E1 = '192.0.2.1';
const E2 = '192.0.2.2';
const LINKS = [
  { exporter: E1, ifIndex: 1, name: 'LHCONE.a (x)' },
  { exporter: E1, ifIndex: 2, name: 'GEANT' },
];
const linkName = (exporter: string, ifIndex: number): string =>
  LINKS.find((l) => l.exporter === exporter && l.ifIndex === ifIndex)?.name ?? String(ifIndex);

interface Template {
  exporter: string;
  cls: TrafficClass;
  nat64?: true;
  pair?: [number, number] | 'unregistered';
  bytes: (k: number) => number;
  when: (k: number) => boolean;
}
interface LinkTemplate extends Template {
  inIf: number;
  outIf: number | null;
}
interface SiteTemplate extends Template {
  src: string;
  dst: string;
}
const ATLAS: [number, number] = [2, 3];
const CMS: [number, number] = [3, 3];
const always = () => true;

const LINK_TEMPLATES: LinkTemplate[] = [
  { exporter: E1, inIf: 1, outIf: 2, cls: 'scitags', pair: ATLAS, bytes: (k) => 1000 * (k + 1), when: always },
  { exporter: E1, inIf: 1, outIf: 2, cls: 'scitags', pair: ATLAS, nat64: true, bytes: (k) => 300 * (k + 1), when: (k) => k % 3 === 0 },
  { exporter: E1, inIf: 1, outIf: 2, cls: 'ipv6_unmarked', bytes: (k) => 5000 + k, when: (k) => k % 2 === 0 },
  { exporter: E1, inIf: 1, outIf: 2, cls: 'ipv6_unmarked', nat64: true, bytes: () => 777, when: (k) => k % 4 === 1 },
  { exporter: E1, inIf: 1, outIf: 2, cls: 'ipv4', bytes: (k) => 2000 * ((k % 5) + 1), when: (k) => k < 10 || k >= 15 },
  // GEANT: IPv4 only (and records of unknown IP version, never counted)
  { exporter: E1, inIf: 2, outIf: 1, cls: 'ipv4', bytes: () => 4096, when: always },
  { exporter: E1, inIf: 2, outIf: 1, cls: 'unknown', bytes: () => 999, when: (k) => k % 6 === 0 },
  // link 7 of E2 (unnamed): IPv4 in the first half hour, flow labels in the second
  { exporter: E2, inIf: 7, outIf: null, cls: 'scitags', pair: CMS, bytes: (k) => 640 * k, when: (k) => k >= 30 },
  { exporter: E2, inIf: 7, outIf: null, cls: 'ipv4', bytes: () => 100, when: (k) => k < 30 },
  { exporter: E2, inIf: 7, outIf: null, cls: 'scitags', pair: 'unregistered', nat64: true, bytes: () => 50, when: (k) => k % 10 === 0 },
];

const CALTECH = 'T2_US.Caltech (x)';
const SITE_TEMPLATES: SiteTemplate[] = [
  { exporter: E1, src: 'CERN-PROD', dst: 'BNL-ATLAS', cls: 'scitags', pair: ATLAS, bytes: (k) => 1000 * (k + 1), when: always },
  {
    exporter: E1,
    src: 'CERN-PROD',
    dst: 'BNL-ATLAS',
    cls: 'scitags',
    pair: ATLAS,
    nat64: true,
    bytes: () => 123,
    when: (k) => k % 7 === 0,
  },
  { exporter: E1, src: 'BNL-ATLAS', dst: 'CERN-PROD', cls: 'ipv4', bytes: () => 500, when: always },
  { exporter: E1, src: CALTECH, dst: 'CERN-PROD', cls: 'ipv4', bytes: (k) => 300 * (k + 1), when: always },
  { exporter: E1, src: 'CERN-PROD', dst: CALTECH, cls: 'ipv4', bytes: () => 200, when: (k) => k % 2 === 1 },
  { exporter: E2, src: 'IN2P3-CC', dst: 'unknown', cls: 'ipv6_unmarked', nat64: true, bytes: () => 4000, when: (k) => k % 5 === 0 },
  { exporter: E2, src: 'unknown', dst: 'RAL-LCG2', cls: 'ipv4', bytes: (k) => 64 * k, when: (k) => k > 0 },
  { exporter: E1, src: 'DESY-HH', dst: 'BNL-ATLAS', cls: 'ipv4', bytes: () => 1000, when: (k) => k < 30 },
  { exporter: E1, src: 'DESY-HH', dst: 'BNL-ATLAS', cls: 'ipv6_unmarked', bytes: () => 10, when: (k) => k === 45 },
  { exporter: E1, src: 'other', dst: 'KIT', cls: 'ipv4', bytes: () => 7, when: always },
  { exporter: E1, src: 'CERN-PROD', dst: 'DESY-HH', cls: 'unknown', bytes: () => 11, when: always },
];

/** Buckets 0..59 of the hour, and two outside the range (before and after) that no panel may count. */
const BUCKETS = [...Array.from({ length: 60 }, (_, k) => k), -5, 65];
const inRange = (k: number) => k >= 0 && k < 60;

function base(t: Template, k: number): Omit<TrafficRow, 'inIf' | 'outIf'> {
  const bytes = t.bytes(k);
  const pair = t.pair === undefined || t.pair === 'unregistered' ? null : t.pair;
  return {
    bucketStartMs: T0 + k * MIN,
    bucketSeconds: 60,
    exporter: t.exporter,
    trafficClass: t.cls,
    community: pair?.[0] ?? null,
    activity: pair?.[1] ?? null,
    registered: pair !== null,
    bytes,
    packets: Math.ceil(bytes / 1000),
    records: 1,
    ...(t.nat64 ? { nat64: true as const } : {}),
  };
}
const linkRows = (k: number): TrafficRow[] =>
  LINK_TEMPLATES.filter((t) => t.when(k) && t.bytes(k) > 0).map((t) => ({ ...base(t, k), inIf: t.inIf, outIf: t.outIf }));
const siteRows = (k: number): SiteTrafficRow[] =>
  SITE_TEMPLATES.filter((t) => t.when(k) && t.bytes(k) > 0).map((t) => ({ ...base(t, k), srcSite: t.src, dstSite: t.dst }));

/** Rows in range as (bucket k, template, bytes). */
const IN_RANGE_LINK = BUCKETS.filter(inRange).flatMap((k) =>
  LINK_TEMPLATES.filter((t) => t.when(k) && t.bytes(k) > 0).map((t) => ({ k, t, bytes: t.bytes(k) })),
);
const IN_RANGE_SITE = BUCKETS.filter(inRange).flatMap((k) =>
  SITE_TEMPLATES.filter((t) => t.when(k) && t.bytes(k) > 0).map((t) => ({ k, t, bytes: t.bytes(k) })),
);

const isV6 = (t: Template) => t.cls === 'scitags' || t.cls === 'ipv6_unmarked';

/** Expected { timeMs: bit/s } of the link's rows that `keep` selects, per interval, zero intervals left out. */
function linkRate(
  link: string,
  intervalMs: number,
  keep: (t: LinkTemplate) => boolean,
  exporters = [E1, E2],
  style: 'frontend' | 'backend' = 'frontend',
): Record<number, number> {
  const sums = new Map<number, number>();
  for (const { k, t, bytes } of IN_RANGE_LINK) {
    if (!exporters.includes(t.exporter) || linkName(t.exporter, t.inIf) !== link || !keep(t)) continue;
    const at = T0 + k * MIN;
    // Grafana's backend time filter is `time > from`: the bucket starting at `from` is out
    if (style === 'backend' && at === FROM) continue;
    const start = at - (at % intervalMs);
    sums.set(start, (sums.get(start) ?? 0) + bytes);
  }
  return Object.fromEntries([...sums].map(([time, b]) => [time, (b * 8000) / intervalMs]));
}

const dropEmpty = (o: Record<string, Record<number, number>>) =>
  Object.fromEntries(Object.entries(o).filter(([, v]) => Object.keys(v).length > 0));

/** Grafana's merge of table frames: one row per value of the key column, the others' columns side by side. */
function merge(runs: TargetRun[], key: string): Map<string, Record<string, number>> {
  const out = new Map<string, Record<string, number>>();
  for (const run of runs) {
    for (const { time: _time, [key]: k, ...cols } of tableRows(run)) {
      const row = out.get(String(k)) ?? {};
      out.set(String(k), Object.assign(row, cols));
    }
  }
  return out;
}
const sumBy = <T>(items: T[], key: (x: T) => string | undefined, value: (x: T) => number): Record<string, number> => {
  const out: Record<string, number> = {};
  for (const x of items) {
    const k = key(x);
    if (k !== undefined) out[k] = (out[k] ?? 0) + value(x);
  }
  return out;
};

/** The per-bucket top lists of IPv4 services behind NAT64 (scitags_nat64_top), ranked by bytes. */
function nat64TopRows(k: number): Nat64TopRow[] {
  const entries = [
    { address: '192.0.2.33', bytes: 1000 * ((k % 3) + 1), packets: (k % 3) + 1, errorBytes: 0 },
    ...(k % 2 === 0 ? [{ address: '198.51.100.7', bytes: 1500, packets: 2, errorBytes: 100 }] : []),
    ...(k === 59 ? [{ address: '203.0.113.9', bytes: 50_000, packets: 40, errorBytes: 10 }] : []),
  ].sort((a, b) => b.bytes - a.bytes);
  return entries.map((e, i) => ({ bucketStartMs: T0 + k * MIN, bucketSeconds: 60, rank: i + 1, ...e }));
}

const FF_EVENTS = [
  ...Array.from({ length: 6 }, (_, i) => fireflyEvent('ended', T0 + i * 10 * MIN + 1000, { bytes: 1_000_000 * (i + 1) })),
  ...Array.from({ length: 3 }, (_, i) => fireflyEvent('ended', T0 + i * 7 * MIN + 2000, { bytes: 250_000, ipVersion: 4 })),
  fireflyEvent('ended', T0 + 30 * MIN, { bytes: 4096, ipVersion: 4, experimentId: 3, activityId: 3 }),
  fireflyEvent('ended', T0 + 40 * MIN, { bytes: 999, ipVersion: 6, experimentId: 300, activityId: 7 }),
  fireflyEvent('started', T0 + 41 * MIN, { ipVersion: 6, experimentId: 3, activityId: 3 }),
  // outside the range
  fireflyEvent('ended', T0 + HOUR + 5 * MIN, { bytes: 1e9, ipVersion: 4 }),
];
const FF_NAMES: Record<number, string> = { 2: 'atlas', 3: 'cms', 300: '300' };

describe.skipIf(!influxdAvailable())('IPv6 transition dashboard against InfluxDB', () => {
  let db: InfluxdHandle;
  let store: InfluxTrafficStore;
  beforeAll(async () => {
    db = await startInfluxd();
    const registry = new RegistryService(
      { url: '', refreshSeconds: 3600, cacheFile: '', timeoutMs: 1000 },
      { now: () => T0, fetchText: () => Promise.reject(new Error('offline')), log: silentLogger() },
    );
    const cfg = influxStoreSchema.parse({ type: 'influx', url: db.url });
    store = await createInfluxStore(
      { ...cfg, database: DB, spoolDir: mkdtempSync(join(tmpdir(), 'spool-')) },
      { registry: () => registry.registry, links: LINKS, log: silentLogger(), bucketSeconds: 60 },
    );
    // whole buckets per call, as the aggregators write them
    for (const k of BUCKETS) {
      await store.writeRows(linkRows(k));
      await store.writeSiteRows(siteRows(k));
    }
    for (const k of BUCKETS) await store.writeNat64TopRows(nat64TopRows(k));
    const agg = new FireflyAggregator({ bucketSeconds: 60 }, { now: () => T0, store });
    for (const e of FF_EVENTS) agg.add(e);
    await agg.flush();
    await store.flush();
  }, 60_000);
  afterAll(async () => {
    await store?.close();
    await db?.destroy();
  });

  const run = (opts: Partial<RunOptions> = {}): Promise<DashboardRun> =>
    runDashboard(dashboard, { url: db.url, database: DB, fromMs: FROM, toMs: TO, intervalMs: 5 * MIN, ...opts });
  const target = (r: DashboardRun, panelId: number, refId = 'A', repeatValue?: string): TargetRun => {
    const t = r.targets.find((x) => x.panelId === panelId && x.refId === refId && x.repeatValue === repeatValue);
    if (!t) throw new Error(`no panel ${panelId} ${refId} ${repeatValue ?? ''}`);
    return t;
  };

  it('the variables: exporters, links traffic enters through, sites on either side', async () => {
    const all = await run();
    expect(all.variables.options).toEqual({
      policy: ['1m', '1h'],
      exporter: [E1, E2],
      link: ['7', 'GEANT', 'LHCONE.a (x)'],
      site: ['BNL-ATLAS', 'CERN-PROD', 'DESY-HH', 'IN2P3-CC', 'KIT', 'RAL-LCG2', CALTECH, 'other', 'unknown'],
    });
    const e2 = await run({ selection: { exporter: [E2] } });
    expect([e2.variables.options.link, e2.variables.options.site]).toEqual([['7'], ['IN2P3-CC', 'RAL-LCG2', 'unknown']]);
  });

  for (const [intervalMs, timeFilterStyle] of [
    [MIN, 'frontend'],
    [5 * MIN, 'backend'],
    [15 * MIN, 'frontend'],
  ] as const) {
    it(`per link (one panel per link): IPv6 vs IPv4, IPv4 / IPv6 / NAT64, NAT64 vs the rest of IPv6; interval ${intervalMs / MIN} min, ${timeFilterStyle} time filter`, async () => {
      const r = await run({ intervalMs, timeFilterStyle });
      for (const link of ['7', 'GEANT', 'LHCONE.a (x)']) {
        const series = (panelId: number, refs: string[]) =>
          nonZero(
            Object.assign({}, ...refs.map((ref) => timeSeriesByName(target(r, panelId, ref, link)))) as Record<
              string,
              Record<number, number>
            >,
          );
        const v6 = linkRate(link, intervalMs, isV6, [E1, E2], timeFilterStyle);
        const v4 = linkRate(link, intervalMs, (t) => t.cls === 'ipv4', [E1, E2], timeFilterStyle);
        const nat = linkRate(link, intervalMs, (t) => isV6(t) && t.nat64 === true, [E1, E2], timeFilterStyle);
        const v6NoNat = linkRate(link, intervalMs, (t) => isV6(t) && t.nat64 !== true, [E1, E2], timeFilterStyle);
        expect(series(1, ['A', 'B']), `${link} panel 1`).toEqual(dropEmpty({ IPv6: v6, IPv4: v4 }));
        expect(series(2, ['A', 'B', 'C']), `${link} panel 2`).toEqual(dropEmpty({ IPv4: v4, IPv6: v6NoNat, NAT64: nat }));
        expect(series(3, ['A', 'B']), `${link} panel 3`).toEqual(dropEmpty({ NAT64: nat, 'IPv6 without NAT64': v6NoNat }));
        // fill(0): every interval of the range is there, so the 100 % stacks have no holes (the
        // browser's `time <= to` adds the empty interval starting at `to`)
        const intervals = HOUR / intervalMs + (timeFilterStyle === 'frontend' ? 1 : 0);
        for (const ref of ['A', 'B'])
          for (const pts of Object.values(timeSeriesByName(target(r, 1, ref, link)))) expect(Object.keys(pts).length).toBe(intervals);
      }
      // the shares the 100 % stacks show, against hand-checked values on LHCONE (interval 0)
      const lhcone = (panelId: number, ref: string) => Object.values(timeSeriesByName(target(r, panelId, ref, 'LHCONE.a (x)')))[0]!;
      const [a, b] = [lhcone(1, 'A'), lhcone(1, 'B')];
      if (timeFilterStyle === 'frontend' && intervalMs === MIN) {
        // bucket 0: IPv6 = 1000 + 300 + 5000 bytes, IPv4 = 2000 bytes; bucket 1: 2000 + 777, 4000
        expect(a[T0]! / (a[T0]! + b[T0]!)).toBeCloseTo(6300 / 8300, 12);
        expect(a[T0 + MIN]! / (a[T0 + MIN]! + b[T0 + MIN]!)).toBeCloseTo(2777 / 6777, 12);
        // buckets 10-14 carried no IPv4: all IPv6
        expect(b[T0 + 12 * MIN]).toBe(0);
        const [n, rest] = [lhcone(3, 'A'), lhcone(3, 'B')];
        expect(n[T0]! / (n[T0]! + rest[T0]!)).toBeCloseTo(300 / 6300, 12);
      }
      // GEANT carried no IPv6 at all: InfluxDB returns no IPv6 series (fill(0) fills only series
      // it has), so the 100 % stack is IPv4 alone, i.e. an IPv6 share of 0
      expect(timeSeriesByName(target(r, 1, 'A', 'GEANT'))).toEqual({});
      expect(Object.keys(timeSeriesByName(target(r, 1, 'B', 'GEANT')))).toEqual(['IPv4']);
    });
  }

  it('a link named with regex specials selected alone, and the exporter filter', async () => {
    const r = await run({ selection: { link: ['LHCONE.a (x)'] } });
    expect([...new Set(r.targets.filter((t) => t.repeatValue !== undefined).map((t) => t.repeatValue))]).toEqual(['LHCONE.a (x)']);
    const e2 = await run({ selection: { exporter: [E2] } });
    expect([...new Set(e2.targets.filter((t) => t.repeatValue !== undefined).map((t) => t.repeatValue))]).toEqual(['7']);
    expect(nonZero(timeSeriesByName(target(e2, 2, 'C', '7')))).toEqual({ NAT64: linkRate('7', 5 * MIN, (t) => t.nat64 === true, [E2]) });
  });

  it('the site tables: bytes sent and received by IP version, and the IPv6 share of each side', async () => {
    const r = await run();
    for (const [panelId, side, verb] of [
      [4, 'src_site', 'sent'],
      [5, 'dst_site', 'received'],
    ] as const) {
      const siteOf = (t: SiteTemplate) => (side === 'src_site' ? t.src : t.dst);
      const expected: Record<string, Record<string, number>> = {};
      const add = (col: string, keep: (t: SiteTemplate) => boolean) => {
        for (const [site, b] of Object.entries(
          sumBy(
            IN_RANGE_SITE,
            (x) => (keep(x.t) ? siteOf(x.t) : undefined),
            (x) => x.bytes,
          ),
        ))
          (expected[site] ??= {})[col] = b;
      };
      add(`IPv4 ${verb}`, (t) => t.cls === 'ipv4');
      add(`IPv6 ${verb}`, isV6);
      add(`NAT64 ${verb}`, (t) => isV6(t) && t.nat64 === true);
      add(`IPv4 + IPv6 ${verb}`, (t) => t.cls !== 'unknown');
      const merged = merge(
        ['A', 'B', 'C', 'D'].map((ref) => target(r, panelId, ref)),
        side,
      );
      expect(Object.fromEntries(merged), `panel ${panelId}`).toEqual(expected);
      // the share column (calculateField: IPv6 / IPv4 + IPv6; a missing IPv6 cell is 0 there)
      const shares = Object.fromEntries([...merged].map(([site, c]) => [site, (c[`IPv6 ${verb}`] ?? 0) / c[`IPv4 + IPv6 ${verb}`]!]));
      if (side === 'src_site') {
        // CERN: 1000 * (1 + ... + 60) marked (123 of it NAT64 in 9 buckets) and 200 of IPv4 in 30
        const cern = 1000 * 1830 + 123 * 9;
        expect(shares).toMatchObject({
          'CERN-PROD': cern / (cern + 200 * 30),
          'BNL-ATLAS': 0,
          [CALTECH]: 0,
          'IN2P3-CC': 1,
          'DESY-HH': 10 / (30 * 1000 + 10),
        });
      } else {
        expect(shares).toMatchObject({
          'BNL-ATLAS': expected['BNL-ATLAS']![`IPv6 ${verb}`]! / expected['BNL-ATLAS']![`IPv4 + IPv6 ${verb}`]!,
          KIT: 0,
        });
      }
    }
    // one site with regex specials selected: both sides filtered to it
    const one = await run({ selection: { site: [CALTECH] } });
    expect(
      Object.fromEntries(
        merge(
          ['A', 'B', 'C', 'D'].map((ref) => target(one, 4, ref)),
          'src_site',
        ),
      ),
    ).toEqual({
      [CALTECH]: { 'IPv4 sent': 300 * 30 * 61, 'IPv4 + IPv6 sent': 300 * 30 * 61 },
    });
    expect(
      Object.fromEntries(
        merge(
          ['A', 'B', 'C', 'D'].map((ref) => target(one, 5, ref)),
          'dst_site',
        ),
      ),
    ).toEqual({
      [CALTECH]: { 'IPv4 received': 200 * 30, 'IPv4 + IPv6 received': 200 * 30 },
    });
  });

  it('sites with IPv4 only: IPv4 on some side, no IPv6 on either side, unknown / other left out', async () => {
    const r = await run();
    const tables = ['A', 'B', 'C', 'D'].map((ref) => target(r, 6, ref));
    // the panel's transformations: src_site / dst_site renamed to site, merged, rows without IPv6 kept
    const merged = new Map<string, Record<string, number>>();
    for (const t of tables)
      for (const { time: _time, src_site, dst_site, ...cols } of tableRows(t)) {
        const site = String(src_site ?? dst_site);
        merged.set(site, Object.assign(merged.get(site) ?? {}, cols));
      }
    const only4 = [...merged].filter(([, c]) => c['IPv6 sent'] === undefined && c['IPv6 received'] === undefined);
    const expected = (() => {
      const sites = new Set(IN_RANGE_SITE.flatMap((x) => [x.t.src, x.t.dst]).filter((s) => s !== 'unknown' && s !== 'other'));
      const bytes = (site: string, side: 'src' | 'dst', keep: (t: SiteTemplate) => boolean) =>
        IN_RANGE_SITE.filter((x) => x.t[side] === site && keep(x.t)).reduce((n, x) => n + x.bytes, 0);
      return [...sites]
        .filter((s) => bytes(s, 'src', isV6) + bytes(s, 'dst', isV6) === 0)
        .filter((s) => bytes(s, 'src', (t) => t.cls === 'ipv4') + bytes(s, 'dst', (t) => t.cls === 'ipv4') > 0)
        .map((s) => {
          const row: Record<string, number> = {};
          const sent = bytes(s, 'src', (t) => t.cls === 'ipv4');
          const received = bytes(s, 'dst', (t) => t.cls === 'ipv4');
          if (sent > 0) row['IPv4 sent'] = sent;
          if (received > 0) row['IPv4 received'] = received;
          return [s, row] as const;
        });
    })();
    expect(Object.fromEntries(only4)).toEqual(Object.fromEntries(expected));
    expect(only4.map(([s]) => s).sort()).toEqual(['KIT', 'RAL-LCG2', CALTECH]);
    // DESY sent 10 bytes of IPv6 once: dual-stacked, not listed; IN2P3 only NAT64 (IPv6): not listed
    expect(merged.get('DESY-HH')).toMatchObject({ 'IPv6 sent': 10 });
    expect(merged.has('unknown') || merged.has('other')).toBe(false);
  });

  it('per experiment: flow-label IPv6 and NAT64 bytes, firefly IPv4 / IPv6 bytes and the IPv6 share', async () => {
    const r = await run();
    const merged = merge(
      ['A', 'B', 'C', 'D', 'E'].map((ref) => target(r, 7, ref)),
      'community',
    );
    const expected: Record<string, Record<string, number>> = {};
    const add = (col: string, sums: Record<string, number>) => {
      for (const [c, b] of Object.entries(sums)) (expected[c] ??= {})[col] = b;
    };
    const labelName = (t: Template) => (t.pair === ATLAS ? 'atlas' : t.pair === CMS ? 'cms' : 'unregistered');
    const marked = IN_RANGE_LINK.filter((x) => x.t.cls === 'scitags');
    add(
      'flow-label IPv6',
      sumBy(
        marked,
        (x) => labelName(x.t),
        (x) => x.bytes,
      ),
    );
    add(
      'flow-label NAT64',
      sumBy(
        marked,
        (x) => (x.t.nat64 ? labelName(x.t) : undefined),
        (x) => x.bytes,
      ),
    );
    // every event in range writes a point (a started flow: 0 bytes, so cms has an IPv6 cell of 0)
    const ended = FF_EVENTS.filter((e) => e.atMs >= FROM && e.atMs < TO);
    const ffBytes = (version?: 4 | 6) =>
      sumBy(
        ended,
        (e) => (version === undefined || e.ipVersion === version ? FF_NAMES[e.experimentId] : undefined),
        (e) => e.bytes,
      );
    add('firefly IPv4', ffBytes(4));
    add('firefly IPv6', ffBytes(6));
    add('firefly IPv4 + IPv6', ffBytes());
    expect(Object.fromEntries(merged)).toEqual(expected);
    expect(expected.atlas).toEqual({
      'flow-label IPv6': 1000 * 1830 + 300 * 590,
      'flow-label NAT64': 300 * 590,
      'firefly IPv4': 750_000,
      'firefly IPv6': 21_000_000,
      'firefly IPv4 + IPv6': 21_750_000,
    });
    // the firefly IPv6 share column (calculateField: firefly IPv6 / firefly IPv4 + IPv6)
    const share = (c: string) => (merged.get(c)!['firefly IPv6'] ?? 0) / merged.get(c)!['firefly IPv4 + IPv6']!;
    expect([share('atlas'), share('cms'), share('300')]).toEqual([21 / 21.75, 0, 1]);
  });

  it("$policy = rollup_1h: the hour rolled up by the collector's continuous queries answers as raw at 1h (nat64 kept); the site tables read raw", async () => {
    const influx = new InfluxDB({ host: '127.0.0.1', port: db.port, database: DB });
    const cqs = await influx.query<{ name: string; query: string }>('SHOW CONTINUOUS QUERIES');
    for (const name of ['cq_scitags_1h', 'cq_link_1h', 'cq_firefly_1h']) {
      const cq = cqs.find((c) => c.name === name)!;
      // The CQs run every 10 minutes; their statements are run here over the data's hour.
      await influx.query(
        /BEGIN (SELECT .*) END$/.exec(cq.query)![1]!.replace(' GROUP BY', ` WHERE time >= ${FROM}ms AND time < ${TO}ms GROUP BY`),
      );
    }
    const raw = await run({ intervalMs: HOUR, timeFilterStyle: 'backend', fromMs: FROM - 1 });
    const hourly = await run({ intervalMs: HOUR, timeFilterStyle: 'backend', fromMs: FROM - 1, selection: { policy: ['1h'] } });
    expect(hourly.targets.map((t) => [t.panelId, t.refId, t.repeatValue, t.query])).toEqual(
      raw.targets.map((t) => [t.panelId, t.refId, t.repeatValue, t.query.replace(/"raw"\."(\w+)"/g, '"rollup_1h"."$1"')]),
    );
    expect(raw.targets.filter((t) => t.query.includes('"scitags_site_traffic"')).every((t) => !t.query.includes('"raw".'))).toBe(true);
    for (const t of raw.targets) {
      const h = hourly.targets.find((x) => x.panelId === t.panelId && x.refId === t.refId && x.repeatValue === t.repeatValue)!;
      const label = `panel ${t.panelId} ${t.refId} ${t.repeatValue ?? ''}`;
      if (t.panelId <= 3) expect(nonZero(timeSeriesByName(h)), label).toEqual(nonZero(timeSeriesByName(t)));
      else expect(tableRows(h), label).toEqual(tableRows(t));
    }
    // Not vacuous: the NAT64 traffic of LHCONE in the hour, from the roll-up
    const nat = (r: DashboardRun) => nonZero(timeSeriesByName(target(r, 2, 'C', 'LHCONE.a (x)')));
    expect(nat(hourly)).toEqual({ NAT64: { [T0]: ((300 * 590 + 777 * 15) * 8000) / HOUR } });
  });

  it('IPv4 services behind NAT64: per-bucket top lists summed per address over the range, largest first', async () => {
    const r = await run();
    // the panel's transformations: group by address (bytes and error bytes summed), sort by bytes, first 20
    const sums = new Map<string, { bytes: number; errorBytes: number }>();
    for (const row of tableRows(target(r, 8, 'A'))) {
      const e = sums.get(String(row.address)) ?? { bytes: 0, errorBytes: 0 };
      e.bytes += Number(row.bytes);
      e.errorBytes += Number(row.error_bytes);
      sums.set(String(row.address), e);
    }
    const shown = [...sums].sort((a, b) => b[1].bytes - a[1].bytes).slice(0, 20);
    const expected = new Map<string, { bytes: number; errorBytes: number }>();
    for (const k of BUCKETS.filter(inRange)) {
      for (const row of nat64TopRows(k)) {
        const e = expected.get(row.address) ?? { bytes: 0, errorBytes: 0 };
        e.bytes += row.bytes;
        e.errorBytes += row.errorBytes;
        expected.set(row.address, e);
      }
    }
    expect(shown).toEqual([...expected].sort((a, b) => b[1].bytes - a[1].bytes));
    // 192.0.2.33: 20 buckets each of 1000, 2000, 3000; 198.51.100.7: 30 even buckets of 1500; 203.0.113.9 once
    expect(shown.map(([a, e]) => [a, e.bytes, e.errorBytes])).toEqual([
      ['192.0.2.33', 120_000, 0],
      ['203.0.113.9', 50_000, 10],
      ['198.51.100.7', 45_000, 3_000],
    ]);
  });

  it("the transformations name only columns the panel's queries return", () => {
    for (const panel of allPanels(dashboard) as PanelWithTransformations[]) {
      const names = new Set(['Time', 'community', 'src_site', 'dst_site', 'site']);
      for (const t of panel.targets ?? []) {
        if (t.alias) names.add(t.alias);
        for (const m of t.query!.matchAll(/AS "([^"]+)"/g)) names.add(m[1]!);
        // raw selects (SELECT "a", "b" FROM): the columns by their own names
        for (const c of /^SELECT (.*?) FROM/.exec(t.query!)?.[1]?.split(',') ?? []) {
          const plain = /^\s*"(\w+)"\s*$/.exec(c);
          if (plain) names.add(plain[1]!);
        }
      }
      for (const tr of panel.transformations ?? []) {
        const o = tr.options as {
          binary?: { left: string; right: string };
          alias?: string;
          filters?: { fieldName: string }[];
          excludeByName?: Record<string, boolean>;
          renameByName?: Record<string, string>;
          fields?: Record<string, unknown>;
        };
        const used = [
          ...Object.keys(o.fields ?? {}),
          ...(o.binary ? [o.binary.left, o.binary.right] : []),
          ...(o.filters ?? []).map((f) => f.fieldName),
          ...Object.keys(o.excludeByName ?? {}),
          ...Object.keys(o.renameByName ?? {}),
        ];
        for (const n of used) expect(names, `panel ${panel.id} ${tr.id}: ${n}`).toContain(n);
        if (o.alias) names.add(o.alias);
      }
    }
  });
});
