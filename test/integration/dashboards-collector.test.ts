import { readFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createSocket } from 'node:dgram';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readCaptureFile } from '../../collectors/pcap.js';
import { replayDatagrams } from '../../collectors/replay.js';
import { loadSnapshot } from '../../src/registry/loader.js';
import { type Daemon, type DaemonPorts, freePorts, getJson, startDaemon, waitFor } from '../support/daemon.js';
import {
  influxQuery,
  runDashboard,
  tableRows,
  timeSeriesByName,
  type DashboardJson,
  type DashboardRun,
  type RunOptions,
  type Selection,
  type TargetRun,
  mutateQueries,
} from '../support/dashboards.js';
import { expectedTotals, fixturePath, loadTruth } from '../support/expected.js';
import { influxdAvailable, startInfluxd, type InfluxdHandle } from '../support/influxd.js';

/**
 * Issue 6, "the dashboard query test" against data written by the real collector: the corpus
 * captures are replayed through `scitags-collector serve --store influx://...` (the built CLI,
 * a config file naming links with capacities, keeping some unregistered pairs), the daemon is
 * stopped (SIGTERM flushes every bucket and a last collector_stats point), and then every
 * panel query and every template variable of dashboards/*.json is run the way Grafana would
 * (test/support/dashboards.ts). Each answer is compared with what the truth files say
 * (test/fixtures/*.truth.json), computed here without InfluxQL:
 *
 * - "range" runs: the time range is exactly one GROUP BY window that holds the whole replay
 *   (interval 1h or longer, aligned), so every rate panel has one point per series, equal to
 *   truth bytes * 8 / interval seconds (packets / interval seconds for pps), and the top-link
 *   tables equal truth bytes * 8 / range seconds;
 * - "bucket" runs: 1-minute interval (one point per 60 s bucket) over a longer range: every
 *   window is there (fill(0)), and the points of each series add up to the truth. Which minute
 *   a flow lands in depends on the wall clock (receive time, exporter clock offsets, flows
 *   split over buckets), so per-bucket values are not asserted against the truth;
 * - collector health: the counters are cumulative and written every statsIntervalSeconds (1 s
 *   here) and at shutdown, with second timestamps. The replay is done in two phases between
 *   stats points, so the points are known: `all` starts at zero (written at start), a new
 *   exporter or error reason gets a zero point at the previous stats time, its next point
 *   holds phase 1 exactly, the last holds everything. The derivative panels are compared
 *   with a TypeScript model of non_negative_derivative(max(x), 1s) over the raw points, and
 *   the table (sum of non_negative_difference) with the truth: at a 1 s interval it is the
 *   whole replay, for `all` and for the exporter.
 */

const DB = 'scitags';
const EXPORTER = '127.0.0.1'; // replayDatagrams sends from the loopback address
const load = (file: string): DashboardJson =>
  JSON.parse(readFileSync(new URL(`../../dashboards/${file}`, import.meta.url), 'utf8')) as DashboardJson;
const overview = load('scitags-overview.json');
const linkDetail = load('link-detail.json');
const health = load('collector-health.json');

// ---------------------------------------------------------------------------------------
// What is replayed, and the configuration of the collector
// ---------------------------------------------------------------------------------------

interface Capture {
  name: string;
  port: keyof DaemonPorts;
  phase: 1 | 2;
}
const CAPTURES: Capture[] = [
  { name: 'ipfix_pmacct_nfprobe_flowlabel', port: 'ipfix', phase: 1 },
  { name: 'ipfix_softflowd_vlan', port: 'ipfix', phase: 2 },
  { name: 'sflow_pmacct_sfprobe_rate1', port: 'sflow', phase: 2 },
];
/** One datagram no decoder accepts: an IPFIX header with version 99 (phase 2). */
const BOGUS = Buffer.from([0x00, 0x63, 0x00, 0x10, ...new Array<number>(12).fill(0)]);
const BOGUS_REASON = 'bad-version';

/**
 * Links named in the config file. ifIndex 0 (pmacct's and softflowd's "no interface") and the
 * sFlow "no interface" output 0x3FFFFFFF are not links: the collector tags them `none`.
 */
const LINKS = [
  { exporter: EXPORTER, ifIndex: 3, name: 'lan.0 (core)', capacityBps: 2_500_000 }, // regex specials in the name
  { exporter: EXPORTER, ifIndex: 5, name: 'sflow-in', capacityBps: 100_000_000 },
  { exporter: EXPORTER, ifIndex: 0, name: 'never-an-interface', capacityBps: 1_000_000 },
];
/** aggregation.keepUnregistered: these unregistered pairs keep their ids, the others fold. */
const KEEP = [{ community: 200 }, { community: 2, activity: 7 }];
const kept = (c: number, a: number) => KEEP.some((k) => k.community === c && (!('activity' in k) || k.activity === a));

/** The ifIndex a truth file gives as the collector keys it: 0 and sFlow's 0x3FFFFFFF are no interface (README, Counting rules). */
const side = (ifIndex: number, protocol: 'ipfix' | 'sflow'): number | null =>
  ifIndex === 0 || (protocol === 'sflow' && ifIndex === 0x3fffffff) ? null : ifIndex;
const linkName = (ifIndex: number | null): string =>
  ifIndex === null ? 'none' : (LINKS.find((l) => l.exporter === EXPORTER && l.ifIndex === ifIndex)?.name ?? String(ifIndex));
const capacityOf = (link: string): number | undefined => LINKS.find((l) => l.name === link)?.capacityBps;

