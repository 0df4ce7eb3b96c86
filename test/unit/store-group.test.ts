import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { groupRows, type StoredRow } from '../../src/store/group.js';
import { createSqliteStore } from '../../src/store/sqlite/index.js';
import type { GroupByDimension, TrafficClass, TrafficQuery, TrafficRow } from '../../src/store/types.js';

/**
 * The in-code query semantics (used by the InfluxDB store) must answer exactly like the
 * SQLite store's SQL on the same rows, for any grouping, filter and step.
 */
const EXPORTERS = ['192.0.2.1', '2001:db8::1'];
const CLASSES: TrafficClass[] = ['scitags', 'ipv6_unmarked', 'ipv4', 'unknown'];
const DIMS: GroupByDimension[] = ['community', 'activity', 'link', 'exporter', 'direction', 'class'];

const rowArb = fc.record({
  bucket: fc.integer({ min: 0, max: 20 }),
  exporter: fc.constantFrom(...EXPORTERS),
  inIf: fc.option(fc.integer({ min: 1, max: 3 }), { nil: null }),
  outIf: fc.option(fc.integer({ min: 1, max: 3 }), { nil: null }),
  cls: fc.constantFrom(...CLASSES),
  pair: fc.option(fc.tuple(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 3 })), { nil: null }),
  bytes: fc.integer({ min: 0, max: 1e9 }),
  packets: fc.integer({ min: 0, max: 1e6 }),
  records: fc.integer({ min: 0, max: 1000 }),
});

const queryArb = fc.record({
  from: fc.integer({ min: 0, max: 10 }),
  len: fc.integer({ min: 1, max: 25 }),
  step: fc.constantFrom(60, 120, 300, 3600),
  groupBy: fc.subarray(DIMS),
  community: fc.option(fc.subarray([1, 2, 3, 4], { minLength: 1 }), { nil: undefined }),
  exporter: fc.option(fc.subarray(EXPORTERS, { minLength: 1 }), { nil: undefined }),
  link: fc.option(
    fc.subarray(
      [
        { exporter: EXPORTERS[0]!, ifIndex: 1 },
        { exporter: EXPORTERS[1]!, ifIndex: 2 },
      ],
      { minLength: 1 },
    ),
    { nil: undefined },
  ),
  cls: fc.option(fc.subarray(CLASSES, { minLength: 1 }), { nil: undefined }),
});

describe('groupRows answers like the SQLite store', () => {
  it('for random rows and queries', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(rowArb, { maxLength: 40 }), queryArb, async (raw, qa) => {
        // One row per key and bucket, as the aggregator writes them.
        const byKey = new Map<string, TrafficRow>();
        for (const r of raw) {
          const marked = r.cls === 'scitags';
          const row: TrafficRow = {
            bucketStartMs: 1_700_000_040_000 + r.bucket * 60_000,
            bucketSeconds: 60,
            exporter: r.exporter,
            inIf: r.inIf,
            outIf: r.outIf,
            trafficClass: r.cls,
            community: marked && r.pair ? r.pair[0] : null,
            activity: marked && r.pair ? r.pair[1] : null,
            registered: marked && r.pair !== null,
            bytes: r.bytes,
            packets: r.packets,
            records: r.records,
          };
          byKey.set(
            JSON.stringify([row.bucketStartMs, row.exporter, row.inIf, row.outIf, row.trafficClass, row.community, row.activity]),
            row,
          );
        }
        const rows = [...byKey.values()];
        const store = createSqliteStore({ path: ':memory:' });
        await store.writeRows(rows);
        const q: TrafficQuery = {
          fromMs: 1_700_000_040_000 + qa.from * 60_000,
          toMs: 1_700_000_040_000 + (qa.from + qa.len) * 60_000,
          stepSeconds: qa.step,
          groupBy: qa.groupBy,
          ...(qa.community ? { community: qa.community } : {}),
          ...(qa.exporter ? { exporter: qa.exporter } : {}),
          ...(qa.link ? { link: qa.link } : {}),
          ...(qa.cls ? { trafficClass: qa.cls } : {}),
        };
        const want = await store.queryTraffic(q);
        await store.close();
        const stored: StoredRow[] = rows.map(({ bucketSeconds: _b, registered: _r, ...rest }) => rest);
        expect(groupRows(stored, q)).toEqual(want);
      }),
      { numRuns: 200 },
    );
  });
});
