import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadSnapshot } from '../../src/registry/loader.js';

/**
 * Expected totals of a capture fixture, from its truth file (corpus: `<name>.truth.json`;
 * captures made for this project: `<name>.expected.json`). Both use the corpus shape:
 * `expected_by_pair_all_nonzero_labels` {"c/a": {records, packets_scaled, bytes_scaled}}
 * and `expected_other` {ipv6_label_zero | ipv6_label_absent | ipv6_label_nonzero | ipv4: ...}.
 */
export interface ExpectedCounts {
  records: number;
  packets: number;
  bytes: number;
}

export interface ExpectedTotals {
  pairs: Map<string, ExpectedCounts>;
  ipv6Unmarked: ExpectedCounts;
  ipv4: ExpectedCounts;
}

interface TruthCounts {
  records: number;
  packets_scaled: number;
  bytes_scaled: number;
}

export const FIXTURES = join(import.meta.dirname, '..', 'fixtures');

export function fixturePath(name: string): string {
  return join(FIXTURES, name);
}

/** Capture fixtures with a truth or expected file, by base name. */
export function fixturesWithTruth(): { name: string; pcap: string; truthFile: string }[] {
  const out: { name: string; pcap: string; truthFile: string }[] = [];
  for (const f of readdirSync(FIXTURES).sort()) {
    const m = /^(.*)\.(truth|expected)\.json$/.exec(f);
    if (!m || f.startsWith('traffic_')) continue;
    const pcap = join(FIXTURES, `${m[1]}.pcap`);
    if (existsSync(pcap)) out.push({ name: m[1]!, pcap, truthFile: join(FIXTURES, f) });
  }
  return out;
}

function counts(c: TruthCounts | undefined): ExpectedCounts {
  return c ? { records: c.records, packets: c.packets_scaled, bytes: c.bytes_scaled } : { records: 0, packets: 0, bytes: 0 };
}

function sum(a: ExpectedCounts, b: ExpectedCounts): ExpectedCounts {
  return { records: a.records + b.records, packets: a.packets + b.packets, bytes: a.bytes + b.bytes };
}

export function loadTruth(file: string): Record<string, unknown> {
  return JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
}

export function expectedTotals(truth: Record<string, unknown>): ExpectedTotals {
  const byPair = truth.expected_by_pair_all_nonzero_labels as Record<string, TruthCounts>;
  const other = truth.expected_other as Record<string, TruthCounts>;
  const pairs = new Map<string, ExpectedCounts>();
  for (const [k, v] of Object.entries(byPair)) pairs.set(k, counts(v));
  let ipv6Unmarked: ExpectedCounts = { records: 0, packets: 0, bytes: 0 };
  for (const [k, v] of Object.entries(other)) {
    if (k.startsWith('ipv6_') && k !== 'ipv6_label_nonzero') ipv6Unmarked = sum(ipv6Unmarked, counts(v));
  }
  return { pairs, ipv6Unmarked, ipv4: counts(other.ipv4) };
}

/** The three corpus exporter captures, with the collector port each is sent to. */
export const CORPUS_CAPTURES = [
  { name: 'ipfix_pmacct_nfprobe_flowlabel', port: 'ipfix' },
  { name: 'ipfix_softflowd_vlan', port: 'ipfix' },
  { name: 'sflow_pmacct_sfprobe_rate1', port: 'sflow' },
] as const;

/** a + b (a may be absent: the first term of a sum). */
export function addCounts(a: ExpectedCounts | undefined, b: ExpectedCounts): ExpectedCounts {
  const base = a ?? { records: 0, packets: 0, bytes: 0 };
  return { records: base.records + b.records, packets: base.packets + b.packets, bytes: base.bytes + b.bytes };
}

/** The parts of a /api/v1/traffic answer the end-to-end tests read. */
export interface TrafficAnswer {
  series: { group: Record<string, string | number | null>; totals: ExpectedCounts }[];
  totals: ExpectedCounts;
}

/**
 * What /api/v1/traffic?groupBy=community,activity must say for the corpus captures, keyed
 * "scitags <experiment>/<activity>" (registered pairs by name, the rest folded into
 * unregistered/unregistered) or the class of unmarked traffic.
 */
export function expectedCorpusGroups(): Map<string, ExpectedCounts> {
  const registry = loadSnapshot(0);
  const out = new Map<string, ExpectedCounts>();
  for (const c of CORPUS_CAPTURES) {
    const t = expectedTotals(loadTruth(fixturePath(`${c.name}.truth.json`)));
    for (const [pair, counts] of t.pairs) {
      const [community, activity] = pair.split('/').map(Number) as [number, number];
      const names = registry.names(community, activity);
      const key = names.registered ? `scitags ${names.communityName}/${names.activityName}` : 'scitags unregistered/unregistered';
      out.set(key, addCounts(out.get(key), counts));
    }
    out.set('ipv6_unmarked', addCounts(out.get('ipv6_unmarked'), t.ipv6Unmarked));
    out.set('ipv4', addCounts(out.get('ipv4'), t.ipv4));
  }
  return out;
}

/** An answer grouped by community and activity, keyed as expectedCorpusGroups(). */
export function trafficGroups(answer: TrafficAnswer): Map<string, ExpectedCounts> {
  const out = new Map<string, ExpectedCounts>();
  for (const s of answer.series) {
    const g = s.group;
    const key = g.class === 'scitags' ? `scitags ${g.communityName}/${g.activityName}` : String(g.class);
    out.set(key, addCounts(out.get(key), s.totals));
  }
  return out;
}
