import { ApiError, getJson, getText } from './api.js';
import { byId, el, fillTable, row, swatch } from './dom.js';
import { age, bitRate, bytes, clock, exact, percent, share } from './format.js';
import { experimentColour } from './palette.js';
import type {
  Exporter,
  Experiments,
  FirefliesAnswer,
  Group,
  Health,
  LinksAnswer,
  MarkingAnswer,
  Nat64DestinationsAnswer,
  TrafficAnswer,
  TransitionAnswer,
  TransitionSums,
} from './types.js';

/** Where the panels read the range from, and how a panel tells the page to filter the chart. */
export interface PanelContext {
  from: string;
  stepSeconds: number;
  rangeSeconds: number;
  selectedLink: string | null;
  selectLink: (link: string, label: string) => void;
  /** The registry's experiments (names for ids the API answers without names). */
  communities: Experiments['communities'];
}

/** A link as the Links panel names it: "name (exporter:ifIndex)", or the key alone. */
export const linkLabel = (key: string, name: string | null | undefined): string => (name ? `${name} (${key})` : key);

/** The range in words, for captions. */
const rangeWords = (seconds: number): string => (seconds >= 86400 ? `${seconds / 86400} d` : `${seconds / 60} min`);

/** Resolves to null when the API answers `status` (a capability that is off), else as getJson. */
async function unlessStatus<T>(status: number, answer: Promise<T>): Promise<T | null> {
  try {
    return await answer;
  } catch (err) {
    if (err instanceof ApiError && err.status === status) return null;
    throw err;
  }
}

/**
 * A panel: one section of the page filled from the public API. Optional panels (fireflies;
 * later the IPv6 transition view) hide their section when the collector has nothing for them,
 * so a new capability slots in as one more entry in PANELS.
 */
export interface Panel {
  id: string;
  refresh(ctx: PanelContext): Promise<void>;
}

interface LinkRow {
  key: string;
  label: string;
  total: number;
  scitags: number;
  ipv6: number;
  experiments: Map<string, { bytes: number; community: number | null }>;
  filterable: boolean;
}

export const linksPanel: Panel = {
  id: 'links',
  async refresh(ctx) {
    const common = { from: ctx.from, to: 'now', step: ctx.stepSeconds, provisional: 'true' };
    const [links, byClass, byExperiment] = await Promise.all([
      getJson<LinksAnswer>('api/v1/links', { from: ctx.from, to: 'now' }),
      getJson<TrafficAnswer>('api/v1/traffic', { ...common, groupBy: 'link,class' }),
      getJson<TrafficAnswer>('api/v1/traffic', { ...common, groupBy: 'link,community', class: 'scitags' }),
    ]);
    const rows = new Map<string, LinkRow>();
    const rowFor = (key: string, name: string | null | undefined, ifIndex: unknown): LinkRow => {
      let r = rows.get(key);
      if (!r) {
        r = {
          key,
          label: linkLabel(key, name),
          total: 0,
          scitags: 0,
          ipv6: 0,
          experiments: new Map(),
          filterable: typeof ifIndex === 'number',
        };
        rows.set(key, r);
      }
      return r;
    };
    for (const l of links.links) rowFor(l.link, l.name, l.ifIndex);
    for (const s of byClass.series) {
      const g = s.group;
      const r = rowFor(String(g['link']), g['linkName'] as string | null, g['linkIfIndex']);
      r.total += s.totals.bytes;
      if (g['class'] === 'scitags') r.scitags += s.totals.bytes;
      if (g['class'] === 'scitags' || g['class'] === 'ipv6_unmarked') r.ipv6 += s.totals.bytes;
    }
    for (const s of byExperiment.series) {
      const g = s.group;
      const r = rowFor(String(g['link']), g['linkName'] as string | null, g['linkIfIndex']);
      const name = String(g['communityName'] ?? 'unregistered');
      const e = r.experiments.get(name) ?? { bytes: 0, community: typeof g['community'] === 'number' ? g['community'] : null };
      e.bytes += s.totals.bytes;
      r.experiments.set(name, e);
    }
    const sorted = [...rows.values()].sort((a, b) => b.total - a.total || a.key.localeCompare(b.key));
    const table = byId<HTMLTableElement>('links-table');
    if (sorted.length === 0) {
      fillTable(table, 'No link carried traffic in this range.', [], []);
      return;
    }
    fillTable(
      table,
      `Per link (both directions), ${rangeWords(ctx.rangeSeconds)}; choose a link to filter the chart`,
      ['link', 'traffic', 'average', 'SciTags-marked', 'IPv6', 'top experiments'],
      sorted.map((r) => {
        const label: Node | string = r.filterable
          ? (() => {
              const b = el('button', { type: 'button', 'aria-pressed': String(ctx.selectedLink === r.key) }, r.label);
              b.addEventListener('click', () => ctx.selectLink(r.key, r.label));
              return b;
            })()
          : r.label;
        const top = [...r.experiments].sort((a, b) => b[1].bytes - a[1].bytes).slice(0, 3);
        const experiments = el(
          'ul',
          { class: 'inline-list' },
          ...top.map(([name, e]) =>
            el('li', {}, ...(e.community !== null ? [swatch(experimentColour(e.community))] : []), `${name} ${percent(e.bytes, r.total)}`),
          ),
        );
        return row(
          [
            label,
            bytes(r.total),
            bitRate((r.total * 8) / ctx.rangeSeconds),
            percent(r.scitags, r.total),
            percent(r.ipv6, r.total),
            top.length ? experiments : '—',
          ],
          {
            'data-link': r.key,
            'data-bytes': String(r.total),
            ...(ctx.selectedLink === r.key ? { class: 'selected' } : {}),
          },
        );
      }),
    );
  },
};

