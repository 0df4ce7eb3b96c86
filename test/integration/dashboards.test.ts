import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  influxQuery,
  runDashboard,
  tableRows,
  timeSeriesByName,
  toLineProtocol,
  writePoints,
  type DashboardJson,
  type DashboardRun,
  type Point,
  type RunOptions,
  type Selection,
  type TargetRun,
  mutateQueries,
} from '../support/dashboards.js';
import { influxdAvailable, startInfluxd, type InfluxdHandle } from '../support/influxd.js';
import { InfluxDB } from 'influx';
import { DEFAULT_SETUP, provisionInflux } from '../../src/store/influx/setup.js';

/**
 * Runs every panel query and every template variable of dashboards/*.json, the way Grafana
 * would, against a private influxd holding a known set of points written exactly per
 * docs/influx-schema.md (plus the extra fields the dashboards need: in_capacity_bps /
 * out_capacity_bps on link_traffic and the collector_decode_errors measurement, see
 * dashboards/README.md). The expected answer of each panel is computed here in plain
 * TypeScript from the same points, independently of InfluxQL; a panel without an
 * expectation, or with a wrong query, fails.
 *
 * The database is provisioned by the collector's own code (retention policies `raw`, the
 * default, and `rollup_1h`, and the continuous queries); the points go to `raw`, and
 * `rollup_1h` is filled by running each continuous query's own SELECT over the data set's
 * hours (a backfill: the scheduled runs only cover the last two hours before now). With
 * `$policy` = rollup_1h the panels are checked against hourly sums computed here.
 */

const DB = 'scitags';
const load = (file: string): DashboardJson =>
  JSON.parse(readFileSync(new URL(`../../dashboards/${file}`, import.meta.url), 'utf8')) as DashboardJson;
const overview = load('scitags-overview.json');
const linkDetail = load('link-detail.json');
const health = load('collector-health.json');

// ---------------------------------------------------------------------------------------
// The data set
// ---------------------------------------------------------------------------------------

const T0 = 1_699_999_200; // a whole hour, seconds
const BUCKETS = [-2, -1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]; // 0..9 are inside the main range
const E1 = '192.0.2.1';
const E2 = '2001:db8::1';
const E3 = '192.0.2.3';
const GEANT = 'uplink (geant)'; // regex specials: ( ) and a space
const LHCOPN = 'lhcopn.cern'; // a dot
const CAPACITY: Record<string, number> = { [GEANT]: 2_000_000, [LHCOPN]: 10_000_000 };
/** in_if / out_if tags: the ifIndex behind each link name (docs/influx-schema.md) */
const IF_INDEX: Record<string, string> = { [GEANT]: '1', [LHCOPN]: '2', 'esnet-chi': '3', '7': '7', '12': '12', none: 'none' };
const ifTags = (in_link: string, out_link: string) => ({ in_if: IF_INDEX[in_link]!, out_if: IF_INDEX[out_link]! });

interface Flow {
  exporter: string;
  in_link: string;
  out_link: string;
  community: string;
  activity: string;
  community_id: string;
  activity_id: string;
  /** which buckets carry it */
  buckets: (k: number) => boolean;
  base: number;
}

const FLOWS: Flow[] = [
  {
    exporter: E1,
    in_link: GEANT,
    out_link: LHCOPN,
    community: 'atlas',
    activity: 'production',
    community_id: '2',
    activity_id: '3',
    buckets: () => true,
    base: 100_000,
  },
  {
    exporter: E1,
    in_link: GEANT,
    out_link: LHCOPN,
    community: 'atlas',
    activity: 'perfsonar',
    community_id: '2',
    activity_id: '10',
    buckets: (k) => k % 2 === 0,
    base: 7_000,
  },
  {
    exporter: E1,
    in_link: LHCOPN,
    out_link: GEANT,
    community: 'cms',
    activity: 'production',
    community_id: '3',
    activity_id: '3',
    buckets: (k) => k >= 3,
    base: 55_000,
  },
  {
    exporter: E2,
    in_link: '7',
    out_link: 'esnet-chi',
    community: 'cms',
    activity: 'analysis',
    community_id: '3',
    activity_id: '5',
    buckets: (k) => k !== 4,
    base: 31_000,
  },
  {
    exporter: E2,
    in_link: '7',
    out_link: 'esnet-chi',
    community: 'atlas',
    activity: 'production',
    community_id: '2',
    activity_id: '3',
    buckets: (k) => k < 6,
    base: 12_345,
  },
  {
    exporter: E1,
    in_link: GEANT,
    out_link: LHCOPN,
    community: 'unregistered',
    activity: 'unregistered',
    community_id: 'unregistered',
    activity_id: 'unregistered',
    buckets: (k) => k % 3 === 0,
    base: 999,
  },
  {
    exporter: E2,
    in_link: '7',
    out_link: 'esnet-chi',
    community: 'unregistered',
    activity: 'unregistered',
    community_id: '301',
    activity_id: '12',
    buckets: (k) => k === 2 || k === 7,
    base: 4_321,
  },
  {
    exporter: E3,
    in_link: '7',
    out_link: 'none',
    community: 'lhcb',
    activity: 'datachallenge',
    community_id: '4',
    activity_id: '1',
    buckets: (k) => k >= 1 && k <= 8,
    base: 2_500,
  },
];

