import { parseLinkKey as parseStoreLinkKey } from '../store/sqlite/link-key.js';
import type { TrafficTotals } from '../store/types.js';
import { BadParameter, linkKey, parseBoundedTime } from './params.js';
import { MAX_STEP_SECONDS } from './traffic.js';
import type { ApiDeps } from './types.js';

/** Query string of GET /api/v1/links after JSON-schema validation (all strings). */
export interface LinksParams {
  from?: string;
  to?: string;
  limit?: string;
}

/** Links seen only in the store listed at most (`limit`), by default and at most. */
export const DEFAULT_LINKS_LIMIT = 500;
export const MAX_LINKS_LIMIT = 10_000;

export interface LinkOut {
  /** Configured name, else the name the exporter sent (IE 82); null for links seen only in the store. */
  name: string | null;
  /** "exporter:ifIndex" ("[v6]:ifIndex"), "exporter:-" for traffic with no interface reported. */
  link: string;
  exporter: string;
  ifIndex: number | null;
  capacityBps: number | null;
  /** Where the entry comes from: configuration, learnt interface names, or only the store's rows. */
  source: 'config' | 'learned' | 'traffic';
  /** Stored traffic in [from, to) that entered the router on this link (in) and left on it (out). */
  traffic: { in: TrafficTotals; out: TrafficTotals };
}

export interface LinksResponse {
  from: string;
  to: string;
  fromMs: number;
  toMs: number;
  links: LinkOut[];
  /** Links seen only in the store left out by `limit` (the smallest by bytes). */
  omittedLinks: number;
}

const zero = (): TrafficTotals => ({ bytes: 0, packets: 0, records: 0 });

/**
 * GET /api/v1/links: configured links, then interface names learnt from the exporters, then
 * every other link that carried traffic in [from, to) according to the store, largest first,
 * at most `limit` of those. Every entry carries its in / out totals over the range, from one
 * store query grouped by link and direction (so both stores give the same answer: the
 * stores-agree property test covers that grouping) with one step covering the range.
 */
export async function linksQuery(deps: ApiDeps, q: LinksParams): Promise<LinksResponse> {
  const nowMs = deps.now();
  const fromMs = parseBoundedTime(q.from ?? 'now-1h', nowMs, 'from');
  const toMs = parseBoundedTime(q.to ?? 'now', nowMs, 'to');
  if (toMs <= fromMs) {
    throw new BadParameter(
      q.to === undefined ? 'from' : 'to',
      `must be later than from (from ${new Date(fromMs).toISOString()}, to ${new Date(toMs).toISOString()})`,
    );
  }
  const limit = q.limit === undefined ? DEFAULT_LINKS_LIMIT : Number(q.limit);
  if (!(Number.isInteger(limit) && limit >= 0 && limit <= MAX_LINKS_LIMIT)) {
    throw new BadParameter('limit', `must be an integer from 0 to ${MAX_LINKS_LIMIT}`);
  }

  // One step for the whole range (capped like /traffic's step: InfluxQL durations are int64 ns);
  // a longer range gives a few points per link, summed below.
  const stepSeconds = Math.min(MAX_STEP_SECONDS, Math.max(1, Math.ceil((toMs - fromMs) / 1000)));
  const result = await deps.store.queryTraffic({ fromMs, toMs, stepSeconds, groupBy: ['link', 'direction'] });
  const seen = new Map<string, { exporter: string; ifIndex: number | null; in: TrafficTotals; out: TrafficTotals }>();
  for (const s of result.series) {
    const k = typeof s.group['link'] === 'string' ? parseStoreLinkKey(s.group['link']) : undefined;
    const direction = s.group['direction'];
    if (!k || (direction !== 'in' && direction !== 'out')) continue;
    const key = linkKey(k.exporter, k.ifIndex);
    let entry = seen.get(key);
    if (!entry) seen.set(key, (entry = { exporter: k.exporter, ifIndex: k.ifIndex, in: zero(), out: zero() }));
    const side = entry[direction];
    side.bytes += s.totals.bytes;
    side.packets += s.totals.packets;
    side.records += s.totals.records;
  }
  const trafficOf = (key: string): LinkOut['traffic'] => {
    const e = seen.get(key);
    return e ? { in: e.in, out: e.out } : { in: zero(), out: zero() };
  };

  const links: LinkOut[] = [];
  const named = new Set<string>();
  for (const l of deps.links) {
    const key = linkKey(l.exporter, l.ifIndex);
    named.add(key);
    links.push({
      name: l.name,
      link: key,
      exporter: l.exporter,
      ifIndex: l.ifIndex,
      capacityBps: l.capacityBps ?? null,
      source: 'config',
      traffic: trafficOf(key),
    });
  }
  const learned = (deps.learnedInterfaces?.() ?? [])
    .filter((l) => !named.has(linkKey(l.exporter, l.ifIndex)))
    .sort((a, b) => a.exporter.localeCompare(b.exporter) || a.ifIndex - b.ifIndex);
  for (const l of learned) {
    const key = linkKey(l.exporter, l.ifIndex);
    if (named.has(key)) continue;
    named.add(key);
    links.push({
      name: l.name,
      link: key,
      exporter: l.exporter,
      ifIndex: l.ifIndex,
      capacityBps: null,
      source: 'learned',
      traffic: trafficOf(key),
    });
  }
  const unnamed = [...seen.entries()]
    .filter(([key]) => !named.has(key))
    .map(([key, e]) => ({ key, e, bytes: e.in.bytes + e.out.bytes }))
    .sort((a, b) => b.bytes - a.bytes || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  for (const { key, e } of unnamed.slice(0, limit)) {
    links.push({
      name: null,
      link: key,
      exporter: e.exporter,
      ifIndex: e.ifIndex,
      capacityBps: null,
      source: 'traffic',
      traffic: { in: e.in, out: e.out },
    });
  }
  return {
    from: new Date(fromMs).toISOString(),
    to: new Date(toMs).toISOString(),
    fromMs,
    toMs,
    links,
    omittedLinks: Math.max(0, unnamed.length - limit),
  };
}
