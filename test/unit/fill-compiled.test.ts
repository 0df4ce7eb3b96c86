/**
 * The compiled-fill cache: one function per record layout (shared across template ids and
 * exporters), bounded, and code built only from range-checked integers. Equivalence with
 * fillRecord is the property test's job (test/property/compiled-fill.test.ts).
 */
import { describe, expect, it } from 'vitest';
import { DecodeError } from '../../decoders/errors.js';
import { createFlowDecoderState, decodeFlowDatagram } from '../../decoders/ipfix/index.js';
import { f, ipfixSet, v9Message, v9TemplateFlowset } from '../builders/ipfix.js';
import { CompiledFills, compiledFillSource, type FillHelpers } from '../../decoders/ipfix/fill-compiled.js';
import { compilePlan, type TemplateField } from '../../decoders/ipfix/plan.js';

const noHelpers = {} as FillHelpers<unknown>;
const field = (id: number, length: number): TemplateField => ({ id, length, pen: 0, scope: false });
const layout = [field(1, 8), field(2, 4), field(10, 4), field(14, 4), field(31, 3)];

describe('CompiledFills', () => {
  it('shares one function between templates of the same layout', () => {
    const fills = new CompiledFills(noHelpers);
    const a = fills.get(compilePlan(256, 'data', layout, 'ipfix'));
    const b = fills.get(compilePlan(300, 'data', layout, 'netflow9'));
    const c = fills.get(compilePlan(256, 'data', [...layout, field(61, 1)], 'ipfix'));
    expect(b).toBe(a);
    expect(c).not.toBe(a);
    expect(fills.size).toBe(2);
  });

  it('keeps at most maxLayouts functions, dropping the oldest', () => {
    const fills = new CompiledFills(noHelpers, 3);
    const plans = [1, 2, 3, 4, 5].map((n) => compilePlan(256, 'data', [field(999, n), ...layout], 'ipfix'));
    const first = fills.get(plans[0]!);
    for (const p of plans.slice(1)) fills.get(p);
    expect(fills.size).toBe(3);
    // The first layout was dropped: asking again compiles a new function.
    expect(fills.get(plans[0]!)).not.toBe(first);
    expect(fills.size).toBe(3);
  });

  it('reads fields at constant offsets', () => {
    const src = compiledFillSource(compilePlan(256, 'data', layout, 'ipfix'));
    // octetDeltaCount at 0 (8 octets), ingressInterface at 12, flowLabelIPv6 at 20 (3 octets).
    expect(src).toContain('rec.bytes = ((((b[base + 0] << 24)');
    expect(src).toContain('rec.inIf = (((b[base + 12] << 24) | (b[base + 13] << 16) | (b[base + 14] << 8) | b[base + 15]) >>> 0);');
    expect(src).toContain('rec.flowLabel = ((b[base + 20] << 16) | (b[base + 21] << 8) | b[base + 22]) & 1048575;');
    expect(src).toContain('rec.direction = undefined;');
  });

  it('stores the address bytes as constants: both addresses of one length, or none', () => {
    const v6 = compiledFillSource(compilePlan(256, 'data', [field(1, 8), field(28, 16), field(27, 16)], 'ipfix'));
    // destinationIPv6Address at 8, sourceIPv6Address at 24.
    expect(v6).toContain('rec.addrBytes = b;\nrec.addrLen = 16;\nrec.srcAddrAt = base + 24;\nrec.dstAddrAt = base + 8;');
    const v4 = compiledFillSource(compilePlan(256, 'data', [field(8, 4), field(12, 4), field(1, 4)], 'ipfix'));
    expect(v4).toContain('rec.addrBytes = b;\nrec.addrLen = 4;\nrec.srcAddrAt = base + 0;\nrec.dstAddrAt = base + 4;');
    const none = 'rec.addrBytes = undefined;\nrec.addrLen = 0;\nrec.srcAddrAt = 0;\nrec.dstAddrAt = 0;';
    expect(compiledFillSource(compilePlan(256, 'data', layout, 'ipfix'))).toContain(none);
    expect(compiledFillSource(compilePlan(256, 'data', [field(1, 4), field(8, 4)], 'ipfix'))).toContain(none);
    expect(compiledFillSource(compilePlan(256, 'data', [field(1, 4), field(8, 4), field(28, 16)], 'ipfix'))).toContain(none);
  });

  it('refuses a layout value outside its range instead of splicing it into code', () => {
    const plan = compilePlan(256, 'data', layout, 'ipfix');
    plan.len[1] = 9; // Slot.BYTES of 9 octets: no numeric read has that length
    expect(() => compiledFillSource(plan)).toThrow(RangeError);
  });

  it('compiles templates whose fields add up to more than a datagram (v9 lengths up to 65534)', () => {
    const plan = compilePlan(256, 'data', [field(999, 65534), field(999, 65534), field(1, 4)], 'netflow9');
    expect(compiledFillSource(plan)).toContain('rec.bytes = (((b[base + 131068] << 24)');
    // Found by the mutation fuzzer: such a template followed by a data set was a decoder-crash.
    const fields = [f(999, 65534), f(999, 65534), f('octetDeltaCount', 4)];
    const msg = v9Message({ records: 2 }, [v9TemplateFlowset([{ id: 256, fields }]), ipfixSet(256, new Uint8Array(8))]);
    const r = decodeFlowDatagram(msg, { exporterAddr: '192.0.2.1', exporterPort: 2055, receivedMs: 0 }, createFlowDecoderState(), {});
    expect(r.records).toEqual([]);
    expect(r.errors.every((e) => e instanceof DecodeError)).toBe(true);
  });
});