function buildPoints(): Point[] {
  const points: Point[] = [];
  const linkKey = (e: string, i: string, o: string) => `${e}|${i}|${o}`;
  const links = new Map<string, { exporter: string; in_link: string; out_link: string; n: number }>();
  FLOWS.forEach((f, n) => {
    if (!links.has(linkKey(f.exporter, f.in_link, f.out_link)))
      links.set(linkKey(f.exporter, f.in_link, f.out_link), { exporter: f.exporter, in_link: f.in_link, out_link: f.out_link, n });
  });
  // a link pair that carries no marked traffic at all
  links.set(linkKey(E3, '12', '7'), { exporter: E3, in_link: '12', out_link: '7', n: 9 });
  for (const k of BUCKETS) {
    const time = T0 + 60 * k;
    const marked = new Map<string, { bytes: number; packets: number; records: number }>();
    FLOWS.forEach((f, n) => {
      if (!f.buckets(k)) return;
      const bytes = f.base * (k + 3) + 17 * n;
      const packets = Math.floor(bytes / 900) + 1;
      const records = 1 + ((k + n) % 4);
      const { exporter, in_link, out_link, community, activity, community_id, activity_id } = f;
      points.push({
        measurement: 'scitags_traffic',
        tags: { exporter, in_link, out_link, ...ifTags(in_link, out_link), community, activity, community_id, activity_id },
        fields: { bytes, packets, records },
        time,
      });
      const key = linkKey(exporter, in_link, out_link);
      const m = marked.get(key) ?? { bytes: 0, packets: 0, records: 0 };
      marked.set(key, { bytes: m.bytes + bytes, packets: m.packets + packets, records: m.records + records });
    });
    for (const [key, l] of links) {
      const cap: Record<string, number> = {};
      if (CAPACITY[l.in_link] !== undefined) cap.in_capacity_bps = CAPACITY[l.in_link]!;
      if (CAPACITY[l.out_link] !== undefined) cap.out_capacity_bps = CAPACITY[l.out_link]!;
      const tags = { exporter: l.exporter, in_link: l.in_link, out_link: l.out_link, ...ifTags(l.in_link, l.out_link) };
      const m = marked.get(key);
      if (m) points.push({ measurement: 'link_traffic', tags: { ...tags, class: 'scitags' }, fields: { ...m, ...cap }, time });
      if ((k + l.n) % 5 !== 0) {
        const bytes = 40_000 + 1_000 * l.n + 313 * k;
        points.push({
          measurement: 'link_traffic',
          tags: { ...tags, class: 'ipv6_unmarked' },
          fields: { bytes, packets: Math.floor(bytes / 700), records: 2, ...cap },
          time,
        });
      }
      const bytes4 = 90_000 + 2_000 * l.n + 101 * k * k;
      points.push({
        measurement: 'link_traffic',
        tags: { ...tags, class: 'ipv4' },
        fields: { bytes: bytes4, packets: Math.floor(bytes4 / 1200), records: 3, ...cap },
        time,
      });
      if (l.exporter === E2 && k === 5)
        points.push({
          measurement: 'link_traffic',
          tags: { ...tags, class: 'unknown' },
          fields: { bytes: 640, packets: 1, records: 1, ...cap },
          time,
        });
    }
    // collector counters: cumulative since start; E2's collector "restarted" before bucket 5
    const stat = (rate: number, since: number) => {
      const n = k - since + 1;
      return {
        datagrams: rate * n,
        records: rate * 7 * n,
        decode_errors: 3 * n + ((n * n) % 5),
        template_misses: 2 * n,
        sequence_lost: n * n,
        queue_drops: Math.max(0, n - 4),
      };
    };
    points.push({ measurement: 'collector_stats', tags: { exporter: E1 }, fields: stat(120, -2), time });
    points.push({ measurement: 'collector_stats', tags: { exporter: E2 }, fields: stat(90, k >= 5 ? 5 : -2), time });
    points.push({ measurement: 'collector_stats', tags: { exporter: E3 }, fields: stat(30, -2), time });
    points.push({
      measurement: 'collector_stats',
      tags: { exporter: 'all' },
      fields: { store_write_failures: k >= 6 ? 4 : k >= 3 ? 1 : 0 },
      time,
    });
    const n = k + 3;
    points.push({ measurement: 'collector_decode_errors', tags: { exporter: E1, reason: 'truncated' }, fields: { errors: 2 * n }, time });
    points.push({
      measurement: 'collector_decode_errors',
      tags: { exporter: E1, reason: 'template-missing' },
      fields: { errors: n * n },
      time,
    });
    points.push({ measurement: 'collector_decode_errors', tags: { exporter: E3, reason: 'bad-version' }, fields: { errors: 5 * n }, time });
  }
  return points;
}

const POINTS = buildPoints();

/** The hourly points the continuous queries make, computed here: per measurement, full tag
 * set and hour, the sums of bytes / packets / records and the maximum of each capacity. */
function rollup(points: Point[]): Point[] {
  const out = new Map<string, Point>();
  for (const p of points) {
    if (p.measurement !== 'scitags_traffic' && p.measurement !== 'link_traffic') continue;
    const hour = Math.floor(p.time / 3600) * 3600;
    const key = JSON.stringify([p.measurement, Object.entries(p.tags).sort(), hour]);
    const r = out.get(key) ?? { measurement: p.measurement, tags: p.tags, fields: { bytes: 0, packets: 0, records: 0 }, time: hour };
    for (const f of ['bytes', 'packets', 'records']) r.fields[f] = r.fields[f]! + p.fields[f]!;
    for (const f of ['in_capacity_bps', 'out_capacity_bps']) {
      if (p.fields[f] !== undefined) r.fields[f] = Math.max(r.fields[f] ?? 0, p.fields[f]);
    }
    out.set(key, r);
  }
  return [...out.values()];
}

/** Hourly points of an hour whose raw buckets are gone (older than the raw retention): only
 * `rollup_1h` has them, so a panel shows them only when it reads the roll-up. */