/** An exporter not heard from for this long is stale (highlighted). */
export const STALE_SECONDS = 300;
const previous = new Map<string, { atMs: number; datagrams: number; records: number }>();

export const exportersPanel: Panel = {
  id: 'exporters',
  async refresh() {
    const { exporters } = await getJson<{ exporters: Exporter[] }>('api/v1/exporters');
    const now = Date.now();
    const table = byId<HTMLTableElement>('exporters-table');
    if (exporters.length === 0) {
      fillTable(table, 'No exporter has sent anything yet.', [], []);
      return;
    }
    const rate = (e: Exporter, field: 'datagrams' | 'records'): string => {
      const p = previous.get(e.address);
      if (!p || now <= p.atMs) return 'measuring…';
      return `${((e[field] - p[field]) / ((now - p.atMs) / 1000)).toFixed(1)}/s`;
    };
    const rows = exporters.map((e) => {
      const stale = e.lastSeenAgeSeconds > STALE_SECONDS;
      const errors = Object.entries({ ...e.errorsByReason, ...e.decoderCrashes });
      const sampling = [
        ...e.samplingRates.map((s) => `1:${s.rate} (domain ${s.domain}, ${s.source})`),
        ...(e.sflowSources ?? []).map(
          (s) =>
            `1:${s.samplingRate} (sFlow source ${s.subAgent}:${s.sourceIdIndex}, stated${s.effectiveRate !== null ? `; effective 1:${s.effectiveRate.toFixed(0)}` : ''})`,
        ),
      ];
      return row(
        [
          e.address,
          e.protocols.join(', '),
          el('span', stale ? { class: 'badge stale' } : {}, `${age(e.lastSeenAgeSeconds)}${stale ? ' (stale)' : ''}`),
          rate(e, 'datagrams'),
          rate(e, 'records'),
          `${exact(e.datagrams)} / ${exact(e.records)}`,
          errors.length ? errors.map(([k, v]) => `${k}: ${exact(v)}`).join(', ') : 'none',
          `${exact(e.sequenceGaps)} gaps, ${exact(e.lostRecords)} lost`,
          sampling.length ? sampling.join('; ') : '—',
          exact(e.liveTemplates),
        ],
        { 'data-exporter': e.address, ...(stale ? { class: 'stale' } : {}) },
      );
    });
    for (const e of exporters) previous.set(e.address, { atMs: now, datagrams: e.datagrams, records: e.records });
    fillTable(
      table,
      `Exporters (stale after ${STALE_SECONDS / 60} min without a datagram)`,
      [
        'exporter',
        'protocols',
        'last seen',
        'datagrams/s',
        'records/s',
        'datagrams / records',
        'errors by reason',
        'sequence loss',
        'sampling (source)',
        'templates',
      ],
      rows,
    );
  },
};

/** Sums of a metric's samples in a Prometheus text answer, and the label sets it has. */
export function metricSamples(text: string, name: string): { labels: Record<string, string>; value: number }[] {
  const out: { labels: Record<string, string>; value: number }[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith(name) || (line[name.length] !== ' ' && line[name.length] !== '{')) continue;
    const labels: Record<string, string> = {};
    for (const m of line.matchAll(/(\w+)="([^"]*)"/g)) labels[m[1]!] = m[2]!;
    out.push({ labels, value: Number(line.slice(line.lastIndexOf(' ') + 1)) });
  }
  return out;
}

