/**
 * Runs Grafana dashboards' InfluxQL the way Grafana would, without Grafana: every panel's raw
 * InfluxQL targets and every query template variable are interpolated (template variables,
 * `$timeFilter`, `$__interval`, `$__interval_ms`, `${__range_s}`...) and sent to an InfluxDB
 * `/query` endpoint; the answers come back as plain series for tests to assert on.
 *
 * The interpolation follows Grafana's InfluxDB datasource:
 * - `$timeFilter` is `time >= <from>ms and time <= <to>ms` (the browser-side datasource) or
 *   `time > <from>ms and time < <to>ms` (`timeFilterStyle: 'backend'`);
 * - `$__interval` is Grafana's `secondsToHms` text of the interval and `$__interval_ms` the
 *   number; the interval is either given or computed like Grafana's `calculateInterval`
 *   (range / maxDataPoints rounded to Grafana's table, raised to the panel's or datasource's
 *   minimum interval);
 * - `${var:regex}` is the regex-escaped value, `(a|b)` for several, the raw `allValue` for a
 *   custom All value; `${var:text}` the display text of a single value (a custom variable's
 *   `text : value` option); a panel with `repeat` is run once per value of its variable;
 * - a panel's minimum interval may be a variable (`$policy`), replaced by its value as Grafana
 *   does before computing `$__interval`;
 * - a `datasource` variable only picks the datasource (the runner has one InfluxDB); a
 *   `custom` variable's options come from its `text : value` list, its default is `current`.
 * Only what the dashboards use is supported; anything else left in a query (a plain `$var`, a
 * typo, an unknown macro) throws, so a query Grafana could not run fails the test.
 *
 * Variable queries are parsed like Grafana's InfluxDB `ResponseParser`: the second column of
 * each row when there is one (SHOW TAG VALUES gives key, value), else the first; values are
 * de-duplicated, filtered by the variable's `regex` and sorted per its `sort`.
 */

// ---------------------------------------------------------------------------------------
// Dashboard JSON (only the parts the runner reads)
// ---------------------------------------------------------------------------------------

export interface DatasourceRef {
  type?: string;
  uid?: string;
}

export interface TargetJson {
  refId: string;
  datasource?: DatasourceRef;
  rawQuery?: boolean;
  query?: string;
  alias?: string;
  resultFormat?: string;
  hide?: boolean;
}

export interface PanelJson {
  id: number;
  type: string;
  title: string;
  datasource?: DatasourceRef;
  interval?: string;
  repeat?: string;
  targets?: TargetJson[];
  panels?: PanelJson[];
  fieldConfig?: { defaults?: { unit?: string } };
}

export interface VariableJson {
  type: string;
  name: string;
  query?: string | { query?: string };
  current?: { text?: string | string[]; value?: string | string[] };
  datasource?: DatasourceRef;
  multi?: boolean;
  includeAll?: boolean;
  allValue?: string | null;
  regex?: string;
  sort?: number;
}

export interface DashboardJson {
  uid: string;
  title: string;
  panels: PanelJson[];
  templating?: { list: VariableJson[] };
}

// ---------------------------------------------------------------------------------------
// InfluxDB answers
// ---------------------------------------------------------------------------------------

export interface InfluxSeries {
  name: string;
  tags?: Record<string, string>;
  columns: string[];
  values: unknown[][];
}

/** Runs one InfluxQL statement (GET /query, epoch=ms like Grafana); throws on any error. */
export async function influxQuery(url: string, database: string, query: string): Promise<InfluxSeries[]> {
  const params = new URLSearchParams({ db: database, q: query, epoch: 'ms' });
  const res = await fetch(`${url}/query?${params.toString()}`);
  const body = (await res.json()) as { error?: string; results?: { error?: string; series?: InfluxSeries[] }[] };
  if (!res.ok || body.error) throw new Error(`InfluxDB ${res.status} ${body.error ?? ''} for: ${query}`);
  const results = body.results ?? [];
  if (results.length !== 1) throw new Error(`expected one statement result, got ${results.length} for: ${query}`);
  const first = results[0]!;
  if (first.error) throw new Error(`InfluxDB error "${first.error}" for: ${query}`);
  return first.series ?? [];
}

// ---------------------------------------------------------------------------------------
// Grafana's interval arithmetic
// ---------------------------------------------------------------------------------------