const AGED_HOUR = T0 - 20 * 3600;
const AGED: Point[] = [
  {
    measurement: 'scitags_traffic',
    tags: {
      exporter: E1,
      in_link: GEANT,
      out_link: LHCOPN,
      ...ifTags(GEANT, LHCOPN),
      community: 'atlas',
      activity: 'production',
      community_id: '2',
      activity_id: '3',
    },
    fields: { bytes: 9_000_000, packets: 7_000, records: 40 },
    time: AGED_HOUR,
  },
  {
    measurement: 'link_traffic',
    tags: { exporter: E1, in_link: GEANT, out_link: LHCOPN, ...ifTags(GEANT, LHCOPN), class: 'scitags' },
    fields: { bytes: 9_000_000, packets: 7_000, records: 40, in_capacity_bps: CAPACITY[GEANT]!, out_capacity_bps: CAPACITY[LHCOPN]! },
    time: AGED_HOUR,
  },
];
const ROLLUP_POINTS = [...rollup(POINTS), ...AGED];
/** `$policy` values (the option's value is the panels' minimum interval). */
const RAW: Selection = ['1m'];
const ROLLUP: Selection = ['1h'];

// ---------------------------------------------------------------------------------------
// The truth, computed without InfluxQL
// ---------------------------------------------------------------------------------------

interface View {
  /** The points the dashboard reads: the raw buckets, or the hourly roll-up. */
  points: Point[];
  fromMs: number;
  toMs: number;
  style: 'frontend' | 'backend';
  selection: Record<string, Selection>;
  options: Record<string, string[]>;
}

const inRange = (p: Point, v: View) =>
  v.style === 'backend' ? p.time * 1000 > v.fromMs && p.time * 1000 < v.toMs : p.time * 1000 >= v.fromMs && p.time * 1000 <= v.toMs;

/** Values of a variable as Grafana would match them (All = everything). */
function matcher(v: View, name: string, repeatValue?: string): (x: string) => boolean {
  if (repeatValue !== undefined) return (x) => x === repeatValue;
  const sel = v.selection[name];
  if (sel === undefined) throw new Error(`no selection for ${name}`);
  if (sel === 'all') return () => true;
  return (x) => sel.includes(x);
}

type Series = Record<string, Record<number, number | null>>;

interface RateSpec {
  measurement: string;
  where: (p: Point) => boolean;
  groupBy: string[];
  /** value per window from the points in it (undefined: no row) */
  reduce: (pts: Point[], intervalMs: number) => number | null;
  fill: 'zero' | 'none';
}

/** GROUP BY time(interval) windows of the range. Derivative-type functions (derivative,
 * difference) make InfluxDB move the start of the range one interval back, so the first
 * window has a previous value: `extendBack`. */
function windows(v: View, intervalMs: number, extendBack = false): number[] {
  const out: number[] = [];
  const start = v.fromMs - (extendBack ? intervalMs : 0);
  for (let w = Math.floor(start / intervalMs) * intervalMs; w <= v.toMs; w += intervalMs) out.push(w);
  return out;
}

/** Points a derivative-type query sees: the time filter with its start one interval earlier. */
const inDerivativeRange = (p: Point, v: View, intervalMs: number) => inRange(p, { ...v, fromMs: v.fromMs - intervalMs });

function aliasName(alias: string, tags: Record<string, string>): string {
  return alias.replace(/\$tag_(\w+)/g, (_m, t: string) => tags[t] ?? '');
}

function groups(points: Point[], groupBy: string[]): Map<string, { tags: Record<string, string>; points: Point[] }> {
  const out = new Map<string, { tags: Record<string, string>; points: Point[] }>();
  for (const p of points) {
    const tags = Object.fromEntries(groupBy.map((g) => [g, p.tags[g] ?? '']));
    const key = JSON.stringify(tags);
    const g = out.get(key) ?? { tags, points: [] };
    g.points.push(p);
    out.set(key, g);
  }
  return out;
}

function expectedRate(spec: RateSpec, v: View, run: TargetRun): Series {
  const pts = v.points.filter((p) => p.measurement === spec.measurement && inRange(p, v) && spec.where(p));
  const out: Series = {};
  for (const g of groups(pts, spec.groupBy).values()) {
    const series: Record<number, number | null> = {};
    for (const w of windows(v, run.intervalMs)) {
      const inW = g.points.filter((p) => p.time * 1000 >= w && p.time * 1000 < w + run.intervalMs);
      if (inW.length === 0) {
        if (spec.fill === 'zero') series[w] = 0;
        continue;
      }
      series[w] = spec.reduce(inW, run.intervalMs);
    }
    out[aliasName(run.alias, g.tags)] = series;
  }
  return out;
}

const sum = (pts: Point[], f: string) => pts.reduce((a, p) => a + (p.fields[f] ?? 0), 0);
const bitRate = (pts: Point[], i: number) => (sum(pts, 'bytes') * 8000) / i;
const pktRate = (pts: Point[], i: number) => (sum(pts, 'packets') * 1000) / i;
const utilisation = (capField: string) => (pts: Point[], i: number) => {
  const caps = pts.map((p) => p.fields[capField]).filter((c): c is number => c !== undefined);
  return caps.length === 0 ? null : (sum(pts, 'bytes') * 8000) / i / Math.max(...caps);
};

/** non_negative_derivative(max(field), 1s) GROUP BY time(i), groupBy fill(none) */
function expectedDerivative(
  measurement: string,
  field: string,
  where: (p: Point) => boolean,
  groupBy: string[],
  v: View,
  run: TargetRun,
): Series {
  const pts = v.points.filter(
    (p) => p.measurement === measurement && inDerivativeRange(p, v, run.intervalMs) && where(p) && p.fields[field] !== undefined,
  );
  const out: Series = {};
  for (const g of groups(pts, groupBy).values()) {
    const maxes: [number, number][] = [];
    for (const w of windows(v, run.intervalMs, true)) {
      const inW = g.points.filter((p) => p.time * 1000 >= w && p.time * 1000 < w + run.intervalMs);
      if (inW.length > 0) maxes.push([w, Math.max(...inW.map((p) => p.fields[field]!))]);
    }
    const series: Record<number, number | null> = {};
    for (let i = 1; i < maxes.length; i++) {
      const [t0, v0] = maxes[i - 1]!;
      const [t1, v1] = maxes[i]!;
      const d = (v1 - v0) / ((t1 - t0) / 1000);
      if (d >= 0) series[t1] = d;
    }
    out[aliasName(run.alias, g.tags)] = series;
  }
  return out;
}

