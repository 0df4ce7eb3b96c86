import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fireflyEvent } from '../support/firefly-events.js';
import type { Firefly, FireflyFlowEvent } from '../../decoders/firefly/types.js';
import { configSchema } from '../../src/config/schema.js';
import { silentLogger } from '../../src/log.js';
import { Collector } from '../../src/serve/collector.js';
import { createSqliteStore } from '../../src/store/sqlite/index.js';

/**
 * The Collector's firefly wiring: its fireflySink feeds the FireflyAggregator on the
 * collector's store, the open buckets are written at stop, and a restart inside a bucket
 * continues the stored row (seeded at start) instead of replacing it.
 */
const dir = mkdtempSync(join(tmpdir(), 'scitags-ff-collector-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const MIN = 60_000;
const NOW = Math.floor(Date.now() / MIN) * MIN + 5_000; // 5 s into a bucket: nothing is due before stop

function ev(kind: FireflyFlowEvent['kind'], over: Partial<FireflyFlowEvent> = {}): FireflyFlowEvent {
  return fireflyEvent(kind, NOW, over);
}

async function runCollector(feed: (sink: (e: FireflyFlowEvent) => void) => void): Promise<void> {
  const config = configSchema.parse({
    listeners: { ipfix: [{ port: 0 }], netflow: [{ port: 0 }], sflow: [{ port: 0 }] },
    api: { port: 0 },
    store: { type: 'sqlite', path: join(dir, 'scitags.sqlite') },
    registry: { url: '', cacheFile: '' },
    decoder: { stateFile: '', crashDir: '', workers: 1 },
  });
  const collector = await Collector.create(config, { now: () => NOW, log: silentLogger() });
  expect(collector.fireflies).toBeDefined();
  await collector.start();
  feed(collector.fireflySink);
  await collector.stop();
  expect(collector.stopFailed).toBe(false);
}

function firefly(state: Firefly['state'], over: Partial<Firefly> = {}): Firefly {
  return {
    state,
    startMs: NOW - 30_000,
    endMs: state === 'end' ? NOW - 10_000 : undefined,
    currentMs: undefined,
    ipVersion: 6,
    srcAddr: '2001:db8:1::10',
    dstAddr: '2001:db8:2::20',
    protocol: 'tcp',
    srcPort: 40000,
    dstPort: 1094,
    experimentId: 2,
    activityId: 3,
    application: 'xrootd',
    receivedBytes: undefined,
    sentBytes: undefined,
    netlink: undefined,
    framing: 'rfc5424',
    host: 'host.example',
    appName: 'xrootd',
    ...over,
  };
}

describe('Collector: fireflies', () => {
  it('fireflies handed to its tracker are attributed to the configured sites and stored', async () => {
    const path = join(dir, 'tracked.sqlite');
    const config = configSchema.parse({
      listeners: { ipfix: [{ port: 0 }], netflow: [{ port: 0 }], sflow: [{ port: 0 }] },
      api: { port: 0 },
      store: { type: 'sqlite', path },
      registry: { url: '', cacheFile: '' },
      decoder: { stateFile: '', crashDir: '', workers: 1 },
      sites: { prefixes: { 'SITE-A': ['2001:db8:1::/48'], 'SITE-B': ['2001:db8:2::/48'] } },
    });
    const collector = await Collector.create(config, { now: () => NOW, log: silentLogger() });
    await collector.start();
    collector.fireflyTracker.accept(firefly('start'), NOW, '2001:db8:1::10');
    // XRootD's second copy, source and destination swapped: the same flow, counted once.
    collector.fireflyTracker.accept(
      firefly('start', { srcAddr: '2001:db8:2::20', dstAddr: '2001:db8:1::10', srcPort: 1094, dstPort: 40000 }),
      NOW,
      '2001:db8:1::10',
    );
    collector.fireflyTracker.accept(firefly('end', { sentBytes: 5000, receivedBytes: 1000 }), NOW, '2001:db8:1::10');
    await collector.stop();
    const store = createSqliteStore({ path });
    try {
      const rows = await store.readFireflyRows(0);
      expect(
        rows.map((r) => [r.srcSite, r.dstSite, r.community, r.activity, r.flowsStarted, r.flowsEnded, r.bytes, r.durationSeconds]),
      ).toEqual([['SITE-A', 'SITE-B', 2, 3, 1, 1, 6000, 20]]);
    } finally {
      await store.close();
    }
  });

  it('writes the fireflies of the open bucket at stop, and a restart inside the bucket adds to them', async () => {
    await runCollector((sink) => {
      sink(ev('started'));
      sink(ev('ended', { bytes: 1000, durationSeconds: 10, throughputBitsPerSecond: 800 }));
    });
    await runCollector((sink) => sink(ev('ended', { bytes: 24, durationSeconds: 2, throughputBitsPerSecond: 96, rttMs: 3 })));
    const store = createSqliteStore({ path: join(dir, 'scitags.sqlite') });
    try {
      const rows = await store.readFireflyRows(0);
      expect(rows).toEqual([
        {
          bucketStartMs: NOW - 5_000,
          bucketSeconds: 60,
          community: 2,
          activity: 3,
          ipVersion: 6,
          srcSite: 'CERN-PROD',
          dstSite: 'BNL-ATLAS',
          flowsStarted: 1,
          flowsEnded: 2,
          flowsExpired: 0,
          flowsWithoutStart: 0,
          bytes: 1024,
          durationSeconds: 12,
          throughputSum: 896,
          throughputCount: 2,
          throughputMax: 800,
          rttSum: 3,
          rttCount: 1,
          rttMax: 3,
          deliveryRateSum: 0,
          deliveryRateCount: 0,
          deliveryRateMax: null,
          retransmits: 0,
          durationHistogram: [0, 1, 1, 0, 0, 0],
          throughputHistogram: [2, 0, 0, 0, 0, 0],
        },
      ]);
    } finally {
      await store.close();
    }
  });
});