/** Grafana's `rangeUtil.roundInterval` (ms). */
export function roundInterval(interval: number): number {
  const table: [number, number][] = [
    [15, 10],
    [35, 20],
    [75, 50],
    [150, 100],
    [350, 200],
    [750, 500],
    [1500, 1000],
    [3500, 2000],
    [7500, 5000],
    [12500, 10000],
    [17500, 15000],
    [25000, 20000],
    [45000, 30000],
    [90000, 60000],
    [210000, 120000],
    [450000, 300000],
    [750000, 600000],
    [1050000, 900000],
    [1500000, 1200000],
    [2700000, 1800000],
    [5400000, 3600000],
    [9000000, 7200000],
    [16200000, 10800000],
    [32400000, 21600000],
    [86400000, 43200000],
    [604800000, 86400000],
    [1814400000, 604800000],
    [3628800000, 2592000000],
  ];
  for (const [below, value] of table) if (interval < below) return value;
  return 31536000000;
}

/** Grafana's `rangeUtil.secondsToHms`: the text `$__interval` is replaced with. */
export function secondsToHms(seconds: number): string {
  const years = Math.floor(seconds / 31536000);
  if (years) return `${years}y`;
  const days = Math.floor((seconds % 31536000) / 86400);
  if (days) return `${days}d`;
  const hours = Math.floor(((seconds % 31536000) % 86400) / 3600);
  if (hours) return `${hours}h`;
  const minutes = Math.floor((((seconds % 31536000) % 86400) % 3600) / 60);
  if (minutes) return `${minutes}m`;
  const secs = Math.floor((((seconds % 31536000) % 86400) % 3600) % 60);
  if (secs) return `${secs}s`;
  const ms = Math.floor(seconds * 1000);
  if (ms) return `${ms}ms`;
  return 'less than a millisecond';
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000, y: 31_536_000_000 };

/** Parses Grafana interval text ("1m", "60s", ">1m" as a panel minimum) into ms. */
export function parseIntervalMs(text: string): number {
  const m = /^>?(\d+)(ms|s|m|h|d|w|y)$/.exec(text.trim());
  if (!m) throw new Error(`not a Grafana interval: ${JSON.stringify(text)}`);
  return Number(m[1]) * UNIT_MS[m[2]!]!;
}

/** Grafana's `rangeUtil.calculateInterval`: range / resolution, rounded, raised to the minimum. */
export function grafanaInterval(rangeMs: number, maxDataPoints: number, minIntervalMs = 0): number {
  return Math.max(roundInterval(rangeMs / maxDataPoints), minIntervalMs);
}

// ---------------------------------------------------------------------------------------
// Interpolation
// ---------------------------------------------------------------------------------------

/** Grafana's `escapeRegex` (used by the `:regex` format). */
export function regexEscape(value: string): string {
  return value.replace(/[\\^$*+?.()|[\]{}/]/g, '\\$&');
}

/** A variable's value for interpolation: the selected values, or All. */
export type Selection = string[] | 'all';

export interface InterpolationContext {
  fromMs: number;
  toMs: number;
  intervalMs: number;
  timeFilterStyle?: 'frontend' | 'backend';
  /** The dashboard's variables (for includeAll / allValue / multi). */
  variables: VariableJson[];
  /** Current value of each variable. */
  selection: Record<string, Selection>;
  /** All options of each variable (expands All when the variable has no custom allValue). */
  options: Record<string, string[]>;
  /** Display text of each option value, for variables whose text differs (custom `text : value`). */
  texts?: Record<string, Record<string, string>>;
}

function formatRegexVariable(name: string, ctx: InterpolationContext): string {
  const variable = ctx.variables.find((v) => v.name === name);
  if (!variable) throw new Error(`query uses undefined variable $${name}`);
  const sel = ctx.selection[name];
  if (sel === undefined) throw new Error(`no value for variable $${name}`);
  let values: string[];
  if (sel === 'all') {
    if (!variable.includeAll) throw new Error(`variable $${name} has no All option`);
    // A custom all value is inserted as it is, without formatting (Grafana's templateSrv).
    if (variable.allValue) return variable.allValue;
    values = ctx.options[name] ?? [];
  } else {
    values = sel;
  }
  if (values.length === 0) throw new Error(`variable $${name} has no value`);
  if (values.length > 1 && !variable.multi && sel !== 'all') throw new Error(`variable $${name} is not multi-value`);
  const escaped = values.map(regexEscape);
  return escaped.length === 1 ? escaped[0]! : `(${escaped.join('|')})`;
}

