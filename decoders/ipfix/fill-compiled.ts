/**
 * Template-specialised record fill for fixed-length templates.
 *
 * fillRecord (data.ts) reads a record through the plan's per-slot offset and length tables:
 * for each of ~20 FlowRecord fields a table load, a presence test and a branch on the length.
 * For a fixed-length template all of those are known when the template arrives, so here they
 * are resolved once into straight-line code with constant offsets (the "decode plan
 * specialised once"): measured 130 -> 111 ns per record decode-only on pmacct's NetFlow v9
 * export (`npm run bench -- decode`).
 *
 * The generated source contains nothing from the wire but integers that were range-checked
 * (offsets, lengths, slot numbers), so no exporter can inject code. Compiled functions depend
 * only on the layout, not on the template id or the exporter, and are shared through a bounded
 * cache keyed by that layout: a thousand routers of one model cost one function.
 *
 * fillRecord stays the reference: variable-length templates use it, and a property test
 * (test/property/compiled-fill.test.ts) checks that both produce identical records for random
 * templates and bytes. Anything rare (uptimes, NTP times, formatting addresses, IE 315
 * frames, per-record sampling) is delegated to the same helpers fillRecord uses; where the
 * address bytes are (FlowRecord.addrBytes ...) is plain constant stores.
 */
import type { FlowRecord, SamplingSource } from '../record.js';
import { FLOW_LABEL_MASK } from '../scitags/flowlabel.js';
import { type DecodePlan, Slot } from './plan.js';

/** What the generated code calls for the rare parts (provided by data.ts). */
export interface FillHelpers<Ctx> {
  uintAt(b: Uint8Array, o: number, len: number): number;
  timeAt(b: Uint8Array, o: number, slot: number): number;
  applyUptimes(b: Uint8Array, base: number, pos: Int32Array, len: Int32Array, rec: FlowRecord, ctx: Ctx): void;
  /** srcAddr / dstAddr only (the address bytes are generated inline). */
  fillAddresses(b: Uint8Array, base: number, plan: DecodePlan, rec: FlowRecord, withAddresses: boolean): void;
  fillFrame(b: Uint8Array, base: number, plan: DecodePlan, rec: FlowRecord, ctx: Ctx): void;
  fillSampling(
    b: Uint8Array,
    base: number,
    plan: DecodePlan,
    ctx: Ctx,
    rec: FlowRecord,
    perRecordRate: boolean,
    setRate: number,
    setSource: SamplingSource,
  ): void;
}

/** A fill for one record layout: same contract as fillRecord, pos / len taken from `plan`. */
export type CompiledFill<Ctx> = (
  b: Uint8Array,
  base: number,
  plan: DecodePlan,
  ctx: Ctx,
  rec: FlowRecord,
  perRecordRate: boolean,
  setRate: number,
  setSource: SamplingSource,
) => void;

/** Distinct layouts kept compiled; beyond it the oldest is dropped (plans keep theirs). */
export const COMPILED_FILL_CACHE_SIZE = 1024;

/**
 * Largest record offset spliced into code. A template's fields may add up to more than a
 * datagram can hold (NetFlow v9 lengths up to 65534 each): such a plan never meets a record
 * that fits, but compiles all the same.
 */
const MAX_OFFSET = 0x7fffffff;

/** An integer in [min, max] or a thrown RangeError: the only values spliced into source. */
function int(v: number, min: number, max: number): number {
  if (!Number.isInteger(v) || v < min || v > max) throw new RangeError(`compiled fill: ${v} outside [${min}, ${max}]`);
  return v;
}

/** Big-endian unsigned read of `l` octets at the constant record offset `p`. */
function read(p: number, l: number): string {
  const at = (k: number): string => `b[base + ${int(p + k, 0, MAX_OFFSET)}]`;
  switch (l) {
    case 1:
      return at(0);
    case 2:
      return `((${at(0)} << 8) | ${at(1)})`;
    case 3:
      return `((${at(0)} << 16) | (${at(1)} << 8) | ${at(2)})`;
    case 4:
      return `(((${at(0)} << 24) | (${at(1)} << 16) | (${at(2)} << 8) | ${at(3)}) >>> 0)`;
    case 8:
      return `((((${at(0)} << 24) | (${at(1)} << 16) | (${at(2)} << 8) | ${at(3)}) >>> 0) * 4294967296 + (((${at(4)} << 24) | (${at(5)} << 16) | (${at(6)} << 8) | ${at(7)}) >>> 0))`;
    default:
      return `h.uintAt(b, base + ${int(p, 0, MAX_OFFSET)}, ${int(l, 1, 8)})`;
  }
}