/** Relative comparison of two series sets (float arithmetic differs in the last bits). */
function expectSeriesEqual(actual: Series, expected: Series, what: string): void {
  expect(Object.keys(actual).sort(), `${what}: series names`).toEqual(Object.keys(expected).sort());
  for (const [name, exp] of Object.entries(expected)) {
    const act = actual[name]!;
    expect(Object.keys(act).map(Number).sort(), `${what} / ${name}: timestamps`).toEqual(Object.keys(exp).map(Number).sort());
    for (const [t, e] of Object.entries(exp)) {
      const a = act[Number(t)];
      if (e === null || a === null) {
        expect(a, `${what} / ${name} @ ${t}`).toBe(e);
        continue;
      }
      expect(Math.abs(a! - e) <= 1e-9 * Math.max(1, Math.abs(e)), `${what} / ${name} @ ${t}: got ${a}, expected ${e}`).toBe(true);
    }
  }
}

type Check = (run: TargetRun, v: View) => void;

const E = (v: View) => matcher(v, 'exporter');

function rateCheck(
  measurement: string,
  where: (v: View, run: TargetRun) => (p: Point) => boolean,
  groupBy: string[],
  reduce: RateSpec['reduce'],
  fill: RateSpec['fill'] = 'zero',
): Check {
  return (run, v) => {
    const w = where(v, run);
    const spec: RateSpec = { measurement, where: (p) => E(v)(p.tags.exporter!) && w(p), groupBy, reduce, fill };
    expectSeriesEqual(
      timeSeriesByName(run),
      expectedRate(spec, v, run),
      `${run.panelTitle} ${run.refId}${run.repeatValue !== undefined ? ` [${run.repeatValue}]` : ''}`,
    );
  };
}

function topLinksCheck(linkTag: 'in_link' | 'out_link'): Check {
  return (run, v) => {
    const pts = v.points.filter((p) => p.measurement === 'scitags_traffic' && inRange(p, v) && E(v)(p.tags.exporter!));
    const rangeS = Math.round((v.toMs - v.fromMs) / 1000);
    const rows = [...groups(pts, ['exporter', linkTag]).values()]
      .map((g) => ({ exporter: g.tags.exporter, [linkTag]: g.tags[linkTag], bps: (sum(g.points, 'bytes') * 8) / rangeS }))
      .sort((a, b) => b.bps - a.bps)
      .slice(0, 10);
    const actual = tableRows(run).map((r) => ({ exporter: r.exporter, [linkTag]: r[linkTag], bps: r.bps as number }));
    expect(actual.length, run.panelTitle).toBe(rows.length);
    const byKey = (r: Record<string, unknown>) => `${String(r.exporter)}|${String(r[linkTag])}`;
    const act = new Map(actual.map((r) => [byKey(r), r.bps]));
    for (const r of rows) {
      const a = act.get(byKey(r));
      expect(a, `${run.panelTitle}: ${byKey(r)}`).toBeDefined();
      expect(Math.abs(a! - r.bps) <= 1e-9 * r.bps, `${run.panelTitle}: ${byKey(r)} got ${a} expected ${r.bps}`).toBe(true);
    }
  };
}

const COUNTERS = ['datagrams', 'records', 'decode_errors', 'template_misses', 'sequence_lost', 'queue_drops', 'store_write_failures'];

const countsCheck: Check = (run, v) => {
  const pts = v.points.filter(
    (p) => p.measurement === 'collector_stats' && inDerivativeRange(p, v, run.intervalMs) && E(v)(p.tags.exporter!),
  );
  const expected: Record<string, Record<string, number | null>> = {};
  for (const g of groups(pts, ['exporter']).values()) {
    const row: Record<string, number | null> = {};
    for (const c of COUNTERS) {
      const maxes: number[] = [];
      for (const w of windows(v, run.intervalMs, true)) {
        const inW = g.points.filter((p) => p.time * 1000 >= w && p.time * 1000 < w + run.intervalMs && p.fields[c] !== undefined);
        if (inW.length > 0) maxes.push(Math.max(...inW.map((p) => p.fields[c]!)));
      }
      let total = 0;
      let any = false;
      for (let i = 1; i < maxes.length; i++) {
        const d = maxes[i]! - maxes[i - 1]!;
        if (d >= 0) {
          total += d;
          any = true;
        }
      }
      row[c] = any ? total : null;
    }
    expected[g.tags.exporter!] = row;
  }
  const actual: Record<string, Record<string, number | null>> = {};
  for (const r of tableRows(run))
    actual[String(r.exporter)] = Object.fromEntries(COUNTERS.map((c) => [c, (r[c] ?? null) as number | null]));
  expect(actual, run.panelTitle).toEqual(expected);
};

const derivCheck =
  (measurement: string, field: string, groupBy: string[]): Check =>
  (run, v) =>
    expectSeriesEqual(
      timeSeriesByName(run),
      expectedDerivative(measurement, field, (p) => E(v)(p.tags.exporter!), groupBy, v, run),
      `${run.panelTitle} ${run.refId}`,
    );

const unregistered = (p: Point) => p.tags.community === 'unregistered' || p.tags.activity === 'unregistered';
const linkIn = (v: View, run: TargetRun) => (p: Point) => matcher(v, 'link', run.repeatValue)(p.tags.in_link!);
const linkOut = (v: View, run: TargetRun) => (p: Point) => matcher(v, 'link', run.repeatValue)(p.tags.out_link!);
const experiment = (v: View) => (p: Point) => matcher(v, 'experiment')(p.tags.community!);