/** `${name:text}`: the text of the one selected value (Grafana joins several with ' + '). */
function formatTextVariable(name: string, ctx: InterpolationContext): string {
  const sel = ctx.selection[name];
  if (sel === undefined) throw new Error(`no value for variable $${name}`);
  if (sel === 'all' || sel.length !== 1) throw new Error(`\${${name}:text} needs exactly one selected value`);
  return ctx.texts?.[name]?.[sel[0]!] ?? sel[0]!;
}

/** Interpolates one raw InfluxQL query; throws on anything it cannot interpolate. */
export function interpolateQuery(query: string, ctx: InterpolationContext): string {
  const intervalText = secondsToHms(ctx.intervalMs / 1000);
  if (parseIntervalMs(intervalText) !== ctx.intervalMs) {
    throw new Error(`interval ${ctx.intervalMs} ms is not one Grafana produces ($__interval would be ${intervalText})`);
  }
  const timeFilter =
    ctx.timeFilterStyle === 'backend'
      ? `time > ${ctx.fromMs}ms and time < ${ctx.toMs}ms`
      : `time >= ${ctx.fromMs}ms and time <= ${ctx.toMs}ms`;
  const rangeMs = ctx.toMs - ctx.fromMs;
  const builtins: Record<string, string> = {
    timeFilter,
    __interval: intervalText,
    __interval_ms: String(ctx.intervalMs),
    __range: secondsToHms(Math.round(rangeMs / 1000)),
    __range_s: String(Math.round(rangeMs / 1000)),
    __range_ms: String(rangeMs),
    __from: String(ctx.fromMs),
    __to: String(ctx.toMs),
  };
  // ${name}, ${name:format}, $name (longest identifier), [[name]]
  const out = query.replace(
    /\$\{([A-Za-z_]\w*)(?::(\w+))?\}|\$([A-Za-z_]\w*)|\[\[([A-Za-z_]\w*)\]\]/g,
    (whole, braced?: string, format?: string, bare?: string, bracketed?: string) => {
      const name = braced ?? bare ?? bracketed!;
      if (name in builtins) {
        if (format) throw new Error(`format :${format} on built-in ${whole}`);
        return builtins[name]!;
      }
      if (format === 'regex') return formatRegexVariable(name, ctx);
      if (format === 'text') return formatTextVariable(name, ctx);
      // Plain $var has version-dependent escaping in Grafana's InfluxDB datasource: the
      // dashboards always say which format they want.
      throw new Error(`unsupported ${whole} in query (use \${${name}:regex} inside /.../): ${query}`);
    },
  );
  return out;
}

// ---------------------------------------------------------------------------------------
// Dashboard walking
// ---------------------------------------------------------------------------------------

/** Every panel, including those nested in (collapsed) rows. */
export function allPanels(dashboard: DashboardJson): PanelJson[] {
  const out: PanelJson[] = [];
  const walk = (panels: PanelJson[] | undefined): void => {
    for (const p of panels ?? []) {
      out.push(p);
      walk(p.panels);
    }
  };
  walk(dashboard.panels);
  return out;
}

export interface PanelTarget {
  panel: PanelJson;
  target: TargetJson;
}

/** Every visible raw InfluxQL target of every panel; a non-raw target throws (untestable). */
export function panelTargets(dashboard: DashboardJson): PanelTarget[] {
  const out: PanelTarget[] = [];
  for (const panel of allPanels(dashboard)) {
    for (const target of panel.targets ?? []) {
      if (target.hide) continue;
      if (!target.rawQuery || typeof target.query !== 'string') {
        throw new Error(`${dashboard.uid} panel ${panel.id} target ${target.refId} is not a raw InfluxQL query`);
      }
      out.push({ panel, target });
    }
  }
  return out;
}

export function variableQuery(v: VariableJson): string {
  const q = typeof v.query === 'string' ? v.query : v.query?.query;
  if (!q) throw new Error(`variable ${v.name} has no query`);
  return q;
}

