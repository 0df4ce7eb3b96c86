import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { artifactsDir, findChromium, launchChromium, pageBuilt, prefixProxy } from '../support/browser.js';
import { fireflyStart } from '../builders/firefly.js';
import { f, templatesThenData } from '../builders/ipfix.js';
import { type Daemon, freePorts, freeUdpPort, getJson, replayCorpus, sendUdp, startDaemon, waitFor } from '../support/daemon.js';
import { expectedCorpusGroups } from '../support/expected.js';

/**
 * The built-in page (issue 15) in headless Chromium against a real daemon: the corpus captures
 * replayed over loopback, the page's legend, tooltips and table read back and compared with the
 * corpus truth; a click splits an experiment by activity, another filters by a link; the page
 * behind a prefix-stripping reverse proxy, showing the errors the API (or the proxy) answers;
 * a collector with no data and token authentication; and the IPv6 transition and marking panels
 * (IPFIX with NAT64 and IPv4 records, two fireflies: the exact sums on the page). Screenshots go
 * to test-artifacts/browser.
 */
const chromiumPath = findChromium();
const built = pageBuilt();
if (!chromiumPath) console.warn('page tests: no chromium found (/usr/bin/chromium, PATH, CHROMIUM_PATH): skipped');
if (!built) console.warn('page tests: dist/web is not built (npm run build): skipped');
if (process.env['CI'] && !built) throw new Error('dist/web is not built but CI is set: npm install runs the build');

interface LegendEntry {
  key: string;
  label: string;
  bytes: number;
  packets: number;
}

async function legend(page: Page): Promise<LegendEntry[]> {
  return page.$$eval('#legend li', (items) =>
    items.map((li) => ({
      key: (li as HTMLElement).dataset['key'] ?? '',
      label: (li.textContent ?? '').split(':')[0]!.trim(),
      bytes: Number((li as HTMLElement).dataset['bytes']),
      packets: Number((li as HTMLElement).dataset['packets']),
    })),
  );
}

/** Expected bytes per legend label: experiments (or one experiment's activities) and the unmarked classes. */
function expectedLegend(experiment?: string): Map<string, { bytes: number; packets: number }> {
  const out = new Map<string, { bytes: number; packets: number }>();
  for (const [key, c] of expectedCorpusGroups()) {
    let label: string;
    if (key === 'ipv6_unmarked') label = 'IPv6 unmarked';
    else if (key === 'ipv4') label = 'IPv4';
    else {
      const [exp, activity] = key.slice('scitags '.length).split('/') as [string, string];
      if (experiment !== undefined && exp !== experiment) continue;
      label = experiment === undefined ? exp : activity;
    }
    if (experiment !== undefined && (key === 'ipv6_unmarked' || key === 'ipv4')) continue;
    const prev = out.get(label) ?? { bytes: 0, packets: 0 };
    out.set(label, { bytes: prev.bytes + c.bytes, packets: prev.packets + c.packets });
  }
  return out;
}

function byLabel(entries: LegendEntry[]): Map<string, { bytes: number; packets: number }> {
  return new Map(entries.map((e) => [e.label, { bytes: e.bytes, packets: e.packets }]));
}

function expectSameTotals(
  actual: Map<string, { bytes: number; packets: number }>,
  expected: Map<string, { bytes: number; packets: number }>,
): void {
  expect([...actual.keys()].sort()).toEqual([...expected.keys()].sort());
  for (const [label, e] of expected) {
    expect(actual.get(label)!.bytes, label).toBeCloseTo(e.bytes, 3);
    expect(actual.get(label)!.packets, label).toBeCloseTo(e.packets, 3);
  }
}

/** Waits until the page finished a refresh in the given state (body[data-state]). */
async function settled(page: Page, state: 'ready' | 'empty' | 'error'): Promise<void> {
  await page.waitForSelector(`body[data-state="${state}"]`, { timeout: 15_000 });
}