/** The expectation of every target, by dashboard uid / panel title / refId. */
const CHECKS: Record<string, Record<string, Check>> = {
  'scitags-overview': {
    'SciTags traffic by experiment/A': rateCheck('scitags_traffic', () => () => true, ['community'], bitRate),
    'SciTags packet rate by experiment/A': rateCheck('scitags_traffic', () => () => true, ['community'], pktRate),
    'Traffic by activity: $experiment/A': rateCheck('scitags_traffic', (v) => experiment(v), ['activity'], bitRate),
    'Unregistered-label traffic/A': rateCheck('scitags_traffic', () => unregistered, ['exporter', 'community_id', 'activity_id'], bitRate),
    'Top links by SciTags traffic: outbound/A': topLinksCheck('out_link'),
    'Top links by SciTags traffic: inbound/A': topLinksCheck('in_link'),
    'Marked vs unmarked IPv6 vs IPv4: $link/A': rateCheck(
      'link_traffic',
      (v, run) => (p) => linkIn(v, run)(p) || linkOut(v, run)(p),
      ['class'],
      bitRate,
    ),
  },
  'scitags-link-detail': {
    'Inbound SciTags traffic by experiment: $link/A': rateCheck(
      'scitags_traffic',
      (v, r) => (p) => linkIn(v, r)(p) && experiment(v)(p),
      ['community'],
      bitRate,
    ),
    'Outbound SciTags traffic by experiment: $link/A': rateCheck(
      'scitags_traffic',
      (v, r) => (p) => linkOut(v, r)(p) && experiment(v)(p),
      ['community'],
      bitRate,
    ),
    'Inbound SciTags traffic by experiment and activity: $link/A': rateCheck(
      'scitags_traffic',
      (v, r) => (p) => linkIn(v, r)(p) && experiment(v)(p),
      ['community', 'activity'],
      bitRate,
    ),
    'Outbound SciTags traffic by experiment and activity: $link/A': rateCheck(
      'scitags_traffic',
      (v, r) => (p) => linkOut(v, r)(p) && experiment(v)(p),
      ['community', 'activity'],
      bitRate,
    ),
    'Inbound traffic by class: $link/A': rateCheck('link_traffic', linkIn, ['class'], bitRate),
    'Outbound traffic by class: $link/A': rateCheck('link_traffic', linkOut, ['class'], bitRate),
    'Utilisation: $link/A': rateCheck('link_traffic', linkIn, [], utilisation('in_capacity_bps'), 'none'),
    'Utilisation: $link/B': rateCheck('link_traffic', linkOut, [], utilisation('out_capacity_bps'), 'none'),
    'Packet rate: $link/A': rateCheck('link_traffic', linkIn, [], pktRate),
    'Packet rate: $link/B': rateCheck('link_traffic', linkOut, [], pktRate),
  },
  'scitags-collector-health': {
    'Datagrams received/A': derivCheck('collector_stats', 'datagrams', ['exporter']),
    'Flow records / samples/A': derivCheck('collector_stats', 'records', ['exporter']),
    'Decode errors by reason/A': derivCheck('collector_decode_errors', 'errors', ['exporter', 'reason']),
    'Decode errors (all reasons)/A': derivCheck('collector_stats', 'decode_errors', ['exporter']),
    'Template misses/A': derivCheck('collector_stats', 'template_misses', ['exporter']),
    'Sequence gaps (lost)/A': derivCheck('collector_stats', 'sequence_lost', ['exporter']),
    'Queue drops/A': derivCheck('collector_stats', 'queue_drops', ['exporter']),
    'Store write failures/A': derivCheck('collector_stats', 'store_write_failures', ['exporter']),
    'Counts over the time range/A': countsCheck,
  },
};

function checkRun(dashboard: DashboardJson, run: DashboardRun, opts: RunOptions): void {
  const checks = CHECKS[dashboard.uid];
  if (!checks) throw new Error(`no expectations for ${dashboard.uid}`);
  const policy = run.variables.selection.policy;
  const view: View = {
    points: policy === undefined || JSON.stringify(policy) === JSON.stringify(RAW) ? POINTS : ROLLUP_POINTS,
    fromMs: opts.fromMs,
    toMs: opts.toMs,
    style: opts.timeFilterStyle ?? 'frontend',
    selection: run.variables.selection,
    options: run.variables.options,
  };
  const seen = new Set<string>();
  for (const t of run.targets) {
    const key = `${t.panelTitle}/${t.refId}`;
    const check = checks[key];
    if (!check) throw new Error(`${dashboard.uid}: no expectation for panel target ${key} (add one to CHECKS)`);
    seen.add(key);
    check(t, view);
  }
  expect([...seen].sort(), `${dashboard.uid}: every expectation was exercised`).toEqual(Object.keys(checks).sort());
}

/** A run must not be vacuous: at least one non-zero value in every time-series target. */
function expectData(run: DashboardRun): void {
  for (const t of run.targets) {
    const values = t.series.flatMap((s) => s.values.map((r) => r[1]));
    expect(
      values.some((x) => typeof x === 'number' && x !== 0),
      `${t.panelTitle} ${t.refId} ${t.repeatValue ?? ''} returned data`,
    ).toBe(true);
  }
}

// ---------------------------------------------------------------------------------------

