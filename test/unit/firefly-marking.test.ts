import { describe, expect, it } from 'vitest';
import type { Firefly } from '../../decoders/firefly/types.js';
import { emptyRecord, type FlowRecord } from '../../decoders/record.js';
import { MarkingCounts, MarkingIndex, MarkingSource, MAX_MARKING_KEYS, markedFlowOf, outcomeOf } from '../../src/fireflies/marking.js';
import { parsedFirefly } from '../builders/firefly.js';

const ff = (over: Partial<Firefly>): Firefly => parsedFirefly(over);

/** A record whose addresses sit at 8 and 24 of a 40-byte buffer (as a datagram would hold them). */
function rec(src: number[], dst: number[], sp: number, dp: number, proto: number, label: number | undefined): FlowRecord {
  const r = emptyRecord('ipfix', '192.0.2.1:4739', 0);
  const b = new Uint8Array(40);
  b.set(src, 8);
  b.set(dst, 24);
  Object.assign(r, {
    addrBytes: b,
    addrLen: src.length,
    srcAddrAt: 8,
    dstAddrAt: 24,
    srcPort: sp,
    dstPort: dp,
    ipProtocol: proto,
    flowLabel: label,
  });
  r.bytes = 100;
  r.samplingRate = 10;
  return r;
}
const A = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
const B = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];

describe('marking index', () => {
  const flow = markedFlowOf(ff({}), 'S1', 'S2')!;

  it('is one flow in both directions (XRootD reports both), and finds records of either direction only for the same protocol and ports', () => {
    expect(markedFlowOf(ff({ srcAddr: '2001:db8::2', dstAddr: '2001:db8::1', srcPort: 40000, dstPort: 1094 }), 'S2', 'S1')!.id).toBe(
      flow.id,
    );
    const index = new MarkingIndex();
    index.apply({ upserts: [flow], deletes: [] });
    expect(index.find(rec(A, B, 1094, 40000, 6, 0))?.id).toBe(flow.id);
    expect(index.find(rec(B, A, 40000, 1094, 6, 0))?.id).toBe(flow.id);
    expect(index.find(rec(A, B, 1094, 40001, 6, 0))).toBeUndefined();
    expect(index.find(rec(A, B, 1094, 40000, 17, 0))).toBeUndefined();
    expect(index.find(rec(B, A, 1094, 40000, 6, 0))).toBeUndefined(); // ports not swapped with the addresses
    index.apply({ upserts: [], deletes: [flow.id] });
    expect(index.size).toBe(0);
    expect(index.find(rec(A, B, 1094, 40000, 6, 0))).toBeUndefined();
  });

  it('says what the packets carried against what the host declared', () => {
    expect(outcomeOf(rec(A, B, 1094, 40000, 6, 0x1000c), flow)).toBe('agree'); // (2, 3)
    expect(outcomeOf(rec(A, B, 1094, 40000, 6, 0x1000c | 0x80003), flow)).toBe('agree'); // entropy bits ignored
    expect(outcomeOf(rec(A, B, 1094, 40000, 6, 0x3000c), flow)).toBe('mismatch'); // (3, 3)
    expect(outcomeOf(rec(A, B, 1094, 40000, 6, 0), flow)).toBe('unmarked');
    expect(outcomeOf(rec(A, B, 1094, 40000, 6, undefined), flow)).toBe('notExported');
    expect(outcomeOf(rec([10, 0, 0, 1], [10, 0, 0, 2], 1094, 40000, 6, undefined), flow)).toBe('ipv4');
  });
});

describe('marking counts', () => {
  const flow = markedFlowOf(ff({}), 'S1', 'S2')!;

  it('sums records and scaled bytes per key, keeps the pairs mismatches carried, and merges worker counts', () => {
    const worker = new MarkingCounts();
    worker.count(flow, 'agree', rec(A, B, 1094, 40000, 6, 0x1000c));
    worker.count(flow, 'mismatch', rec(A, B, 1094, 40000, 6, 0x3000c));
    worker.count(flow, 'mismatch', rec(A, B, 1094, 40000, 6, 0x3000c));
    const main = new MarkingCounts();
    main.add(worker.take());
    main.add([{ experimentId: 2, activityId: 3, srcSite: 'S1', dstSite: 'S2', outcome: 'agree', records: 1, bytes: 5, carried: {} }]);
    expect(worker.list()).toEqual([]);
    expect(main.list()).toEqual([
      { experimentId: 2, activityId: 3, srcSite: 'S1', dstSite: 'S2', outcome: 'agree', records: 2, bytes: 1005, carried: {} },
      { experimentId: 2, activityId: 3, srcSite: 'S1', dstSite: 'S2', outcome: 'mismatch', records: 2, bytes: 2000, carried: { '3/3': 2 } },
    ]);
  });

  it('folds keys beyond the cap into sites other, counted', () => {
    const c = new MarkingCounts();
    for (let i = 0; i < MAX_MARKING_KEYS + 5; i++) c.count({ ...flow, srcSite: `S${i}` }, 'agree', rec(A, B, 1, 2, 6, 0));
    expect(c.list()).toHaveLength(MAX_MARKING_KEYS + 1);
    expect(c.folded).toBe(5);
    expect(c.list().find((x) => x.srcSite === 'other')!.records).toBe(5);
  });
});

describe('marking source (the main thread)', () => {
  it('sends changes once, holds live flows for the flow timeout and ended ones for the late window, and evicts the oldest over the cap', () => {
    const src = new MarkingSource({ maxFlows: 2, liveSeconds: 100, endedSeconds: 10 });
    const one = markedFlowOf(ff({}), 'S1', 'S2')!;
    const two = markedFlowOf(ff({ srcPort: 2000 }), 'S1', 'S2')!;
    const three = markedFlowOf(ff({ srcPort: 3000 }), 'S1', 'S2')!;
    src.accept(one, 0, false);
    src.accept(two, 0, true);
    expect(src.takeUpdate()).toEqual({ upserts: [one, two], deletes: [] });
    expect(src.published).toBe(2);
    src.accept(one, 5_000, false); // same pair again: nothing to send
    expect(src.takeUpdate()).toBeUndefined();
    src.tick(10_000); // two ended at 0 + 10 s
    expect(src.takeUpdate()).toEqual({ upserts: [], deletes: [two.id] });
    src.accept(two, 20_000, false);
    src.accept(three, 20_000, false); // over the cap: one (updated at 5 s) goes
    expect(src.evicted).toBe(1);
    expect(src.takeUpdate()).toEqual({ upserts: [two, three], deletes: [one.id] });
    expect(src.snapshot().upserts.map((f) => f.id)).toEqual([two.id, three.id]);
  });
});
