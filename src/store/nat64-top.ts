/**
 * The per-bucket top N of IPv4 destinations behind NAT64 (issue 14; src/enrich/nat64-top.ts):
 * what a store keeps of it and how a range is summed for GET /api/v1/transition/nat64-destinations.
 */
import { hasMethods } from './types.js';

/** One listed address of one bucket. bytes / packets are scaled by the sampling rate. */
export interface Nat64TopRow {
  bucketStartMs: number;
  bucketSeconds: number;
  /** 1 = largest bytes in the bucket; at most transition.nat64TopN. */
  rank: number;
  /** Dotted-quad IPv4 address (the one embedded in the NAT64 address). */
  address: string;
  /** Upper bound of the address's bytes in the bucket (Space-Saving count). */
  bytes: number;
  /** Packets counted since the address took its counter (a lower bound). */
  packets: number;
  /** Over-estimation bound: bytes - errorBytes <= true bytes <= bytes. */
  errorBytes: number;
}

export interface Nat64TopQuery {
  fromMs: number;
  toMs: number;
  limit: number;
}

export interface Nat64Destination {
  address: string;
  bytes: number;
  packets: number;
  /** Sum of the per-bucket over-estimation bounds of the buckets that list the address. */
  errorBytes: number;
  /** Buckets of the range that list the address. */
  buckets: number;
}

export interface Nat64TopResult {
  destinations: Nat64Destination[];
  /** Distinct addresses listed in the range beyond `limit`. */
  omitted: number;
  /** Buckets of the range with a stored top list. */
  buckets: number;
}

/** What a store offers for the NAT64 destination top lists (both built-in stores). */
export interface Nat64TopStore {
  /** Replaces the whole top list of every bucket present in `rows`. */
  writeNat64TopRows(rows: Nat64TopRow[]): Promise<void>;
  queryNat64Top(query: Nat64TopQuery): Promise<Nat64TopResult>;
  /** Rows of buckets starting at or after fromMs (seeding the open buckets at start). */
  readNat64TopRows(fromMs: number): Promise<Nat64TopRow[]>;
}

export function isNat64TopStore<S extends object>(store: S): store is S & Nat64TopStore {
  return hasMethods(store, ['writeNat64TopRows', 'queryNat64Top', 'readNat64TopRows']);
}

/** Sums stored rows per address, largest bytes first (ties by address), the first `limit` kept. */
export function groupNat64Top(
  rows: readonly Pick<Nat64TopRow, 'bucketStartMs' | 'address' | 'bytes' | 'packets' | 'errorBytes'>[],
  limit: number,
): Nat64TopResult {
  const by = new Map<string, Nat64Destination>();
  const buckets = new Set<number>();
  for (const r of rows) {
    buckets.add(r.bucketStartMs);
    let d = by.get(r.address);
    if (d === undefined) by.set(r.address, (d = { address: r.address, bytes: 0, packets: 0, errorBytes: 0, buckets: 0 }));
    d.bytes += r.bytes;
    d.packets += r.packets;
    d.errorBytes += r.errorBytes;
    d.buckets++;
  }
  const all = [...by.values()].sort((a, b) => b.bytes - a.bytes || (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));
  return { destinations: all.slice(0, limit), omitted: Math.max(0, all.length - limit), buckets: buckets.size };
}
