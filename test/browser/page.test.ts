import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { artifactsDir, findChromium, launchChromium, pageBuilt, prefixProxy } from '../support/browser.js';
import { type Daemon, freePorts, getJson, replayCorpus, startDaemon } from '../support/daemon.js';
import { expectedCorpusGroups } from '../support/expected.js';

/**
 * The built-in page (issue 15) in headless Chromium against a real daemon: the corpus captures
 * replayed over loopback, the page's legend, tooltips and table read back and compared with the
 * corpus truth; a click splits an experiment by activity, another filters by a link; the page
 * behind a prefix-stripping reverse proxy, showing the errors the API (or the proxy) answers;
 * and a collector with no data and token authentication. Screenshots go to test-artifacts/browser.
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
      await page.click('#refresh');
      await settled(page, 'error');
      const alerts = await page.textContent('#alerts');
      expect(alerts).toContain('api/v1/traffic: HTTP 500: internal error: injected by the test');
      expect(alerts).toContain('api/v1/exporters: HTTP 502');
      // Once per failure, though the chart and the links panel both asked api/v1/traffic.
      expect(await page.locator('#alerts p').count()).toBe(2);
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