interface TransitionSums {
  ipv4Bytes: number;
  ipv6Bytes: number;
  nat64Bytes: number;
  unknownBytes: number;
  ipv6Share: number | null;
  nat64Share: number | null;
}
interface TransitionAnswer {
  series: { group: Record<string, string | number | null>; totals: TransitionSums }[];
  totals: TransitionSums;
}

const sumsOf = (t: TransitionSums) => ({ ipv4: t.ipv4Bytes, ipv6: t.ipv6Bytes, nat64: t.nat64Bytes, unknown: t.unknownBytes });
const shareText = (x: number | null): string => (x === null ? '—' : `${(100 * x).toFixed(1)} %`);

/** The exact sums a transition row carries. */
async function transitionRow(page: Page, selector: string): Promise<ReturnType<typeof sumsOf>> {
  return page.$eval(selector, (r) => {
    const d = (r as HTMLElement).dataset;
    return {
      ipv4: Number(d['ipv4Bytes']),
      ipv6: Number(d['ipv6Bytes']),
      nat64: Number(d['nat64Bytes']),
      unknown: Number(d['unknownBytes']),
    };
  });
}

const cells = (page: Page, selector: string): Promise<string[]> =>
  page.$eval(selector, (r) => [...r.children].map((c) => (c.textContent ?? '').trim()));

const shot = (page: Page, name: string) => page.screenshot({ path: join(artifactsDir(), `${name}.png`), fullPage: true });

