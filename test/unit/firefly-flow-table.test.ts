/**
 * The firefly flow table: every rule with exact values (README "Fireflies: flow tracking").
 * Time is injected: receive times are arguments and expiry runs when tick() is called.
 */
import { describe, expect, it } from 'vitest';
import type { Firefly, FireflyFlowEvent } from '../../decoders/firefly/types.js';
import { durationSecondsOf, FlowTable, flowKey, throughputOf, type FlowTableConfig } from '../../src/fireflies/flow-table.js';
import { FireflyTracker } from '../../src/fireflies/tracker.js';
import { createFireflyTracking } from '../../src/fireflies/index.js';
import { loadConfig } from '../../src/config/index.js';
import { silentLogger } from '../../src/log.js';

const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);

function firefly(over: Partial<Firefly> = {}): Firefly {
  return {
    state: 'start',
    startMs: T0,
    endMs: undefined,
    currentMs: undefined,
    ipVersion: 6,
    srcAddr: '2001:db8:1::10',
    dstAddr: '2001:db8:2::20',
    protocol: 'tcp',
    srcPort: 40000,
    dstPort: 1094,
    experimentId: 2,
    activityId: 1,
    application: undefined,
    receivedBytes: undefined,
    sentBytes: undefined,
    netlink: undefined,
    framing: 'rfc5424',
    host: undefined,
    appName: undefined,
    ...over,
  };
}

/** XRootD's second copy: source and destination swapped. */
const swapped = (f: Firefly): Firefly => ({ ...f, srcAddr: f.dstAddr, dstAddr: f.srcAddr, srcPort: f.dstPort, dstPort: f.srcPort });

const SITES: Record<string, string> = { '2001:db8:1::10': 'SITE-A', '2001:db8:2::20': 'SITE-B' };

function table(over: Partial<FlowTableConfig> = {}): { t: FlowTable; events: FireflyFlowEvent[] } {
  const events: FireflyFlowEvent[] = [];
  const t = new FlowTable(
    { maxFlows: 100, flowTimeoutSeconds: 3600, duplicateWindowSeconds: 60, ...over },
    { siteOf: (a) => SITES[a] ?? 'unknown', emit: (e) => events.push(e) },
  );
  return { t, events };
}

const base = {
  experimentId: 2,
  activityId: 1,
  ipVersion: 6,
  srcSite: 'SITE-A',
  dstSite: 'SITE-B',
} as const;
const noEnd = {
  durationSeconds: 0,
  bytes: 0,
  throughputBitsPerSecond: undefined,
  rttMs: undefined,
  deliveryRateBitsPerSecond: undefined,
  retransmits: undefined,
};

describe('flow key', () => {
  it('is the same in both directions and differs by protocol and port', () => {
    const f = firefly();
    expect(flowKey(f)).toBe('tcp|2001:db8:1::10 40000|2001:db8:2::20 1094');
    expect(flowKey(swapped(f))).toBe(flowKey(f));
    expect(flowKey({ ...f, protocol: 'udp' })).toBe('udp|2001:db8:1::10 40000|2001:db8:2::20 1094');
    expect(flowKey({ ...f, srcPort: 40001 })).not.toBe(flowKey(f));
  });
});

describe('definitions', () => {
  it('duration is end-time - start-time in seconds, 0 when missing or negative', () => {
    expect(durationSecondsOf(T0, T0 + 12_500)).toBe(12.5);
    expect(durationSecondsOf(T0, undefined)).toBe(0);
    expect(durationSecondsOf(T0, T0 - 1000)).toBe(0);
    expect(durationSecondsOf(T0, T0)).toBe(0);
  });

  it('throughput is the larger direction over the duration in bit/s (firefly-collector: max(received, sent) / duration)', () => {
    expect(throughputOf(1_000_000, 250, 10)).toBe(800_000);
    expect(throughputOf(250, 1_000_000, 10)).toBe(800_000);
    expect(throughputOf(undefined, 500, 2)).toBe(2000);
    expect(throughputOf(undefined, undefined, 10)).toBeUndefined();
    expect(throughputOf(100, 100, 0)).toBeUndefined();
  });
});