/** Grafana's InfluxDB ResponseParser for variable queries. */
export function parseVariableValues(query: string, series: InfluxSeries[]): string[] {
  const lower = query.toLowerCase();
  const valueFirst = lower.includes('show field keys') || lower.includes('show retention policies');
  const seen = new Set<string>();
  for (const s of series) {
    for (const row of s.values) {
      const v = valueFirst ? row[0] : row[1] !== undefined ? row[1] : row[0];
      seen.add(String(v));
    }
  }
  return [...seen];
}

function regexFromGrafana(text: string): RegExp {
  const m = /^\/(.*)\/([gimsuy]*)$/.exec(text);
  return m ? new RegExp(m[1]!, m[2]) : new RegExp(text);
}

function sortValues(values: string[], sort: number | undefined): string[] {
  const copy = [...values];
  switch (sort ?? 0) {
    case 0:
      return copy;
    case 1:
      return copy.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    case 2:
      return copy.sort((a, b) => (a < b ? 1 : a > b ? -1 : 0));
    case 3:
      return copy.sort((a, b) => Number(/\d+/.exec(a)?.[0] ?? 0) - Number(/\d+/.exec(b)?.[0] ?? 0));
    case 4:
      return copy.sort((a, b) => Number(/\d+/.exec(b)?.[0] ?? 0) - Number(/\d+/.exec(a)?.[0] ?? 0));
    case 5:
      return copy.sort((a, b) => a.toLowerCase().localeCompare(b.toLowerCase()));
    case 6:
      return copy.sort((a, b) => b.toLowerCase().localeCompare(a.toLowerCase()));
    default:
      throw new Error(`unsupported variable sort ${sort}`);
  }
}

export interface RunOptions {
  /** InfluxDB base URL, e.g. http://127.0.0.1:8086 */
  url: string;
  database: string;
  fromMs: number;
  toMs: number;
  /** Fixed interval for every panel; otherwise computed per panel like Grafana. */
  intervalMs?: number;
  /** Used when intervalMs is absent: the panel width in points (Grafana's maxDataPoints). */
  maxDataPoints?: number;
  /** The datasource's minimum interval (jsonData.timeInterval). */
  datasourceMinIntervalMs?: number;
  timeFilterStyle?: 'frontend' | 'backend';
  /** Variable values chosen by the user; unset ones default like Grafana (All, or the first value). */
  selection?: Record<string, Selection>;
}

export interface ResolvedVariables {
  /** Interpolated query of each query variable. */
  queries: Record<string, string>;
  options: Record<string, string[]>;
  selection: Record<string, Selection>;
  /** Option texts of custom variables (value -> text). */
  texts: Record<string, Record<string, string>>;
}

/** Grafana's custom variable list: comma-separated options, each `value` or `text : value`. */
export function customOptions(v: VariableJson): { text: string; value: string }[] {
  return variableQuery(v)
    .split(',')
    .map((o) => {
      const [text, value] = o.split(' : ').map((x) => x.trim());
      return { text: text!, value: value ?? text! };
    });
}

/** Runs the dashboard's query variables in order (later ones may use earlier ones). */
export async function resolveVariables(dashboard: DashboardJson, opts: RunOptions): Promise<ResolvedVariables> {
  const variables = dashboard.templating?.list ?? [];
  const resolved: ResolvedVariables = { queries: {}, options: {}, selection: {}, texts: {} };
  for (const v of variables) {
    if (v.type === 'datasource') continue; // one InfluxDB here; the references are checked statically
    if (v.type === 'custom') {
      const opts2 = customOptions(v);
      resolved.options[v.name] = opts2.map((o) => o.value);
      resolved.texts[v.name] = Object.fromEntries(opts2.map((o) => [o.value, o.text]));
      const current = v.current?.value;
      resolved.selection[v.name] =
        opts.selection?.[v.name] ?? (current === undefined ? [opts2[0]!.value] : Array.isArray(current) ? current : [current]);
      continue;
    }
    if (v.type !== 'query') throw new Error(`${dashboard.uid}: variable ${v.name} of type ${v.type} is not supported by the runner`);
    const query = interpolateQuery(variableQuery(v), {
      fromMs: opts.fromMs,
      toMs: opts.toMs,
      intervalMs: opts.intervalMs ?? 60_000,
      variables,
      selection: resolved.selection,
      options: resolved.options,
      texts: resolved.texts,
      ...(opts.timeFilterStyle ? { timeFilterStyle: opts.timeFilterStyle } : {}),
    });
    let values = parseVariableValues(query, await influxQuery(opts.url, opts.database, query));
    if (v.regex) {
      const re = regexFromGrafana(v.regex);
      values = values.filter((x) => re.test(x));
    }
    values = sortValues(values, v.sort);
    resolved.queries[v.name] = query;
    resolved.options[v.name] = values;
    const chosen = opts.selection?.[v.name];
    if (chosen !== undefined) resolved.selection[v.name] = chosen;
    else if (v.includeAll) resolved.selection[v.name] = 'all';
    else resolved.selection[v.name] = values.length > 0 ? [values[0]!] : [];
  }
  return resolved;
}

