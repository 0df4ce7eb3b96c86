import type { FireflyFlowEvent } from '../../decoders/firefly/types.js';

/**
 * A flow-table event for the firefly aggregation tests: `kind` at `atMs`, for experiment 2,
 * activity 3, IPv6, CERN-PROD -> BNL-ATLAS, with no ended-flow figures unless `over` sets them.
 */
export function fireflyEvent(kind: FireflyFlowEvent['kind'], atMs: number, over: Partial<FireflyFlowEvent> = {}): FireflyFlowEvent {
  return {
    kind,
    atMs,
    experimentId: 2,
    activityId: 3,
    ipVersion: 6,
    srcSite: 'CERN-PROD',
    dstSite: 'BNL-ATLAS',
    durationSeconds: 0,
    bytes: 0,
    throughputBitsPerSecond: undefined,
    rttMs: undefined,
    deliveryRateBitsPerSecond: undefined,
    retransmits: undefined,
    withoutStart: false,
    ...over,
  };
}
