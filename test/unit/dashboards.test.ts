import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Dashboard, DashboardLinkType, Panel, VariableType } from '@grafana/schema';
import { describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import healthJson from '../../dashboards/collector-health.json' with { type: 'json' };
import firefliesJson from '../../dashboards/scitags-fireflies.json' with { type: 'json' };
import transitionJson from '../../dashboards/ipv6-transition.json' with { type: 'json' };
import linkDetailJson from '../../dashboards/link-detail.json' with { type: 'json' };
import overviewJson from '../../dashboards/scitags-overview.json' with { type: 'json' };
import prometheusJson from '../../dashboards/scitags-prometheus.json' with { type: 'json' };
import { defaultConfig } from '../../src/config/index.js';
import { createMetrics } from '../../src/metrics/index.js';
import { DEFAULT_SETUP } from '../../src/store/influx/setup.js';
import {
  allPanels,
  customOptions,
  interpolateQuery,
  panelTargets,
  parseIntervalMs,
  variableQuery,
  type DashboardJson,
  type PanelJson,
  type VariableJson,
} from '../support/dashboards.js';
import { promtool, promtoolAvailable } from '../support/promtool.js';

/**
 * Static checks of dashboards/: provisioning, uids, datasource references, units,
 * variables, and that every query is one the runner (and so Grafana) can interpolate. What
 * the queries return is tested against a real InfluxDB in test/integration/dashboards.test.ts.
 */

// Compile-time: each dashboard has the shape of @grafana/schema's Dashboard (JSON imports
// widen string unions to string, so compare with the union types widened, and check the
// union-typed values at run time against lists the compiler checks against the schema).
type Widen<T> = T extends string
  ? string
  : T extends number
    ? number
    : T extends boolean
      ? boolean
      : T extends readonly (infer U)[]
        ? Widen<U>[]
        : T extends object
          ? { [K in keyof T]: Widen<T[K]> }
          : T;
const TYPED: Widen<Dashboard>[] = [overviewJson, linkDetailJson, healthJson, firefliesJson, transitionJson];
const TYPED_PROMETHEUS: Widen<Dashboard> = prometheusJson;
const VARIABLE_TYPES: readonly VariableType[] = ['query', 'custom', 'datasource'];
const REPEAT_DIRECTIONS: readonly NonNullable<Panel['repeatDirection']>[] = ['h', 'v'];
const LINK_TYPES: readonly DashboardLinkType[] = ['dashboards', 'link'];

const dir = new URL('../../dashboards/', import.meta.url);
/** The variant on the Prometheus datasource; checked on its own at the end of this file. */
const PROMETHEUS_FILE = 'scitags-prometheus.json';
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.json') && f !== PROMETHEUS_FILE)
  .sort();
const dashboards = files.map((f) => ({
  file: f,
  d: JSON.parse(readFileSync(new URL(f, dir), 'utf8')) as DashboardJson & Record<string, unknown>,
}));
const datasourceYaml = parse(readFileSync(new URL('provisioning/datasources/influxdb.yaml', dir), 'utf8')) as {
  apiVersion: number;
  datasources: {
    name: string;
    uid: string;
    type: string;
    url: string;
    database?: string;
    isDefault: boolean;
    jsonData: { dbName: string; timeInterval: string };
  }[];
};
const providerYaml = parse(readFileSync(new URL('provisioning/dashboards/scitags.yaml', dir), 'utf8')) as {
  apiVersion: number;
  providers: { name: string; type: string; options: { path: string } }[];
};
const ds = datasourceYaml.datasources[0]!;

const EXPECTED = {
  'scitags-overview': {
    file: 'scitags-overview.json',
    title: 'SciTags overview',
    variables: ['datasource', 'policy', 'exporter', 'experiment', 'link'],
  },
  'scitags-link-detail': {
    file: 'link-detail.json',
    title: 'Link detail',
    variables: ['datasource', 'policy', 'exporter', 'link', 'experiment'],
  },
  // collector_stats is not rolled up: it lives in the default (raw) policy only
  'scitags-collector-health': { file: 'collector-health.json', title: 'Collector health', variables: ['datasource', 'exporter'] },
  // scitags_firefly is rolled up like traffic (cq_firefly_1h, docs/influx-schema.md)
  'scitags-fireflies': {
    file: 'scitags-fireflies.json',
    title: 'SciTags fireflies',
    variables: ['datasource', 'policy', 'experiment', 'src_site', 'dst_site'],
  },
  // scitags_site_traffic is not rolled up: its tables read the default policy (raw)
  'scitags-ipv6-transition': {
    file: 'ipv6-transition.json',
    title: 'IPv6 transition',
    variables: ['datasource', 'policy', 'exporter', 'link', 'site'],
  },
} as const;

/** Dashboards reading measurements with no roll-up: no $policy variable, the default policy. */
const NOT_ROLLED_UP = new Set(['scitags-collector-health']);

/** The datasource reference every panel, target and query variable carries. */
const DS_REF = { type: 'influxdb', uid: '${datasource}' };

describe('Grafana provisioning', () => {
  it('provisions one InfluxQL datasource with the uid, database and minimum interval the dashboards assume', () => {
    expect(datasourceYaml.apiVersion).toBe(1);
    expect(datasourceYaml.datasources).toHaveLength(1);
    expect(ds).toMatchObject({
      uid: 'scitags-influx',
      type: 'influxdb',
      url: 'http://influxdb:8086',
      database: 'scitags',
      jsonData: { dbName: 'scitags' },
    });
    // a second default datasource makes Grafana refuse the whole provisioning file
    expect(ds.isDefault).toBe(false);
    // rate panels divide whole buckets by $__interval: it must never be below one bucket
    expect(parseIntervalMs(ds.jsonData.timeInterval)).toBe(defaultConfig().aggregation.bucketSeconds * 1000);
  });

  it('provisions a file provider reading the directory docker-compose.yml mounts dashboards/ at', () => {
    expect(providerYaml.apiVersion).toBe(1);
    expect(providerYaml.providers).toEqual([
      expect.objectContaining({ type: 'file', options: expect.objectContaining({ path: '/var/lib/grafana/dashboards' }) }),
    ]);
  });
});

describe('dashboards', () => {
  it('are exactly the five dashboards, each with a unique stable uid and its title', () => {
    expect(TYPED).toHaveLength(5);
    expect(files).toEqual(
      Object.values(EXPECTED)
        .map((e) => e.file)
        .sort(),
    );
    const uids = dashboards.map(({ d }) => d.uid);
    expect(new Set(uids).size).toBe(uids.length);
    for (const { file, d } of dashboards) {
      const exp = EXPECTED[d.uid as keyof typeof EXPECTED];
      expect(exp, `${file}: uid ${d.uid}`).toBeDefined();
      expect(file).toBe(exp.file);
      expect(d.title).toBe(exp.title);
      expect(d.uid).toMatch(/^[a-z0-9-]{1,40}$/);
      expect(d.id ?? null, `${file}: provisioned dashboards carry no database id`).toBeNull();
      expect(typeof d.schemaVersion).toBe('number');
    }
  });

  for (const { file, d } of dashboards) {
    describe(file, () => {
      const panels = allPanels(d);
      const vars = d.templating?.list ?? [];

      it('picks its datasource through ${datasource} (type influxdb, the provisioned uid preselected), never a fixed uid', () => {
        const dsVar = vars.find((v) => v.name === 'datasource') as VariableJson & { query: string; current: { value: string } };
        expect(dsVar).toMatchObject({ type: 'datasource', query: 'influxdb', multi: false, includeAll: false });
        expect(dsVar.current.value).toBe(ds.uid);
        const refs = [
          ...panels.filter((p) => p.type !== 'row').map((p) => [`panel ${p.id}`, p.datasource] as const),
          ...panels.flatMap((p) => (p.targets ?? []).map((t) => [`panel ${p.id} ${t.refId}`, t.datasource] as const)),
          ...vars.filter((v) => v.type === 'query').map((v) => [`variable ${v.name}`, v.datasource] as const),
        ];
        expect(refs.length).toBeGreaterThan(0);
        for (const [where, ref] of refs) expect(ref, where).toEqual(DS_REF);
        // the uid appears nowhere else (a panel with a fixed uid breaks on any other Grafana)
        expect(JSON.stringify(d).split(ds.uid).length - 1).toBe(1);
        expect(JSON.stringify(d)).not.toMatch(/\$\{DS_|__inputs/); // no import-time placeholders
      });

      it('has the exporter / link / experiment template variables as SHOW TAG VALUES queries', () => {
        const exp = EXPECTED[d.uid as keyof typeof EXPECTED];
        expect(vars.map((v) => v.name)).toEqual(exp.variables);
        for (const v of vars) {
          expect(VARIABLE_TYPES).toContain(v.type);
          if (v.type !== 'query') continue;
          expect(variableQuery(v)).toMatch(
            /^SHOW TAG VALUES FROM "(scitags_traffic|link_traffic|collector_stats|scitags_firefly|scitags_site_traffic)" WITH KEY (= "\w+"|IN \("in_link", "out_link"\)|IN \("src_site", "dst_site"\))( WHERE .*)?$/,
          );
          if (v.includeAll) expect(v.allValue, `${v.name}: All matches every value, not just the listed ones`).toBe('.*');
        }
      });

      it('has unique panel ids, a grid position, a unit on every data panel, valid repeats', () => {
        const ids = panels.map((p) => p.id);
        expect(new Set(ids).size).toBe(ids.length);
        for (const p of panels) {
          const raw = p as PanelJson & { gridPos?: unknown; repeatDirection?: string };
          expect(raw.gridPos, `panel ${p.id}`).toBeDefined();
          if (p.type === 'row') continue;
          expect(['timeseries', 'table', 'bargauge']).toContain(p.type);
          expect(p.fieldConfig?.defaults?.unit, `panel ${p.id} ${p.title}: unit`).toMatch(/^(bps|pps|cps|percentunit|short|decbytes|ms)$/);
          if (p.repeat) {
            const v = vars.find((x) => x.name === p.repeat);
            expect(v?.multi || v?.includeAll, `panel ${p.id} repeats on a multi-value variable`).toBe(true);
            expect(REPEAT_DIRECTIONS).toContain(raw.repeatDirection);
          }
        }
        for (const l of (d as { links?: { type: DashboardLinkType }[] }).links ?? []) expect(LINK_TYPES).toContain(l.type);
      });

      it('computes rates per interval: bit/s and pps panels divide by $__interval_ms, never below one bucket', () => {
        for (const { panel, target } of panelTargets(d)) {
          const q = target.query!;
          const unit = panel.fieldConfig?.defaults?.unit;
          if (/sum\("bytes"\) \* 8000 \/ \$__interval_ms/.test(q)) expect(unit, `${panel.title}`).toMatch(/^(bps|percentunit)$/);
          if (/sum\("packets"\) \* 1000 \/ \$__interval_ms/.test(q)) expect(unit, `${panel.title}`).toBe('pps');
          // (a firefly throughput is a rate of its own: the mean of the flows' bit/s)
          if (unit === 'bps' && panel.type === 'timeseries' && /"(scitags|link)_traffic"/.test(q))
            expect(q, `${panel.title}`).toContain('sum("bytes") * 8000 / $__interval_ms');
          if (unit === 'pps' && /FROM "(scitags|link)_traffic"/.test(q))
            expect(q, `${panel.title}`).toContain('sum("packets") * 1000 / $__interval_ms');
          if (/GROUP BY time\(\$__interval\)/.test(q) && /sum\("(bytes|packets)"\)/.test(q)) {
            // a panel minimum below the bucket would make Grafana pick 10 s, 30 s... intervals
            const minimums =
              panel.interval === '$policy'
                ? customOptions(vars.find((v) => v.name === 'policy')!).map((o) => o.value)
                : [panel.interval ?? ds.jsonData.timeInterval];
            for (const m of minimums) expect(parseIntervalMs(m), `${panel.title}: min interval`).toBeGreaterThanOrEqual(60_000);
          }
          expect(q, `${panel.title}: an explicit time filter`).toContain('$timeFilter');
          expect(q, `${panel.title}: no hard-coded bucket width`).not.toMatch(/\/ ?60\b|\/ ?60000\b/);
        }
      });

      it("reads traffic and fireflies from the retention policy chosen in $policy, with that policy's bucket as the minimum interval", () => {
        const policy = vars.find((v) => v.name === 'policy');
        const traffic = panelTargets(d).filter((t) => /"((scitags|link)_traffic|scitags_firefly)"/.test(t.target.query!));
        if (NOT_ROLLED_UP.has(d.uid)) {
          expect(policy).toBeUndefined();
          expect(traffic).toEqual([]);
          return;
        }
        // text = the policy the collector provisions, value = its point width (docs/influx-schema.md)
        expect(customOptions(policy!)).toEqual([
          { text: DEFAULT_SETUP.rawPolicy, value: '1m' },
          { text: DEFAULT_SETUP.rollupPolicy, value: '1h' },
        ]);
        expect(policy).toMatchObject({ multi: false, includeAll: false, current: { text: 'raw', value: '1m' } });
        expect(traffic.length).toBeGreaterThan(0);
        for (const { panel, target } of traffic) {
          const q = target.query!;
          expect(q.match(/FROM "[^(]*?_(traffic|firefly)"/g), panel.title).toEqual([
            expect.stringMatching(/^FROM "\$\{policy:text\}"\."((scitags|link)_traffic|scitags_firefly)"$/),
          ]);
          // every interval Grafana picks from 1h up (2h, 3h, 6h, 12h, 1d, 7d, 30d) is whole hours
          if (q.includes('$__interval')) expect(panel.interval, panel.title).toBe('$policy');
        }
      });

      it('interpolates every query (only ${var:regex}, $timeFilter and interval/range macros)', () => {
        const selection = Object.fromEntries(
          vars.map((v) => [v.name, v.includeAll ? ('all' as const) : v.type === 'custom' ? [customOptions(v)[1]!.value] : ['x.y (z)']]),
        );
        const texts = Object.fromEntries(
          vars.filter((v) => v.type === 'custom').map((v) => [v.name, Object.fromEntries(customOptions(v).map((o) => [o.value, o.text]))]),
        );
        const ctx = {
          fromMs: 1_700_000_000_000,
          toMs: 1_700_003_600_000,
          intervalMs: 300_000,
          variables: vars,
          selection,
          options: {},
          texts,
        };
        const queries = [...panelTargets(d).map((t) => t.target.query!), ...vars.map(variableQuery)];
        for (const q of queries) {
          const out = interpolateQuery(q, ctx);
          expect(out).not.toMatch(/\$(?!\/)|\[\[/);
          for (const m of q.matchAll(/\$\{(\w+):regex\}/g))
            expect(
              vars.map((v: VariableJson) => v.name),
              q,
            ).toContain(m[1]);
        }
        // a single value is regex-escaped; time filter and interval are Grafana's
        const one = interpolateQuery('SELECT 1 FROM m WHERE "l" =~ /^${link:regex}$/ AND $timeFilter GROUP BY time($__interval)', {
          ...ctx,
          variables: [{ type: 'query', name: 'link', multi: false }],
          selection: { link: ['x.y (z)'] },
        });
        expect(one).toBe(
          'SELECT 1 FROM m WHERE "l" =~ /^x\\.y \\(z\\)$/ AND time >= 1700000000000ms and time <= 1700003600000ms GROUP BY time(5m)',
        );
      });
    });
  }

  it('the runner rejects what Grafana would not interpolate the same way', () => {
    const ctx = {
      fromMs: 0,
      toMs: 3_600_000,
      intervalMs: 60_000,
      variables: [{ type: 'query', name: 'link', multi: true }],
      selection: { link: ['a', 'b'] },
      options: {},
    };
    expect(interpolateQuery('"l" =~ /^${link:regex}$/', ctx)).toBe('"l" =~ /^(a|b)$/');
    expect(() => interpolateQuery('"l" =~ /^$link$/', ctx)).toThrow(/link:regex/);
    expect(() => interpolateQuery('"l" = $timefilter', ctx)).toThrow();
    expect(() => interpolateQuery('${nope:regex}', ctx)).toThrow(/undefined variable/);
    expect(() => interpolateQuery('time($__interval)', { ...ctx, intervalMs: 90_000 })).toThrow(/not one Grafana produces/);
  });
});

/**
 * The Prometheus variant (dashboards/scitags-prometheus.json): the same questions answered
 * from the collector's /metrics. Every panel reads the `${datasource}` variable (no uid to
 * match at import), every query uses only metrics the collector defines, counters only
 * through rate() / increase(), and every query, interpolated as Grafana would, parses as
 * PromQL (promtool).
 */
describe('Prometheus dashboard', () => {
  type PromPanel = Omit<PanelJson, 'targets'> & { targets?: { refId: string; expr?: string; datasource?: unknown }[] };
  const d = TYPED_PROMETHEUS as unknown as DashboardJson;
  const panels = allPanels(d) as unknown as PromPanel[];
  const vars = d.templating?.list ?? [];
  const VAR_DS = { type: 'prometheus', uid: '${datasource}' };
  const targets = panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p, target: t, expr: t.expr ?? '' })));
  /** label_values(SELECTOR, label) is Grafana's, not PromQL: the selector is the query to check. */
  const variableSelectors = vars
    .filter((v) => v.type === 'query')
    .map((v) => /^label_values\((.*), *\w+\)$/.exec(variableQuery(v))?.[1] ?? '');

  /** What Grafana substitutes: a multi-value variable becomes a regex (All: allValue), the macros durations. */
  const interpolate = (q: string): string =>
    q
      .replace(/\$__rate_interval|\$__interval|\$__range/g, (m) => ({ $__rate_interval: '4m', $__interval: '1m', $__range: '6h' })[m]!)
      .replace(/\$\{?(\w+)\}?/g, (m, name: string) => {
        const v = vars.find((x) => x.name === name);
        if (!v || v.type !== 'query') throw new Error(`${m}: not a query variable of the dashboard`);
        return v.allValue ?? '.*';
      });

  it('is one more dashboard with its own uid, tagged for the dashboard links', () => {
    expect(readdirSync(dir).filter((f) => f.endsWith('.json'))).toContain(PROMETHEUS_FILE);
    expect(d.uid).toBe('scitags-prometheus');
    expect(dashboards.map((x) => x.d.uid)).not.toContain(d.uid);
    expect((TYPED_PROMETHEUS as { tags?: string[] }).tags).toContain('scitags');
    expect((d as { id?: number | null }).id ?? null).toBeNull();
  });

  it('reads the ${datasource} variable (type prometheus) in every panel and target, with no datasource uid anywhere', () => {
    expect(vars[0]).toMatchObject({ type: 'datasource', name: 'datasource', query: 'prometheus' });
    const refs = [
      ...panels.filter((p) => p.type !== 'row').map((p) => [`panel ${p.id}`, p.datasource] as const),
      ...targets.map(({ panel, target }) => [`panel ${panel.id} ${target.refId}`, target.datasource] as const),
      ...vars.filter((v) => v.type !== 'datasource').map((v) => [`variable ${v.name}`, v.datasource] as const),
    ];
    expect(refs.length).toBeGreaterThan(20);
    for (const [where, ref] of refs) expect(ref, where).toEqual(VAR_DS);
    const uids = [...JSON.stringify(d).matchAll(/"uid":"([^"]*)"/g)].map((m) => m[1]);
    expect(new Set(uids)).toEqual(new Set([d.uid, '${datasource}']));
    expect(JSON.stringify(d)).not.toMatch(/\$\{DS_|__inputs|"influxdb"/);
  });

  it('has exporter / experiment / link variables on the traffic counters, unique panel ids and a unit on every data panel', () => {
    expect(vars.map((v) => v.name)).toEqual(['datasource', 'exporter', 'experiment', 'link']);
    for (const v of vars.slice(1)) expect(v, v.name).toMatchObject({ type: 'query', multi: true, includeAll: true, allValue: '.*' });
    const ids = panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of panels.filter((x) => x.type !== 'row')) {
      expect(['timeseries', 'table']).toContain(p.type);
      expect(p.fieldConfig?.defaults?.unit, `panel ${p.id} ${p.title}`).toMatch(/^(bps|pps|cps|percentunit|decbytes|s)$/);
    }
    expect(panels.filter((p) => p.type === 'row').map((p) => p.title)).toEqual([
      'Traffic by experiment',
      'Per link',
      'Exporter health',
      'Fireflies',
    ]);
  });

  it('uses only metrics the collector exposes, counters only through rate() or increase(), bytes as bits', async () => {
    const m = createMetrics({
      defaultMetrics: true,
      spool: () => ({ batches: 0, rows: 0, bytes: 0, oldestMs: undefined, rejectedBatches: 0, lastErrorMs: undefined }),
      fireflyMarking: () => ({ flows: 0, evicted: 0, byExperiment: [] }),
    });
    const known = new Map((await m.registry.getMetricsAsJSON()).map((x) => [x.name, String(x.type)]));
    const queries = [
      ...targets.map((t) => [`panel ${t.panel.id} ${t.panel.title}`, t.expr, t.panel.fieldConfig?.defaults?.unit] as const),
      ...variableSelectors.map((q) => ['variable', q, undefined] as const),
    ];
    for (const [where, q, unit] of queries) {
      const names = [...q.matchAll(/\b(scitags_\w+|process_\w+|nodejs_\w+)/g)].map((x) => x[1]!);
      expect(names.length, where).toBeGreaterThan(0);
      for (const name of names) {
        expect(known.has(name), `${where}: ${name}`).toBe(true);
        // A counter resets on restart: only rate() / increase() make it a quantity (label_values lists labels).
        if (known.get(name) === 'counter' && where !== 'variable') expect(q, where).toMatch(new RegExp(`(rate|increase)\\(${name}[{[]`));
      }
      if (unit === 'bps')
        expect(q, where).toMatch(/^sum by \([\w, ]+\) \(rate\(scitags_traffic_bytes_total\{[^}]*\}\[\$__rate_interval\]\)\) \* 8$/);
      // Marked traffic counted once: experiment panels take one direction.
      if (/community/.test(q) && where !== 'variable') expect(q, where).toMatch(/direction="in"/);
    }
  });

  it.skipIf(!promtoolAvailable('parsing the Prometheus dashboard queries'))(
    'every query parses as PromQL once interpolated (promtool check rules)',
    () => {
      const exprs = [...targets.map((t) => interpolate(t.expr)), ...variableSelectors.map(interpolate)];
      expect(exprs.every((e) => !e.includes('$'))).toBe(true);
      // Recording rules are the one promtool input that parses free-standing expressions.
      const rules = { groups: [{ name: 'dashboard', rules: exprs.map((expr, i) => ({ record: `dashboard:query_${i}`, expr })) }] };
      const file = join(mkdtempSync(join(tmpdir(), 'scitags-promql-')), 'rules.yaml');
      writeFileSync(file, stringify(rules));
      const r = promtool(['check', 'rules', file]);
      expect(r.output).toContain(`SUCCESS: ${exprs.length} rules found`);
      expect(r.status).toBe(0);
      // And a broken query would fail: the check is not vacuous.
      writeFileSync(file, stringify({ groups: [{ name: 'x', rules: [{ record: 'x:y', expr: 'sum by (a (rate(m[5m]))' }] }] }));
      expect(promtool(['check', 'rules', file]).status).not.toBe(0);
    },
  );
});