// ---------------------------------------------------------------------------------------
// The truth, from the truth files only
// ---------------------------------------------------------------------------------------

/** What one capture contributes to one series: tags as the schema names them, totals. */
interface Cell {
  measurement: 'scitags_traffic' | 'link_traffic';
  tags: Record<string, string>;
  bytes: number;
  packets: number;
}

/** The one (in, out) interface pair of every record / sample of a capture. */
function captureLink(truth: Record<string, unknown>): { inIf: number; outIf: number } {
  const pairs = new Set<string>();
  for (const r of (truth.records ?? []) as { in_if: number; out_if: number }[]) pairs.add(`${r.in_if}|${r.out_if}`);
  for (const s of (truth.samples ?? []) as { input_if: number; output_if: number }[]) pairs.add(`${s.input_if}|${s.output_if}`);
  if (pairs.size !== 1) throw new Error(`test design: the capture must use one link, it has ${[...pairs].join(', ')}`);
  const [inIf, outIf] = [...pairs][0]!.split('|').map(Number) as [number, number];
  return { inIf, outIf };
}

function buildTruth() {
  const registry = loadSnapshot(0);
  const cells: Cell[] = [];
  const counters = { datagrams: 0, records: 0, sequenceLost: 0, phase1Datagrams: 0, phase1Records: 0, phase1SequenceLost: 0 };
  for (const c of CAPTURES) {
    const truth = loadTruth(fixturePath(`${c.name}.truth.json`));
    const t = expectedTotals(truth);
    const raw = captureLink(truth);
    const protocol = c.port === 'sflow' ? 'sflow' : 'ipfix';
    const [inIf, outIf] = [side(raw.inIf, protocol), side(raw.outIf, protocol)];
    const link = {
      exporter: EXPORTER,
      in_link: linkName(inIf),
      out_link: linkName(outIf),
      in_if: String(inIf ?? 'none'),
      out_if: String(outIf ?? 'none'),
    };
    let marked = { bytes: 0, packets: 0 };
    for (const [pair, n] of t.pairs) {
      const [community, activity] = pair.split('/').map(Number) as [number, number];
      const names = registry.names(community, activity);
      const keepIds = names.registered || kept(community, activity);
      cells.push({
        measurement: 'scitags_traffic',
        tags: {
          ...link,
          community: names.registered ? names.communityName! : 'unregistered',
          activity: names.registered ? names.activityName! : 'unregistered',
          community_id: keepIds ? String(community) : 'unregistered',
          activity_id: keepIds ? String(activity) : 'unregistered',
        },
        bytes: n.bytes,
        packets: n.packets,
      });
      marked = { bytes: marked.bytes + n.bytes, packets: marked.packets + n.packets };
    }
    for (const [cls, n] of [
      ['scitags', marked],
      ['ipv6_unmarked', t.ipv6Unmarked],
      ['ipv4', t.ipv4],
    ] as const) {
      if (n.bytes > 0) cells.push({ measurement: 'link_traffic', tags: { ...link, class: cls }, bytes: n.bytes, packets: n.packets });
    }
    // Collector counters: datagrams, flow records / samples, sequence gaps the capture has
    // (tshark's "expected N, got M" with M > N: M - N records missing; M < N is a reorder).
    const datagrams = truth.datagrams as number;
    const records = ((truth.data_records as number | undefined) ?? 0) + ((truth.flow_samples as number | undefined) ?? 0);
    let lost = 0;
    for (const w of truth.tshark_warnings as string[]) {
      const m = /expected (\d+), got (\d+)/.exec(w);
      if (m && Number(m[2]) > Number(m[1])) lost += Number(m[2]) - Number(m[1]);
    }
    counters.datagrams += datagrams;
    counters.records += records;
    counters.sequenceLost += lost;
    if (c.phase === 1) {
      counters.phase1Datagrams += datagrams;
      counters.phase1Records += records;
      counters.phase1SequenceLost += lost;
    }
  }
  counters.datagrams += 1; // the bogus datagram
  return { cells, counters };
}

const TRUTH = buildTruth();

// ---------------------------------------------------------------------------------------
// Expectations per panel target
// ---------------------------------------------------------------------------------------

interface View {
  fromMs: number;
  toMs: number;
  intervalMs: number;
  style: 'frontend' | 'backend';
  /** 'range': all data are in the window starting here; 'bucket': only sums are checked. */
  mode: { kind: 'range'; dataWindowMs: number } | { kind: 'bucket' };
  selection: Record<string, Selection>;
}

type Quantity = 'bits' | 'packets' | 'utilisation';

/** Expected series of a time-series target: name -> total bytes (or packets) over the range. */
interface RateExpectation {
  quantity: Quantity;
  totals: Record<string, number>;
  fill: 'zero' | 'none';
  /** utilisation: the capacity each series is divided by (undefined: no capacity). */
  capacity?: number | undefined;
}

const matches =
  (sel: Selection | undefined, repeatValue?: string) =>
  (x: string): boolean => {
    if (repeatValue !== undefined) return x === repeatValue;
    if (sel === undefined) throw new Error('no selection');
    return sel === 'all' || sel.includes(x);
  };

function totalsBy(cells: Cell[], name: (c: Cell) => string, field: 'bytes' | 'packets'): Record<string, number> {
  const out: Record<string, number> = {};
  for (const c of cells) out[name(c)] = (out[name(c)] ?? 0) + c[field];
  return out;
}