export interface TargetRun {
  panelId: number;
  panelTitle: string;
  /** The value of the repeat variable for a repeated panel. */
  repeatValue?: string;
  refId: string;
  alias: string;
  intervalMs: number;
  query: string;
  series: InfluxSeries[];
}

export interface DashboardRun {
  variables: ResolvedVariables;
  targets: TargetRun[];
}

/** A panel's minimum interval text with a `$var` / `${var}` replaced by the variable's value. */
export function panelMinInterval(panel: PanelJson, selection: Record<string, Selection>): string | undefined {
  if (!panel.interval) return undefined;
  return panel.interval.replace(/\$\{(\w+)\}|\$(\w+)/g, (whole, braced?: string, bare?: string) => {
    const sel = selection[(braced ?? bare)!];
    if (sel === undefined || sel === 'all' || sel.length !== 1)
      throw new Error(`panel ${panel.id} interval ${whole}: needs one selected value`);
    return sel[0]!;
  });
}

function panelIntervalMs(panel: PanelJson, opts: RunOptions, selection: Record<string, Selection>): number {
  if (opts.intervalMs !== undefined) return opts.intervalMs;
  const minText = panelMinInterval(panel, selection);
  const min = Math.max(minText ? parseIntervalMs(minText) : 0, opts.datasourceMinIntervalMs ?? 0);
  return grafanaInterval(opts.toMs - opts.fromMs, opts.maxDataPoints ?? 1000, min);
}

/** Resolves the variables, then runs every panel target (each repeat of a repeated panel). */
export async function runDashboard(dashboard: DashboardJson, opts: RunOptions): Promise<DashboardRun> {
  const variables = await resolveVariables(dashboard, opts);
  const list = dashboard.templating?.list ?? [];
  const targets: TargetRun[] = [];
  for (const { panel, target } of panelTargets(dashboard)) {
    const repeats: (string | undefined)[] = [undefined];
    if (panel.repeat) {
      const sel = variables.selection[panel.repeat];
      if (sel === undefined) throw new Error(`panel ${panel.id} repeats on undefined variable ${panel.repeat}`);
      repeats.splice(0, 1, ...(sel === 'all' ? (variables.options[panel.repeat] ?? []) : sel));
    }
    for (const repeatValue of repeats) {
      const selection = { ...variables.selection };
      if (repeatValue !== undefined && panel.repeat) selection[panel.repeat] = [repeatValue];
      const intervalMs = panelIntervalMs(panel, opts, selection);
      const query = interpolateQuery(target.query!, {
        fromMs: opts.fromMs,
        toMs: opts.toMs,
        intervalMs,
        variables: list,
        selection,
        options: variables.options,
        texts: variables.texts,
        ...(opts.timeFilterStyle ? { timeFilterStyle: opts.timeFilterStyle } : {}),
      });
      const series = await influxQuery(opts.url, opts.database, query);
      targets.push({
        panelId: panel.id,
        panelTitle: panel.title,
        ...(repeatValue !== undefined ? { repeatValue } : {}),
        refId: target.refId,
        alias: target.alias ?? '',
        intervalMs,
        query,
        series,
      });
    }
  }
  return { variables, targets };
}

// ---------------------------------------------------------------------------------------
// Helpers for assertions
// ---------------------------------------------------------------------------------------

/** Grafana's alias: `$tag_x` from the series tags, `$m` the measurement, `$col` the column. */
export function seriesName(alias: string, s: InfluxSeries, column: string): string {
  if (!alias)
    return `${s.name}.${column}${
      s.tags
        ? ` {${Object.entries(s.tags)
            .map(([k, v]) => `${k}: ${v}`)
            .join(', ')}}`
        : ''
    }`;
  return alias.replace(/\$tag_(\w+)|\$(measurement|m|col)\b/g, (_w, tag?: string, other?: string) => {
    if (tag) return s.tags?.[tag] ?? '';
    return other === 'col' ? column : s.name;
  });
}