const total = (text: string, name: string): number => metricSamples(text, name).reduce((n, s) => n + s.value, 0);

/** The UDP ports the collector listens on, by listener (from /metrics). */
export function listenerPorts(metrics: string): Map<string, string> {
  const ports = new Map<string, string>();
  for (const s of metricSamples(metrics, 'scitags_receive_path_info'))
    if (s.labels['listener'] && s.labels['port']) ports.set(s.labels['listener'], s.labels['port']);
  return ports;
}

export let lastMetrics = '';

export const healthPanel: Panel = {
  id: 'health',
  async refresh() {
    const [health, experiments, metrics] = await Promise.all([
      getJson<Health>('health', {}, [503]),
      getJson<Experiments>('api/v1/experiments'),
      getText('metrics'),
    ]);
    lastMetrics = metrics;
    const reg = experiments.registry;
    const spool = metricSamples(metrics, 'scitags_influx_spool_batches');
    const dl = el(
      'dl',
      { class: 'facts' },
      el('dt', {}, 'status'),
      el(
        'dd',
        {},
        el('span', { class: `badge ${health.status}`, 'data-status': health.status }, health.status),
        ` (version ${health.version})`,
      ),
      el('dt', {}, 'reasons'),
      el(
        'dd',
        {},
        health.reasons.length
          ? el('ul', {}, ...health.reasons.map((r) => el('li', {}, `${r.reason}: ${r.detail} (metric ${r.metric})`)))
          : 'none',
      ),
      el('dt', {}, 'drops'),
      el(
        'dd',
        {},
        `kernel ${exact(total(metrics, 'scitags_kernel_udp_drops_total'))}, decode queue ${exact(total(metrics, 'scitags_queue_drops_total'))}`,
      ),
      el('dt', {}, 'spool'),
      el('dd', {}, spool.length ? `${exact(total(metrics, 'scitags_influx_spool_batches'))} batches waiting` : 'none (embedded store)'),
      el('dt', {}, 'registry'),
      el(
        'dd',
        {},
        `${reg.source}, loaded ${age(reg.loadedAgeSeconds)}${reg.modified ? `, modified ${reg.modified}` : ''}, ${experiments.communities.length} experiments${reg.lastError ? `; last refresh error: ${reg.lastError}` : ''}`,
      ),
      el('dt', {}, 'checks'),
      el(
        'dd',
        {},
        el(
          'ul',
          {},
          ...Object.entries(health.checks).map(([k, c]) => el('li', {}, `${k}: ${c.status}${c.message ? ` (${c.message})` : ''}`)),
        ),
      ),
    );
    byId('health-body').replaceChildren(dl);
  },
};

/** Fireflies: shown once the collector has any (its section stays hidden otherwise). */
export const firefliesPanel: Panel = {
  id: 'fireflies',
  async refresh(ctx) {
    const section = byId('fireflies');
    let answer: FirefliesAnswer;
    try {
      answer = await getJson<FirefliesAnswer>('api/v1/fireflies', {
        from: ctx.from,
        to: 'now',
        step: ctx.stepSeconds,
        groupBy: 'community',
      });
    } catch {
      section.hidden = true; // no firefly store: the capability is absent, not an error
      return;
    }
    section.hidden = answer.totals.flowsStarted + answer.totals.flowsEnded === 0;
    if (section.hidden) return;
    fillTable(
      byId<HTMLTableElement>('fireflies-table'),
      'Flows marked by fireflies, per experiment',
      ['experiment', 'started', 'ended', 'expired', 'bytes (ended flows)'],
      answer.series.map((s) =>
        row([
          String(s.group['communityName'] ?? s.group['community']),
          exact(s.totals.flowsStarted),
          exact(s.totals.flowsEnded),
          exact(s.totals.flowsExpired),
          bytes(s.totals.bytes),
        ]),
      ),
    );
  },
};

const TRANSITION_HEAD = ['traffic', 'IPv4', 'IPv6', 'of which NAT64', 'IPv6 share', 'NAT64 share'];