function windowsOf(v: View): number[] {
  const out: number[] = [];
  // From the window holding `from` (InfluxDB times are in ns: (from, from + 1 ms) is not empty)
  // up to the one holding the last time the filter admits.
  for (let w = Math.floor(v.fromMs / v.intervalMs) * v.intervalMs; v.style === 'backend' ? w < v.toMs : w <= v.toMs; w += v.intervalMs)
    out.push(w);
  return out;
}

const close = (a: number, e: number) => Math.abs(a - e) <= 1e-9 * Math.max(1, Math.abs(e));

function checkRate(run: TargetRun, v: View, exp: RateExpectation): void {
  const what = `${run.panelTitle} ${run.refId}${run.repeatValue !== undefined ? ` [${run.repeatValue}]` : ''}`;
  const actual = timeSeriesByName(run);
  const scale = exp.quantity === 'packets' ? 1000 : 8000;
  if (exp.quantity === 'utilisation' && exp.capacity === undefined) {
    // No capacity configured: max(capacity) is null, so is every value.
    const values = Object.values(actual).flatMap((s) => Object.values(s));
    expect(
      values.every((x) => x === null),
      `${what}: no capacity, no values: ${JSON.stringify(actual)}`,
    ).toBe(true);
    return;
  }
  expect(Object.keys(actual).sort(), `${what}: series`).toEqual(Object.keys(exp.totals).sort());
  const divisor = exp.quantity === 'utilisation' ? exp.capacity! : 1;
  for (const [name, total] of Object.entries(exp.totals)) {
    const points = actual[name]!;
    const times = Object.keys(points)
      .map(Number)
      .sort((a, b) => a - b);
    if (v.mode.kind === 'range') {
      const W = v.mode.dataWindowMs;
      const expected: Record<number, number> = {};
      if (exp.fill === 'zero') for (const w of windowsOf(v)) expected[w] = 0;
      expected[W] = (total * scale) / v.intervalMs / divisor;
      expect(times, `${what} / ${name}: timestamps`).toEqual(
        Object.keys(expected)
          .map(Number)
          .sort((a, b) => a - b),
      );
      for (const t of times)
        expect(close(points[t]!, expected[t]!), `${what} / ${name} @ ${t}: got ${points[t]}, expected ${expected[t]}`).toBe(true);
    } else {
      if (exp.fill === 'zero') expect(times, `${what} / ${name}: one point per window (fill(0))`).toEqual(windowsOf(v));
      for (const t of times) expect(points[t]! >= 0, `${what} / ${name} @ ${t}`).toBe(true);
      // value = quantity * scale / interval / divisor in each window: the points add up to the truth
      const sum = times.reduce((a, t) => a + ((points[t] ?? 0) * v.intervalMs * divisor) / scale, 0);
      expect(Math.abs(sum - total) <= 1e-6 * Math.max(1, total), `${what} / ${name}: points add up to ${sum}, truth ${total}`).toBe(true);
    }
  }
}

function checkTopLinks(run: TargetRun, v: View, linkTag: 'in_link' | 'out_link'): void {
  const cells = TRUTH.cells.filter((c) => c.measurement === 'scitags_traffic' && matches(v.selection.exporter)(c.tags.exporter!));
  const rangeS = Math.round((v.toMs - v.fromMs) / 1000);
  const expected = Object.entries(totalsBy(cells, (c) => `${c.tags.exporter}|${c.tags[linkTag]}`, 'bytes'))
    .map(([k, bytes]) => ({ key: k, bps: (bytes * 8) / rangeS }))
    .sort((a, b) => b.bps - a.bps)
    .slice(0, 10);
  const actual = tableRows(run).map((r) => ({ key: `${String(r.exporter)}|${String(r[linkTag])}`, bps: r.bps as number }));
  expect(actual.map((r) => r.key).sort(), run.panelTitle).toEqual(expected.map((r) => r.key).sort());
  for (const e of expected) {
    const a = actual.find((r) => r.key === e.key)!;
    expect(close(a.bps, e.bps), `${run.panelTitle} ${e.key}: got ${a.bps}, expected ${e.bps}`).toBe(true);
  }
}

type Check = (run: TargetRun, v: View) => void;

const scitagsCells = (v: View, where: (c: Cell) => boolean = () => true) =>
  TRUTH.cells.filter((c) => c.measurement === 'scitags_traffic' && matches(v.selection.exporter)(c.tags.exporter!) && where(c));
const linkCells = (v: View, where: (c: Cell) => boolean) =>
  TRUTH.cells.filter((c) => c.measurement === 'link_traffic' && matches(v.selection.exporter)(c.tags.exporter!) && where(c));

const rate =
  (quantity: 'bits' | 'packets', cells: (v: View, run: TargetRun) => Cell[], name: (c: Cell) => string): Check =>
  (run, v) =>
    checkRate(run, v, { quantity, totals: totalsBy(cells(v, run), name, quantity === 'bits' ? 'bytes' : 'packets'), fill: 'zero' });

const utilisation =
  (dir: 'in_link' | 'out_link', name: string): Check =>
  (run, v) => {
    const link = v.selection.link;
    if (link === 'all' || link?.length !== 1) throw new Error('Link detail has one link');
    const cells = linkCells(v, (c) => c.tags[dir] === link[0]);
    checkRate(run, v, {
      quantity: 'utilisation',
      totals: cells.length ? { [name]: cells.reduce((a, c) => a + c.bytes, 0) } : {},
      fill: 'none',
      capacity: capacityOf(link[0]!),
    });
  };