/**
 * A time_series target as { seriesName: { timeMs: value } } (value column = the one after
 * time; null values are kept as null so fill(none)/fill(0) differences are visible).
 */
export function timeSeriesByName(run: TargetRun): Record<string, Record<number, number | null>> {
  const out: Record<string, Record<number, number | null>> = {};
  for (const s of run.series) {
    if (s.columns[0] !== 'time' || s.columns.length !== 2)
      throw new Error(`${run.panelTitle} ${run.refId}: not a single-value time series: ${s.columns.join(',')}`);
    const name = seriesName(run.alias, s, s.columns[1]!);
    if (out[name]) throw new Error(`${run.panelTitle} ${run.refId}: two series named ${name}`);
    const points: Record<number, number | null> = {};
    for (const row of s.values) points[Number(row[0])] = row[1] === null ? null : Number(row[1]);
    out[name] = points;
  }
  return out;
}

/**
 * A `timeSeriesByName` answer without its zero and null points: fill(0) adds zero points for
 * empty intervals, so tests compare the non-zero points with what the data holds (every
 * zero is an empty interval) and check the filled intervals apart.
 */
export function nonZero(series: Record<string, Record<number, number | null>>): Record<string, Record<number, number>> {
  const out: Record<string, Record<number, number>> = {};
  for (const [n, pts] of Object.entries(series)) {
    for (const [t, v] of Object.entries(pts)) if (v !== 0 && v !== null) (out[n] ??= {})[Number(t)] = v;
  }
  return out;
}

/** A table target as rows of { column: value } (tags of grouped series included). */
export function tableRows(run: TargetRun): Record<string, unknown>[] {
  const rows: Record<string, unknown>[] = [];
  for (const s of run.series) {
    for (const row of s.values) {
      const r: Record<string, unknown> = { ...(s.tags ?? {}) };
      s.columns.forEach((c, i) => {
        r[c] = row[i];
      });
      rows.push(r);
    }
  }
  return rows;
}

// ---------------------------------------------------------------------------------------
// Writing test points (line protocol, second precision, integer fields)
// ---------------------------------------------------------------------------------------

export interface Point {
  measurement: string;
  tags: Record<string, string>;
  /** Integer fields (written with the `i` suffix, as the collector writes them). */
  fields: Record<string, number>;
  /** Bucket start, seconds since the epoch. */
  time: number;
}

const escapeKey = (s: string): string => s.replace(/[,= \\]/g, '\\$&');

export function toLineProtocol(p: Point): string {
  const tags = Object.keys(p.tags)
    .sort()
    .map((k) => `,${escapeKey(k)}=${escapeKey(p.tags[k]!)}`)
    .join('');
  const fields = Object.entries(p.fields)
    .map(([k, v]) => {
      if (!Number.isSafeInteger(v)) throw new Error(`field ${k}=${v} is not an integer`);
      return `${escapeKey(k)}=${v}i`;
    })
    .join(',');
  return `${p.measurement.replace(/[, \\]/g, '\\$&')}${tags} ${fields} ${p.time}`;
}

/** Writes points with second precision in batches; throws unless InfluxDB answers 204. */
export async function writePoints(url: string, database: string, points: Point[]): Promise<void> {
  for (let i = 0; i < points.length; i += 5000) {
    const body = points
      .slice(i, i + 5000)
      .map(toLineProtocol)
      .join('\n');
    const res = await fetch(`${url}/write?db=${encodeURIComponent(database)}&precision=s`, { method: 'POST', body });
    if (res.status !== 204) throw new Error(`write failed: ${res.status} ${await res.text()}`);
  }
}

/**
 * A copy of the dashboard with `mutate` applied to every panel query, and how many queries
 * it changed (tests that a broken query is caught first check that the mutation applies).
 */
export function mutateQueries(dashboard: DashboardJson, mutate: (query: string) => string): { dashboard: DashboardJson; changed: number } {
  const copy = JSON.parse(JSON.stringify(dashboard)) as DashboardJson;
  let changed = 0;
  for (const p of copy.panels) {
    for (const t of p.targets ?? []) {
      const q = mutate(t.query!);
      if (q !== t.query) changed++;
      t.query = q;
    }
  }
  return { dashboard: copy, changed };
}
