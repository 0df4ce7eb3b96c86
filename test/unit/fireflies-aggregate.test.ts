import { describe, expect, it } from 'vitest';
import { fireflyEvent } from '../support/firefly-events.js';
import type { FireflyFlowEvent } from '../../decoders/firefly/types.js';
import { FireflyAggregator, OVERFLOW_SITE } from '../../src/fireflies/aggregate.js';
import type { FireflyRow } from '../../src/store/types.js';

const MIN = 60_000;
const T0 = 1_700_000_040_000 - (1_700_000_040_000 % MIN); // a bucket start

function ev(over: Partial<FireflyFlowEvent>): FireflyFlowEvent {
  return fireflyEvent(over.kind ?? 'started', over.atMs ?? T0 + 1000, over);
}

function ended(over: Partial<FireflyFlowEvent>): FireflyFlowEvent {
  return ev({ kind: 'ended', ...over });
}

/** A store recording every write (a copy of the rows), optionally failing. */
function recorder() {
  const writes: FireflyRow[][] = [];
  let fail = 0;
  return {
    writes,
    failNext(n: number) {
      fail = n;
    },
    store: {
      kind: 'test',
      async writeFireflyRows(rows: FireflyRow[]) {
        if (fail > 0) {
          fail--;
          throw new Error('disk full');
        }
        writes.push(structuredClone(rows));
      },
    },
  };
}

const sorted = (rows: FireflyRow[]) => [...rows].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));

