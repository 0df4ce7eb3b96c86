import { groupRows } from '../store/group.js';
import { SeriesBuilder } from '../store/series-builder.js';
import type { TrafficQuery, TrafficQueryResult, TrafficRow, TrafficStore } from '../store/types.js';

/**
 * GET /api/v1/traffic?provisional=true: the stored rows, with the buckets the aggregator has
 * not written yet (the open bucket, and closed ones changed since their last write) taken from
 * memory instead of the store. Those buckets are whole in memory (a bucket is written whole,
 * and at start the open buckets are seeded with what the store holds), so the answer counts
 * each row once: the store answers [from, first unwritten bucket) by its own query, and the
 * rest ([that bucket, to): stored rows of written buckets, memory rows of the others) is
 * grouped by the same code the InfluxDB store uses (groupRows). The two parts meet at a
 * bucket boundary; a step spanning it gets the sum of both.
 */
export interface ProvisionalResult extends TrafficQueryResult {
  /** Step starts (ms) whose point includes a bucket not yet in the store. */
  provisionalSteps: Set<number>;
}

/** Adds two answers of the same query over disjoint buckets: series by group, points by time. */
export function mergeResults(a: TrafficQueryResult, b: TrafficQueryResult, q: TrafficQuery): TrafficQueryResult {
  const out = new SeriesBuilder(q.stepSeconds);
  for (const s of [...a.series, ...b.series]) {
    // The key in groupBy order: the two answers may list a group's dimensions in another order.
    const key = JSON.stringify(q.groupBy.map((d) => s.group[d] ?? null));
    for (const p of s.points) out.add(s.group, p.timeMs, p, key);
  }
  out.count(a.totals);
  out.count(b.totals);
  return out.result();
}

export async function queryWithProvisional(
  store: Pick<TrafficStore, 'queryTraffic' | 'readRows'>,
  unwritten: readonly TrafficRow[],
  q: TrafficQuery,
): Promise<ProvisionalResult> {
  const open = unwritten.filter((r) => r.bucketStartMs >= q.fromMs && r.bucketStartMs < q.toMs);
  if (open.length === 0) return { ...(await store.queryTraffic(q)), provisionalSteps: new Set() };
  const openBuckets = new Set(open.map((r) => r.bucketStartMs));
  const cut = Math.min(...openBuckets);
  const stepMs = Math.round(q.stepSeconds * 1000);
  const provisionalSteps = new Set([...openBuckets].map((t) => t - (t % stepMs)));
  const head: TrafficQueryResult =
    cut > q.fromMs ? await store.queryTraffic({ ...q, toMs: cut }) : { series: [], totals: { bytes: 0, packets: 0, records: 0 } };
  const written = (await store.readRows(cut)).filter((r) => r.bucketStartMs < q.toMs && !openBuckets.has(r.bucketStartMs));
  const tail = groupRows([...written, ...open], { ...q, fromMs: cut });
  return { ...mergeResults(head, tail, q), provisionalSteps };
}