/** Every figure of a transition row: average bit/s over the range, shares as the API computed them. */
function transitionCells(t: TransitionSums, rangeSeconds: number): string[] {
  const rate = (b: number): string => bitRate((b * 8) / rangeSeconds);
  return [
    rate(t.ipv4Bytes + t.ipv6Bytes + t.unknownBytes),
    rate(t.ipv4Bytes),
    rate(t.ipv6Bytes),
    rate(t.nat64Bytes),
    share(t.ipv6Share),
    share(t.nat64Share),
  ];
}

/** The exact sums, for a careful reader (and the tests), on the row. */
const transitionData = (t: TransitionSums): Record<string, string> => ({
  'data-ipv4-bytes': String(t.ipv4Bytes),
  'data-ipv6-bytes': String(t.ipv6Bytes),
  'data-nat64-bytes': String(t.nat64Bytes),
  'data-unknown-bytes': String(t.unknownBytes),
});

const transitionTraffic = (t: TransitionSums): number => t.ipv4Bytes + t.ipv6Bytes + t.unknownBytes;

function bySize(series: TransitionAnswer['series'], key: (g: Group) => string): TransitionAnswer['series'] {
  return [...series].sort((a, b) => transitionTraffic(b.totals) - transitionTraffic(a.totals) || key(a.group).localeCompare(key(b.group)));
}

/** IPv6 transition per link: IPv4, IPv6 and the NAT64 part of IPv6, in the chart's range. */
export const transitionPanel: Panel = {
  id: 'transition',
  async refresh(ctx) {
    const answer = await getJson<TransitionAnswer>('api/v1/transition', {
      groupBy: 'link',
      from: ctx.from,
      to: 'now',
      step: ctx.stepSeconds,
      provisional: 'true',
    });
    const table = byId<HTMLTableElement>('transition-table');
    if (answer.series.length === 0) {
      fillTable(table, 'No link carried traffic in this range.', [], []);
      return;
    }
    const key = (g: Group): string => String(g['link']);
    fillTable(
      table,
      `IPv4, IPv6 and NAT64 per link (both directions), average over ${rangeWords(ctx.rangeSeconds)}; NAT64 is the part of IPv6 to or from a NAT64 prefix`,
      ['link', ...TRANSITION_HEAD],
      bySize(answer.series, key).map((s) =>
        row([linkLabel(key(s.group), s.group['linkName'] as string | null), ...transitionCells(s.totals, ctx.rangeSeconds)], {
          'data-link': key(s.group),
          ...transitionData(s.totals),
        }),
      ),
    );
    // A record crosses two interfaces: the total counts it once, so it is not the column sum.
    table.append(
      el(
        'tfoot',
        {},
        row(['all traffic (each record once)', ...transitionCells(answer.totals, ctx.rangeSeconds)], transitionData(answer.totals)),
      ),
    );
  },
};

/** The same per site, when a site map is in force (hidden while every site is 'unknown'). */
export const transitionSitesPanel: Panel = {
  id: 'transition-sites',
  async refresh(ctx) {
    const box = byId('transition-sites');
    // 400: a store without site-pair sums.
    const answer = await unlessStatus(
      400,
      getJson<TransitionAnswer>('api/v1/transition', { groupBy: 'site', from: ctx.from, to: 'now', step: ctx.stepSeconds }),
    );
    box.hidden = answer === null || answer.series.every((s) => s.group['site'] === 'unknown');
    if (answer === null || box.hidden) return;
    const key = (g: Group): string => String(g['site']);
    fillTable(
      byId<HTMLTableElement>('transition-sites-table'),
      `IPv4, IPv6 and NAT64 per site (traffic to or from the site), average over ${rangeWords(ctx.rangeSeconds)}`,
      ['site', ...TRANSITION_HEAD],
      bySize(answer.series, key).map((s) =>
        row([key(s.group), ...transitionCells(s.totals, ctx.rangeSeconds)], { 'data-site': key(s.group), ...transitionData(s.totals) }),
      ),
    );
  },
};

const NAT64_LIMIT = 10;