describe('FireflyAggregator', () => {
  it('sums the delivery rate of ended flows that carry one (sum, count, max); absent, negative or non-finite ones count as none', async () => {
    const r = recorder();
    const agg = new FireflyAggregator({ bucketSeconds: 60 }, { now: () => T0, store: r.store });
    agg.add(ended({ deliveryRateBitsPerSecond: 8_000_000 }));
    agg.add(ended({ deliveryRateBitsPerSecond: 2_000_000.5 }));
    agg.add(ended({ deliveryRateBitsPerSecond: undefined }));
    agg.add(ended({ deliveryRateBitsPerSecond: -1 }));
    agg.add(ended({ deliveryRateBitsPerSecond: Number.NaN }));
    agg.add(ended({ deliveryRateBitsPerSecond: 0 }));
    // Only ended flows carry a rate; a start's is never counted.
    agg.add(ev({ deliveryRateBitsPerSecond: 1e12 }));
    await agg.flush();
    const [row] = r.writes[0]!;
    expect([row!.flowsEnded, row!.deliveryRateSum, row!.deliveryRateCount, row!.deliveryRateMax]).toEqual([6, 10_000_000.5, 3, 8_000_000]);
  });

  it('sums started, ended, expired and the ended flows’ bytes, durations, throughput and rtt per bucket and key', async () => {
    const r = recorder();
    const agg = new FireflyAggregator({ bucketSeconds: 60, graceSeconds: 10, lateWindowSeconds: 120 }, { now: () => T0, store: r.store });
    agg.add(ev({}));
    agg.add(ev({ atMs: T0 + 2000 }));
    agg.add(ended({ atMs: T0 + 3000, bytes: 1000, durationSeconds: 10, throughputBitsPerSecond: 800, rttMs: 20, retransmits: 2 }));
    agg.add(ended({ atMs: T0 + 4000, bytes: 3000, durationSeconds: 2.5, throughputBitsPerSecond: 9600, rttMs: 10.5, withoutStart: true }));
    agg.add(ended({ atMs: T0 + 5000, bytes: 0, durationSeconds: 0, throughputBitsPerSecond: undefined }));
    agg.add(ev({ kind: 'expired', atMs: T0 + 59_999 }));
    // Another key (IPv4) and the next bucket.
    agg.add(ev({ ipVersion: 4, atMs: T0 + 100 }));
    agg.add(ended({ atMs: T0 + MIN, bytes: 7, durationSeconds: 1, throughputBitsPerSecond: 56 }));

    await agg.tick(T0 + MIN + 9_999); // bucket 0 is due only after its grace
    expect(r.writes).toHaveLength(0);
    await agg.tick(T0 + MIN + 10_000);
    expect(r.writes).toHaveLength(1);
    const base = {
      bucketStartMs: T0,
      bucketSeconds: 60,
      community: 2,
      activity: 3,
      srcSite: 'CERN-PROD',
      dstSite: 'BNL-ATLAS',
    };
    expect(sorted(r.writes[0]!)).toEqual(
      sorted([
        {
          ...base,
          ipVersion: 6,
          flowsStarted: 2,
          flowsEnded: 3,
          flowsExpired: 1,
          flowsWithoutStart: 1,
          bytes: 4000,
          durationSeconds: 12.5,
          throughputSum: 10400,
          throughputCount: 2,
          throughputMax: 9600,
          rttSum: 30.5,
          rttCount: 2,
          rttMax: 20,
          deliveryRateSum: 0,
          deliveryRateCount: 0,
          deliveryRateMax: null,
          retransmits: 2,
          // durations 10, 2.5 and 0 s; throughputs 800 and 9600 bit/s
          durationHistogram: [1, 1, 1, 0, 0, 0],
          throughputHistogram: [2, 0, 0, 0, 0, 0],
        },
        {
          ...base,
          ipVersion: 4,
          flowsStarted: 1,
          flowsEnded: 0,
          flowsExpired: 0,
          flowsWithoutStart: 0,
          bytes: 0,
          durationSeconds: 0,
          throughputSum: 0,
          throughputCount: 0,
          throughputMax: null,
          rttSum: 0,
          rttCount: 0,
          rttMax: null,
          deliveryRateSum: 0,
          deliveryRateCount: 0,
          deliveryRateMax: null,
          retransmits: 0,
          durationHistogram: [0, 0, 0, 0, 0, 0],
          throughputHistogram: [0, 0, 0, 0, 0, 0],
        },
      ]),
    );
    await agg.flush();
    expect(r.writes).toHaveLength(2);
    expect(r.writes[1]).toEqual([
      expect.objectContaining({ bucketStartMs: T0 + MIN, ipVersion: 6, flowsEnded: 1, bytes: 7, throughputSum: 56, throughputMax: 56 }),
    ]);
    expect(agg.stats()).toMatchObject({ events: 8, tooLate: 0, bucketsWritten: 2, rowsWritten: 3, writeFailures: 0 });
  });

  it('rewrites a bucket whole after a late event within the late window, drops and counts events past it', async () => {
    const r = recorder();
    const agg = new FireflyAggregator({ bucketSeconds: 60, graceSeconds: 10, lateWindowSeconds: 120 }, { now: () => T0, store: r.store });
    agg.add(ended({ bytes: 100, durationSeconds: 1 }));
    await agg.tick(T0 + MIN + 10_000);
    agg.add(ended({ atMs: T0 + 30_000, bytes: 50, durationSeconds: 2 })); // late, still accepted
    await agg.tick(T0 + MIN + 11_000);
    expect(r.writes.map((w) => w.map((x) => [x.bucketStartMs, x.flowsEnded, x.bytes, x.durationSeconds]))).toEqual([
      [[T0, 1, 100, 1]],
      [[T0, 2, 150, 3]], // the whole total again: the store replaces it
    ]);
    // Past grace + late window (T0 + 60 s + 10 s + 120 s): closed.
    await agg.tick(T0 + MIN + 130_000);
    agg.add(ended({ atMs: T0 + 5000, bytes: 999 }));
    await agg.flush();
    expect(r.writes).toHaveLength(2);
    expect(agg.stats()).toMatchObject({ events: 3, tooLate: 1, lateUpdates: 1, openBuckets: 0, liveKeys: 0 });
  });

  it('buckets by receive time: a replay of old fireflies arriving now is not late', async () => {
    const r = recorder();
    const agg = new FireflyAggregator({ bucketSeconds: 60 }, { now: () => T0, store: r.store });
    await agg.tick(T0);
    // The flow table reports the receive time (atMs), whatever the firefly's own start-time says.
    agg.add(ended({ atMs: T0 + 1000, durationSeconds: 3600 }));
    await agg.flush();
    expect(r.writes[0]!.map((x) => [x.bucketStartMs, x.flowsEnded, x.durationSeconds])).toEqual([[T0, 1, 3600]]);
    expect(agg.stats().tooLate).toBe(0);
  });

  it('folds new keys past maxLiveKeys into the id pair’s overflow key (sites "other"), counted', async () => {
    const r = recorder();
    const agg = new FireflyAggregator({ bucketSeconds: 60, maxLiveKeys: 2 }, { now: () => T0, store: r.store });
    agg.add(ev({ srcSite: 'A', dstSite: 'B' }));
    agg.add(ev({ srcSite: 'A', dstSite: 'C' }));
    agg.add(ev({ srcSite: 'A', dstSite: 'D' })); // folded
    agg.add(ev({ srcSite: 'A', dstSite: 'E' })); // folded into the same overflow key
    agg.add(ev({ srcSite: 'A', dstSite: 'B' })); // existing key: not folded
    agg.add(ev({ experimentId: 7, srcSite: 'X', dstSite: 'Y' })); // another id pair: its own overflow key
    await agg.flush();
    const got = r.writes[0]!.map((x) => [x.community, x.srcSite, x.dstSite, x.flowsStarted]).sort();
    expect(got).toEqual([
      [2, 'A', 'B', 2],
      [2, 'A', 'C', 1],
      [2, OVERFLOW_SITE, OVERFLOW_SITE, 2],
      [7, OVERFLOW_SITE, OVERFLOW_SITE, 1],
    ]);
    expect(agg.stats()).toMatchObject({ foldedByCardinality: 3, liveKeys: 4 });
  });

  it('keeps buckets whose write failed and writes them on the next tick; flush rejects when the store fails', async () => {
    const r = recorder();
    const agg = new FireflyAggregator({ bucketSeconds: 60 }, { now: () => T0, store: r.store });
    agg.add(ev({}));
    r.failNext(1);
    await agg.tick(T0 + MIN + 10_000);
    expect(agg.stats()).toMatchObject({ writeFailures: 1, consecutiveWriteFailures: 1, lastWriteError: 'disk full', dirtyBuckets: 1 });
    await agg.tick(T0 + MIN + 11_000);
    expect(r.writes).toHaveLength(1);
    expect(agg.stats()).toMatchObject({ writeFailures: 1, consecutiveWriteFailures: 0, dirtyBuckets: 0 });
    agg.add(ev({ atMs: T0 + MIN + 12_000 }));
    r.failNext(1);
    await expect(agg.flush()).rejects.toThrow('disk full');
  });

  it('seeds the open buckets with the stored rows so a restart adds to them; rows of closed buckets are skipped', async () => {
    const r = recorder();
    const agg = new FireflyAggregator({ bucketSeconds: 60, graceSeconds: 10, lateWindowSeconds: 120 }, { now: () => T0, store: r.store });
    const stored: FireflyRow = {
      bucketStartMs: T0,
      bucketSeconds: 60,
      community: 2,
      activity: 3,
      ipVersion: 6,
      srcSite: 'CERN-PROD',
      dstSite: 'BNL-ATLAS',
      flowsStarted: 5,
      flowsEnded: 4,
      flowsExpired: 1,
      flowsWithoutStart: 0,
      bytes: 4000,
      durationSeconds: 40,
      throughputSum: 100,
      throughputCount: 1,
      throughputMax: 100,
      rttSum: 0,
      rttCount: 0,
      rttMax: null,
      deliveryRateSum: 0,
      deliveryRateCount: 0,
      deliveryRateMax: null,
      retransmits: 0,
      durationHistogram: [0, 0, 4, 0, 0, 0],
      throughputHistogram: [1, 0, 0, 0, 0, 0],
    };
    const old = { ...stored, bucketStartMs: T0 - 10 * MIN };
    expect(agg.seed([stored, old], T0 + 30_000)).toBe(1);
    agg.add(ended({ atMs: T0 + 31_000, bytes: 1000, durationSeconds: 10, throughputBitsPerSecond: 300 }));
    await agg.flush();
    expect(r.writes[0]).toEqual([
      {
        ...stored,
        flowsEnded: 5,
        bytes: 5000,
        durationSeconds: 50,
        throughputSum: 400,
        throughputCount: 2,
        throughputMax: 300,
        durationHistogram: [0, 0, 5, 0, 0, 0],
        throughputHistogram: [2, 0, 0, 0, 0, 0],
      },
    ]);
  });

  it('counts ended flows in the duration and throughput bins at their boundaries; non-finite or negative values never poison the sums', async () => {
    const r = recorder();
    const agg = new FireflyAggregator({ bucketSeconds: 60 }, { now: () => T0, store: r.store });
    for (const d of [0, 0.999, 1, 59.9, 60, 3599, 3600, 1e6]) agg.add(ended({ durationSeconds: d }));
    for (const t of [999_999, 1e6, 1e10, 5e10]) agg.add(ended({ durationSeconds: 1, throughputBitsPerSecond: t }));
    agg.add(ended({ durationSeconds: NaN, bytes: -5, throughputBitsPerSecond: Infinity, rttMs: -1, retransmits: NaN }));
    agg.add(ended({ durationSeconds: 0, bytes: 10.6, retransmits: 2.4 }));
    await agg.flush();
    const [row] = r.writes[0]!;
    expect(row!.durationHistogram).toEqual([4, 1 + 4, 1, 1, 1, 2]);
    expect(row!.throughputHistogram).toEqual([1, 1, 0, 0, 0, 2]);
    expect([row!.flowsEnded, row!.bytes, row!.durationSeconds, row!.throughputCount, row!.rttCount, row!.retransmits]).toEqual([
      14,
      11,
      0 + 0.999 + 1 + 59.9 + 60 + 3599 + 3600 + 1e6 + 4,
      4,
      0,
      2,
    ]);
  });
});