describe('start, ongoing, end', () => {
  it('the delivery rate is the latest netlink deliveryRate of the flow, in bit/s; an end without start uses its own', () => {
    const { t, events } = table();
    const netlink = (rate: number | undefined) => ({ rttMs: undefined, deliveryRateBytesPerSecond: rate, retransmits: undefined });
    t.accept(firefly({ netlink: netlink(250_000) }), T0, '192.0.2.1');
    t.accept(firefly({ state: 'ongoing', netlink: netlink(undefined) }), T0 + 1000, '192.0.2.1');
    t.accept(firefly({ state: 'end', endMs: T0 + 2000, netlink: netlink(1_500_000) }), T0 + 2000, '192.0.2.1');
    // Another 5-tuple: the end alone, its own netlink.
    t.accept(firefly({ state: 'end', srcPort: 40001, endMs: T0 + 4000, netlink: netlink(3) }), T0 + 3000, '192.0.2.1');
    // And one with no netlink at all.
    t.accept(firefly({ state: 'end', srcPort: 40002, endMs: T0 + 4000 }), T0 + 3000, '192.0.2.1');
    expect(events.map((e) => [e.kind, e.deliveryRateBitsPerSecond])).toEqual([
      ['started', undefined],
      ['ended', 12_000_000],
      ['ended', 24],
      ['ended', undefined],
    ]);
  });

  it('a start then an end is one started and one ended flow with duration, bytes, throughput and netlink', () => {
    const { t, events } = table();
    t.accept(firefly(), T0 + 5, '192.0.2.1');
    t.accept(
      firefly({
        state: 'ongoing',
        receivedBytes: 100,
        sentBytes: 4_000_000,
        netlink: { rttMs: 12.5, deliveryRateBytesPerSecond: 1e6, retransmits: 3 },
      }),
      T0 + 10_000,
      '192.0.2.1',
    );
    t.accept(firefly({ state: 'end', endMs: T0 + 20_000, receivedBytes: 200, sentBytes: 10_000_000 }), T0 + 20_010, '192.0.2.1');
    expect(events).toEqual([
      { kind: 'started', atMs: T0 + 5, ...base, ...noEnd, withoutStart: false },
      {
        kind: 'ended',
        atMs: T0 + 20_010,
        ...base,
        durationSeconds: 20,
        bytes: 10_000_200,
        // 10,000,000 bytes sent (the larger direction) * 8 / 20 s
        throughputBitsPerSecond: 4_000_000,
        // The end carried no netlink: the ongoing's stays (delivery rate 1e6 bytes/s in bit/s).
        rttMs: 12.5,
        deliveryRateBitsPerSecond: 8_000_000,
        retransmits: 3,
        withoutStart: false,
      },
    ]);
    expect(t.stats()).toMatchObject({
      started: 1,
      ended: 1,
      expired: 0,
      withoutStart: 0,
      duplicates: 0,
      evicted: 0,
      flows: 0,
      rememberedEnds: 1,
    });
  });

  it("XRootD's swapped copies are one flow: the second start and the second end are duplicates", () => {
    const { t, events } = table();
    const start = firefly();
    const end = firefly({ state: 'end', endMs: T0 + 4000, receivedBytes: 0, sentBytes: 2_000_000 });
    t.accept(start, T0, '192.0.2.1');
    t.accept(swapped(start), T0 + 1, '192.0.2.1');
    t.accept(end, T0 + 4000, '192.0.2.1');
    t.accept(swapped({ ...end, receivedBytes: 2_000_000, sentBytes: 0 }), T0 + 4001, '192.0.2.1');
    expect(events.map((e) => [e.kind, e.srcSite, e.dstSite, e.bytes, e.durationSeconds, e.throughputBitsPerSecond])).toEqual([
      ['started', 'SITE-A', 'SITE-B', 0, 0, undefined],
      // 2,000,000 bytes once (not 4,000,000), 4 s, 4 Mbit/s
      ['ended', 'SITE-A', 'SITE-B', 2_000_000, 4, 4_000_000],
    ]);
    expect(t.stats()).toMatchObject({ started: 1, ended: 1, duplicates: 2, flows: 0 });
  });

  it('both ends reporting (different exporters) count once, late ongoing and start copies too', () => {
    const { t, events } = table();
    t.accept(firefly(), T0, '192.0.2.1');
    t.accept(swapped(firefly()), T0 + 50, '192.0.2.2');
    t.accept(firefly({ state: 'end', endMs: T0 + 1000, sentBytes: 10, receivedBytes: 5 }), T0 + 1000, '192.0.2.1');
    t.accept(swapped(firefly({ state: 'ongoing', sentBytes: 5, receivedBytes: 10 })), T0 + 1100, '192.0.2.2');
    t.accept(swapped(firefly({ state: 'end', endMs: T0 + 1200, sentBytes: 5, receivedBytes: 10 })), T0 + 1200, '192.0.2.2');
    t.accept(swapped(firefly()), T0 + 1300, '192.0.2.2');
    expect(events.map((e) => [e.kind, e.bytes])).toEqual([
      ['started', 0],
      ['ended', 15],
    ]);
    expect(t.stats()).toMatchObject({ started: 1, ended: 1, duplicates: 4 });
  });

  it('an end without a seen start is ended withoutStart, duration from its own start-time and end-time', () => {
    const { t, events } = table();
    t.accept(
      firefly({ state: 'end', startMs: T0 - 90_000, endMs: T0 + 30_000, receivedBytes: 3_000_000, sentBytes: 1000 }),
      T0 + 30_100,
      '192.0.2.1',
    );
    expect(events).toEqual([
      {
        kind: 'ended',
        atMs: T0 + 30_100,
        ...base,
        durationSeconds: 120,
        bytes: 3_001_000,
        throughputBitsPerSecond: 200_000,
        rttMs: undefined,
        retransmits: undefined,
        withoutStart: true,
      },
    ]);
    expect(t.stats()).toMatchObject({ started: 0, ended: 1, withoutStart: 1 });
  });

  it('an ongoing opens a flow without start (no started event); its start arriving later is the start, not a duplicate', () => {
    const { t, events } = table();
    t.accept(firefly({ state: 'ongoing', sentBytes: 7 }), T0 + 10, '192.0.2.1');
    expect(events).toEqual([]);
    t.accept(firefly(), T0 + 20, '192.0.2.1');
    t.accept(firefly({ state: 'end', endMs: T0 + 2000 }), T0 + 2000, '192.0.2.1');
    expect(events.map((e) => [e.kind, e.withoutStart, e.bytes])).toEqual([
      ['started', false, 0],
      ['ended', false, 7],
    ]);
    expect(t.stats()).toMatchObject({ started: 1, ended: 1, duplicates: 0, withoutStart: 0 });
  });

  it('a flow seen only through ongoing fireflies expires withoutStart', () => {
    const { t, events } = table({ flowTimeoutSeconds: 10 });
    t.accept(firefly({ state: 'ongoing', sentBytes: 5 }), T0, '192.0.2.1');
    t.tick(T0 + 10_000);
    expect(events).toEqual([{ kind: 'expired', atMs: T0 + 10_000, ...base, ...noEnd, withoutStart: true }]);
    expect(t.stats()).toMatchObject({ started: 0, expired: 1, withoutStart: 0, flows: 0 });
  });

  it('an ongoing then an end with no start is one ended withoutStart', () => {
    const { t, events } = table();
    t.accept(firefly({ state: 'ongoing' }), T0, '192.0.2.1');
    t.accept(firefly({ state: 'end', endMs: T0 + 1000 }), T0 + 1000, '192.0.2.1');
    expect(events.map((e) => [e.kind, e.withoutStart])).toEqual([['ended', true]]);
    expect(t.stats()).toMatchObject({ ended: 1, withoutStart: 1 });
  });

  it('a start after the duplicate window of a remembered end is a new flow on a reused 5-tuple', () => {
    const { t, events } = table();
    t.accept(firefly(), T0, '192.0.2.1');
    t.accept(firefly({ state: 'end', endMs: T0 + 1000 }), T0 + 1000, '192.0.2.1');
    // Same 5-tuple, started 2 minutes later (window 60 s), received while the end is remembered.
    t.accept(firefly({ startMs: T0 + 120_000 }), T0 + 30_000, '192.0.2.1');
    expect(events.map((e) => e.kind)).toEqual(['started', 'ended', 'started']);
    expect(t.stats()).toMatchObject({ started: 2, duplicates: 0, flows: 1 });
  });

  it('a start of a live flow with a start-time past the window expires the old flow and opens a new one', () => {
    const { t, events } = table();
    t.accept(firefly(), T0, '192.0.2.1');
    t.accept(firefly({ startMs: T0 + 61_000 }), T0 + 61_000, '192.0.2.1');
    expect(events.map((e) => [e.kind, e.atMs])).toEqual([
      ['started', T0],
      ['expired', T0 + 61_000],
      ['started', T0 + 61_000],
    ]);
    expect(t.stats()).toMatchObject({ started: 2, expired: 1, duplicates: 0, flows: 1 });
  });

  it('a second end on a remembered 5-tuple is a duplicate only when its start-time and end-time are a copy', () => {
    const { t, events } = table();
    t.accept(firefly(), T0, '192.0.2.1');
    t.accept(firefly({ state: 'end', endMs: T0 + 1000, sentBytes: 100 }), T0 + 1000, '192.0.2.1');
    // The other host's copy, its clock 2 s behind: within the window on both times.
    t.accept(swapped(firefly({ state: 'end', startMs: T0 - 2000, endMs: T0 - 1000, receivedBytes: 100 })), T0 + 1100, '192.0.2.2');
    expect(t.stats()).toMatchObject({ ended: 1, duplicates: 1 });
    // A new transfer on the same 5-tuple whose start was not seen (a replay: received at once).
    t.accept(firefly({ state: 'end', startMs: T0 + 70_000, endMs: T0 + 75_000, sentBytes: 40 }), T0 + 1200, '192.0.2.1');
    // Start-time within the window of the now remembered end (T0 + 70 s) but ending 200 s later: another transfer.
    t.accept(firefly({ state: 'end', startMs: T0 + 100_000, endMs: T0 + 275_000, sentBytes: 7 }), T0 + 1300, '192.0.2.1');
    // XRootD's swapped copy of that last end: a duplicate.
    t.accept(swapped(firefly({ state: 'end', startMs: T0 + 100_000, endMs: T0 + 275_000, receivedBytes: 7 })), T0 + 1301, '192.0.2.1');
    expect(events.map((e) => [e.kind, e.atMs, e.withoutStart, e.durationSeconds, e.bytes])).toEqual([
      ['started', T0, false, 0, 0],
      ['ended', T0 + 1000, false, 1, 100],
      ['ended', T0 + 1200, true, 5, 40],
      ['ended', T0 + 1300, true, 175, 7],
    ]);
    expect(t.stats()).toMatchObject({ started: 1, ended: 3, withoutStart: 2, duplicates: 2, rememberedEnds: 1, flows: 0 });
  });

  it('remembered ends are forgotten after the duplicate window: a later end is a new end without start', () => {
    const { t, events } = table();
    const end = firefly({ state: 'end', endMs: T0 + 1000 });
    t.accept(end, T0 + 1000, '192.0.2.1');
    t.tick(T0 + 60_999);
    t.accept(end, T0 + 61_000, '192.0.2.1');
    expect(t.stats()).toMatchObject({ ended: 1, duplicates: 1, rememberedEnds: 1 });
    t.tick(T0 + 1000 + 60_000);
    expect(t.stats().rememberedEnds).toBe(0);
    t.accept(end, T0 + 62_000, '192.0.2.1');
    expect(events.map((e) => e.kind)).toEqual(['ended', 'ended']);
    expect(t.stats()).toMatchObject({ ended: 2, withoutStart: 2, duplicates: 1 });
  });
});