describe.skipIf(!chromiumPath || !built)('the built-in page in headless Chromium', () => {
  let browser: Browser;
  let daemon: Daemon;

  beforeAll(async () => {
    const ports = await freePorts();
    [browser, daemon] = await Promise.all([launchChromium(chromiumPath!), startDaemon(ports, [])]);
    await replayCorpus(daemon, ports);
  });

  afterAll(async () => {
    await browser?.close();
    if (daemon) expect(await daemon.stop()).toBe(0);
  });

  it('names the experiments with the corpus totals (legend, table, tooltips by keyboard), splits one by activity, filters by a link', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    await page.goto(`${daemon.apiUrl}/`);
    await settled(page, 'ready');
    // The open bucket is provisional: the data shows before the bucket is written. Records reach
    // the main thread's aggregator from the decode workers within a second: refresh until all are in.
    const want = expectedLegend();
    await expect
      .poll(
        async () => {
          await page.click('#refresh');
          await settled(page, 'ready');
          const got = byLabel(await legend(page));
          return [...want].every(([k, v]) => Math.abs((got.get(k)?.bytes ?? 0) - v.bytes) < 1e-3);
        },
        { timeout: 15_000, interval: 500 },
      )
      .toBe(true);
    expectSameTotals(byLabel(await legend(page)), want);
    await expect.poll(() => page.textContent('#traffic-note')).toContain('provisional');
    // Experiments keep their colour-blind-safe colours; each legend entry names its total.
    const entries = await legend(page);
    expect(entries.find((e) => e.label === 'atlas')?.key).toBe('community:2');
    const tableRows = await page.$$eval('#traffic-table tbody tr', (rows) => rows.map((r) => [...r.children].map((c) => c.textContent)));
    for (const [label, e] of want) {
      const r = tableRows.find((x) => x[0] === label);
      expect(r, label).toBeDefined();
      expect(Number(r![1]!.replace(/,/g, ''))).toBeCloseTo(e.bytes, 0);
    }
    await shot(page, '1-experiments');

    // IPv6 transition: the same figures as /api/v1/transition for the chart's range (the corpus
    // has IPv4 and IPv6, no NAT64, no site map and no fireflies: those parts stay hidden).
    const transition = await getJson<TransitionAnswer>(
      `${daemon.apiUrl}/api/v1/transition?groupBy=link&from=now-3600s&to=now&provisional=true`,
    );
    expect(transition.totals.ipv4Bytes).toBeGreaterThan(0);
    expect(transition.totals.ipv6Bytes).toBeGreaterThan(0);
    expect(await transitionRow(page, '#transition-table tfoot tr')).toEqual(sumsOf(transition.totals));
    const transitionRows = await page.$$eval('#transition-table tbody tr', (rows) => rows.map((r) => (r as HTMLElement).dataset['link']));
    expect(transitionRows.sort()).toEqual(transition.series.map((x) => String(x.group['link'])).sort());
    for (const x of transition.series) {
      expect(await transitionRow(page, `#transition-table tbody tr[data-link="${String(x.group['link'])}"]`)).toEqual(sumsOf(x.totals));
    }
    expect(await page.textContent('#transition-table tfoot')).toContain(shareText(transition.totals.ipv6Share));
    expect(await page.isVisible('#transition-sites')).toBe(false);
    expect(await page.isVisible('#nat64')).toBe(false);
    expect(await page.isVisible('#marking')).toBe(false);

    // Tooltips by keyboard: every step's values, summed, are each series' total.
    await page.focus('#chart');
    await page.keyboard.press('End');
    const step = Number((await page.textContent('#traffic-note'))!.match(/\((\d+) s steps\)/)![1]);
    const sums = new Map<string, number>();
    let steps = 0;
    for (;;) {
      const lines = await page.$$eval('#tooltip li', (li) =>
        li.map((l) => [(l.textContent ?? '').split(':')[0]!, Number((l as HTMLElement).dataset['bps'])] as const),
      );
      for (const [label, bps] of lines) sums.set(label, (sums.get(label) ?? 0) + (bps * step) / 8);
      steps++;
      const time = await page.getAttribute('#tooltip strong', 'data-time');
      await page.keyboard.press('ArrowLeft');
      if ((await page.getAttribute('#tooltip strong', 'data-time')) === time) break;
    }
    expect(steps).toBeGreaterThan(10);
    for (const [label, e] of want) expect(sums.get(label), label).toBeCloseTo(e.bytes, 3);
    await page.keyboard.press('End');
    expect(await page.textContent('#tooltip strong')).toContain('provisional');
    await shot(page, '2-tooltip');

    // Click through: atlas by activity.
    await page.click('#legend li[data-key="community:2"] button');
    await page.waitForFunction(() => document.getElementById('traffic-title')?.textContent?.startsWith('atlas by activity'));
    await settled(page, 'ready');
    expectSameTotals(byLabel(await legend(page)), expectedLegend('atlas'));
    expect(await page.inputValue('#split')).toBe('2');
    await shot(page, '3-atlas-by-activity');

    // Back to every experiment (the selector), then a link.
    await page.selectOption('#split', '');
    await page.waitForFunction(() => document.getElementById('traffic-title')?.textContent?.startsWith('Traffic by experiment'));
    const link = await page.getAttribute('#links-table tbody tr:has(button)', 'data-link');
    expect(link).toMatch(/^127\.0\.0\.1:\d+$/);
    await page.click(`#links-table tbody tr[data-link="${link}"] button`);
    await page.waitForFunction((l) => document.getElementById('traffic-title')?.textContent?.includes(`on ${l}`), link);
    await settled(page, 'ready');
    const onLink = await getJson<{ series: { group: Record<string, unknown>; totals: { bytes: number } }[] }>(
      `${daemon.apiUrl}/api/v1/traffic?from=now-1h&groupBy=community&provisional=true&link=${encodeURIComponent(link!)}`,
    );
    const shown = await legend(page);
    expect(shown.length).toBe(onLink.series.length);
    expect(shown.reduce((n, e) => n + e.bytes, 0)).toBeCloseTo(
      onLink.series.reduce((n, s) => n + s.totals.bytes, 0),
      3,
    );
    expect(await page.getAttribute(`#links-table tbody tr[data-link="${link}"] button`, 'aria-pressed')).toBe('true');
    // Exporters and health panels.
    expect(await page.textContent('#exporters-table tbody tr[data-exporter="127.0.0.1"]')).toContain('ipfix, sflow');
    expect(await page.getAttribute('#health-body [data-status]', 'data-status')).toBe('ok');
    expect(await page.textContent('#health-body')).toContain('snapshot');
    await shot(page, '4-link');
    expect(errors).toEqual([]);
    await page.close();
  });

  it('works behind a reverse proxy under a path prefix, and shows the errors the API or the proxy answer', async () => {
    const proxy = await prefixProxy(daemon.apiUrl, '/scitags/');
    const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    try {
      await page.goto(proxy.url);
      await settled(page, 'ready');
      expect((await legend(page)).length).toBeGreaterThan(2);
      // The API documentation, under the prefix too.
      const docs = await browser.newPage();
      await docs.goto(`${proxy.url}docs/`);
      await docs.waitForSelector('.swagger-ui .info .title', { timeout: 15_000 });
      expect(await docs.textContent('.swagger-ui .info .title')).toContain('scitags-collector');
      await shot(docs, '5-docs');
      await docs.close();

      proxy.failures.set('/api/v1/traffic', {
        status: 500,
        type: 'application/json',
        body: '{"error":"internal error","message":"injected by the test"}',
      });
      proxy.failures.set('/api/v1/exporters', { status: 502, type: 'text/html', body: '<html><body>Bad Gateway</body></html>' });
      proxy.failures.set('/api/v1/transition', {
        status: 503,
        type: 'application/json',
        body: '{"error":"store unavailable","message":"injected by the test"}',
      });
      await page.click('#refresh');
      await settled(page, 'error');
      const alerts = await page.textContent('#alerts');
      expect(alerts).toContain('api/v1/traffic: HTTP 500: internal error: injected by the test');
      expect(alerts).toContain('api/v1/exporters: HTTP 502');
      // The transition panel's (the per-site view, asking the same path, fails the same way).
      expect(alerts).toContain('api/v1/transition: HTTP 503: store unavailable: injected by the test');
      // Once per failure, though the chart and the links panel both asked api/v1/traffic.
      expect(await page.locator('#alerts p').count()).toBe(3);
      expect(await page.textContent('#traffic-note')).toContain('Not refreshed');
      // What still answers is still shown.
      expect(await page.getAttribute('#health-body [data-status]', 'data-status')).toBe('ok');
      await shot(page, '6-errors');

      proxy.failures.clear();
      await page.click('#refresh');
      await settled(page, 'ready');
      expect(await page.textContent('#alerts')).toBe('');
    } finally {
      await page.close();
      await proxy.close();
    }
  });
});

