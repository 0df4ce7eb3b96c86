import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InfluxDB } from 'influx';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fireflyEvent } from '../support/firefly-events.js';
import type { FireflyFlowEvent } from '../../decoders/firefly/types.js';
import { influxStoreSchema } from '../../src/config/schema.js';
import { FireflyAggregator } from '../../src/fireflies/aggregate.js';
import { DURATION_BINS, THROUGHPUT_BINS, binOf } from '../../src/fireflies/histogram.js';
import { silentLogger } from '../../src/log.js';
import { RegistryService } from '../../src/registry/service.js';
import { createInfluxStore, type InfluxTrafficStore } from '../../src/store/influx/store.js';
import {
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
 * Runs every panel query and variable of dashboards/scitags-fireflies.json as Grafana would
 * against a private influxd holding scitags_firefly points written by the collector's own
 * path (FireflyAggregator -> InfluxTrafficStore.writeFireflyRows). Each panel's expected
 * answer is computed here from the events, in plain TypeScript, independently of InfluxQL.
 */
const DB = 'scitags';
const dashboard = JSON.parse(readFileSync(new URL('../../dashboards/scitags-fireflies.json', import.meta.url), 'utf8')) as DashboardJson;

const HOUR = 3_600_000;
const MIN = 60_000;
const T0 = Math.floor(Date.now() / HOUR) * HOUR - 3 * HOUR;

interface Key {
  experimentId: number;
  activityId: number;
  ipVersion: 4 | 6;
  srcSite: string;
  dstSite: string;
  /** the dashboard's community / activity tags (registry names, else the ids) */
  community: string;
  activity: string;
}
const ATLAS: Key = {
  experimentId: 2,
  activityId: 3,
  ipVersion: 6,
  srcSite: 'CERN-PROD',
  dstSite: 'BNL-ATLAS',
  community: 'atlas',
  activity: 'Data Brokering',
};
const CMS: Key = {
  experimentId: 3,
  activityId: 3,
  ipVersion: 4,
  srcSite: 'T2_US.Caltech (x)',
  dstSite: 'CERN-PROD',
  community: 'cms',
  activity: 'Cache',
};
const UNREG: Key = {
  experimentId: 300,
  activityId: 7,
  ipVersion: 6,
  srcSite: 'unknown',
  dstSite: 'T2_US.Caltech (x)',
  community: '300',
  activity: '7',
};

type Ev = FireflyFlowEvent & { key: Key };
function ev(key: Key, kind: FireflyFlowEvent['kind'], atMs: number, over: Partial<FireflyFlowEvent> = {}): Ev {
  const { experimentId, activityId, ipVersion, srcSite, dstSite } = key;
  return { key, ...fireflyEvent(kind, atMs, { experimentId, activityId, ipVersion, srcSite, dstSite, ...over }) };
}

/** Values exact in binary (sums in any order agree). */
function events(): Ev[] {
  const out: Ev[] = [];
  for (let k = 0; k < 12; k++) {
    const t = T0 + k * 5 * MIN + 1000;
    out.push(ev(ATLAS, 'started', t), ev(ATLAS, 'started', t + 10));
    out.push(
      ev(ATLAS, 'ended', t + 20, {
        bytes: 1_000_000 * (k + 1),
        durationSeconds: 2 ** (k % 5),
        throughputBitsPerSecond: 2 ** (20 + k),
        rttMs: 8 + k,
      }),
    );
    if (k % 3 === 0) out.push(ev(CMS, 'started', t + MIN), ev(CMS, 'expired', t + 2 * MIN));
    if (k % 2 === 1)
      out.push(
        ev(CMS, 'ended', t + 3 * MIN, {
          bytes: 4096 * k,
          durationSeconds: 900 + k,
          throughputBitsPerSecond: 1.5e9,
          rttMs: 0.5 * k,
          withoutStart: true,
        }),
      );
    if (k === 4 || k === 9) out.push(ev(UNREG, 'ended', t + 30, { bytes: 123, durationSeconds: 7200, throughputBitsPerSecond: 2e10 }));
  }
  return out;
}
const EVENTS = events();

/** Expected (alias -> time -> value) from the events: `value` over the events of one interval and group. */
function expectedSeries(
  intervalMs: number,
  keep: (e: Ev) => boolean,
  name: (e: Ev) => string,
  value: (es: Ev[]) => number | undefined,
): Record<string, Record<number, number>> {
  const groups = new Map<string, Map<number, Ev[]>>();
  for (const e of EVENTS) {
    if (!keep(e) || e.atMs < FROM || e.atMs >= TO) continue;
    const t = e.atMs - (e.atMs % intervalMs);
    const g = groups.get(name(e)) ?? new Map<number, Ev[]>();
    groups.set(name(e), g);
    g.set(t, [...(g.get(t) ?? []), e]);
  }
  const out: Record<string, Record<number, number>> = {};
  for (const [n, byTime] of groups) {
    for (const [t, es] of byTime) {
      const v = value(es);
      if (v !== undefined) (out[n] ??= {})[t] = v;
    }
  }
  return out;
}
const count = (kind: FireflyFlowEvent['kind']) => (es: Ev[]) => {
  const n = es.filter((e) => e.kind === kind).length;
  return n > 0 ? n : undefined;
};
const sumOf = (f: (e: Ev) => number) => (es: Ev[]) => es.reduce((n, e) => n + f(e), 0);
const meanOf = (f: (e: Ev) => number | undefined) => (es: Ev[]) => {
  const xs = es.map(f).filter((x): x is number => x !== undefined);
  return xs.length > 0 ? xs.reduce((a, b) => a + b, 0) / xs.length : undefined;
};

const FROM = T0;
const TO = T0 + HOUR;

describe.skipIf(!influxdAvailable())('SciTags fireflies dashboard against InfluxDB', () => {
  let db: InfluxdHandle;
  let store: InfluxTrafficStore;
  beforeAll(async () => {
    db = await startInfluxd();
    const registry = new RegistryService(
      { url: '', refreshSeconds: 3600, cacheFile: '', timeoutMs: 1000 },
      { now: () => T0, fetchText: () => Promise.reject(new Error('offline')), log: silentLogger() },
    );
    const base = influxStoreSchema.parse({ type: 'influx', url: db.url });
    store = await createInfluxStore(
      { ...base, database: DB, spoolDir: mkdtempSync(join(tmpdir(), 'spool-')) },
      { registry: () => registry.registry, links: [], log: silentLogger(), bucketSeconds: 60 },
    );
    const agg = new FireflyAggregator({ bucketSeconds: 60 }, { now: () => T0, store });
    for (const e of EVENTS) agg.add(e);
    await agg.flush();
    await store.flush();
  }, 60_000);
  afterAll(async () => {
    await store?.close();
    await db?.destroy();
  });

  const run = (opts: Partial<RunOptions> = {}): Promise<DashboardRun> =>
    runDashboard(dashboard, { url: db.url, database: DB, fromMs: FROM, toMs: TO, intervalMs: 5 * MIN, ...opts });
  const target = (r: DashboardRun, panelId: number, refId = 'A'): TargetRun => {
    const t = r.targets.find((x) => x.panelId === panelId && x.refId === refId);
    if (!t) throw new Error(`no panel ${panelId} ${refId}`);
    return t;
  };

  it('the variables list experiments (names, else ids) and the sites of the chosen experiments', async () => {
    const all = await run();
    expect(all.variables.options).toEqual({
      policy: ['1m', '1h'],
      experiment: ['300', 'atlas', 'cms'],
      src_site: ['CERN-PROD', 'T2_US.Caltech (x)', 'unknown'],
      dst_site: ['BNL-ATLAS', 'CERN-PROD', 'T2_US.Caltech (x)'],
    });
    const cms = await run({ selection: { experiment: ['cms'] } });
    expect([cms.variables.options.src_site, cms.variables.options.dst_site]).toEqual([['T2_US.Caltech (x)'], ['CERN-PROD']]);
  });

  for (const intervalMs of [MIN, 5 * MIN]) {
    it(`every time-series panel, interval ${intervalMs / MIN} min, All selected`, async () => {
      const r = await run({ intervalMs });
      const all = () => true;
      expect(nonZero(timeSeriesByName(target(r, 1, 'A')))).toEqual(
        expectedSeries(intervalMs, all, (e) => `${e.key.community} started`, count('started')),
      );
      expect(nonZero(timeSeriesByName(target(r, 1, 'B')))).toEqual(
        expectedSeries(intervalMs, all, (e) => `${e.key.community} ended`, count('ended')),
      );
      expect(nonZero(timeSeriesByName(target(r, 2)))).toEqual(
        expectedSeries(
          intervalMs,
          (e) => e.kind === 'ended',
          (e) => `${e.key.community} / ${e.key.activity}`,
          sumOf((e) => e.bytes),
        ),
      );
      expect(timeSeriesByName(target(r, 6))).toEqual(
        expectedSeries(
          intervalMs,
          (e) => e.rttMs !== undefined,
          (e) => `${e.key.srcSite} → ${e.key.dstSite}`,
          meanOf((e) => e.rttMs),
        ),
      );
      expect(timeSeriesByName(target(r, 7))).toEqual(
        expectedSeries(
          intervalMs,
          (e) => e.throughputBitsPerSecond !== undefined,
          (e) => e.key.community,
          meanOf((e) => e.throughputBitsPerSecond),
        ),
      );
    });
  }

  it('the site-pair table and both distributions over the range; a site with regex specials selected alone', async () => {
    const r = await run();
    const pairs = [ATLAS, CMS, UNREG].map((k) => {
      const es = EVENTS.filter((e) => e.key === k);
      const ended = es.filter((e) => e.kind === 'ended');
      const rtts = ended.filter((e) => e.rttMs !== undefined);
      return {
        src_site: k.srcSite,
        dst_site: k.dstSite,
        started: es.filter((e) => e.kind === 'started').length,
        ended: ended.length,
        expired: es.filter((e) => e.kind === 'expired').length,
        bytes: sumOf((e) => e.bytes)(ended),
        'mean duration': sumOf((e) => e.durationSeconds)(ended) / ended.length,
        'mean throughput': meanOf((e) => e.throughputBitsPerSecond)(ended),
        'max throughput': Math.max(...ended.map((e) => e.throughputBitsPerSecond!)),
        'mean rtt': rtts.length > 0 ? meanOf((e) => e.rttMs)(rtts) : 0,
      };
    });
    const rows = tableRows(target(r, 3)).map(({ time: _time, ...rest }) => rest);
    expect(rows.sort((a, b) => String(a.src_site).localeCompare(String(b.src_site)))).toEqual(
      pairs.sort((a, b) => a.src_site.localeCompare(b.src_site)),
    );
    const ended = EVENTS.filter((e) => e.kind === 'ended');
    const hist = (t: TargetRun) => {
      const [row] = tableRows(t);
      return Object.entries(row!)
        .filter(([c]) => c !== 'time')
        .map(([c, v]) => [c, v]);
    };
    const durations = DURATION_BINS.map(() => 0);
    for (const e of ended) durations[binOf(DURATION_BINS, e.durationSeconds)]!++;
    const throughputs = THROUGHPUT_BINS.map(() => 0);
    for (const e of ended) throughputs[binOf(THROUGHPUT_BINS, e.throughputBitsPerSecond!)]!++;
    expect(hist(target(r, 4))).toEqual(
      ['< 1 s', '1-10 s', '10 s-1 min', '1-10 min', '10 min-1 h', '> 1 h'].map((c, i) => [c, durations[i]]),
    );
    expect(durations).toEqual([0, 10, 2, 0, 6, 2]);
    expect(hist(target(r, 5))).toEqual(
      ['< 1 Mb/s', '1-10 Mb/s', '10-100 Mb/s', '0.1-1 Gb/s', '1-10 Gb/s', '> 10 Gb/s'].map((c, i) => [c, throughputs[i]]),
    );
    // The dots and parentheses of the site name are escaped, not regex syntax.
    const one = await run({ selection: { src_site: ['T2_US.Caltech (x)'] } });
    expect(tableRows(target(one, 3)).map((x) => [x.src_site, x.dst_site, x.ended])).toEqual([['T2_US.Caltech (x)', 'CERN-PROD', 6]]);
    expect(Object.keys(nonZero(timeSeriesByName(target(one, 1, 'A'))))).toEqual(['cms started']);
  });
  it('$policy = rollup_1h: the hour rolled up by cq_firefly_1h answers every panel as the raw buckets do at 1h', async () => {
    const influx = new InfluxDB({ host: '127.0.0.1', port: db.port, database: DB });
    const cq = (await influx.query<{ name: string; query: string }>('SHOW CONTINUOUS QUERIES')).find((r) => r.name === 'cq_firefly_1h')!;
    // The CQ runs every 10 minutes; its statement is run here over the events' hour.
    await influx.query(
      /BEGIN (SELECT .*) END$/.exec(cq.query)![1]!.replace(' GROUP BY', ` WHERE time >= ${FROM}ms AND time < ${TO}ms GROUP BY`),
    );
    const raw = await run({ intervalMs: HOUR, selection: { policy: ['1m'] } });
    const hourly = await run({ intervalMs: HOUR, selection: { policy: ['1h'] } });
    expect(hourly.targets.map((t) => [t.panelId, t.refId, t.query])).toEqual(
      raw.targets.map((t) => [t.panelId, t.refId, t.query.replace('"raw"."scitags_firefly"', '"rollup_1h"."scitags_firefly"')]),
    );
    for (const [panelId, refId] of [
      [1, 'A'],
      [1, 'B'],
      [2, 'A'],
      [6, 'A'],
      [7, 'A'],
    ] as const)
      expect(timeSeriesByName(target(hourly, panelId, refId)), `panel ${panelId}${refId}`).toEqual(
        timeSeriesByName(target(raw, panelId, refId)),
      );
    for (const panelId of [3, 4, 5])
      expect(tableRows(target(hourly, panelId)), `panel ${panelId}`).toEqual(tableRows(target(raw, panelId)));
    // Not vacuous: the hour holds every event (ended flows of the 12 five-minute steps).
    expect(nonZero(timeSeriesByName(target(hourly, 1, 'B')))).toEqual({
      'atlas ended': { [T0]: 12 },
      'cms ended': { [T0]: 6 },
      '300 ended': { [T0]: 2 },
    });
  });
});