describe('expiry (injected clock)', () => {
  it('a flow with no firefly for flowTimeoutSeconds is expired at the tick, not before', () => {
    const { t, events } = table({ flowTimeoutSeconds: 600 });
    t.accept(firefly(), T0, '192.0.2.1');
    t.accept(firefly({ srcPort: 40001 }), T0 + 100_000, '192.0.2.1');
    // An ongoing keeps the first flow alive.
    t.accept(firefly({ state: 'ongoing' }), T0 + 300_000, '192.0.2.1');
    t.tick(T0 + 699_999);
    expect(events.map((e) => e.kind)).toEqual(['started', 'started']);
    t.tick(T0 + 700_000);
    expect(events.slice(2)).toEqual([{ kind: 'expired', atMs: T0 + 700_000, ...base, ...noEnd, withoutStart: false }]);
    t.tick(T0 + 900_000);
    expect(events.slice(3).map((e) => [e.kind, e.atMs])).toEqual([['expired', T0 + 900_000]]);
    expect(t.stats()).toMatchObject({ started: 2, expired: 2, flows: 0, exporters: 0 });
    // An end after the expiry is an end without start (the flow is gone).
    t.accept(firefly({ state: 'end', endMs: T0 + 1_000_000 }), T0 + 1_000_000, '192.0.2.1');
    expect(t.stats()).toMatchObject({ ended: 1, withoutStart: 1 });
  });
});