/** The generated function's body for `plan` (fixed-length plans only). */
export function compiledFillSource(plan: DecodePlan): string {
  const { pos, len } = plan;
  const at = (slot: number): number => pos[slot]!;
  const has = (slot: number): boolean => at(slot) >= 0;
  const lenOf = (slot: number): number => len[slot]!;
  const opt = (slot: number, l: number): string => (has(slot) ? read(at(slot), l) : 'undefined');
  const c: string[] = [];
  c.push('rec.protocol = ctx.protocol;', 'rec.exporter = ctx.exporter;', 'rec.domain = ctx.domain;');
  c.push('rec.templateId = plan.templateId;', 'rec.exportMs = ctx.exportMs;');
  c.push(`rec.bytes = ${has(Slot.BYTES) ? read(at(Slot.BYTES), lenOf(Slot.BYTES)) : '0'};`);
  c.push(`rec.packets = ${has(Slot.PACKETS) ? read(at(Slot.PACKETS), lenOf(Slot.PACKETS)) : '0'};`);
  c.push(`rec.ipProtocol = ${opt(Slot.PROTO, 1)};`);
  c.push(`rec.trafficClass = ${opt(Slot.TOS, 1)};`);
  c.push(`rec.srcPort = ${opt(Slot.SRC_PORT, 2)};`);
  c.push(`rec.dstPort = ${opt(Slot.DST_PORT, 2)};`);
  c.push(`rec.inIf = ${has(Slot.IN_IF) ? read(at(Slot.IN_IF), lenOf(Slot.IN_IF)) : 'undefined'};`);
  c.push(`rec.outIf = ${has(Slot.OUT_IF) ? read(at(Slot.OUT_IF), lenOf(Slot.OUT_IF)) : 'undefined'};`);
  c.push(`rec.direction = ${opt(Slot.DIRECTION, 1)};`);
  // vlanId (58) wins over dot1qVlanId (243), as in fillRecord.
  if (has(Slot.VLAN)) c.push(`rec.vlan = ${read(at(Slot.VLAN), lenOf(Slot.VLAN) === 2 ? 2 : 1)} & 0xfff;`);
  else if (has(Slot.DOT1Q_VLAN)) c.push(`rec.vlan = ${read(at(Slot.DOT1Q_VLAN), lenOf(Slot.DOT1Q_VLAN))} & 0xfff;`);
  else c.push('rec.vlan = undefined;');
  if (has(Slot.FLOW_LABEL)) {
    const l = lenOf(Slot.FLOW_LABEL);
    // 4 octets: the label is the low 20 bits, read from the last three (as fillRecord does).
    c.push(`rec.flowLabel = ${l === 4 ? read(at(Slot.FLOW_LABEL) + 1, 3) : read(at(Slot.FLOW_LABEL), l)} & ${FLOW_LABEL_MASK};`);
  } else c.push('rec.flowLabel = undefined;');
  const implied = int(plan.impliedIpVersion, 0, 6);
  if (has(Slot.IP_VERSION)) {
    c.push(`{ const v = ${read(at(Slot.IP_VERSION), 1)}; rec.ipVersion = v === 4 || v === 6 ? v : ${implied}; }`);
  } else c.push(`rec.ipVersion = ${implied};`);
  for (const [field, slot, ms] of [
    ['startMs', plan.startSlot, Slot.START_MS],
    ['endMs', plan.endSlot, Slot.END_MS],
  ] as const) {
    if (slot < 0) c.push(`rec.${field} = undefined;`);
    else if (slot === ms) c.push(`rec.${field} = ${read(at(slot), 8)};`);
    else c.push(`rec.${field} = h.timeAt(b, base + ${int(at(slot), 0, MAX_OFFSET)}, ${int(slot, 0, 255)});`);
  }
  if (plan.hasUptime) c.push('h.applyUptimes(b, base, plan.pos, plan.len, rec, ctx);');
  // The address bytes as fillAddressBytes sets them: both addresses of one length, or none.
  const { srcSlot, dstSlot } = plan;
  if (srcSlot === Slot.SRC6 ? dstSlot === Slot.DST6 : srcSlot === Slot.SRC4 && dstSlot === Slot.DST4) {
    c.push('rec.addrBytes = b;', `rec.addrLen = ${srcSlot === Slot.SRC6 ? 16 : 4};`);
    c.push(`rec.srcAddrAt = base + ${int(at(srcSlot), 0, MAX_OFFSET)};`, `rec.dstAddrAt = base + ${int(at(dstSlot), 0, MAX_OFFSET)};`);
  } else c.push('rec.addrBytes = undefined;', 'rec.addrLen = 0;', 'rec.srcAddrAt = 0;', 'rec.dstAddrAt = 0;');
  if (srcSlot >= 0 || dstSlot >= 0) c.push('h.fillAddresses(b, base, plan, rec, ctx.withAddresses);');
  else c.push('rec.srcAddr = undefined;', 'rec.dstAddr = undefined;');
  if (plan.hasFrame) c.push('h.fillFrame(b, base, plan, rec, ctx);');
  c.push('h.fillSampling(b, base, plan, ctx, rec, perRecordRate, setRate, setSource);');
  return c.join('\n');
}

/** Layout key: everything compiledFillSource reads from the plan, except the template id. */
function layoutKey(plan: DecodePlan): string {
  return [
    Array.prototype.join.call(plan.pos, ','),
    Array.prototype.join.call(plan.len, ','),
    plan.startSlot,
    plan.endSlot,
    plan.srcSlot,
    plan.dstSlot,
    plan.hasUptime,
    plan.impliedIpVersion,
    plan.hasFrame,
  ].join('|');
}

/** Compiles fills, sharing one function per layout (bounded, oldest dropped first). */
export class CompiledFills<Ctx> {
  private readonly cache = new Map<string, CompiledFill<Ctx>>();

  constructor(
    private readonly helpers: FillHelpers<Ctx>,
    private readonly maxLayouts = COMPILED_FILL_CACHE_SIZE,
  ) {}

  get size(): number {
    return this.cache.size;
  }

  /** The fill for a fixed-length plan. */
  get(plan: DecodePlan): CompiledFill<Ctx> {
    const key = layoutKey(plan);
    let fill = this.cache.get(key);
    if (fill === undefined) {
      // The source is built from range-checked integers only (see the file comment).
      const make = new Function(
        'h',
        `return function compiledFill(b, base, plan, ctx, rec, perRecordRate, setRate, setSource) {\n${compiledFillSource(plan)}\n};`,
      ) as (h: FillHelpers<Ctx>) => CompiledFill<Ctx>;
      fill = make(this.helpers);
      if (this.cache.size >= this.maxLayouts) this.cache.delete(this.cache.keys().next().value!);
      this.cache.set(key, fill);
    }
    return fill;
  }
}