describe.skipIf(!chromiumPath || !built)('the built-in page without data, with token authentication', () => {
  it('asks for the token, then says there is no data yet and where to point exporters', async () => {
    const token = 'page-test-token-0123456789';
    const ports = await freePorts();
    const [browser, daemon] = await Promise.all([launchChromium(chromiumPath!), startDaemon(ports, [], { SCITAGS_API_TOKENS: token })]);
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      await page.goto(`${daemon.apiUrl}/`);
      await settled(page, 'error');
      expect(await page.isVisible('#token-form')).toBe(true);
      expect(await page.textContent('#alerts')).toContain('HTTP 401');
      await shot(page, '7-token');
      await page.fill('#token', token);
      await page.click('#token-form button[type="submit"]');
      await settled(page, 'empty');
      expect(await page.isVisible('#token-form')).toBe(false);
      const empty = await page.textContent('#empty');
      expect(empty).toContain('No data yet');
      expect(empty).toContain(`IPFIX to UDP port ${ports.ipfix}`);
      expect(empty).toContain(`sFlow v5 to UDP port ${ports.sflow}`);
      expect(empty).toContain('scitags-collector replay');
      expect(await page.textContent('#exporters-table')).toContain('No exporter has sent anything yet');
      await shot(page, '8-no-data');
    } finally {
      await browser.close();
      expect(await daemon.stop()).toBe(0);
    }
  });
});