describe('bounded: fair-share eviction', () => {
  it('a single exporter evicts its own least recently updated flow first', () => {
    const { t, events } = table({ maxFlows: 3 });
    for (let p = 1; p <= 3; p++) t.accept(firefly({ srcPort: p }), T0 + p, '192.0.2.1');
    t.accept(firefly({ state: 'ongoing', srcPort: 1 }), T0 + 10, '192.0.2.1'); // port 1 is now the most recent
    t.accept(firefly({ srcPort: 4 }), T0 + 11, '192.0.2.1');
    const expired = events.filter((e) => e.kind === 'expired');
    expect(expired.map((e) => e.atMs)).toEqual([T0 + 2]); // port 2, updated at T0 + 2
    expect(t.stats()).toMatchObject({ started: 4, evicted: 1, expired: 0, flows: 3 });
    // Port 1 survived: its end is an end with a start.
    t.accept(firefly({ state: 'end', srcPort: 1, endMs: T0 + 20 }), T0 + 20, '192.0.2.1');
    expect(t.stats()).toMatchObject({ ended: 1, withoutStart: 0 });
  });

  it('a flooding exporter evicts only its own flows, never those of a host holding fewer', () => {
    const { t } = table({ maxFlows: 10 });
    for (let p = 1; p <= 3; p++) t.accept(firefly({ srcPort: p, dstAddr: '2001:db8:9::1' }), T0 + p, '192.0.2.7');
    for (let p = 1; p <= 1000; p++) t.accept(firefly({ srcPort: 10_000 + p }), T0 + 100 + p, '192.0.2.66');
    expect(t.flowsOf('192.0.2.7')).toBe(3);
    expect(t.flowsOf('192.0.2.66')).toBe(7);
    expect(t.stats()).toMatchObject({ flows: 10, evicted: 993, started: 1003 });
    // A newcomer holding fewer takes from the largest holder, not from the small one.
    t.accept(firefly({ srcPort: 5, dstAddr: '2001:db8:9::2' }), T0 + 5000, '192.0.2.8');
    expect([t.flowsOf('192.0.2.7'), t.flowsOf('192.0.2.66'), t.flowsOf('192.0.2.8')]).toEqual([3, 6, 1]);
    expect(t.stats().exporters).toBe(3);
  });

  it('with equal holders the newcomer evicts its own, and maxFlows 1 works', () => {
    const { t, events } = table({ maxFlows: 2 });
    t.accept(firefly({ srcPort: 1 }), T0 + 1, 'a');
    t.accept(firefly({ srcPort: 2 }), T0 + 2, 'b');
    t.accept(firefly({ srcPort: 3 }), T0 + 3, 'b');
    expect([t.flowsOf('a'), t.flowsOf('b')]).toEqual([1, 1]);
    expect(events.filter((e) => e.kind === 'expired').map((e) => e.atMs)).toEqual([T0 + 2]);
    const one = table({ maxFlows: 1 });
    one.t.accept(firefly({ srcPort: 1 }), T0, 'a');
    one.t.accept(firefly({ srcPort: 2 }), T0 + 1, 'a');
    expect(one.t.stats()).toMatchObject({ flows: 1, evicted: 1, exporters: 1 });
    expect(one.t.flowsOf('a')).toBe(1);
  });

  it('estimates its memory from the entries held', () => {
    const { t } = table();
    t.accept(firefly(), T0, 'a');
    t.accept(firefly({ srcPort: 2, state: 'end', endMs: T0 + 1 }), T0, 'a');
    expect(t.stats().estimatedBytes).toBe(480 + 200);
  });
});

