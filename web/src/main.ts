import './style.css';
import { ApiError, getJson, setToken, token } from './api.js';
import { TrafficChart, type ChartSeries } from './chart.js';
import { byId, el } from './dom.js';
import { bytes } from './format.js';
import { activityColour, CLASS_COLOURS, experimentColour } from './palette.js';
import {
  exportersPanel,
  firefliesPanel,
  healthPanel,
  lastMetrics,
  linksPanel,
  markingPanel,
  nat64Panel,
  noDataMessage,
  type Panel,
  type PanelContext,
  transitionPanel,
  transitionSitesPanel,
} from './panels.js';
import type { Experiments, Group, TrafficAnswer } from './types.js';

/** Time-range presets: label, seconds, the API's `from`. */
const RANGES = [
  { label: '15 min', seconds: 900 },
  { label: '1 h', seconds: 3600 },
  { label: '6 h', seconds: 21600 },
  { label: '24 h', seconds: 86400 },
  { label: '7 d', seconds: 604800 },
] as const;
const REFRESH_MS = 10_000;
/** Points per chart the page asks for (the step grows with the range). */
const TARGET_POINTS = 240;

/** The view, kept in the URL's fragment so a view can be shared or bookmarked. */
interface State {
  range: number;
  experiment: number | null;
  link: string | null;
  linkLabel: string | null;
}

function readState(): State {
  const p = new URLSearchParams(location.hash.slice(1));
  const range = Number(p.get('range'));
  const exp = p.get('experiment');
  return {
    range: RANGES.some((r) => r.seconds === range) ? range : 3600,
    experiment: exp !== null && /^\d+$/.test(exp) ? Number(exp) : null,
    link: p.get('link'),
    linkLabel: p.get('linkLabel'),
  };
}

let state = readState();
let bucketSeconds: number | undefined;
let communities: Experiments['communities'] = [];
const chart = new TrafficChart();
/** Hidden while the collector has nothing for them (the capability off, or no data). */
const OPTIONAL_PANELS: Panel[] = [transitionSitesPanel, nat64Panel, firefliesPanel, markingPanel];
const PANELS: Panel[] = [linksPanel, transitionPanel, exportersPanel, healthPanel, ...OPTIONAL_PANELS];

function writeState(next: Partial<State>): void {
  state = { ...state, ...next };
  const p = new URLSearchParams();
  p.set('range', String(state.range));
  if (state.experiment !== null) p.set('experiment', String(state.experiment));
  if (state.link !== null) p.set('link', state.link);
  if (state.linkLabel !== null) p.set('linkLabel', state.linkLabel);
  history.replaceState(null, '', `#${p.toString()}`);
  void refresh();
}

/** A step that is a multiple of the bucket width and gives about TARGET_POINTS points. */
function stepFor(rangeSeconds: number): number | undefined {
  if (bucketSeconds === undefined) return undefined;
  return bucketSeconds * Math.max(1, Math.ceil(rangeSeconds / bucketSeconds / TARGET_POINTS));
}

function experimentName(id: number): string {
  return communities.find((c) => c.id === id)?.name ?? String(id);
}

function seriesLook(group: Group): { key: string; label: string; colour: string; community: number | null } {
  const cls = String(group['class'] ?? 'scitags');
  if (UNMARKED_LABELS[cls]) return { key: cls, label: UNMARKED_LABELS[cls], colour: CLASS_COLOURS[cls] ?? '#777', community: null };
  if (state.experiment !== null) {
    const a = group['activity'];
    const name = String(group['activityName'] ?? a ?? 'unregistered');
    return {
      key: `activity:${a ?? 'unregistered'}`,
      label: name,
      colour: typeof a === 'number' ? activityColour(a) : CLASS_COLOURS['unregistered']!,
      community: null,
    };
  }
  const c = group['community'];
  const name = String(group['communityName'] ?? c ?? 'unregistered');
  return typeof c === 'number'
    ? { key: `community:${c}`, label: name, colour: experimentColour(c), community: c }
    : { key: 'unregistered', label: 'unregistered', colour: CLASS_COLOURS['unregistered']!, community: null };
}

const UNMARKED_LABELS: Record<string, string> = { ipv6_unmarked: 'IPv6 unmarked', ipv4: 'IPv4', unknown: 'unknown' };

