/**
 * Data set decoding: a compiled plan applied to each record of a data set (IPFIX set id
 * >= 256, NetFlow v9 flowset id >= 256) producing FlowRecords.
 *
 * Hot path. The plan (plan.ts) says at which offset inside a record each FlowRecord slot's
 * field sits; one straight-line function (fillRecord) reads exactly those fields, with the
 * lengths the template announced, and writes every FlowRecord field once. Fixed-length
 * templates use the plan's offsets directly; variable-length ones first walk the record's
 * length prefixes into a reused position table. Nothing is allocated per record except the
 * record itself in array mode, and not even that when the caller gives a sink
 * (FlowDecodeOptions.onRecord): then one record object per data set is refilled for each of
 * its records. (V8 still boxes the times, which exceed its small-integer range, when they are
 * stored into the `number | undefined` fields: 16 octets each, the young generation's
 * cheapest kind of garbage.) Addresses are formatted only when asked (and come from a cache,
 * see packet/addr.ts); where their bytes are (FlowRecord.addrBytes: the datagram `b` itself
 * and offsets into it) is always filled, a few plain stores.
 */
import { DecodeError } from '../errors.js';
import { ipv4String, ipv6String } from '../packet/addr.js';
import { emptyRecord, type FlowRecord, type SamplingSource } from '../record.js';
import { FLOW_LABEL_MASK } from '../scitags/flowlabel.js';
import { dumpRecordFields } from './fields.js';
import { CompiledFills } from './fill-compiled.js';
import { walkFrame } from './frame.js';
import { type DecodePlan, Slot, SLOT_COUNT, Volume, VOLUME_TOTALS } from './plan.js';
import {
  newSamplingFields,
  resetSamplingFields,
  resolveRate,
  type ResolvedRate,
  type SamplingConfig,
  type SamplingFields,
  type SamplingTable,
} from './sampling.js';
import type { FlowDecoderState, SessionState } from './state.js';
import { type Deltas, type FlowTotalsTable, totalsToDeltas } from './totals.js';

/** Per-set context, reused between sets and datagrams (mutable to avoid allocation). */
export interface DataContext {
  protocol: 'ipfix' | 'netflow9';
  exporter: string;
  exporterAddr: string;
  domain: number;
  /**
   * Header export time in ms since the epoch. Typed `number | undefined` (and created
   * undefined) on purpose: the field then holds a boxed number that is copied into every
   * record as is, instead of a raw double boxed anew for each record's `exportMs`.
   */
  exportMs: number | undefined;
  /** v9 header sysUptime in ms (base of fields 21/22); -1 for IPFIX. */
  sysUptimeMs: number;
  /** IPFIX systemInitTimeMilliseconds from options; -1 when unknown. */
  systemInitMs: number;
  sessionSampling: SamplingTable;
  exporterSampling: SamplingTable | undefined;
  sampling: SamplingConfig;
  withFields: boolean;
  withAddresses: boolean;
  /** Where records go: the caller's sink when given (records reused), else `out`. */
  sink: ((rec: FlowRecord) => void) | undefined;
  out: FlowRecord[];
  /** Records whose rate was unknown (the global default used), for the stats. */
  unknownSampling: number;
  /** Records emitted (forward and RFC 5103 reverse ones), for the stats. */
  emitted: number;
  /** Records of no-volume templates: counted here, never emitted. */
  noVolume: number;
  /** Receive time of the datagram (the total-to-delta table's clock). */
  receivedMs: number;
  /** The state, session and domain table that totals.ts updates; the table is undefined until a template needs it. */
  state: FlowDecoderState | undefined;
  session: SessionState | undefined;
  totals: FlowTotalsTable | undefined;
  /** IE 315 frames: keep the outer header of IP-in-IP under IPv6 (exporters.outerFlowLabel). */
  outerHeaders: boolean;
}

/** Record sampling fields and the resolved rate: scratch reused for every record. */
const sf: SamplingFields = newSamplingFields();
const rate: ResolvedRate = { rate: 1, source: 'unknown' };

/**
 * Absolute field positions and lengths of the current record of a variable-length template,
 * indexed by slot like DecodePlan.pos / len (which for such templates hold field indexes).
 */
const varPos = new Int32Array(SLOT_COUNT);
const varLen = new Int32Array(SLOT_COUNT);

/** The current record's counts once chosen (finishVolume), reverse ones included. */
const deltas: Deltas = { bytes: 0, packets: 0, revBytes: 0, revPackets: 0 };