describe('FireflyTracker', () => {
  it('fans events out with sites, folds ::ffff: exporters, and a throwing listener stops nothing', () => {
    const tracker = new FireflyTracker(
      { maxFlows: 10, flowTimeoutSeconds: 60, duplicateWindowSeconds: 60 },
      { siteOf: (a) => (a.startsWith('2001:db8:1:') ? 'SITE-A' : 'unknown'), log: silentLogger() },
    );
    const seen: FireflyFlowEvent[] = [];
    tracker.onEvent(() => {
      throw new Error('boom');
    });
    tracker.onEvent((e) => seen.push(e));
    tracker.accept(firefly(), T0, '::ffff:192.0.2.1');
    tracker.accept(firefly({ srcPort: 2 }), T0, '192.0.2.1');
    expect(tracker.stats()).toMatchObject({ flows: 2, exporters: 1 });
    tracker.tick(T0 + 60_000);
    expect(seen.map((e) => [e.kind, e.srcSite, e.dstSite])).toEqual([
      ['started', 'SITE-A', 'unknown'],
      ['started', 'SITE-A', 'unknown'],
      ['expired', 'SITE-A', 'unknown'],
      ['expired', 'SITE-A', 'unknown'],
    ]);
    expect(tracker.stats()).toMatchObject({ started: 2, expired: 2, exporters: 0 });
  });
});

