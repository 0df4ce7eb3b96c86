import { describe, expect, it } from 'vitest';
import { buildApi, MAX_TIME_MS, normaliseAddress, parseBoundedTime } from '../../src/api/index.js';
import type { ApiDeps } from '../../src/api/index.js';
import { silentLogger } from '../../src/log.js';
import { createMetrics } from '../../src/metrics/index.js';
import { RegistryService } from '../../src/registry/service.js';
import type { TrafficQuery, TrafficQueryResult, TrafficStore } from '../../src/store/types.js';

const NOW = Date.UTC(2025, 0, 1, 12);
const registry = new RegistryService(
  { url: '', refreshSeconds: 3600, cacheFile: '', timeoutMs: 1000 },
  { now: () => NOW, fetchText: () => Promise.reject(new Error('offline')), log: silentLogger() },
);
const metrics = createMetrics({ registryStatus: () => registry.status(), now: () => NOW });
const queries: TrafficQuery[] = [];
const store = {
  kind: 'memory',
  readRows: () => Promise.resolve([]),
  writeRows: () => Promise.resolve(),
  queryTraffic: (q: TrafficQuery): Promise<TrafficQueryResult> => {
    queries.push(q);
    return Promise.resolve({ series: [], totals: { bytes: 0, packets: 0, records: 0 } });
  },
  close: () => Promise.resolve(),
} as unknown as TrafficStore;
const deps: ApiDeps = {
  store,
  registry,
  links: [{ exporter: '192.0.2.1', ifIndex: 7, name: 'cern-geant' }],
  exporters: () => [],
  health: () => ({ status: 'ok', checks: {} }),
  metricsRegistry: metrics.registry,
  bucketSeconds: 60,
  now: () => NOW,
};
const app = buildApi(deps);

async function bad(query: string): Promise<[number, unknown]> {
  const r = await app.inject({ url: `/api/v1/traffic?${query}` });
  return [r.statusCode, r.json()];
}

describe('traffic filters', () => {
  it.each([
    ['exporter=%20', 'exporter'],
    ['community=%20', 'community'],
    ['activity=%20%09', 'activity'],
    ['link=%20', 'link'],
    ['exporter=192.0.2.1,%20', 'exporter'],
    ['community=2,%20,3', 'community'],
  ])('%s is a 400 naming %s (it used to answer with all data)', async (query, parameter) => {
    expect(await bad(query)).toEqual([
      400,
      { error: 'bad request', parameter, message: 'must not be empty or contain empty or white-space-only items' },
    ]);
  });

  it('an empty filter is a 400 naming it', async () => {
    expect(await bad('exporter=')).toEqual([400, { error: 'bad request', parameter: 'exporter', message: 'must not be empty' }]);
  });

  it('IPv4-mapped exporter addresses are the IPv4 exporter, in filters and link keys; IPv6 canonical', async () => {
    queries.length = 0;
    const r = await app.inject({ url: '/api/v1/traffic?exporter=::ffff:192.0.2.1,192.0.2.1,2001:DB8:0::0001&link=[::ffff:c000:201]:7' });
    expect(r.statusCode).toBe(200);
    expect(queries[0]!.exporter).toEqual(['192.0.2.1', '2001:db8::1']);
    expect(queries[0]!.link).toEqual([{ exporter: '192.0.2.1', ifIndex: 7 }]);
    expect(r.json<{ filters: unknown }>().filters).toEqual({
      exporter: ['192.0.2.1', '2001:db8::1'],
      link: [{ link: '192.0.2.1:7', name: 'cern-geant' }],
    });
    expect(['::FFFF:198.51.100.9', '::ffff:0:1', '::1', '10.0.0.1', 'x'].map(normaliseAddress)).toEqual([
      '198.51.100.9',
      '0.0.0.1',
      '::1',
      '10.0.0.1',
      undefined,
    ]);
  });
});

describe('traffic times', () => {
  const range = 'must be between 1970-01-01T00:00:00.000Z and 2262-04-11T23:47:16.854Z';
  it.each([
    ['from=now-999999999w', 'from', `${range} ("now-999999999w" is outside)`],
    ['from=1969-12-31T23:59:59Z', 'from', `${range} ("1969-12-31T23:59:59Z" is outside)`],
    ['to=2262-04-12T00:00:00Z', 'to', `${range} ("2262-04-12T00:00:00Z" is outside)`],
    ['to=9999-12-31T23:59:59Z', 'to', `${range} ("9999-12-31T23:59:59Z" is outside)`],
    ['to=99999999999', 'to', `${range} ("99999999999" is outside)`],
    [
      'from=2025-01-02T00:00:00Z&to=2025-01-01T00:00:00Z',
      'to',
      'must be later than from (from 2025-01-02T00:00:00.000Z, to 2025-01-01T00:00:00.000Z)',
    ],
    ['from=2026-01-01T00:00:00Z', 'from', 'must be later than from (from 2026-01-01T00:00:00.000Z, to 2025-01-01T12:00:00.000Z)'],
  ])('%s is a 400 naming %s', async (query, parameter, message) => {
    expect(await bad(query)).toEqual([400, { error: 'bad request', parameter, message }]);
  });

  it('the extremes themselves are valid', async () => {
    queries.length = 0;
    const r = await app.inject({ url: '/api/v1/traffic?from=1970-01-01T00:00:00Z&to=2262-04-11T23:47:16.854Z' });
    expect(r.statusCode).toBe(200);
    expect([queries[0]!.fromMs, queries[0]!.toMs]).toEqual([0, MAX_TIME_MS]);
    expect(parseBoundedTime('0', NOW, 'from')).toBe(0);
  });
});
