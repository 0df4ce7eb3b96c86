/**
 * The firefly flow table and the site lookup are exposed through the collector's metrics:
 * real tracker and site service fed real fireflies, the scrape read as Prometheus text.
 */
import { describe, expect, it } from 'vitest';
import type { Firefly } from '../../decoders/firefly/types.js';
import { FireflyTracker } from '../../src/fireflies/tracker.js';
import { silentLogger } from '../../src/log.js';
import { createMetrics } from '../../src/metrics/index.js';
import { fetchTextWithTimeout } from '../../src/registry/service.js';
import { SiteService } from '../../src/sites/service.js';
import { parsedFirefly } from '../builders/firefly.js';

const T0 = Date.UTC(2026, 0, 1);
const ff = (over: Partial<Firefly>): Firefly =>
  parsedFirefly({
    startMs: T0,
    ipVersion: 4,
    srcAddr: '192.0.2.10',
    dstAddr: '198.51.100.20',
    srcPort: 1,
    dstPort: 1094,
    experimentId: 3,
    activityId: 2,
    ...over,
  });

describe('firefly and site metrics', () => {
  it('mirror the flow table counters and the site lookup state at scrape time', async () => {
    const sites = new SiteService(
      {
        prefixes: { A: ['192.0.2.0/24', 'bogus'], B: ['198.51.100.0/24'], C: ['203.0.113.0/24'] },
        cricSource: '',
        refreshSeconds: 3600,
        cacheFile: '',
        timeoutMs: 1000,
        maxBytes: 1024,
        maxPrefixes: 100,
        maxSites: 2,
      },
      { now: () => T0, fetchText: fetchTextWithTimeout, log: silentLogger() },
    );
    const tracker = new FireflyTracker(
      { maxFlows: 2, flowTimeoutSeconds: 60, duplicateWindowSeconds: 60 },
      { siteOf: (a) => sites.siteOf(a), log: silentLogger() },
    );
    const m = createMetrics({ fireflyFlows: () => tracker.stats(), sites: () => sites.status() });
    tracker.accept(ff({}), T0, '192.0.2.10');
    tracker.accept(ff({}), T0 + 1, '192.0.2.10'); // duplicate
    tracker.accept(ff({ srcPort: 2 }), T0 + 2, '192.0.2.10');
    tracker.accept(ff({ srcPort: 3, dstAddr: '203.0.113.5' }), T0 + 3, '192.0.2.10'); // evicts port 1; C is past maxSites
    tracker.accept(ff({ state: 'end', srcPort: 9, endMs: T0 + 10 }), T0 + 4, '192.0.2.10'); // without start
    tracker.tick(T0 + 60_003); // ports 2 and 3 expire (60 s after their last firefly); the end of port 9 is still remembered

    const text = await m.registry.metrics();
    const lines = text.split('\n').filter((l) => /^scitags_(firefly|site|cric)/.test(l));
    expect(lines).toEqual([
      'scitags_firefly_flows_total{event="started"} 3',
      'scitags_firefly_flows_total{event="ended"} 1',
      'scitags_firefly_flows_total{event="expired"} 2',
      'scitags_firefly_flows_total{event="without_start"} 1',
      'scitags_firefly_flows_total{event="duplicate"} 1',
      'scitags_firefly_flows_total{event="evicted"} 1',
      'scitags_firefly_flows_live 0',
      // The end of port 9 is remembered for the duplicate window: one ENDED_ENTRY_BYTES.
      'scitags_firefly_flow_table_bytes 200',
      'scitags_site_prefixes{source="configured"} 3',
      'scitags_site_prefixes{source="cric"} 0',
      'scitags_site_names 2',
      'scitags_site_lookups_folded_total 1',
      'scitags_site_prefixes_refused_total{reason="invalid"} 1',
      'scitags_site_prefixes_refused_total{reason="duplicate"} 0',
      'scitags_site_prefixes_refused_total{reason="cap"} 0',
      'scitags_site_prefixes_refused_total{reason="skipped"} 0',
      'scitags_cric_refresh_failures_total{reason="oversize"} 0',
      'scitags_cric_refresh_failures_total{reason="timeout"} 0',
      'scitags_cric_refresh_failures_total{reason="http"} 0',
      'scitags_cric_refresh_failures_total{reason="network"} 0',
      'scitags_cric_refresh_failures_total{reason="invalid"} 0',
      'scitags_cric_refresh_failures_total{reason="file"} 0',
      'scitags_cric_refreshes_total 0',
      // The site-pair sums' gauge (defined with the collector's metrics; no site-pair keys here).
      'scitags_site_live_keys 0',
    ]);
  });
});