/** The IPv4 services still reached through NAT64 (hidden when the lists are off: 503, or none). */
export const nat64Panel: Panel = {
  id: 'nat64',
  async refresh(ctx) {
    const box = byId('nat64');
    const ask = (limit?: number): Promise<Nat64DestinationsAnswer | null> =>
      unlessStatus(503, getJson<Nat64DestinationsAnswer>('api/v1/transition/nat64-destinations', { from: ctx.from, to: 'now', limit }));
    let answer: Nat64DestinationsAnswer | null;
    try {
      answer = await ask(NAT64_LIMIT);
    } catch (err) {
      // transition.nat64TopN below the page's limit: its own default is at most N.
      if (!(err instanceof ApiError && err.status === 400)) throw err;
      answer = await ask();
    }
    box.hidden = answer === null || answer.destinations.length === 0;
    if (answer === null || box.hidden) return;
    const shown = answer.destinations.slice(0, NAT64_LIMIT);
    fillTable(
      byId<HTMLTableElement>('nat64-table'),
      `The IPv4 addresses most reached through NAT64 in ${rangeWords(ctx.rangeSeconds)} (the services that still need dual-stacking). Approximate: a top ${answer.topN} per bucket; bytes are upper bounds`,
      ['IPv4 address', 'bytes (approximate)', 'average (approximate)', 'at least'],
      shown.map((d) =>
        row(
          [
            d.address,
            `≈ ${bytes(d.bytes)}`,
            `≈ ${bitRate((d.bytes * 8) / ctx.rangeSeconds)}`,
            d.errorBytes > 0 ? bytes(d.bytes - d.errorBytes) : 'exact',
          ],
          {
            'data-address': d.address,
            'data-bytes': String(d.bytes),
          },
        ),
      ),
    );
  },
};

const OUTCOMES = [
  ['agree', 'agree'],
  ['mismatch', 'mismatch'],
  ['unmarked', 'unmarked'],
  ['notExported', 'not exported'],
  ['ipv4', 'IPv4'],
] as const;

/** The marking check: flow records of firefly flows against what the hosts declared (hidden when off or empty). */
export const markingPanel: Panel = {
  id: 'marking',
  async refresh(ctx) {
    const section = byId('marking');
    const answer = await unlessStatus(503, getJson<MarkingAnswer>('api/v1/fireflies/marking'));
    section.hidden = answer === null || answer.rows.length === 0;
    if (answer === null || section.hidden) return;
    const pairName = (community: number, activity: number): string => {
      const c = ctx.communities.find((x) => x.id === community);
      return `${c?.name ?? community} / ${c?.activities.find((a) => a.id === activity)?.name ?? activity}`;
    };
    fillTable(
      byId<HTMLTableElement>('marking-table'),
      `Flow records of firefly flows (same 5-tuple, either direction) since ${clock(answer.sinceMs)}, by how their flow label matched the experiment and activity the host declared; agree share = agree / (agree + mismatch + unmarked)${answer.omittedRows ? `; ${answer.omittedRows} smaller rows left out` : ''}`,
      ['experiment', 'activity', 'sites', ...OUTCOMES.map(([, label]) => label), 'agree share', 'mismatches carried'],
      answer.rows.map((r) =>
        row(
          [
            el('span', {}, swatch(experimentColour(r.community)), r.communityName),
            r.activityName,
            `${r.srcSite} → ${r.dstSite}`,
            ...OUTCOMES.map(([o]) => exact(r.records[o])),
            share(r.agreeShare),
            r.carried.length
              ? el(
                  'ul',
                  { class: 'inline-list' },
                  ...r.carried.map((c) => el('li', {}, `${pairName(c.community, c.activity)}: ${exact(c.records)}`)),
                )
              : '—',
          ],
          { 'data-pair': `${r.community}/${r.activity}`, 'data-sites': `${r.srcSite}>${r.dstSite}` },
        ),
      ),
    );
  },
};

/** Where to point exporters, for the "no data yet" message. */
export function noDataMessage(metrics: string): Node[] {
  const ports = listenerPorts(metrics);
  const where = (listener: string, what: string): string | null =>
    ports.has(listener) ? `${what} to UDP port ${ports.get(listener)}` : null;
  const targets = [
    where('ipfix', 'IPFIX'),
    where('netflow', 'NetFlow v9 / v5'),
    where('sflow', 'sFlow v5'),
    where('firefly', 'SciTags fireflies'),
  ].filter((x) => x !== null);
  const host = location.hostname || 'this host';
  const ipfix = ports.get('ipfix') ?? '4739';
  return [
    el('h2', {}, 'No data yet'),
    el(
      'p',
      {},
      `Nothing has arrived in this time range. Point your exporters at this collector (${host}): ${targets.length ? targets.join(', ') : 'see the listeners in the configuration'}.`,
    ),
    el('p', {}, 'Or replay a capture: ', el('code', {}, `npx scitags-collector replay FILE.pcap --to ${host}:${ipfix}`)),
  ];
}
