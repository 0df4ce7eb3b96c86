import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  activityOf,
  communityOf,
  decodeFlowLabel,
  encodeFlowLabel,
  reverse9,
  SCITAGS_BITS_MASK,
} from '../../decoders/scitags/flowlabel.js';

describe('SciTags flow-label codec', () => {
  it('matches the worked examples of DESIGN.md and SCITAGS.md', () => {
    expect(encodeFlowLabel(2, 1)).toBe(0x10004);
    expect(encodeFlowLabel(65, 6)).toBe(0x20818);
    expect(encodeFlowLabel(200, 10)).toBe(0x04c28);
    expect(encodeFlowLabel(511, 63)).toBe(0x3fefc);
    expect(encodeFlowLabel(2, 15)).toBe(65596);
    expect(decodeFlowLabel(0x10004)).toEqual({ community: 2, activity: 1 });
    expect(decodeFlowLabel(0x3fefc)).toEqual({ community: 511, activity: 63 });
  });

  it('decodes labels seen in the pmacct corpus capture', () => {
    // truth: flow_label 19497 -> 200/10, 892762 -> 486/22 (a random RFC 6437 label)
    expect(decodeFlowLabel(19497)).toEqual({ community: 200, activity: 10 });
    expect(decodeFlowLabel(892762)).toEqual({ community: 486, activity: 22 });
  });

  it('treats label 0 as unmarked and masks to 20 bits (pmacct sends TC bits above)', () => {
    expect(decodeFlowLabel(0)).toBeNull();
    expect(decodeFlowLabel(0xf00000)).toBeNull();
    expect(decodeFlowLabel(0xa10004)).toEqual({ community: 2, activity: 1 });
  });

  it('reverse9 is an involution and reverses bit order', () => {
    expect(reverse9(1)).toBe(256);
    expect(reverse9(2)).toBe(128);
    expect(reverse9(0x1ff)).toBe(0x1ff);
    for (let v = 0; v < 512; v++) expect(reverse9(reverse9(v))).toBe(v);
  });

  it('encode then decode is the identity for every pair and any entropy', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 511 }), fc.integer({ min: 0, max: 63 }), fc.integer({ min: 0, max: 31 }), (c, a, e) => {
        const label = encodeFlowLabel(c, a, e);
        expect(label).toBeLessThanOrEqual(0xfffff);
        expect(communityOf(label)).toBe(c);
        expect(activityOf(label)).toBe(a);
        // entropy never touches the SciTags bits
        expect(label & SCITAGS_BITS_MASK).toBe(encodeFlowLabel(c, a, 0));
      }),
    );
  });

  it('gives 32 distinct labels per pair, one per entropy value', () => {
    const labels = new Set<number>();
    for (let e = 0; e < 32; e++) labels.add(encodeFlowLabel(3, 4, e));
    expect(labels.size).toBe(32);
  });

  it('rejects ids outside the field widths', () => {
    expect(() => encodeFlowLabel(512, 1)).toThrow(RangeError);
    expect(() => encodeFlowLabel(1, 64)).toThrow(RangeError);
    expect(() => encodeFlowLabel(-1, 1)).toThrow(RangeError);
    expect(() => encodeFlowLabel(1, 1, 32)).toThrow(RangeError);
  });
});
