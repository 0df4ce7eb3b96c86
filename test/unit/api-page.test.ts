import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildApi } from '../../src/api/index.js';
import type { ApiDeps } from '../../src/api/index.js';
import { PAGE_CSP } from '../../src/api/page.js';
import { createSqliteStore } from '../../src/store/sqlite/index.js';
import type { TrafficRow } from '../../src/store/types.js';
import { bareApiDeps } from '../support/api-deps.js';

/**
 * The built-in page's server side (issue 15): its files and /docs/ are public while the API
 * asks for the token, a missing build says how to build it, and /api/v1/traffic?provisional=true
 * counts the aggregator's unwritten buckets in place of their stored rows, once each.
 */
const MIN = 60_000;
const T0 = Date.UTC(2025, 9, 1);
const NOW = T0 + 10 * MIN + 20_000;
const TOKEN = 'a-token-of-sixteen+chars';

const store = createSqliteStore({ path: ':memory:' });
afterAll(() => store.close());

const deps = (extra: Partial<ApiDeps> = {}): ApiDeps => bareApiDeps(store, NOW, extra);

function builtPage(): string {
  const dir = mkdtempSync(join(tmpdir(), 'scitags-page-'));
  mkdirSync(join(dir, 'assets'));
  writeFileSync(join(dir, 'index.html'), '<!doctype html><title>page</title>');
  writeFileSync(join(dir, 'assets', 'index-abc.js'), 'console.log(1)');
  return dir;
}

describe('the page and /docs', () => {
  it('serves the page and its assets without a token, with a CSP of its own; the API still asks for the token', async () => {
    const app = buildApi(deps({ pageDir: builtPage(), security: { tokens: [TOKEN] } }));
    for (const url of ['/', '/index.html', '/assets/index-abc.js', '/docs/', '/docs/json']) {
      const res = await app.inject({ url });
      expect(res.statusCode, url).toBe(200);
    }
    const page = await app.inject({ url: '/' });
    expect(page.headers['content-security-policy']).toBe(PAGE_CSP);
    expect(page.body).toContain('<title>page</title>');
    expect((await app.inject({ url: '/docs/json' })).json().paths['/api/v1/traffic']).toBeDefined();
    expect((await app.inject({ url: '/api/v1/exporters' })).statusCode).toBe(401);
    expect((await app.inject({ url: '/metrics' })).statusCode).toBe(401);
    expect((await app.inject({ url: '/api/v1/exporters', headers: { authorization: `Bearer ${TOKEN}` } })).statusCode).toBe(200);
    // No catch-all: unknown paths keep the API's answers (401 first with tokens, then 404 / 405).
    expect((await app.inject({ url: '/assets/other.js' })).statusCode).toBe(401);
    const unknown = await app.inject({ url: '/assets/other.js', headers: { authorization: `Bearer ${TOKEN}` } });
    expect([unknown.statusCode, unknown.json().error]).toEqual([404, 'not found']);
    expect((await app.inject({ method: 'POST', url: '/' })).statusCode).toBe(405);
    await app.close();
  });

  it('says how to build the page when dist/web is missing', async () => {
    const app = buildApi(deps({ pageDir: mkdtempSync(join(tmpdir(), 'scitags-nopage-')) }));
    const res = await app.inject({ url: '/' });
    expect(res.statusCode).toBe(503);
    expect(res.body).toContain('npm run build');
    await app.close();
  });
});

const row = (bucketStartMs: number, community: number, bytes: number): TrafficRow => ({
  bucketStartMs,
  bucketSeconds: 60,
  exporter: '192.0.2.1',
  inIf: 1,
  outIf: 2,
  trafficClass: 'scitags',
  community,
  activity: 1,
  registered: true,
  bytes,
  packets: bytes / 100,
  records: 1,
});

describe('GET /api/v1/traffic?provisional=true', () => {
  it('adds the unwritten buckets from memory in place of their stored rows, and marks their steps', async () => {
    // Stored: 00:08 (written, final), 00:09 (written before late records arrived: 1000 of 1500).
    await store.writeRows([row(T0 + 8 * MIN, 2, 500), row(T0 + 9 * MIN, 2, 1000)]);
    // In memory, unwritten: 00:09 whole (1500, and cms), 00:10 (open).
    const unwritten = [row(T0 + 9 * MIN, 2, 1500), row(T0 + 9 * MIN, 3, 200), row(T0 + 10 * MIN, 2, 700)];
    const app = buildApi(deps({ provisional: () => unwritten }));
    const q = `/api/v1/traffic?from=${T0 / 1000}&to=now&groupBy=community`;

    const stored = (await app.inject({ url: q })).json();
    expect(stored.totals.bytes).toBe(1500);
    expect(stored.series.flatMap((s: any) => s.points).some((p: any) => 'provisional' in p)).toBe(false);

    const live = (await app.inject({ url: `${q}&provisional=true` })).json();
    expect(live.totals.bytes).toBe(500 + 1500 + 200 + 700);
    const atlas = live.series.find((s: any) => s.group.community === 2);
    expect(atlas.points.map((p: any) => [p.timeMs - T0, p.bytes, p.provisional ?? false])).toEqual([
      [8 * MIN, 500, false],
      [9 * MIN, 1500, true],
      [10 * MIN, 700, true],
    ]);
    expect(atlas.points[2].bitsPerSecond).toBe((700 * 8) / 60);
    expect(live.series.find((s: any) => s.group.community === 3).totals.bytes).toBe(200);

    // A step spanning stored and unwritten buckets sums both, and is provisional.
    const wide = (await app.inject({ url: `${q}&provisional=1&step=300` })).json();
    expect(
      wide.series.find((s: any) => s.group.community === 2).points.map((p: any) => [p.timeMs - T0, p.bytes, p.provisional ?? false]),
    ).toEqual([
      [5 * MIN, 2000, true],
      [10 * MIN, 700, true],
    ]);
    // Grouped by link (in and out), the same rows once per side.
    const links = (await app.inject({ url: `/api/v1/traffic?from=${T0 / 1000}&to=now&groupBy=link&provisional=true` })).json();
    expect(links.series.map((s: any) => [s.group.link, s.totals.bytes]).sort()).toEqual([
      ['192.0.2.1:1', 2900],
      ['192.0.2.1:2', 2900],
    ]);
    expect((await app.inject({ url: `${q}&provisional=yes` })).json().parameter).toBe('provisional');
    await app.close();
  });
});
