import { isNat64TopStore, type Nat64Destination } from '../store/nat64-top.js';
import { BadParameter, NotAvailable, parseBoundedTime } from './params.js';
import type { ApiDeps } from './types.js';

/** GET /api/v1/transition/nat64-destinations: the IPv4 services still reached through NAT64. */

export const DEFAULT_NAT64_DESTINATIONS_LIMIT = 20;

export interface Nat64DestinationsParams {
  from?: string;
  to?: string;
  limit?: string;
}

export interface Nat64DestinationsResponse {
  from: string;
  to: string;
  fromMs: number;
  toMs: number;
  bucketSeconds: number;
  /** Always true: the per-bucket lists come from a bounded sketch. */
  approximate: true;
  /** transition.nat64TopN: addresses kept per bucket. */
  topN: number;
  /** Buckets of the range with a stored list. */
  buckets: number;
  destinations: Nat64Destination[];
  /** Addresses listed in the range beyond `limit`. */
  omitted: number;
}

export async function nat64DestinationsQuery(
  deps: Pick<ApiDeps, 'store' | 'now' | 'bucketSeconds' | 'nat64TopN'>,
  q: Nat64DestinationsParams,
): Promise<Nat64DestinationsResponse> {
  const topN = deps.nat64TopN ?? 0;
  const nowMs = deps.now();
  const fromMs = parseBoundedTime(q.from ?? 'now-1h', nowMs, 'from');
  const toMs = parseBoundedTime(q.to ?? 'now', nowMs, 'to');
  if (toMs <= fromMs) throw new BadParameter(q.to === undefined ? 'from' : 'to', 'must be later than from');
  const max = Math.max(1, topN);
  const limit = q.limit === undefined ? Math.min(DEFAULT_NAT64_DESTINATIONS_LIMIT, max) : Number(q.limit);
  if (!(Number.isInteger(limit) && limit >= 1 && limit <= max)) {
    throw new BadParameter('limit', `must be an integer from 1 to ${max} (transition.nat64TopN)`);
  }
  const store = deps.store;
  if (topN === 0 || !isNat64TopStore(store)) {
    throw new NotAvailable('NAT64 destination lists are off (transition.nat64TopN = 0) or the store keeps none');
  }
  const r = await store.queryNat64Top({ fromMs, toMs, limit });
  return {
    from: new Date(fromMs).toISOString(),
    to: new Date(toMs).toISOString(),
    fromMs,
    toMs,
    bucketSeconds: deps.bucketSeconds,
    approximate: true,
    topN,
    buckets: r.buckets,
    destinations: r.destinations,
    omitted: r.omitted,
  };
}