const inLink = (v: View, run: TargetRun) => (c: Cell) => matches(v.selection.link, run.repeatValue)(c.tags.in_link!);
const outLink = (v: View, run: TargetRun) => (c: Cell) => matches(v.selection.link, run.repeatValue)(c.tags.out_link!);
const experiment = (v: View) => (c: Cell) => matches(v.selection.experiment)(c.tags.community!);
const community = (c: Cell) => c.tags.community!;
const pairName = (c: Cell) => `${c.tags.community} / ${c.tags.activity}`;
const single = (name: string) => () => name;

const TRAFFIC_CHECKS: Record<string, Record<string, Check>> = {
  'scitags-overview': {
    'SciTags traffic by experiment/A': rate('bits', (v) => scitagsCells(v), community),
    'SciTags packet rate by experiment/A': rate('packets', (v) => scitagsCells(v), community),
    'Traffic by activity: $experiment/A': rate(
      'bits',
      (v) => scitagsCells(v, experiment(v)),
      (c) => c.tags.activity!,
    ),
    'Unregistered-label traffic/A': rate(
      'bits',
      (v) => scitagsCells(v, (c) => c.tags.community === 'unregistered' || c.tags.activity === 'unregistered'),
      (c) => `${c.tags.exporter} ${c.tags.community_id}/${c.tags.activity_id}`,
    ),
    'Top links by SciTags traffic: outbound/A': (run, v) => checkTopLinks(run, v, 'out_link'),
    'Top links by SciTags traffic: inbound/A': (run, v) => checkTopLinks(run, v, 'in_link'),
    'Marked vs unmarked IPv6 vs IPv4: $link/A': rate(
      'bits',
      (v, r) => linkCells(v, (c) => inLink(v, r)(c) || outLink(v, r)(c)),
      (c) => c.tags.class!,
    ),
  },
  'scitags-link-detail': {
    'Inbound SciTags traffic by experiment: $link/A': rate(
      'bits',
      (v, r) => scitagsCells(v, (c) => inLink(v, r)(c) && experiment(v)(c)),
      community,
    ),
    'Outbound SciTags traffic by experiment: $link/A': rate(
      'bits',
      (v, r) => scitagsCells(v, (c) => outLink(v, r)(c) && experiment(v)(c)),
      community,
    ),
    'Inbound SciTags traffic by experiment and activity: $link/A': rate(
      'bits',
      (v, r) => scitagsCells(v, (c) => inLink(v, r)(c) && experiment(v)(c)),
      pairName,
    ),
    'Outbound SciTags traffic by experiment and activity: $link/A': rate(
      'bits',
      (v, r) => scitagsCells(v, (c) => outLink(v, r)(c) && experiment(v)(c)),
      pairName,
    ),
    'Inbound traffic by class: $link/A': rate(
      'bits',
      (v, r) => linkCells(v, inLink(v, r)),
      (c) => c.tags.class!,
    ),
    'Outbound traffic by class: $link/A': rate(
      'bits',
      (v, r) => linkCells(v, outLink(v, r)),
      (c) => c.tags.class!,
    ),
    'Utilisation: $link/A': utilisation('in_link', 'in'),
    'Utilisation: $link/B': utilisation('out_link', 'out'),
    'Packet rate: $link/A': rate('packets', (v, r) => linkCells(v, inLink(v, r)), single('in')),
    'Packet rate: $link/B': rate('packets', (v, r) => linkCells(v, outLink(v, r)), single('out')),
  },
};

function runChecks(checks: Record<string, Check>, dashboard: DashboardJson, run: DashboardRun, view: Omit<View, 'selection'>): void {
  const v: View = { ...view, selection: run.variables.selection };
  const seen = new Set<string>();
  for (const t of run.targets) {
    const key = `${t.panelTitle}/${t.refId}`;
    const check = checks[key];
    if (!check) throw new Error(`${dashboard.uid}: no expectation for panel target ${key}`);
    expect(t.intervalMs).toBe(v.intervalMs);
    seen.add(key);
    check(t, v);
  }
  expect([...seen].sort(), `${dashboard.uid}: every expectation exercised`).toEqual(Object.keys(checks).sort());
}

// ---------------------------------------------------------------------------------------
// Collector health: a model of the derivative queries over the raw collector_stats points
// ---------------------------------------------------------------------------------------

const COUNTERS = [
  'datagrams',
  'records',
  'decode_errors',
  'template_misses',
  'sequence_lost',
  'queue_drops',
  'store_write_failures',
] as const;

interface RawPoint {
  timeMs: number;
  tags: Record<string, string>;
  fields: Record<string, number>;
}

async function rawPoints(url: string, measurement: string, tagKeys: string[]): Promise<RawPoint[]> {
  const series = await influxQuery(url, DB, `SELECT * FROM "${measurement}"`);
  const out: RawPoint[] = [];
  for (const s of series) {
    for (const row of s.values) {
      const p: RawPoint = { timeMs: Number(row[0]), tags: {}, fields: {} };
      s.columns.forEach((c, i) => {
        if (c === 'time') return;
        if (tagKeys.includes(c)) p.tags[c] = String(row[i]);
        else if (row[i] !== null) p.fields[c] = Number(row[i]);
      });
      out.push(p);
    }
  }
  return out;
}