async function refreshTraffic(from: string): Promise<TrafficAnswer> {
  const answer = await getJson<TrafficAnswer>('api/v1/traffic', {
    from,
    to: 'now',
    step: stepFor(state.range),
    groupBy: state.experiment === null ? 'community' : 'activity',
    community: state.experiment ?? undefined,
    link: state.link ?? undefined,
    provisional: 'true',
  });
  if (bucketSeconds === undefined || bucketSeconds !== answer.bucketSeconds) {
    bucketSeconds = answer.bucketSeconds;
    // The first answer used the server's default step; ask again with the page's own.
    if (stepFor(state.range) !== answer.stepSeconds) return refreshTraffic(from);
  }
  const stepMs = answer.stepSeconds * 1000;
  const times: number[] = [];
  for (let t = answer.fromMs - (answer.fromMs % stepMs); t < answer.toMs; t += stepMs) times.push(t / 1000);
  const index = new Map(times.map((t, i) => [t * 1000, i]));
  let provisionalFrom: number | null = null;
  const series: ChartSeries[] = answer.series.map((s) => {
    const look = seriesLook(s.group);
    const bps = times.map(() => 0);
    const pps = times.map(() => 0);
    for (const p of s.points) {
      const i = index.get(p.timeMs);
      if (i === undefined) continue;
      bps[i] = p.bitsPerSecond;
      pps[i] = p.packetsPerSecond;
      if (p.provisional && (provisionalFrom === null || p.timeMs / 1000 < provisionalFrom)) provisionalFrom = p.timeMs / 1000;
    }
    const community = look.community;
    return {
      key: look.key,
      label: look.label,
      colour: look.colour,
      bitsPerSecond: bps,
      packetsPerSecond: pps,
      totals: s.totals,
      ...(community !== null
        ? { action: { label: `Split ${look.label} by activity`, run: () => writeState({ experiment: community }) } }
        : {}),
    };
  });
  const what = state.experiment === null ? 'Traffic by experiment' : `${experimentName(state.experiment)} by activity`;
  const title = `${what}${(state.linkLabel ?? state.link) ? ` on ${state.linkLabel ?? state.link}` : ''}, last ${RANGES.find((r) => r.seconds === state.range)?.label}`;
  byId('traffic-title').textContent = title;
  chart.render({ times, stepSeconds: answer.stepSeconds, series, provisionalFrom }, title);
  const note = byId('traffic-note');
  note.textContent =
    `${bytes(answer.totals.bytes)} in ${answer.series.length} series (${answer.stepSeconds} s steps)` +
    (answer.omittedGroups ? `, ${answer.omittedGroups} smaller series left out` : '') +
    (provisionalFrom !== null
      ? `; from ${new Date(provisionalFrom * 1000).toLocaleTimeString()} provisional: the bucket is still open and will grow`
      : '');
  return answer;
}

function renderControls(): void {
  const ranges = byId('ranges');
  ranges.replaceChildren(
    ...RANGES.map((r) => {
      const b = el('button', { type: 'button', 'aria-pressed': String(r.seconds === state.range) }, r.label);
      b.addEventListener('click', () => writeState({ range: r.seconds }));
      return b;
    }),
  );
  const split = byId<HTMLSelectElement>('split');
  split.replaceChildren(
    el('option', { value: '' }, 'all experiments'),
    ...communities.map((c) => el('option', { value: String(c.id), ...(state.experiment === c.id ? { selected: '' } : {}) }, c.name)),
  );
  split.value = state.experiment === null ? '' : String(state.experiment);
  const clear = byId<HTMLButtonElement>('clear-link');
  clear.hidden = state.link === null;
  clear.textContent = `Show all links (now: ${state.linkLabel ?? state.link ?? ''})`;
}

function showAlerts(errors: unknown[]): void {
  const alerts = byId('alerts');
  const unauthorised = errors.some((e) => e instanceof ApiError && e.status === 401);
  byId('token-form').hidden = !unauthorised;
  // One line per distinct failure (the chart and the links panel may both fail on api/v1/traffic).
  const messages = [...new Set(errors.map((e) => (e instanceof Error ? e.message : String(e))))];
  alerts.replaceChildren(...messages.map((m) => el('p', { class: 'error' }, m)));
}

let running: Promise<void> | undefined;

async function refreshAll(): Promise<void> {
  const from = `now-${state.range}s`;
  const errors: unknown[] = [];
  try {
    if (communities.length === 0) communities = (await getJson<Experiments>('api/v1/experiments')).communities;
  } catch (err) {
    errors.push(err);
  }
  renderControls();
  let traffic: TrafficAnswer | undefined;
  try {
    traffic = await refreshTraffic(from);
  } catch (err) {
    errors.push(err);
    byId('traffic-note').textContent = 'Not refreshed (see the error above): the chart still shows the previous answer.';
  }
  const ctx: PanelContext = {
    from,
    stepSeconds: stepFor(state.range) ?? 60,
    rangeSeconds: state.range,
    selectedLink: state.link,
    selectLink: (link, label) => writeState({ link, linkLabel: label }),
    communities,
  };
  const results = await Promise.allSettled(PANELS.map((p) => p.refresh(ctx)));
  for (const r of results) if (r.status === 'rejected') errors.push(r.reason);
  const empty = byId('empty');
  empty.hidden = !(traffic && traffic.series.length === 0 && state.link === null && state.experiment === null);
  if (!empty.hidden) empty.replaceChildren(...noDataMessage(lastMetrics));
  document.body.dataset['state'] = errors.length ? 'error' : traffic && traffic.series.length === 0 ? 'empty' : 'ready';
  showAlerts(errors);
}

function refresh(): Promise<void> {
  // One refresh at a time; a request while one runs waits for it and runs once more.
  running = (running ?? Promise.resolve()).then(refreshAll, refreshAll);
  return running;
}

function start(): void {
  byId<HTMLSelectElement>('split').addEventListener('change', (e) => {
    const v = (e.target as HTMLSelectElement).value;
    writeState({ experiment: v === '' ? null : Number(v) });
  });
  byId('clear-link').addEventListener('click', () => writeState({ link: null, linkLabel: null }));
  byId('refresh').addEventListener('click', () => void refresh());
  byId<HTMLFormElement>('token-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const value = byId<HTMLInputElement>('token').value.trim();
    setToken(value === '' ? null : value);
    void refresh();
  });
  if (token() !== null) byId<HTMLInputElement>('token').value = '';
  setInterval(() => {
    if (byId<HTMLInputElement>('auto').checked && document.visibilityState === 'visible') void refresh();
  }, REFRESH_MS);
  window.addEventListener('hashchange', () => {
    state = readState();
    void refresh();
  });
  void refresh();
}

start();