// ---- The IPv6 transition and marking panels: NAT64 traffic and fireflies, exact numbers ----

const V6 = [
  f('sourceIPv6Address', 16),
  f('destinationIPv6Address', 16),
  f('sourceTransportPort', 2),
  f('destinationTransportPort', 2),
  f('protocolIdentifier', 1),
  f('flowLabelIPv6', 4),
  f('octetDeltaCount', 8),
  f('packetDeltaCount', 8),
  f('ingressInterface', 4),
  f('egressInterface', 4),
];
const V4 = [
  f('sourceIPv4Address', 4),
  f('destinationIPv4Address', 4),
  f('octetDeltaCount', 8),
  f('packetDeltaCount', 8),
  f('ingressInterface', 4),
  f('egressInterface', 4),
];
/** (2, 3): ATLAS; (3, 3): CMS (zero entropy bits). */
const LABEL_2_3 = 0x1000c;
const LABEL_3_3 = 0x3000c;

describe.skipIf(!chromiumPath || !built)('the IPv6 transition and marking panels', () => {
  it('shows IPv4 / IPv6 / NAT64 per link and site, the IPv4 service behind NAT64 and the marking check, with the exact numbers', async () => {
    const ports = await freePorts();
    const fireflyPort = await freeUdpPort();
    const [browser, daemon] = await Promise.all([
      launchChromium(chromiumPath!),
      startDaemon(ports, [
        `--firefly-port=${fireflyPort}`,
        '--sites-prefixes={A: ["2001:db8:a::/48", "10.0.0.0/8"], B: ["2001:db8:b::/48"]}',
        '--links=[{exporter: 127.0.0.1, ifIndex: 1, name: lab-in}]',
        // One-second buckets written at once: the NAT64 lists are read from the store.
        '--bucket=1',
        '--aggregation-grace-seconds=0',
      ]),
    ]);
    try {
      await sendUdp(fireflyPort, [
        fireflyStart('ipv6', '2001:db8:a::1', '2001:db8:b::1', 1094, 40000),
        fireflyStart('ipv6', '2001:db8:a::1', '2001:db8:b::1', 1094, 40002),
      ]);
      await waitFor(async () => (await getJson<{ flows: number }>(`${daemon.apiUrl}/api/v1/fireflies/marking`)).flows === 2);
      await sendUdp(
        ports.ipfix,
        templatesThenData([
          {
            fields: V6,
            records: [
              ['2001:db8:a::1', '2001:db8:b::1', 1094, 40000, 6, LABEL_2_3, 1000, 10, 1, 2], // agrees with its firefly
              ['2001:db8:a::1', '2001:db8:b::1', 1094, 40002, 6, LABEL_3_3, 2000, 20, 1, 2], // carries CMS's pair instead
              ['2001:db8:a::2', '64:ff9b::c000:221', 1094, 40001, 6, 0, 4000, 40, 1, 2], // NAT64 to 192.0.2.33
            ],
          },
          { fields: V4, records: [['10.0.0.1', '192.0.2.1', 3000, 30, 1, 2]] },
        ]),
      );
      await waitFor(async () => {
        const ex = await getJson<{ exporters: { records: number }[] }>(`${daemon.apiUrl}/api/v1/exporters`);
        // The two fireflies count as records of the same exporter address.
        return ex.exporters.reduce((n, e) => n + e.records, 0) === 2 + 4;
      });
      const page = await browser.newPage({ viewport: { width: 1280, height: 1400 } });
      await page.goto(`${daemon.apiUrl}/`);
      // The NAT64 list shows once its bucket is written (one second, no grace).
      await expect
        .poll(
          async () => {
            await page.click('#refresh');
            await settled(page, 'ready');
            return (await page.isVisible('#nat64')) && (await page.isVisible('#marking'));
          },
          { timeout: 15_000, interval: 500 },
        )
        .toBe(true);

      // Per link: every record ran from interface 1 to 2, so both links saw all of it:
      // IPv4 3000 B, IPv6 1000 + 2000 + 4000 B, of which NAT64 4000 B.
      const all = { ipv4: 3000, ipv6: 7000, nat64: 4000, unknown: 0 };
      expect(await transitionRow(page, '#transition-table tbody tr[data-link="127.0.0.1:1"]')).toEqual(all);
      expect(await transitionRow(page, '#transition-table tbody tr[data-link="127.0.0.1:2"]')).toEqual(all);
      expect(await transitionRow(page, '#transition-table tfoot tr')).toEqual(all);
      const rate = (b: number): string => `${((b * 8) / 3600).toFixed(1)} bit/s`;
      expect(await cells(page, '#transition-table tbody tr[data-link="127.0.0.1:1"]')).toEqual([
        'lab-in (127.0.0.1:1)',
        rate(10000),
        rate(3000),
        rate(7000),
        rate(4000),
        '70.0 %',
        '57.1 %',
      ]);
      const api = await getJson<TransitionAnswer>(`${daemon.apiUrl}/api/v1/transition?groupBy=link&from=now-3600s&to=now&provisional=true`);
      expect(sumsOf(api.totals)).toEqual(all);

      // Per site (to or from it): A all of it; B the two ATLAS flows; unknown the NAT64 and the IPv4 destination.
      expect(await transitionRow(page, '#transition-sites-table tr[data-site="A"]')).toEqual(all);
      expect(await transitionRow(page, '#transition-sites-table tr[data-site="B"]')).toEqual({ ipv4: 0, ipv6: 3000, nat64: 0, unknown: 0 });
      expect(await transitionRow(page, '#transition-sites-table tr[data-site="unknown"]')).toEqual({
        ipv4: 3000,
        ipv6: 4000,
        nat64: 4000,
        unknown: 0,
      });
      expect(await cells(page, '#transition-sites-table tr[data-site="B"]')).toEqual([
        'B',
        rate(3000),
        '0 bit/s',
        rate(3000),
        '0 bit/s',
        '100.0 %',
        '0.0 %',
      ]);

      // The IPv4 service behind NAT64: one address, exact (fewer addresses than the top N).
      expect(await page.$$eval('#nat64-table tbody tr', (r) => r.map((x) => (x as HTMLElement).dataset['address']))).toEqual([
        '192.0.2.33',
      ]);
      expect(await cells(page, '#nat64-table tbody tr')).toEqual(['192.0.2.33', '≈ 4.00 kB', `≈ ${rate(4000)}`, 'exact']);
      expect(await page.textContent('#nat64-table caption')).toContain('Approximate');

      // The marking check: one record agreed, one carried CMS's pair.
      const experiments = await getJson<{ communities: { id: number; name: string; activities: { id: number; name: string }[] }[] }>(
        `${daemon.apiUrl}/api/v1/experiments`,
      );
      const name = (c: number, a: number): string => {
        const e = experiments.communities.find((x) => x.id === c)!;
        return `${e.name} / ${e.activities.find((x) => x.id === a)?.name ?? a}`;
      };
      const atlas = name(2, 3).split(' / ');
      expect(await page.locator('#marking-table tbody tr').count()).toBe(1);
      expect(await cells(page, '#marking-table tbody tr[data-pair="2/3"][data-sites="A>B"]')).toEqual([
        atlas[0],
        atlas[1],
        'A → B',
        '1',
        '1',
        '0',
        '0',
        '0',
        '50.0 %',
        `${name(3, 3)}: 1`,
      ]);
      expect(await page.isVisible('#fireflies')).toBe(true);
      await shot(page, '9-transition-marking');
      await page.close();
    } finally {
      await browser.close();
      expect(await daemon.stop()).toBe(0);
    }
  });
});
