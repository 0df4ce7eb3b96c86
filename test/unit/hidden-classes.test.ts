import { setFlagsFromString } from 'node:v8';
import { describe, expect, it } from 'vitest';
import { AS_DOUBLE, Cell } from '../../src/aggregate/bucket.js';

// V8's own view of two objects' hidden classes. Natives syntax is checked when a function is
// parsed, so the flag set here applies to the function made after it.
setFlagsFromString('--allow-natives-syntax');
const haveSameMap = new Function('a', 'b', 'return %HaveSameMap(a, b)') as (a: object, b: object) => boolean;

describe('hidden classes on the record path', () => {
  it('an aggregation cell keeps its hidden class when its sums pass 2^31', () => {
    const fresh = new Cell();
    expect({ ...fresh }).toEqual({ bytes: 0, packets: 0, records: 0, countedBytes: 0, countedPackets: 0 });
    const busy = new Cell();
    busy.bytes += 3_000_000_000;
    busy.packets += 2 ** 32;
    busy.records += 1;
    busy.countedBytes = busy.bytes;
    busy.countedPackets = busy.packets;
    // With small-integer fields the first sum past 2^31 gives `busy` a new hidden class and
    // retires the old one, deoptimising every function compiled against it.
    expect(haveSameMap(fresh, busy)).toBe(true);
    expect(haveSameMap(new Cell(), busy)).toBe(true);
    expect({ ...busy }).toEqual({
      bytes: 3_000_000_000,
      packets: 4_294_967_296,
      records: 1,
      countedBytes: 3_000_000_000,
      countedPackets: 4_294_967_296,
    });
    expect(Number.isInteger(AS_DOUBLE)).toBe(false);
  });
});