/** Windows of GROUP BY time(i) for a derivative-type query: InfluxDB starts one interval early. */
function derivativeWindowMaxes(points: RawPoint[], field: string, v: View): [number, number][] {
  const from = v.fromMs - v.intervalMs;
  const inRange = (t: number) => (v.style === 'backend' ? t > from && t < v.toMs : t >= from && t <= v.toMs);
  const maxes = new Map<number, number>();
  for (const p of points) {
    if (!inRange(p.timeMs) || p.fields[field] === undefined) continue;
    const w = Math.floor(p.timeMs / v.intervalMs) * v.intervalMs;
    maxes.set(w, Math.max(maxes.get(w) ?? -Infinity, p.fields[field]!));
  }
  return [...maxes.entries()].sort((a, b) => a[0] - b[0]);
}

function groupPoints(points: RawPoint[], keys: string[], name: (tags: Record<string, string>) => string): Map<string, RawPoint[]> {
  const out = new Map<string, RawPoint[]>();
  for (const p of points) {
    const n = name(Object.fromEntries(keys.map((k) => [k, p.tags[k] ?? ''])));
    out.set(n, [...(out.get(n) ?? []), p]);
  }
  return out;
}

function expectedDerivative(
  points: RawPoint[],
  field: string,
  groupBy: string[],
  alias: (tags: Record<string, string>) => string,
  v: View,
) {
  const out: Record<string, Record<number, number>> = {};
  for (const [name, pts] of groupPoints(points, groupBy, alias)) {
    const maxes = derivativeWindowMaxes(pts, field, v);
    const series: Record<number, number> = {};
    for (let i = 1; i < maxes.length; i++) {
      const d = (maxes[i]![1] - maxes[i - 1]![1]) / ((maxes[i]![0] - maxes[i - 1]![0]) / 1000);
      if (d >= 0) series[maxes[i]![0]] = d;
    }
    // A group with fewer than two windows (or only drops) has no derivative: no series at all.
    if (Object.keys(series).length > 0) out[name] = series;
  }
  return out;
}

/** sum(non_negative_difference(max(x))) per exporter; rows only for exporters with a difference. */
function expectedCounts(points: RawPoint[], v: View): Record<string, Record<string, number | null>> {
  const out: Record<string, Record<string, number | null>> = {};
  for (const [exporter, pts] of groupPoints(points, ['exporter'], (t) => t.exporter!)) {
    const row: Record<string, number | null> = {};
    for (const c of COUNTERS) {
      const maxes = derivativeWindowMaxes(pts, c, v);
      let total: number | null = null;
      for (let i = 1; i < maxes.length; i++) {
        const d = maxes[i]![1] - maxes[i - 1]![1];
        if (d >= 0) total = (total ?? 0) + d;
      }
      row[c] = total;
    }
    if (Object.values(row).some((x) => x !== null)) out[exporter] = row;
  }
  return out;
}

function checkHealth(run: DashboardRun, v0: Omit<View, 'selection'>, stats: RawPoint[], errors: RawPoint[]): void {
  const v: View = { ...v0, selection: run.variables.selection };
  const exporterSel = matches(v.selection.exporter);
  const st = stats.filter((p) => exporterSel(p.tags.exporter!));
  const er = errors.filter((p) => exporterSel(p.tags.exporter!));
  const byField: Record<string, string> = {
    'Datagrams received': 'datagrams',
    'Flow records / samples': 'records',
    'Decode errors (all reasons)': 'decode_errors',
    'Template misses': 'template_misses',
    'Sequence gaps (lost)': 'sequence_lost',
    'Queue drops': 'queue_drops',
    'Store write failures': 'store_write_failures',
  };
  const seen = new Set<string>();
  for (const t of run.targets) {
    seen.add(t.panelTitle);
    expect(t.intervalMs).toBe(v.intervalMs);
    const actual = timeSeriesOrTable(t);
    if (t.panelTitle === 'Counts over the time range') {
      const rows: Record<string, Record<string, number | null>> = {};
      for (const r of tableRows(t))
        rows[String(r.exporter)] = Object.fromEntries(COUNTERS.map((c) => [c, (r[c] ?? null) as number | null]));
      expect(rows, t.panelTitle).toEqual(expectedCounts(st, v));
      continue;
    }
    let expected: Record<string, Record<number, number>>;
    if (t.panelTitle === 'Decode errors by reason')
      expected = expectedDerivative(er, 'errors', ['exporter', 'reason'], (g) => `${g.exporter} ${g.reason}`, v);
    else {
      const field = byField[t.panelTitle];
      if (!field) throw new Error(`collector health: no expectation for ${t.panelTitle}`);
      expected = expectedDerivative(st, field, ['exporter'], (g) => g.exporter!, v);
    }
    expect(Object.keys(actual!).sort(), `${t.panelTitle}: series`).toEqual(Object.keys(expected).sort());
    for (const [name, series] of Object.entries(expected)) {
      const a = actual![name]!;
      expect(Object.keys(a).map(Number).sort(), `${t.panelTitle} / ${name}: timestamps`).toEqual(Object.keys(series).map(Number).sort());
      for (const [time, e] of Object.entries(series))
        expect(close(a[Number(time)]!, e), `${t.panelTitle} / ${name} @ ${time}: ${a[Number(time)]} vs ${e}`).toBe(true);
    }
  }
  expect([...seen].sort()).toEqual([...Object.keys(byField), 'Decode errors by reason', 'Counts over the time range'].sort());
}

const timeSeriesOrTable = (t: TargetRun) => (t.panelTitle === 'Counts over the time range' ? undefined : timeSeriesByName(t));

// ---------------------------------------------------------------------------------------

