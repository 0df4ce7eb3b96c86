import type { Config } from '../config/index.js';
import { Nat64TopAggregator } from '../enrich/nat64-top.js';
import type { Logger } from '../log.js';
import { isNat64TopStore } from '../store/nat64-top.js';
import type { TrafficStore } from '../store/types.js';

/**
 * The collector's NAT64 IPv4 top lists (transition.nat64TopN; issue 14): undefined when off
 * (0) or when the store keeps none. Same bucket width, grace, late window and tick as the
 * traffic aggregator.
 */
export function createNat64Top(config: Config, store: TrafficStore, now: () => number, log: Logger): Nat64TopAggregator | undefined {
  const n = config.transition.nat64TopN;
  if (!(n > 0) || !isNat64TopStore(store)) return undefined;
  const a = config.aggregation;
  return new Nat64TopAggregator(
    { capacity: n, bucketSeconds: a.bucketSeconds, graceSeconds: a.graceSeconds, lateWindowSeconds: a.lateWindowSeconds, tickSeconds: 1 },
    { now, store, log },
  );
}

/** Continues the buckets a previous run stored that are still open, then starts the write timer. */
export async function startNat64Top(top: Nat64TopAggregator, store: TrafficStore, fromMs: number, now: number, log: Logger): Promise<void> {
  if (isNat64TopStore(store)) {
    try {
      const seeded = top.seed(await store.readNat64TopRows(fromMs), now);
      if (seeded > 0) log.info(`continuing ${seeded} stored NAT64 top-list rows of buckets still open`, { rows: seeded });
    } catch (err) {
      log.warn(`could not read open NAT64 top lists back from the ${store.kind} store; a restart inside a bucket may undercount it`, {
        store: store.kind,
        err,
      });
    }
  }
  top.start();
}