/** Big-endian unsigned of 1..8 octets; the caller checked the bounds. */
function uintAt(b: Uint8Array, o: number, len: number): number {
  switch (len) {
    case 1:
      return b[o]!;
    case 2:
      return (b[o]! << 8) | b[o + 1]!;
    case 4:
      return ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
    case 8:
      return (
        (((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0) * 4294967296 +
        ((((b[o + 4]! << 24) | (b[o + 5]! << 16) | (b[o + 6]! << 8) | b[o + 7]!) >>> 0) as number)
      );
    default: {
      let v = 0;
      for (let i = 0; i < len; i++) v = v * 256 + b[o + i]!;
      return v;
    }
  }
}

/** NTP-format timestamp (RFC 7011 6.1.9/6.1.10): seconds since 1900 + 2^-32 fractions. */
function ntpToMs(b: Uint8Array, o: number): number {
  const secs = uintAt(b, o, 4);
  const frac = uintAt(b, o + 4, 4);
  return (secs - 2208988800) * 1000 + Math.floor((frac * 1000) / 4294967296);
}

/** A flowStart… / flowEnd… time (slots START_x / END_x, RFC 7011 6.1.7-6.1.10) in epoch ms. */
function timeAt(b: Uint8Array, o: number, slot: number): number {
  if (slot === Slot.START_MS || slot === Slot.END_MS) return uintAt(b, o, 8);
  if (slot === Slot.START_S || slot === Slot.END_S) return uintAt(b, o, 4) * 1000;
  return ntpToMs(b, o); // _US, _NS: NTP format
}

/** Converts a sysUpTime value to epoch ms, tolerating the 32-bit uptime wrap (~49.7 days). */
function uptimeToMs(ctx: DataContext, sysInit: number, up: number): number | undefined {
  if (ctx.sysUptimeMs >= 0) {
    // RFC 3954 5.1: first/last switched are sysUptime values at the flow's start/end.
    const behind = (ctx.sysUptimeMs - up) | 0;
    return (ctx.exportMs as number) - behind;
  }
  // RFC 7011 / IANA: flowStartSysUpTime is relative to systemInitTimeMilliseconds (160).
  const init = sysInit >= 0 ? sysInit : ctx.systemInitMs;
  return init >= 0 ? init + up : undefined;
}

/** flowStart/EndSysUpTime (21/22), optionally with systemInitTimeMilliseconds (160) in the record. */
function applyUptimes(b: Uint8Array, base: number, pos: Int32Array, len: Int32Array, rec: FlowRecord, ctx: DataContext): void {
  let o = pos[Slot.SYS_INIT]!;
  const sysInit = o >= 0 ? uintAt(b, base + o, 8) : -1;
  o = pos[Slot.START_UPTIME]!;
  if (o >= 0) rec.startMs = uptimeToMs(ctx, sysInit, uintAt(b, base + o, len[Slot.START_UPTIME]!));
  o = pos[Slot.END_UPTIME]!;
  if (o >= 0) rec.endMs = uptimeToMs(ctx, sysInit, uintAt(b, base + o, len[Slot.END_UPTIME]!));
}

/** The sampling fields a data record carries itself (plan.recordSampling), into `f`. */
function readRecordSampling(b: Uint8Array, base: number, pos: Int32Array, len: Int32Array, f: SamplingFields): void {
  resetSamplingFields(f);
  let o = pos[Slot.SAMPLING_INTERVAL]!;
  if (o >= 0) f.interval = uintAt(b, base + o, len[Slot.SAMPLING_INTERVAL]!);
  o = pos[Slot.SAMPLING_ALGORITHM]!;
  if (o >= 0) f.algorithm = uintAt(b, base + o, len[Slot.SAMPLING_ALGORITHM]!);
  o = pos[Slot.SAMPLER_ID]!;
  if (o >= 0) f.samplerId = uintAt(b, base + o, len[Slot.SAMPLER_ID]!);
  o = pos[Slot.SAMPLER_MODE]!;
  if (o >= 0) f.samplerMode = uintAt(b, base + o, len[Slot.SAMPLER_MODE]!);
  o = pos[Slot.SAMPLER_RANDOM_INTERVAL]!;
  if (o >= 0) f.samplerRandomInterval = uintAt(b, base + o, len[Slot.SAMPLER_RANDOM_INTERVAL]!);
  o = pos[Slot.SELECTOR_ID]!;
  if (o >= 0) f.selectorId = uintAt(b, base + o, len[Slot.SELECTOR_ID]!);
  o = pos[Slot.PACKET_INTERVAL]!;
  if (o >= 0) f.packetInterval = uintAt(b, base + o, len[Slot.PACKET_INTERVAL]!);
  o = pos[Slot.PACKET_SPACE]!;
  if (o >= 0) f.packetSpace = uintAt(b, base + o, len[Slot.PACKET_SPACE]!);
  o = pos[Slot.SAMPLING_SIZE]!;
  if (o >= 0) f.size = uintAt(b, base + o, len[Slot.SAMPLING_SIZE]!);
  o = pos[Slot.SAMPLING_POPULATION]!;
  if (o >= 0) f.population = uintAt(b, base + o, len[Slot.SAMPLING_POPULATION]!);
}

/**
 * Writes every field of `rec` from the record whose slot fields sit at `base + pos[slot]`
 * (lengths in `len`). Every field is assigned, present or not, so a reused record carries
 * nothing over from the previous one (nor from a consumer that changed it). `rate`/`source`
 * are the set-wide sampling rate, used unless `perRecordRate`.
 */
function fillRecord(
  b: Uint8Array,
  base: number,
  pos: Int32Array,
  len: Int32Array,
  plan: DecodePlan,
  ctx: DataContext,
  rec: FlowRecord,
  perRecordRate: boolean,
  setRate: number,
  setSource: SamplingSource,
): void {
  rec.protocol = ctx.protocol;
  rec.exporter = ctx.exporter;
  rec.domain = ctx.domain;
  rec.templateId = plan.templateId;
  rec.exportMs = ctx.exportMs;
  // The reads below are written out rather than calling small helpers: V8 inlines helpers
  // only within a per-function budget, and which ones it inlined varied from run to run
  // (measured: up to a third of the time spent in calls to them). Lengths were checked when
  // the template was compiled (plan.ts slotFor); the usual ones are read inline, the rest
  // (3-, 5-, 6-, 7-octet counters) by uintAt.
  let o = pos[Slot.BYTES]!;
  let l = len[Slot.BYTES]!;
  if (o < 0) rec.bytes = 0;
  else if (l === 8) {
    o += base;
    rec.bytes =
      (((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0) * 4294967296 +
      (((b[o + 4]! << 24) | (b[o + 5]! << 16) | (b[o + 6]! << 8) | b[o + 7]!) >>> 0);
  } else if (l === 4) {
    o += base;
    rec.bytes = ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
  } else rec.bytes = uintAt(b, base + o, l);
  o = pos[Slot.PACKETS]!;
  l = len[Slot.PACKETS]!;
  if (o < 0) rec.packets = 0;
  else if (l === 8) {
    o += base;
    rec.packets =
      (((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0) * 4294967296 +
      (((b[o + 4]! << 24) | (b[o + 5]! << 16) | (b[o + 6]! << 8) | b[o + 7]!) >>> 0);
  } else if (l === 4) {
    o += base;
    rec.packets = ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
  } else rec.packets = uintAt(b, base + o, l);
  o = pos[Slot.PROTO]!;
  rec.ipProtocol = o >= 0 ? b[base + o]! : undefined;
  o = pos[Slot.TOS]!;
  rec.trafficClass = o >= 0 ? b[base + o]! : undefined;
  o = pos[Slot.SRC_PORT]!;
  rec.srcPort = o >= 0 ? (b[base + o]! << 8) | b[base + o + 1]! : undefined;
  o = pos[Slot.DST_PORT]!;
  rec.dstPort = o >= 0 ? (b[base + o]! << 8) | b[base + o + 1]! : undefined;
  o = pos[Slot.IN_IF]!;
  if (o < 0) rec.inIf = undefined;
  else {
    o += base;
    l = len[Slot.IN_IF]!;
    rec.inIf =
      l === 4
        ? ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0
        : l === 2
          ? (b[o]! << 8) | b[o + 1]!
          : uintAt(b, o, l);
  }
  o = pos[Slot.OUT_IF]!;
  if (o < 0) rec.outIf = undefined;
  else {
    o += base;
    l = len[Slot.OUT_IF]!;
    rec.outIf =
      l === 4
        ? ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0
        : l === 2
          ? (b[o]! << 8) | b[o + 1]!
          : uintAt(b, o, l);
  }
  o = pos[Slot.DIRECTION]!;
  rec.direction = o >= 0 ? b[base + o]! : undefined;
  // vlanId (58) wins over dot1qVlanId (243), which is read only when 58 is absent.
  o = pos[Slot.VLAN]!;
  if (o < 0) {
    o = pos[Slot.DOT1Q_VLAN]!;
    rec.vlan = o >= 0 ? uintAt(b, base + o, len[Slot.DOT1Q_VLAN]!) & 0xfff : undefined;
  } else {
    o += base;
    rec.vlan = (len[Slot.VLAN] === 2 ? (b[o]! << 8) | b[o + 1]! : b[o]!) & 0xfff;
  }
  // 20-bit label in 3 or 4 octets; pmacct puts the low nibble of the traffic class above
  // the label in 3 octets, hence the mask (and uintAt for 1 or 2 octets, which no one sends).
  o = pos[Slot.FLOW_LABEL]!;
  if (o < 0) rec.flowLabel = undefined;
  else {
    o += base;
    l = len[Slot.FLOW_LABEL]!;
    rec.flowLabel =
      (l === 3
        ? (b[o]! << 16) | (b[o + 1]! << 8) | b[o + 2]!
        : l === 4
          ? (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!
          : uintAt(b, o, l)) & FLOW_LABEL_MASK;
  }
  o = pos[Slot.IP_VERSION]!;
  const v = o >= 0 ? b[base + o]! : 0;
  rec.ipVersion = v === 4 || v === 6 ? v : plan.impliedIpVersion;
  // flowStart/End: milliseconds (8 octets) inline, seconds and NTP formats by timeAt.
  let slot = plan.startSlot;
  if (slot === Slot.START_MS) {
    o = base + pos[slot]!;
    rec.startMs =
      (((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0) * 4294967296 +
      (((b[o + 4]! << 24) | (b[o + 5]! << 16) | (b[o + 6]! << 8) | b[o + 7]!) >>> 0);
  } else rec.startMs = slot >= 0 ? timeAt(b, base + pos[slot]!, slot) : undefined;
  slot = plan.endSlot;
  if (slot === Slot.END_MS) {
    o = base + pos[slot]!;
    rec.endMs =
      (((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0) * 4294967296 +
      (((b[o + 4]! << 24) | (b[o + 5]! << 16) | (b[o + 6]! << 8) | b[o + 7]!) >>> 0);
  } else rec.endMs = slot >= 0 ? timeAt(b, base + pos[slot]!, slot) : undefined;
  if (plan.hasUptime) applyUptimes(b, base, pos, len, rec, ctx);
  fillAddressBytes(b, base, pos, plan, rec);
  fillAddresses(b, base, pos, plan, rec, ctx.withAddresses);
  // IE 315: the frame fills what the template's own fields left unset.
  if (plan.hasFrame) fillFrame(b, base, pos, len, plan, rec, ctx);
  fillSampling(b, base, pos, len, plan, ctx, rec, perRecordRate, setRate, setSource);
}

/**
 * The address bytes (FlowRecord.addrBytes, addrLen, srcAddrAt, dstAddrAt), whether or not
 * the strings are formatted: `b` itself and absolute offsets into it, from the same slots
 * as srcAddr / dstAddr. Set only when the record has both addresses, of one length; a
 * template with only one of them (or an IPv4 source with an IPv6 destination) gets addrLen
 * 0, so a consumer reads two addresses of addrLen octets or none. fill-compiled.ts
 * generates the same stores with constant offsets.
 */
function fillAddressBytes(b: Uint8Array, base: number, pos: Int32Array, plan: DecodePlan, rec: FlowRecord): void {
  const s = plan.srcSlot;
  const d = plan.dstSlot;
  if (s === Slot.SRC6 ? d === Slot.DST6 : s === Slot.SRC4 && d === Slot.DST4) {
    rec.addrBytes = b;
    rec.addrLen = s === Slot.SRC6 ? 16 : 4;
    rec.srcAddrAt = base + pos[s]!;
    rec.dstAddrAt = base + pos[d]!;
  } else {
    rec.addrBytes = undefined;
    rec.addrLen = 0;
    rec.srcAddrAt = 0;
    rec.dstAddrAt = 0;
  }
}

/**
 * IE 315 (frame.ts): the frame at the FRAME slot, with where the record's own address
 * fields are (-1 for one it lacks), so that the frame supplies the missing ones only, bytes
 * and strings alike.
 */
function fillFrame(
  b: Uint8Array,
  base: number,
  pos: Int32Array,
  len: Int32Array,
  plan: DecodePlan,
  rec: FlowRecord,
  ctx: DataContext,
): void {
  const s = plan.srcSlot;
  const d = plan.dstSlot;
  walkFrame(
    b,
    base + pos[Slot.FRAME]!,
    len[Slot.FRAME]!,
    rec,
    plan.hasCounts,
    ctx.withAddresses,
    ctx.outerHeaders,
    s < 0 ? -1 : base + pos[s]!,
    s === Slot.SRC6 ? 16 : 4,
    d < 0 ? -1 : base + pos[d]!,
    d === Slot.DST6 ? 16 : 4,
  );
}

/** srcAddr / dstAddr, formatted only when the caller asked for addresses. */
function fillAddresses(b: Uint8Array, base: number, pos: Int32Array, plan: DecodePlan, rec: FlowRecord, withAddresses: boolean): void {
  if (withAddresses) {
    let slot = plan.srcSlot;
    rec.srcAddr = slot < 0 ? undefined : slot === Slot.SRC6 ? ipv6String(b, base + pos[slot]!) : ipv4String(b, base + pos[slot]!);
    slot = plan.dstSlot;
    rec.dstAddr = slot < 0 ? undefined : slot === Slot.DST6 ? ipv6String(b, base + pos[slot]!) : ipv4String(b, base + pos[slot]!);
  } else {
    rec.srcAddr = undefined;
    rec.dstAddr = undefined;
  }
}

/** samplingRate / samplingSource: the set-wide rate, or resolved per record when `perRecordRate`. */
function fillSampling(
  b: Uint8Array,
  base: number,
  pos: Int32Array,
  len: Int32Array,
  plan: DecodePlan,
  ctx: DataContext,
  rec: FlowRecord,
  perRecordRate: boolean,
  setRate: number,
  setSource: SamplingSource,
): void {
  if (perRecordRate) {
    if (plan.recordSampling) readRecordSampling(b, base, pos, len, sf);
    resolveRate(ctx.sessionSampling, ctx.exporterSampling, plan.recordSampling ? sf : null, rec.inIf ?? -1, ctx.sampling, rate);
    rec.samplingRate = rate.rate;
    rec.samplingSource = rate.source;
    if (rate.source === 'unknown') ctx.unknownSampling++;
  } else {
    rec.samplingRate = setRate;
    rec.samplingSource = setSource;
    if (setSource === 'unknown') ctx.unknownSampling++;
  }
}

/** Fills specialised per fixed-length layout (fill-compiled.ts); fillRecord is their reference. */
const compiledFills = new CompiledFills<DataContext>({
  uintAt,
  timeAt,
  applyUptimes,
  fillAddresses: (b, base, plan, rec, withAddresses) => fillAddresses(b, base, plan.pos, plan, rec, withAddresses),
  fillFrame: (b, base, plan, rec, ctx) => fillFrame(b, base, plan.pos, plan.len, plan, rec, ctx),
  fillSampling: (b, base, plan, ctx, rec, perRecordRate, setRate, setSource) =>
    fillSampling(b, base, plan.pos, plan.len, plan, ctx, rec, perRecordRate, setRate, setSource),
});
let compiledFillOn = true;

/**
 * Whether fixed-length templates use their compiled fill (default) or fillRecord. For the
 * equivalence test and the bench's comparison; both produce identical records.
 */
export function useCompiledFill(on: boolean): void {
  compiledFillOn = on;
}

/** An address as a key part: '' when the template has none. */
function addrKey(b: Uint8Array, base: number, pos: Int32Array, slot: number): string {
  if (slot < 0) return '';
  const o = base + pos[slot]!;
  return slot === Slot.SRC6 || slot === Slot.DST6 ? ipv6String(b, o) : ipv4String(b, o);
}

/** The flow a record of running totals belongs to (see totals.ts): flowId, else its key fields. */
function flowKey(b: Uint8Array, base: number, pos: Int32Array, len: Int32Array, plan: DecodePlan, rec: FlowRecord): string {
  const o = pos[Slot.FLOW_ID]!;
  if (o >= 0) return `#${uintAt(b, base + o, len[Slot.FLOW_ID]!)}`;
  return (
    `${addrKey(b, base, pos, plan.srcSlot)}|${addrKey(b, base, pos, plan.dstSlot)}|${rec.ipProtocol}|${rec.srcPort}|` +
    `${rec.dstPort}|${rec.inIf}|${rec.outIf}|${rec.vlan}|${rec.startMs}`
  );
}

/**
 * The rare volume cases (plan.volume != 0), after fillRecord read BYTES / PACKETS: NSEL
 * responder counts added, RFC 5103 reverse counts read into `deltas`, running totals turned
 * into deltas (totals.ts).
 */
function finishVolume(
  b: Uint8Array,
  base: number,
  pos: Int32Array,
  len: Int32Array,
  plan: DecodePlan,
  ctx: DataContext,
  rec: FlowRecord,
): void {
  const v = plan.volume;
  let o: number;
  if ((v & Volume.ADD) !== 0) {
    o = pos[Slot.BYTES_ADD]!;
    if (o >= 0) rec.bytes += uintAt(b, base + o, len[Slot.BYTES_ADD]!);
    o = pos[Slot.PACKETS_ADD]!;
    if (o >= 0) rec.packets += uintAt(b, base + o, len[Slot.PACKETS_ADD]!);
  }
  const d = deltas;
  if ((v & Volume.REVERSE) !== 0) {
    o = pos[Slot.REV_BYTES]!;
    d.revBytes = o >= 0 ? uintAt(b, base + o, len[Slot.REV_BYTES]!) : 0;
    o = pos[Slot.REV_PACKETS]!;
    d.revPackets = o >= 0 ? uintAt(b, base + o, len[Slot.REV_PACKETS]!) : 0;
  } else d.revBytes = d.revPackets = 0;
  if ((v & VOLUME_TOTALS) !== 0 && ctx.totals !== undefined) {
    d.bytes = rec.bytes;
    d.packets = rec.packets;
    totalsToDeltas(
      ctx.state!,
      ctx.session!,
      ctx.totals,
      flowKey(b, base, pos, len, plan, rec),
      ctx.receivedMs,
      d,
      (v & Volume.TOTAL_BYTES) !== 0,
      (v & Volume.TOTAL_PACKETS) !== 0,
      (v & Volume.REV_TOTAL_BYTES) !== 0,
      (v & Volume.REV_TOTAL_PACKETS) !== 0,
    );
    rec.bytes = d.bytes;
    rec.packets = d.packets;
  }
}

/**
 * RFC 5103 section 6: a biflow's reverse counters are the traffic of the opposite direction,
 * emitted as a record of its own. It is refilled from the wire (a sink may have changed the
 * forward record it was given) and turned around: input and output interfaces, addresses and
 * ports swapped, the reverse counts, reverseFlowLabelIPv6 as its label (undefined when not
 * exported: the forward label is the other host's), and no traffic class (the forward one is
 * the other direction's). A reverse direction that carried nothing is not emitted.
 */
function emitReverse(
  b: Uint8Array,
  base: number,
  pos: Int32Array,
  len: Int32Array,
  plan: DecodePlan,
  ctx: DataContext,
  shared: FlowRecord | undefined,
  perRecordRate: boolean,
  setRate: number,
  setSource: SamplingSource,
  fields: Record<string, unknown> | undefined,
): void {
  if (deltas.revBytes === 0 && deltas.revPackets === 0) return;
  const rec = shared ?? emptyRecord(ctx.protocol, ctx.exporter, ctx.domain);
  fillRecord(b, base, pos, len, plan, ctx, rec, perRecordRate, setRate, setSource);
  const inIf = rec.inIf;
  rec.inIf = rec.outIf;
  rec.outIf = inIf;
  const src = rec.srcAddr;
  rec.srcAddr = rec.dstAddr;
  rec.dstAddr = src;
  const srcAt = rec.srcAddrAt;
  rec.srcAddrAt = rec.dstAddrAt;
  rec.dstAddrAt = srcAt;
  const srcPort = rec.srcPort;
  rec.srcPort = rec.dstPort;
  rec.dstPort = srcPort;
  rec.bytes = deltas.revBytes;
  rec.packets = deltas.revPackets;
  const o = pos[Slot.REV_FLOW_LABEL]!;
  rec.flowLabel = o >= 0 ? uintAt(b, base + o, len[Slot.REV_FLOW_LABEL]!) & FLOW_LABEL_MASK : undefined;
  rec.trafficClass = undefined;
  if (fields !== undefined) rec.fields = fields;
  if (ctx.sink !== undefined) ctx.sink(rec);
  else ctx.out.push(rec);
  ctx.emitted++;
}

/**
 * Walks the records of a variable-length data set without decoding them, and throws
 * DecodeError('record-malformed') at the first field running past the set. Run before any
 * record is decoded, so a set is emitted whole or not at all: a sink cannot take records
 * back, and sets are atomic (see ipfix.ts).
 */
function checkVarlenSet(b: Uint8Array, start: number, end: number, plan: DecodePlan): number {
  const lens = plan.lens;
  const fc = plan.fieldCount;
  let p = start;
  let n = 0;
  while (end - p >= plan.minLength) {
    n++;
    for (let i = 0; i < fc; i++) {
      let len = lens[i]!;
      if (len < 0) {
        // RFC 7011 section 7: one length octet, or 255 and then two.
        if (p >= end) throw new DecodeError('record-malformed', `template ${plan.templateId}: varlen length past set end`, p);
        len = b[p++]!;
        if (len === 255) {
          if (p + 2 > end) throw new DecodeError('record-malformed', `template ${plan.templateId}: varlen length past set end`, p);
          len = (b[p]! << 8) | b[p + 1]!;
          p += 2;
        }
      }
      if (p + len > end) {
        throw new DecodeError('record-malformed', `template ${plan.templateId}: field ${i} (${len} octets) past set end`, p);
      }
      p += len;
    }
  }
  return n;
}

/**
 * Decodes every record of a data set body `b[start..end)` with `plan`, handing each to
 * `ctx.sink` (one reused record) or appending it to `ctx.out`. Returns the number of records.
 * Throws DecodeError('record-malformed') when a variable-length field runs past the set,
 * before any record of the set is emitted; the caller then discards the whole set.
 */
export function decodeDataSet(b: Uint8Array, start: number, end: number, plan: DecodePlan, ctx: DataContext): number {
  if (plan.noVolume) {
    // Nothing in these records says how much traffic they stand for: counted as no-volume
    // (never added as zeros), after the same structural check as any other set.
    const records = plan.fixedLength > 0 ? Math.floor((end - start) / plan.fixedLength) : checkVarlenSet(b, start, end, plan);
    ctx.noVolume += records;
    return records;
  }
  const vol = plan.volume;
  // The set-wide rate, when nothing in a record can change it: resolved once per set.
  const perRecordRate = plan.recordSampling || ctx.sessionSampling.interfaces.size > 0 || (ctx.exporterSampling?.interfaces.size ?? 0) > 0;
  let setRate = 1;
  let setSource: SamplingSource = 'unknown';
  if (!perRecordRate) {
    resolveRate(ctx.sessionSampling, ctx.exporterSampling, null, -1, ctx.sampling, rate);
    setRate = rate.rate;
    setSource = rate.source;
  }
  const sink = ctx.sink;
  // With a sink, one record object is refilled for every record of the set. It is made here
  // (by emptyRecord, so it has the hidden class of array-mode records and a consumer's
  // property accesses stay monomorphic) rather than once per process: a young object takes
  // the freshly boxed times without old-to-young write barriers (measured ~5% faster).
  // A record that gets a field dump is the caller's to keep: never a reused one.
  const reuse = sink !== undefined && !ctx.withFields;
  const shared = reuse ? emptyRecord(ctx.protocol, ctx.exporter, ctx.domain) : undefined;
  let n = 0;
  if (plan.fixedLength > 0) {
    const L = plan.fixedLength;
    const pos = plan.pos;
    const len = plan.len;
    // Compiled when a record of the set fits: a template no record can match costs nothing.
    const fill = compiledFillOn && start + L <= end ? (plan.compiledFill ??= compiledFills.get(plan)) : undefined;
    // Trailing bytes shorter than a record are padding (RFC 7011 3.3.1, RFC 3954 5.3).
    for (let p = start; p + L <= end; p += L) {
      const rec = shared ?? emptyRecord(ctx.protocol, ctx.exporter, ctx.domain);
      if (fill !== undefined) fill(b, p, plan, ctx, rec, perRecordRate, setRate, setSource);
      else fillRecord(b, p, pos, len, plan, ctx, rec, perRecordRate, setRate, setSource);
      if (vol !== 0) finishVolume(b, p, pos, len, plan, ctx, rec);
      if (ctx.withFields) rec.fields = dumpRecordFields(b, p, p + L, plan);
      if (sink !== undefined) sink(rec);
      else ctx.out.push(rec);
      n++;
      if ((vol & Volume.REVERSE) !== 0) emitReverse(b, p, pos, len, plan, ctx, shared, perRecordRate, setRate, setSource, rec.fields);
    }
    ctx.emitted += n;
    return n;
  }
  // Variable-length template (RFC 7011 section 7 length prefixes): check the whole set, then
  // walk each record's fields into the position table and fill from there.
  checkVarlenSet(b, start, end, plan);
  const lens = plan.lens;
  const slots = plan.slots;
  const fc = plan.fieldCount;
  const pos = varPos;
  const len = varLen;
  pos.fill(-1);
  let p = start;
  while (end - p >= plan.minLength) {
    const recStart = p;
    for (let i = 0; i < fc; i++) {
      let l = lens[i]!;
      if (l < 0) {
        l = b[p++]!;
        if (l === 255) {
          l = (b[p]! << 8) | b[p + 1]!;
          p += 2;
        }
      }
      const slot = slots[i]!;
      if (slot !== Slot.SKIP) {
        pos[slot] = p;
        len[slot] = l;
      }
      p += l;
    }
    const rec = shared ?? emptyRecord(ctx.protocol, ctx.exporter, ctx.domain);
    fillRecord(b, 0, pos, len, plan, ctx, rec, perRecordRate, setRate, setSource);
    if (vol !== 0) finishVolume(b, 0, pos, len, plan, ctx, rec);
    if (ctx.withFields) rec.fields = dumpRecordFields(b, recStart, p, plan);
    if (sink !== undefined) sink(rec);
    else ctx.out.push(rec);
    n++;
    if ((vol & Volume.REVERSE) !== 0) emitReverse(b, 0, pos, len, plan, ctx, shared, perRecordRate, setRate, setSource, rec.fields);
  }
  ctx.emitted += n;
  return n;
}

const utf8 = new TextDecoder('utf-8', { fatal: false });

/** C0 controls and DEL: what a name loses before it becomes a tag and a label. */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f]/g;

/**
 * interfaceName (RFC 7011 6.1.6 string: UTF-8, no terminator required). Exporters pad with
 * NULs in fixed-length fields; control characters are dropped so a name is safe to show
 * and to use as a tag, and its length is capped.
 */
function interfaceNameAt(b: Uint8Array, p: number, len: number): string | undefined {
  let end = p + Math.min(len, 64);
  const nul = b.indexOf(0, p);
  if (nul >= 0 && nul < end) end = nul;
  const name = utf8.decode(b.subarray(p, end)).replace(CONTROL_CHARACTERS, '').trim();
  return name.length > 0 ? name : undefined;
}

/**
 * Walks the records of an options data set, handing each record's sampling fields to
 * `onRecord`. Same layout rules as data records; returns the number of records.
 */
export function decodeOptionsSet(
  b: Uint8Array,
  start: number,
  end: number,
  plan: DecodePlan,
  onRecord: (f: SamplingFields) => void,
): number {
  const f = newSamplingFields();
  let n = 0;
  let p = start;
  while (end - p >= plan.minLength) {
    resetSamplingFields(f);
    for (let i = 0; i < plan.fieldCount; i++) {
      let len = plan.lens[i]!;
      if (len < 0) {
        if (p >= end) throw new DecodeError('record-malformed', `options template ${plan.templateId}: varlen past set end`, p);
        len = b[p++]!;
        if (len === 255) {
          if (p + 2 > end) throw new DecodeError('record-malformed', `options template ${plan.templateId}: varlen past set end`, p);
          len = (b[p]! << 8) | b[p + 1]!;
          p += 2;
        }
      }
      if (p + len > end) {
        throw new DecodeError('record-malformed', `options template ${plan.templateId}: field ${i} past set end`, p);
      }
      const slot = plan.slots[i]!;
      const scope = i < plan.scopeCount;
      switch (slot) {
        case Slot.SAMPLING_INTERVAL:
          f.interval = uintAt(b, p, len);
          break;
        case Slot.SAMPLING_ALGORITHM:
          f.algorithm = uintAt(b, p, len);
          break;
        case Slot.SAMPLER_ID:
          f.samplerId = uintAt(b, p, len);
          break;
        case Slot.SAMPLER_MODE:
          f.samplerMode = uintAt(b, p, len);
          break;
        case Slot.SAMPLER_RANDOM_INTERVAL:
          f.samplerRandomInterval = uintAt(b, p, len);
          break;
        case Slot.SELECTOR_ID:
          f.selectorId = uintAt(b, p, len);
          break;
        case Slot.PACKET_INTERVAL:
          f.packetInterval = uintAt(b, p, len);
          break;
        case Slot.PACKET_SPACE:
          f.packetSpace = uintAt(b, p, len);
          break;
        case Slot.SAMPLING_SIZE:
          f.size = uintAt(b, p, len);
          break;
        case Slot.SAMPLING_POPULATION:
          f.population = uintAt(b, p, len);
          break;
        case Slot.SYS_INIT:
          f.systemInitMs = uintAt(b, p, 8);
          break;
        case Slot.SCOPE_INTERFACE:
          f.scopeInterface = uintAt(b, p, len);
          break;
        case Slot.IN_IF:
          // An interface as a scope field: the options describe that interface only.
          if (scope) f.scopeInterface = uintAt(b, p, len);
          break;
        case Slot.INTERFACE_NAME:
          f.interfaceName = interfaceNameAt(b, p, len);
          break;
        default:
          break;
      }
      p += len;
    }
    onRecord(f);
    n++;
  }
  return n;
}
