/** Stored rows for store and API tests, with plausible defaults for whatever a test does not set. */
import type { FireflyRow } from '../../src/store/types.js';

/** One minute's firefly sums of one ended ATLAS (2, 3) flow from CERN-PROD to BNL-ATLAS over IPv6, then `over`. */
export function fireflyRow(bucketStartMs: number, over: Partial<FireflyRow> = {}): FireflyRow {
  return {
    bucketStartMs,
    bucketSeconds: 60,
    community: 2,
    activity: 3,
    ipVersion: 6,
    srcSite: 'CERN-PROD',
    dstSite: 'BNL-ATLAS',
    flowsStarted: 1,
    flowsEnded: 1,
    flowsExpired: 0,
    flowsWithoutStart: 0,
    bytes: 1000,
    durationSeconds: 10,
    throughputSum: 800,
    throughputCount: 1,
    throughputMax: 800,
    rttSum: 0,
    rttCount: 0,
    rttMax: null,
    deliveryRateSum: 0,
    deliveryRateCount: 0,
    deliveryRateMax: null,
    retransmits: 0,
    durationHistogram: [0, 0, 1, 0, 0, 0],
    throughputHistogram: [1, 0, 0, 0, 0, 0],
    ...over,
  };
}