/** Grafana intervals of an hour and more: the range run uses the smallest whose one window holds the replay. */
const LONG_INTERVALS = [3_600_000, 7_200_000, 10_800_000, 21_600_000, 43_200_000, 86_400_000, 604_800_000, 2_592_000_000];

describe.skipIf(!influxdAvailable())('Grafana dashboards against InfluxDB filled by the collector (corpus replay)', () => {
  let influx: InfluxdHandle;
  let dir: string;
  let daemon: Daemon | undefined;
  let startMs = 0;
  let endMs = 0;
  let stats: RawPoint[] = [];
  let decodeErrors: RawPoint[] = [];

  const lastAll = async (): Promise<{ timeMs: number; datagrams: number } | undefined> => {
    const s = await influxQuery(influx.url, DB, `SELECT last("datagrams") FROM "collector_stats" WHERE "exporter" = 'all'`).catch(() => []);
    const row = s[0]?.values[0];
    return row ? { timeMs: Number(row[0]), datagrams: Number(row[1]) } : undefined;
  };
  const exportersSeen = async (): Promise<number> => {
    const ex = await getJson<{ exporters: { datagrams: number }[] }>(`${daemon!.apiUrl}/api/v1/exporters`);
    return ex.exporters.reduce((n, e) => n + e.datagrams, 0);
  };

  beforeAll(async () => {
    influx = await startInfluxd();
    dir = mkdtempSync(join(tmpdir(), 'scitags-dash-'));
    const config = join(dir, 'collector.yaml');
    writeFileSync(
      config,
      JSON.stringify({
        // JSON is YAML
        links: LINKS,
        aggregation: { keepUnregistered: KEEP },
        store: { type: 'influx', url: influx.url, database: DB, spoolDir: join(dir, 'spool'), statsIntervalSeconds: 1 },
        registry: { url: '', cacheFile: '' },
      }),
    );
    const ports = await freePorts();
    startMs = Date.now();
    daemon = await startDaemon(ports, [`--config=${config}`]);
    const captures = CAPTURES.map((c) => ({ ...c, datagrams: readCaptureFile(fixturePath(`${c.name}.pcap`)).datagrams }));
    const replay = async (phase: 1 | 2) => {
      for (const c of captures.filter((x) => x.phase === phase)) {
        await replayDatagrams(c.datagrams, { host: '127.0.0.1', port: ports[c.port], speed: 0, rate: 5000, onlyDstPort: 0 });
      }
    };
    // The first collector_stats point (nothing received: all zero), then phase 1 right after
    // it, well before the next point a second later.
    await waitFor(async () => (await lastAll()) !== undefined);
    const first = (await lastAll())!;
    await waitFor(async () => (await lastAll())!.timeMs > first.timeMs);
    await replay(1);
    await waitFor(async () => (await exportersSeen()) === TRUTH.counters.phase1Datagrams);
    await waitFor(async () => (await lastAll())!.datagrams === TRUTH.counters.phase1Datagrams);
    await replay(2);
    const sock = createSocket('udp4');
    await new Promise<void>((resolve, reject) => sock.send(BOGUS, ports.ipfix, '127.0.0.1', (err) => (err ? reject(err) : resolve())));
    sock.close();
    await waitFor(async () => (await exportersSeen()) === TRUTH.counters.datagrams);
    await waitFor(async () => (await lastAll())!.datagrams === TRUTH.counters.datagrams);
    const code = await daemon.stop('SIGTERM');
    daemon = undefined;
    expect(code).toBe(0);
    endMs = Date.now();
    stats = await rawPoints(influx.url, 'collector_stats', ['exporter']);
    decodeErrors = await rawPoints(influx.url, 'collector_decode_errors', ['exporter', 'reason']);
  });
  afterAll(async () => {
    await daemon?.stop('SIGKILL');
    await influx?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** A range of exactly one window holding all the data, and the bucket-size range around it. */
  const ranges = () => {
    const lo = startMs - 15 * 60_000; // nothing can land earlier: lateWindowSeconds is 300
    const hi = endMs + 2 * 60_000;
    const interval = LONG_INTERVALS.find((i) => Math.floor(lo / i) === Math.floor(hi / i));
    if (!interval) throw new Error('no interval holds the replay in one window');
    const W = Math.floor(lo / interval) * interval;
    const minute = { fromMs: Math.floor(lo / 60_000) * 60_000, toMs: Math.ceil(hi / 60_000) * 60_000 - 1, intervalMs: 60_000 };
    return { interval, W, minute };
  };
  const base = (): Pick<RunOptions, 'url' | 'database'> => ({ url: influx.url, database: DB });

  it('the collector wrote what the truth says (sanity: the raw totals, before any dashboard)', async () => {
    const sum = async (q: string) => (await influxQuery(influx.url, DB, q))[0]?.values[0]?.[1];
    const all = (f: 'bytes' | 'packets', m: string) => TRUTH.cells.filter((c) => c.measurement === m).reduce((a, c) => a + c[f], 0);
    expect(await sum('SELECT sum("bytes") FROM "scitags_traffic"')).toBe(all('bytes', 'scitags_traffic'));
    expect(await sum('SELECT sum("bytes") FROM "link_traffic"')).toBe(all('bytes', 'link_traffic'));
    expect(await sum('SELECT sum("packets") FROM "link_traffic"')).toBe(all('packets', 'link_traffic'));
    const last = stats.filter((p) => p.tags.exporter === 'all').sort((a, b) => a.timeMs - b.timeMs);
    expect(last[0]!.fields.datagrams, 'the first collector_stats point precedes the replay').toBe(0);
    expect(last.at(-1)!.fields).toEqual({
      datagrams: TRUTH.counters.datagrams,
      records: TRUTH.counters.records,
      decode_errors: 1,
      template_misses: 0,
      sequence_lost: TRUTH.counters.sequenceLost,
      queue_drops: 0,
      store_write_failures: 0,
    });
    const ex = stats.filter((p) => p.tags.exporter === EXPORTER).sort((a, b) => a.timeMs - b.timeMs);
    expect([ex[0]!.fields.datagrams, ex[0]!.fields.records], "a new exporter's series starts with a zero point").toEqual([0, 0]);
    expect([ex[1]!.fields.datagrams, ex[1]!.fields.records], "the exporter's first counted point holds phase 1").toEqual([
      TRUTH.counters.phase1Datagrams,
      TRUTH.counters.phase1Records,
    ]);
    const errs = decodeErrors.sort((a, b) => a.timeMs - b.timeMs);
    expect(errs.map((p) => [p.tags.exporter, p.tags.reason])).toEqual(errs.map(() => [EXPORTER, BOGUS_REASON]));
    expect(errs.at(-1)?.fields).toEqual({ errors: 1 });
  });

  it('template variables list what the collector wrote', async () => {
    const { interval, W } = ranges();
    const opts: RunOptions = { ...base(), fromMs: W, toMs: W + interval - 1, intervalMs: interval };
    const linkNames = [...new Set(TRUTH.cells.flatMap((c) => [c.tags.in_link!, c.tags.out_link!]))].sort();
    const experiments = [...new Set(TRUTH.cells.filter((c) => c.measurement === 'scitags_traffic').map((c) => c.tags.community!))].sort();
    expect(linkNames).toEqual(['lan.0 (core)', 'none', 'sflow-in']);
    const o = await runDashboard(overview, opts);
    expect(o.variables.options).toEqual({ policy: ['1m', '1h'], exporter: [EXPORTER], experiment: experiments, link: linkNames });
    expect(o.variables.selection).toEqual({ policy: ['1m'], exporter: 'all', experiment: [experiments[0]], link: 'all' });
    const l = await runDashboard(linkDetail, { ...opts, selection: { exporter: [EXPORTER] } });
    expect(l.variables.options).toEqual({ policy: ['1m', '1h'], exporter: [EXPORTER], experiment: experiments, link: linkNames });
    expect(l.variables.queries.link).toContain('"exporter" =~ /^127\\.0\\.0\\.1$/');
    const h = await runDashboard(health, opts);
    expect(h.variables.options).toEqual({ exporter: [EXPORTER, 'all'] });
  });

  it('SciTags overview: one point per range equals the truth, for every experiment, both time-filter forms', async () => {
    const { interval, W } = ranges();
    const experiments = [...new Set(TRUTH.cells.filter((c) => c.measurement === 'scitags_traffic').map((c) => c.tags.community!))];
    for (const style of ['frontend', 'backend'] as const) {
      const [fromMs, toMs] = style === 'frontend' ? [W, W + interval - 1] : [W - 1, W + interval];
      for (const e of experiments) {
        const opts: RunOptions = { ...base(), fromMs, toMs, intervalMs: interval, timeFilterStyle: style, selection: { experiment: [e] } };
        const run = await runDashboard(overview, opts);
        runChecks(TRAFFIC_CHECKS['scitags-overview']!, overview, run, {
          fromMs,
          toMs,
          intervalMs: interval,
          style,
          mode: { kind: 'range', dataWindowMs: W },
        });
      }
    }
  });

  it('SciTags overview: one point per 1-minute bucket, the points add up to the truth', async () => {
    const { minute } = ranges();
    const opts: RunOptions = { ...base(), ...minute, selection: { exporter: [EXPORTER] } };
    const run = await runDashboard(overview, opts);
    runChecks(TRAFFIC_CHECKS['scitags-overview']!, overview, run, { ...minute, style: 'frontend', mode: { kind: 'bucket' } });
  });

  it('Link detail: every link, all and some experiments, per range and per bucket; utilisation over the configured capacity', async () => {
    const { interval, W, minute } = ranges();
    const links = [...new Set(TRUTH.cells.flatMap((c) => [c.tags.in_link!, c.tags.out_link!]))];
    for (const link of links) {
      for (const experiment of ['all', ['atlas', 'unregistered']] as Selection[]) {
        const opts: RunOptions = {
          ...base(),
          fromMs: W,
          toMs: W + interval - 1,
          intervalMs: interval,
          selection: { exporter: 'all', link: [link], experiment },
        };
        const run = await runDashboard(linkDetail, opts);
        runChecks(TRAFFIC_CHECKS['scitags-link-detail']!, linkDetail, run, {
          fromMs: opts.fromMs,
          toMs: opts.toMs,
          intervalMs: interval,
          style: 'frontend',
          mode: { kind: 'range', dataWindowMs: W },
        });
      }
      const run = await runDashboard(linkDetail, { ...base(), ...minute, selection: { link: [link] } });
      runChecks(TRAFFIC_CHECKS['scitags-link-detail']!, linkDetail, run, { ...minute, style: 'frontend', mode: { kind: 'bucket' } });
    }
  });

  it('Collector health: rates per exporter and reason, and the counts table, equal what was replayed', async () => {
    const { minute } = ranges();
    const fromMs = Math.floor(startMs / 1000) * 1000 - 5000;
    const toMs = Math.ceil(endMs / 1000) * 1000 + 5000;
    for (const view of [{ fromMs, toMs, intervalMs: 1000 }, { ...minute }]) {
      for (const exporter of ['all', [EXPORTER]] as Selection[]) {
        const run = await runDashboard(health, { ...base(), ...view, selection: { exporter } });
        checkHealth(run, { ...view, style: 'frontend', mode: { kind: 'bucket' } }, stats, decodeErrors);
      }
    }
    // At one point per second the table holds the whole replay, for `all` and for the
    // exporter: both series start from a zero point.
    const run = await runDashboard(health, { ...base(), fromMs, toMs, intervalMs: 1000 });
    const rows = Object.fromEntries(
      tableRows(run.targets.find((t) => t.panelTitle === 'Counts over the time range')!).map((r) => [String(r.exporter), r]),
    );
    const c = TRUTH.counters;
    const zero = { template_misses: 0, queue_drops: 0, store_write_failures: 0 };
    expect(rows.all).toMatchObject({
      datagrams: c.datagrams,
      records: c.records,
      decode_errors: 1,
      sequence_lost: c.sequenceLost,
      ...zero,
    });
    expect(rows[EXPORTER]).toMatchObject({
      datagrams: c.datagrams,
      records: c.records,
      decode_errors: 1,
      sequence_lost: c.sequenceLost,
      ...zero,
    });
    // The rate panels integrate to the same counts: rate x seconds since the previous point.
    for (const [title, field] of [
      ['Datagrams received', 'datagrams'],
      ['Flow records / samples', 'records'],
      ['Sequence gaps (lost)', 'sequence_lost'],
    ] as const) {
      const series = timeSeriesByName(run.targets.find((t) => t.panelTitle === title)!);
      for (const exporter of ['all', EXPORTER]) {
        const times = stats
          .filter((p) => p.tags.exporter === exporter)
          .map((p) => p.timeMs)
          .sort((a, b) => a - b);
        const integral = Object.entries(series[exporter] ?? {}).reduce((a, [t, x]) => {
          const prev = times.filter((u) => u < Number(t)).at(-1)!;
          return a + (x ?? 0) * ((Number(t) - prev) / 1000);
        }, 0);
        expect(Math.round(integral), `${title} ${exporter}`).toBe(rows[exporter]![field]);
      }
    }
  });

  // Regressions of a bug this test found: counts made before a series' first point were lost.
  it('"Decode errors by reason" shows a reason whose errors all came before its first collector_decode_errors point', async () => {
    const run = await runDashboard(health, { ...base(), fromMs: startMs - 5000, toMs: endMs + 5000, intervalMs: 1000 });
    const byReason = timeSeriesByName(run.targets.find((t) => t.panelTitle === 'Decode errors by reason')!);
    expect(Object.keys(byReason)).toEqual([`${EXPORTER} ${BOGUS_REASON}`]);
  });

  it("an exporter's counts before its first collector_stats point are in the rate panels and the counts table", async () => {
    const run = await runDashboard(health, { ...base(), fromMs: startMs - 5000, toMs: endMs + 5000, intervalMs: 1000 });
    const rows = Object.fromEntries(
      tableRows(run.targets.find((t) => t.panelTitle === 'Counts over the time range')!).map((r) => [String(r.exporter), r]),
    );
    expect(rows[EXPORTER]).toMatchObject({ datagrams: TRUTH.counters.datagrams, records: TRUTH.counters.records });
  });

  it('a wrong query fails: mutated panel queries are caught against the collector data', async () => {
    const { interval, W } = ranges();
    const view = {
      fromMs: W,
      toMs: W + interval - 1,
      intervalMs: interval,
      style: 'frontend' as const,
      mode: { kind: 'range' as const, dataWindowMs: W },
    };
    const mutations: [DashboardJson, (q: string) => string, Record<string, Selection>][] = [
      [overview, (q) => q.replace('* 8000 /', '* 8 /'), {}],
      [overview, (q) => q.replace('$__interval_ms', '60000'), {}],
      [overview, (q) => q.replace('"community" fill(0)', '"activity" fill(0)'), {}],
      [overview, (q) => q.replace(`("community" = 'unregistered' OR "activity" = 'unregistered')`, `"community_id" = 'unregistered'`), {}],
      [overview, (q) => q.replace('OR "out_link" =~', 'AND "out_link" =~'), {}],
      [linkDetail, (q) => q.replace('"in_link" =~', '"out_link" =~'), { link: ['lan.0 (core)'], experiment: 'all' }],
      [linkDetail, (q) => q.replace('max("in_capacity_bps")', 'max("out_capacity_bps")'), { link: ['lan.0 (core)'], experiment: 'all' }],
      [linkDetail, (q) => q.replace('sum("packets")', 'sum("records")'), { link: ['lan.0 (core)'], experiment: 'all' }],
    ];
    for (const [d, mutate, selection] of mutations) {
      const { dashboard: mutated, changed } = mutateQueries(d, mutate);
      expect(changed, `mutation ${mutate.toString()} applies`).toBeGreaterThan(0);
      const run = await runDashboard(mutated, { ...base(), fromMs: view.fromMs, toMs: view.toMs, intervalMs: interval, selection });
      expect(() => runChecks(TRAFFIC_CHECKS[d.uid]!, mutated, run, view), `mutation ${mutate.toString()} is caught`).toThrow();
    }
  });
});