describe.skipIf(!influxdAvailable())('Grafana dashboards against InfluxDB', () => {
  let influx: InfluxdHandle;
  const base = (): Pick<RunOptions, 'url' | 'database'> => ({ url: influx.url, database: DB });
  const FROM = T0 * 1000;
  const TO = (T0 + 600) * 1000 - 1;

  beforeAll(async () => {
    influx = await startInfluxd();
    // INF: InfluxDB drops writes older than a policy's duration, and the data set is from 2023
    const client = new InfluxDB({ host: '127.0.0.1', port: influx.port, database: DB });
    await provisionInflux(client, { ...DEFAULT_SETUP, database: DB, rawDuration: 'INF', rollupDuration: 'INF' });
    await writePoints(influx.url, DB, POINTS);
    const cqs = await client.query<{ name: string; query: string }>('SHOW CONTINUOUS QUERIES');
    const ours = cqs.filter((r) => r.name === 'cq_scitags_1h' || r.name === 'cq_link_1h');
    expect(ours).toHaveLength(2);
    const hours = `time >= ${(T0 - 3600) * 1000}ms AND time < ${(T0 + 3600) * 1000}ms`;
    for (const cq of ours)
      await client.query(/BEGIN (SELECT .*) END$/.exec(cq.query)![1]!.replace(' GROUP BY', ` WHERE ${hours} GROUP BY`));
    const aged = await fetch(`${influx.url}/write?db=${DB}&rp=rollup_1h&precision=s`, {
      method: 'POST',
      body: AGED.map(toLineProtocol).join('\n'),
    });
    expect(aged.status).toBe(204);
  });
  afterAll(async () => {
    await influx?.destroy();
  });

  it('the data set is consistent with docs/influx-schema.md: link_traffic scitags = sum of scitags_traffic', async () => {
    const a = await influxQuery(influx.url, DB, 'SELECT sum("bytes") FROM "scitags_traffic"');
    const b = await influxQuery(influx.url, DB, `SELECT sum("bytes") FROM "link_traffic" WHERE "class" = 'scitags'`);
    expect(a[0]!.values[0]![1]).toBe(b[0]!.values[0]![1]);
    expect(a[0]!.values[0]![1]).toBe(
      sum(
        POINTS.filter((p) => p.measurement === 'scitags_traffic'),
        'bytes',
      ),
    );
  });

  it('template variables list the expected values (Grafana response parsing, dependent variables)', async () => {
    const opts = { ...base(), fromMs: FROM, toMs: TO, intervalMs: 60_000 };
    const o = await runDashboard(overview, opts);
    expect(o.variables.options).toEqual({
      exporter: [E1, E3, E2],
      experiment: ['atlas', 'cms', 'lhcb', 'unregistered'],
      link: ['12', '7', 'esnet-chi', 'lhcopn.cern', 'none', 'uplink (geant)'],
      policy: ['1m', '1h'],
    });
    expect(o.variables.texts.policy).toEqual({ '1m': 'raw', '1h': 'rollup_1h' });
    expect(o.variables.selection).toEqual({ policy: RAW, exporter: 'all', experiment: ['atlas'], link: 'all' });
    // the link variable follows the exporter selection; the regex is escaped
    const only2 = await runDashboard(linkDetail, { ...opts, selection: { exporter: [E2] } });
    expect(only2.variables.queries.link).toBe(
      'SHOW TAG VALUES FROM "link_traffic" WITH KEY IN ("in_link", "out_link") WHERE "exporter" =~ /^2001:db8::1$/',
    );
    expect(only2.variables.options.link).toEqual(['7', 'esnet-chi']);
    expect(only2.variables.options.experiment).toEqual(['atlas', 'cms', 'unregistered']);
    expect(only2.variables.selection.link).toEqual(['7']);
    const two = await runDashboard(linkDetail, { ...opts, selection: { exporter: [E1, E3] } });
    expect(two.variables.queries.link).toContain('=~ /^(192\\.0\\.2\\.1|192\\.0\\.2\\.3)$/');
    expect(two.variables.options.link).toEqual(['12', '7', 'lhcopn.cern', 'none', 'uplink (geant)']);
    const h = await runDashboard(health, opts);
    expect(h.variables.options.exporter).toEqual([E1, E3, E2, 'all']);
  });

  it('SciTags overview: every panel, All exporters, intervals 1m and 5m, repeated per link', async () => {
    for (const intervalMs of [60_000, 300_000]) {
      const opts: RunOptions = { ...base(), fromMs: FROM, toMs: TO, intervalMs };
      const run = await runDashboard(overview, opts);
      expectData(run);
      expect(run.targets.filter((t) => t.repeatValue !== undefined).map((t) => t.repeatValue)).toEqual([
        '12',
        '7',
        'esnet-chi',
        'lhcopn.cern',
        'none',
        'uplink (geant)',
      ]);
      checkRun(overview, run, opts);
    }
  });

  it('SciTags overview: known totals (bit/s x interval = bytes)', async () => {
    const opts: RunOptions = { ...base(), fromMs: FROM, toMs: TO, intervalMs: 300_000 };
    const run = await runDashboard(overview, opts);
    const byExp = timeSeriesByName(run.targets.find((t) => t.panelTitle === 'SciTags traffic by experiment')!);
    const bytes = (s: Record<number, number | null>) => Object.values(s).reduce<number>((a, x) => a + ((x ?? 0) * 300_000) / 8000, 0);
    // atlas in buckets 0..9: production on E1 (100000 * (k+3)), perfsonar on E1 for even k
    // (7000 * (k+3) + 17), production on E2 for k < 6 (12345 * (k+3) + 68)
    let atlas = 0;
    for (let k = 0; k <= 9; k++)
      atlas += 100_000 * (k + 3) + (k % 2 === 0 ? 7_000 * (k + 3) + 17 : 0) + (k < 6 ? 12_345 * (k + 3) + 68 : 0);
    expect(Math.round(bytes(byExp.atlas!))).toBe(atlas);
    expect(atlas).toBe(8_152_878);
    expect(Object.keys(byExp).sort()).toEqual(['atlas', 'cms', 'lhcb', 'unregistered']);
  });

  it('SciTags overview: a multi-value exporter selection, another experiment, one link, Grafana-computed interval', async () => {
    const opts: RunOptions = {
      ...base(),
      fromMs: FROM + 30_000, // not on a bucket boundary: the first bucket is outside the range
      toMs: TO,
      maxDataPoints: 1000,
      datasourceMinIntervalMs: 60_000,
      selection: { exporter: [E1, E2], experiment: ['cms'], link: [GEANT] },
    };
    const run = await runDashboard(overview, opts);
    expect(new Set(run.targets.map((t) => t.intervalMs))).toEqual(new Set([60_000]));
    expect(run.targets.find((t) => t.panelTitle === 'SciTags traffic by experiment')!.query).toContain(
      '"exporter" =~ /^(192\\.0\\.2\\.1|2001:db8::1)$/',
    );
    expect(run.targets.find((t) => t.repeatValue === GEANT)!.query).toContain('"in_link" =~ /^uplink \\(geant\\)$/');
    checkRun(overview, run, opts);
  });

  it("Link detail: one named link with capacity, each exporter's ifIndex link, experiment subsets", async () => {
    const cases: { selection: Record<string, Selection>; intervalMs: number }[] = [
      { selection: { exporter: 'all', link: [LHCOPN], experiment: 'all' }, intervalMs: 60_000 },
      { selection: { exporter: [E1], link: [GEANT], experiment: ['atlas', 'unregistered'] }, intervalMs: 120_000 },
      { selection: { exporter: [E2], link: ['7'], experiment: 'all' }, intervalMs: 300_000 },
      { selection: { exporter: 'all', link: ['7'], experiment: ['cms'] }, intervalMs: 60_000 },
    ];
    for (const c of cases) {
      const opts: RunOptions = { ...base(), fromMs: FROM, toMs: TO, intervalMs: c.intervalMs, selection: c.selection };
      const run = await runDashboard(linkDetail, opts);
      checkRun(linkDetail, run, opts);
    }
    // utilisation: capacity configured on lhcopn.cern (10 Mbit/s) -> numbers; on "7" -> no capacity, empty
    const withCap = await runDashboard(linkDetail, {
      ...base(),
      fromMs: FROM,
      toMs: TO,
      intervalMs: 60_000,
      selection: { exporter: 'all', link: [LHCOPN], experiment: 'all' },
    });
    const util = timeSeriesByName(withCap.targets.find((t) => t.panelTitle === 'Utilisation: $link' && t.refId === 'B')!);
    const first = util.out![FROM]!;
    const outBytes0 = sum(
      POINTS.filter((p) => p.measurement === 'link_traffic' && p.tags.out_link === LHCOPN && p.time === T0),
      'bytes',
    );
    expect(first).toBeCloseTo((outBytes0 * 8) / 60 / 10_000_000, 12);
    expect(first).toBeGreaterThan(0);
    const noCap = await runDashboard(linkDetail, {
      ...base(),
      fromMs: FROM,
      toMs: TO,
      intervalMs: 60_000,
      selection: { exporter: [E2], link: ['7'], experiment: 'all' },
    });
    const utilNoCap = noCap.targets
      .filter((t) => t.panelTitle === 'Utilisation: $link')
      .flatMap((t) => t.series.flatMap((s) => s.values.map((r) => r[1])));
    expect(utilNoCap.every((x) => x === null)).toBe(true);
  });

  it('Collector health: rates per exporter and reason (counter reset ignored), totals table', async () => {
    for (const intervalMs of [60_000, 300_000]) {
      const opts: RunOptions = { ...base(), fromMs: FROM, toMs: TO, intervalMs };
      const run = await runDashboard(health, opts);
      checkRun(health, run, opts);
    }
    const one = await runDashboard(health, { ...base(), fromMs: FROM, toMs: TO, intervalMs: 60_000, selection: { exporter: [E1] } });
    const datagrams = timeSeriesByName(one.targets.find((t) => t.panelTitle === 'Datagrams received')!);
    expect(Object.values(datagrams[E1]!)).toEqual(Array(10).fill(2)); // 120 datagrams per minute, every window of the range
    const totals = tableRows(one.targets.find((t) => t.panelTitle === 'Counts over the time range')!);
    expect(totals).toHaveLength(1);
    expect(totals[0]!.datagrams).toBe(120 * 10);
  });

  it('the backend time filter (time > from and time < to) gives the same answers on an unaligned range', async () => {
    const opts: RunOptions = { ...base(), fromMs: FROM + 1, toMs: TO - 5_000, intervalMs: 60_000, timeFilterStyle: 'backend' };
    for (const d of [overview, linkDetail, health]) checkRun(d, await runDashboard(d, opts), opts);
  });

  it('a wrong query fails: each mutation of a panel query is caught', async () => {
    const opts: RunOptions = { ...base(), fromMs: FROM, toMs: TO, intervalMs: 300_000 };
    const mutations: [DashboardJson, (q: string) => string][] = [
      [overview, (q) => q.replace('* 8000 /', '* 8 /')], // bytes/s instead of bit/s
      [overview, (q) => q.replace('$__interval_ms', '60000')], // assumes 1-minute intervals
      [overview, (q) => q.replace('"community" fill(0)', '"activity" fill(0)')],
      [linkDetail, (q) => q.replace('"in_link" =~', '"out_link" =~')],
      [linkDetail, (q) => q.replace('max("out_capacity_bps")', 'max("in_capacity_bps")')],
      [health, (q) => q.replace('non_negative_derivative(max(', 'derivative(max(')],
      [health, (q) => q.replace('non_negative_difference', 'difference')],
    ];
    for (const [d, mutate] of mutations) {
      const { dashboard: mutated, changed } = mutateQueries(d, mutate);
      expect(changed, `mutation ${mutate.toString()} applies`).toBeGreaterThan(0);
      const selection: Record<string, Selection> = d === linkDetail ? { exporter: 'all', link: [LHCOPN], experiment: 'all' } : {};
      const run = await runDashboard(mutated, { ...opts, selection });
      expect(() => checkRun(mutated, run, { ...opts, selection }), `mutation ${mutate.toString()} is caught`).toThrow();
    }
  });
  it('rollup_1h holds exactly the hourly sums (and capacity maxima) of the raw buckets', async () => {
    const read = async (m: string) => {
      const rows = tableRows({ series: await influxQuery(influx.url, DB, `SELECT * FROM "rollup_1h"."${m}"`) } as TargetRun);
      return rows
        .map((r) =>
          JSON.stringify(
            Object.entries(r)
              .filter(([, x]) => x !== null)
              .sort(),
          ),
        )
        .sort();
    };
    for (const m of ['scitags_traffic', 'link_traffic']) {
      const expected = ROLLUP_POINTS.filter((p) => p.measurement === m)
        .map((p) => JSON.stringify(Object.entries({ time: p.time * 1000, ...p.tags, ...p.fields }).sort()))
        .sort();
      expect(expected.length).toBeGreaterThan(10);
      expect(await read(m), m).toEqual(expected);
    }
  });

  it('$policy = rollup_1h: every traffic panel reads the hourly roll-up, hourly and longer intervals, both time-filter forms', async () => {
    const HOUR = 3_600_000;
    const cases: RunOptions[] = [
      { ...base(), fromMs: (T0 - 3600) * 1000, toMs: (T0 + 3600) * 1000 - 1, intervalMs: HOUR },
      { ...base(), fromMs: (T0 - 3600) * 1000, toMs: (T0 + 3600) * 1000, intervalMs: 2 * HOUR, timeFilterStyle: 'backend' },
      // Grafana's own interval for two days at 1000 points is 2m: $policy raises it to 1h
      { ...base(), fromMs: (T0 - 86_400) * 1000, toMs: (T0 + 86_400) * 1000, maxDataPoints: 1000, datasourceMinIntervalMs: 60_000 },
    ];
    for (const c of cases) {
      // [dashboard, selection, every panel has data]: link 7 only carries E2's traffic inbound
      for (const [d, selection, full] of [
        [overview, { policy: ROLLUP }, true],
        [linkDetail, { policy: ROLLUP, exporter: 'all', link: [LHCOPN], experiment: 'all' }, true],
        [linkDetail, { policy: ROLLUP, exporter: [E2], link: ['7'], experiment: ['cms'] }, false],
      ] as [DashboardJson, Record<string, Selection>, boolean][]) {
        const opts: RunOptions = { ...c, selection };
        const run = await runDashboard(d, opts);
        // every rate reads whole roll-up points (the top-links tables divide by the range instead)
        for (const t of run.targets)
          if (t.query.includes('GROUP BY time(')) expect(t.intervalMs, t.panelTitle).toBeGreaterThanOrEqual(HOUR);
        expect(run.targets.filter((t) => t.query.includes('"rollup_1h".')).length).toBe(run.targets.length);
        if (full) expectData(run);
        checkRun(d, run, opts);
      }
    }
    // the aged hour is there on rollup_1h only
    const twoDays = { ...base(), fromMs: (T0 - 86_400) * 1000, toMs: T0 * 1000, intervalMs: HOUR };
    const atlasAt = async (policy: Selection) =>
      timeSeriesByName(
        (await runDashboard(overview, { ...twoDays, selection: { policy } })).targets.find(
          (t) => t.panelTitle === 'SciTags traffic by experiment',
        )!,
      ).atlas?.[AGED_HOUR * 1000];
    expect(await atlasAt(ROLLUP)).toBe(20_000); // 9,000,000 bytes x 8 / 3600 s
    expect(await atlasAt(RAW)).toBe(0);
  });

  it('$policy = rollup_1h: known hourly totals, the same answers as the raw buckets at 1h, utilisation from the rolled-up capacity', async () => {
    const range = { fromMs: (T0 - 3600) * 1000, toMs: (T0 + 3600) * 1000 - 1, intervalMs: 3_600_000 };
    const rolled = await runDashboard(overview, { ...base(), ...range, selection: { policy: ROLLUP } });
    const byExp = timeSeriesByName(rolled.targets.find((t) => t.panelTitle === 'SciTags traffic by experiment')!);
    // atlas bytes per hour (see the totals test above): buckets -2, -1 in the first hour, 0..11 in T0's
    expect(byExp.atlas).toEqual({ [(T0 - 3600) * 1000]: (344_188 * 8000) / 3_600_000, [T0 * 1000]: (10_943_895 * 8000) / 3_600_000 });
    // Hourly windows read the same from either policy: the roll-up loses nothing at 1h.
    for (const [d, selection] of [
      [overview, {}],
      [linkDetail, { exporter: 'all', link: [LHCOPN], experiment: 'all' }],
      [linkDetail, { exporter: [E1], link: [GEANT], experiment: ['atlas', 'unregistered'] }],
    ] as [DashboardJson, Record<string, Selection>][]) {
      const raw = await runDashboard(d, { ...base(), ...range, selection: { ...selection, policy: RAW } });
      const hourly = await runDashboard(d, { ...base(), ...range, selection: { ...selection, policy: ROLLUP } });
      expect(hourly.targets.map((t) => t.query.replaceAll('"rollup_1h".', '"raw".'))).toEqual(raw.targets.map((t) => t.query));
      expect(hourly.targets.map((t) => t.series)).toEqual(raw.targets.map((t) => t.series));
    }
    const detail = await runDashboard(linkDetail, {
      ...base(),
      ...range,
      selection: { policy: ROLLUP, exporter: 'all', link: [LHCOPN], experiment: 'all' },
    });
    const util = timeSeriesByName(detail.targets.find((t) => t.panelTitle === 'Utilisation: $link' && t.refId === 'B')!);
    const outBytes = sum(
      POINTS.filter((p) => p.measurement === 'link_traffic' && p.tags.out_link === LHCOPN && p.time >= T0 && p.time < T0 + 3600),
      'bytes',
    );
    expect(util.out![T0 * 1000]).toBeCloseTo((outBytes * 8) / 3600 / 10_000_000, 12);
  });

  it('$policy = raw at the same range reads only the raw buckets (rollup_1h is not added in)', async () => {
    const opts: RunOptions = { ...base(), fromMs: FROM, toMs: TO, intervalMs: 60_000, selection: { policy: RAW } };
    const run = await runDashboard(overview, opts);
    expect(run.targets.every((t) => t.query.includes('FROM "raw".') || !t.query.includes('_traffic'))).toBe(true);
    checkRun(overview, run, opts);
  });
});
