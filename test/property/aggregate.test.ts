import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { emptyRecord, type FlowRecord } from '../../decoders/record.js';
import { encodeFlowLabel } from '../../decoders/scitags/flowlabel.js';
import { createAggregator } from '../../src/aggregate/index.js';
import { loadSnapshot } from '../../src/registry/loader.js';
import { createSqliteStore, type SqliteTrafficStore } from '../../src/store/sqlite/index.js';
import type { TrafficQuery, TrafficRow, TrafficStore } from '../../src/store/types.js';

/**
 * For random record streams — samples and flows, exporters with clocks a day off, spans over
 * several buckets, out-of-order arrival, store writes failing now and then — the rows in the
 * store sum to the scaled inputs per (class, community, activity): nothing lost, nothing
 * doubled. With ages beyond the late window, what is missing is exactly what was counted
 * as too late.
 */

const registry = loadSnapshot(0);
const T0 = Date.UTC(2025, 0, 1, 12, 0, 0);
const LATE_S = 300;
const GRACE_S = 10;

const LABELS = [
  { flowLabel: encodeFlowLabel(2, 1), ipVersion: 6, key: 'scitags 2/1' },
  { flowLabel: encodeFlowLabel(3, 2), ipVersion: 6, key: 'scitags 3/2' },
  { flowLabel: encodeFlowLabel(200, 10), ipVersion: 6, key: 'scitags null/null' },
  { flowLabel: 0, ipVersion: 6, key: 'ipv6_unmarked null/null' },
  { flowLabel: undefined, ipVersion: 4, key: 'ipv4 null/null' },
] as const;

interface Input {
  exporter: number;
  label: number;
  bytes: number;
  packets: number;
  samplingRate: number;
  inIf: number | undefined;
  timed: boolean;
  /** How long before its receive time the flow ended, and how long it lasted (ms). */
  endAgeMs: number;
  durationMs: number;
  /** Receive time step from the previous record (ms). */
  gapMs: number;
  tickAfter: boolean;
  failNextWrite: boolean;
}

function inputArb(maxAgeMs: number): fc.Arbitrary<Input> {
  return fc
    .record({
      exporter: fc.integer({ min: 0, max: 3 }),
      label: fc.integer({ min: 0, max: LABELS.length - 1 }),
      bytes: fc.integer({ min: 0, max: 1_000_000_000 }),
      packets: fc.integer({ min: 0, max: 100_000 }),
      samplingRate: fc.integer({ min: 1, max: 4096 }),
      inIf: fc.option(fc.integer({ min: 0, max: 3 }), { nil: undefined }),
      timed: fc.boolean(),
      endAgeMs: fc.integer({ min: 0, max: maxAgeMs - 1 }),
      durationFraction: fc.double({ min: 0, max: 1, noNaN: true }),
      gapMs: fc.integer({ min: 0, max: 40_000 }),
      tickAfter: fc.boolean(),
      failNextWrite: fc.integer({ min: 0, max: 3 }).map((v) => v === 0),
    })
    .map(({ durationFraction, ...r }) => ({
      ...r,
      // Within the window: start no earlier than (receive - maxAge).
      durationMs: Math.floor(durationFraction * (maxAgeMs - 1 - r.endAgeMs)),
    }));
}

/** The SQLite store with writes that fail when asked to (the aggregator must retry). */
class FlakyStore implements TrafficStore {
  readonly kind = 'flaky';
  fail = false;
  constructor(readonly inner: SqliteTrafficStore) {}
  readRows(fromMs: number): Promise<TrafficRow[]> {
    return this.inner.readRows(fromMs);
  }
  async writeRows(rows: TrafficRow[]): Promise<void> {
    if (this.fail) {
      this.fail = false;
      throw new Error('transient');
    }
    await this.inner.writeRows(rows);
  }
  queryTraffic(q: TrafficQuery) {
    return this.inner.queryTraffic(q);
  }
  close() {
    return this.inner.close();
  }
}

type Totals = Record<string, { bytes: number; packets: number; records: number }>;

async function run(inputs: Input[], bucketSeconds: number, file: string) {
  const store = new FlakyStore(createSqliteStore({ path: file }));
  const agg = createAggregator(
    { bucketSeconds, graceSeconds: GRACE_S, lateWindowSeconds: LATE_S },
    { now: () => T0, store, registry: () => registry },
  );
  // Per exporter clock error, up to a day either way.
  const skew = [0, 86_400_000, -86_400_000, 3_600_000 + 123];
  const expected: Totals = {};
  let received = T0;
  for (const inp of inputs) {
    received += inp.gapMs;
    const label = LABELS[inp.label]!;
    const exporterClock = received - skew[inp.exporter]!;
    const end = exporterClock - inp.endAgeMs;
    const rec: FlowRecord = {
      ...emptyRecord('ipfix', `192.0.2.${inp.exporter}:4739`, 0),
      flowLabel: label.flowLabel,
      ipVersion: label.ipVersion,
      bytes: inp.bytes,
      packets: inp.packets,
      samplingRate: inp.samplingRate,
      inIf: inp.inIf,
      outIf: 9,
      startMs: inp.timed ? end - inp.durationMs : undefined,
      endMs: inp.timed ? end : undefined,
      exportMs: exporterClock,
    };
    agg.add(rec, received, `192.0.2.${inp.exporter}`);
    const e = (expected[label.key] ??= { bytes: 0, packets: 0, records: 0 });
    e.bytes += inp.bytes * inp.samplingRate;
    e.packets += inp.packets * inp.samplingRate;
    e.records += 1;
    if (inp.tickAfter) {
      store.fail = inp.failNextWrite;
      await agg.tick(received);
    }
  }
  store.fail = false;
  await agg.flush();
  const result = await store.queryTraffic({
    fromMs: 0,
    toMs: 4e12,
    stepSeconds: 60,
    groupBy: ['class', 'community', 'activity'],
  });
  const actual: Totals = {};
  for (const s of result.series) actual[`${s.group.class} ${s.group.community}/${s.group.activity}`] = s.totals;
  await store.close();
  return { expected, actual, stats: agg.stats() };
}

let dir: string;
let n = 0;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'aggregate-property-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('aggregation conserves traffic', () => {
  it('within the late window: the store sums exactly to the scaled inputs, per series', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(inputArb(LATE_S * 1000), { minLength: 1, maxLength: 60 }),
        fc.constantFrom(10, 60, 300),
        async (inputs, bucketSeconds) => {
          const { expected, actual, stats } = await run(inputs, bucketSeconds, join(dir, `p${n++}.sqlite`));
          expect(stats.tooLate).toBe(0);
          expect(stats.tooLateBytes).toBe(0);
          expect(stats.clampedTimestamps).toBe(0);
          expect(actual).toEqual(expected);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('beyond the window: stored + counted-too-late equals the inputs', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(inputArb(3 * LATE_S * 1000), { minLength: 1, maxLength: 60 }), async (inputs) => {
        const { expected, actual, stats } = await run(inputs, 60, join(dir, `q${n++}.sqlite`));
        const sum = (t: Totals) =>
          Object.values(t).reduce(
            (a, b) => ({ bytes: a.bytes + b.bytes, packets: a.packets + b.packets, records: a.records + b.records }),
            { bytes: 0, packets: 0, records: 0 },
          );
        const a = sum(actual);
        const e = sum(expected);
        expect(a.bytes + stats.tooLateBytes).toBe(e.bytes);
        expect(a.packets + stats.tooLatePackets).toBe(e.packets);
        expect(a.records + stats.tooLate).toBe(e.records);
      }),
      { numRuns: 60 },
    );
  });
});