describe('createFireflyTracking (from the configuration)', () => {
  it('builds the site service and the tracker from sites.* and fireflies.*', () => {
    const yaml = [
      'sites:',
      '  prefixes:',
      '    SITE-A: ["2001:db8:1::/48"]',
      '    SITE-B: ["2001:db8:2::/48", 198.51.100.0/24]',
      'fireflies:',
      '  maxFlows: 1',
      '  flowTimeoutSeconds: 30',
    ].join('\n');
    const { config } = loadConfig({
      argv: ['--config', 'c.yaml'],
      env: {},
      readFile: (path) => {
        if (path !== 'c.yaml') throw new Error(`ENOENT ${path}`);
        return yaml;
      },
    });
    const { sites, tracker } = createFireflyTracking(config, { now: () => T0, log: silentLogger() });
    const seen: FireflyFlowEvent[] = [];
    tracker.onEvent((e) => seen.push(e));
    tracker.accept(firefly(), T0, '192.0.2.1');
    tracker.accept(firefly({ srcPort: 2, dstAddr: '2001:db8:3::1' }), T0 + 1, '192.0.2.1'); // maxFlows 1: evicts the first
    tracker.tick(T0 + 30_001);
    expect(seen.map((e) => [e.kind, e.srcSite, e.dstSite, e.atMs])).toEqual([
      ['started', 'SITE-A', 'SITE-B', T0],
      ['expired', 'SITE-A', 'SITE-B', T0],
      ['started', 'SITE-A', 'unknown', T0 + 1],
      ['expired', 'SITE-A', 'unknown', T0 + 30_001],
    ]);
    expect(tracker.stats()).toMatchObject({ started: 2, evicted: 1, expired: 1 });
    expect(sites.siteOf('198.51.100.1')).toBe('SITE-B');
    expect(sites.status()).toMatchObject({ configuredPrefixes: 3, cricFrom: 'none' });
  });
});
