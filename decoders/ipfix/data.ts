/**
 * Data set decoding: a compiled plan applied to each record of a data set (IPFIX set id
 * >= 256, NetFlow v9 flowset id >= 256) producing FlowRecords.
 *
 * Hot path. Fixed-length templates visit only the fields that feed a slot, at precomputed
 * offsets; variable-length templates walk every field. Values are read straight from the
 * byte array after one bounds check per record; addresses are formatted only when asked.
 */
import { DecodeError } from '../errors.js';
import { ipv4String, ipv6String } from '../packet/addr.js';
import { emptyRecord, type FlowRecord, type SamplingSource } from '../record.js';
import { FLOW_LABEL_MASK } from '../scitags/flowlabel.js';
import { dumpRecordFields } from './fields.js';
import { walkFrame } from './frame.js';
import { type DecodePlan, Slot } from './plan.js';
import {
  newSamplingFields,
  resetSamplingFields,
  resolveRate,
  type ResolvedRate,
  type SamplingConfig,
  type SamplingFields,
  type SamplingTable,
} from './sampling.js';

/** Per-set context, reused between sets and datagrams (mutable to avoid allocation). */
export interface DataContext {
  protocol: 'ipfix' | 'netflow9';
  exporter: string;
  exporterAddr: string;
  domain: number;
  /** Header export time in ms since the epoch. */
  exportMs: number;
  /** v9 header sysUptime in ms (base of fields 21/22); -1 for IPFIX. */
  sysUptimeMs: number;
  /** IPFIX systemInitTimeMilliseconds from options; -1 when unknown. */
  systemInitMs: number;
  sessionSampling: SamplingTable;
  exporterSampling: SamplingTable | undefined;
  sampling: SamplingConfig;
  withFields: boolean;
  withAddresses: boolean;
  /** Records whose rate was unknown (the global default used), for the stats. */
  unknownSampling: number;
}

/** Per-record scratch values that need the whole record before they can be used. */
interface Scratch {
  ipVersion: number;
  startUp: number;
  endUp: number;
  sysInit: number;
  frameOff: number;
  frameLen: number;
  sf: SamplingFields;
  rate: ResolvedRate;
}

const scratch: Scratch = {
  ipVersion: 0,
  startUp: -1,
  endUp: -1,
  sysInit: -1,
  frameOff: -1,
  frameLen: 0,
  sf: newSamplingFields(),
  rate: { rate: 1, source: 'unknown' },
};

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

function applySlot(slot: number, b: Uint8Array, o: number, len: number, rec: FlowRecord, s: Scratch, ctx: DataContext): void {
  switch (slot) {
    case Slot.BYTES:
      rec.bytes = uintAt(b, o, len);
      return;
    case Slot.PACKETS:
      rec.packets = uintAt(b, o, len);
      return;
    case Slot.PROTO:
      rec.ipProtocol = b[o]!;
      return;
    case Slot.TOS:
      rec.trafficClass = b[o]!;
      return;
    case Slot.SRC_PORT:
      rec.srcPort = (b[o]! << 8) | b[o + 1]!;
      return;
    case Slot.DST_PORT:
      rec.dstPort = (b[o]! << 8) | b[o + 1]!;
      return;
    case Slot.SRC4:
      if (ctx.withAddresses) rec.srcAddr = ipv4String(b, o);
      return;
    case Slot.DST4:
      if (ctx.withAddresses) rec.dstAddr = ipv4String(b, o);
      return;
    case Slot.SRC6:
      if (ctx.withAddresses) rec.srcAddr = ipv6String(b, o);
      return;
    case Slot.DST6:
      if (ctx.withAddresses) rec.dstAddr = ipv6String(b, o);
      return;
    case Slot.IN_IF:
      rec.inIf = uintAt(b, o, len);
      return;
    case Slot.OUT_IF:
      rec.outIf = uintAt(b, o, len);
      return;
    case Slot.DIRECTION:
      rec.direction = b[o]!;
      return;
    case Slot.VLAN:
      rec.vlan = uintAt(b, o, len) & 0xfff;
      return;
    case Slot.DOT1Q_VLAN:
      if (rec.vlan === undefined) rec.vlan = uintAt(b, o, len) & 0xfff;
      return;
    case Slot.IP_VERSION:
      s.ipVersion = b[o]!;
      return;
    case Slot.FLOW_LABEL:
      // pmacct puts the low nibble of the traffic class above the label in 3 octets.
      rec.flowLabel = uintAt(b, o, len) & FLOW_LABEL_MASK;
      return;
    case Slot.START_S:
      rec.startMs = uintAt(b, o, 4) * 1000;
      return;
    case Slot.END_S:
      rec.endMs = uintAt(b, o, 4) * 1000;
      return;
    case Slot.START_MS:
      rec.startMs = uintAt(b, o, 8);
      return;
    case Slot.END_MS:
      rec.endMs = uintAt(b, o, 8);
      return;
    case Slot.START_US:
    case Slot.START_NS:
      rec.startMs = ntpToMs(b, o);
      return;
    case Slot.END_US:
    case Slot.END_NS:
      rec.endMs = ntpToMs(b, o);
      return;
    case Slot.START_UPTIME:
      s.startUp = uintAt(b, o, len);
      return;
    case Slot.END_UPTIME:
      s.endUp = uintAt(b, o, len);
      return;
    case Slot.SYS_INIT:
      s.sysInit = uintAt(b, o, 8);
      return;
    case Slot.SAMPLING_INTERVAL:
      s.sf.interval = uintAt(b, o, len);
      return;
    case Slot.SAMPLING_ALGORITHM:
      s.sf.algorithm = uintAt(b, o, len);
      return;
    case Slot.SAMPLER_ID:
      s.sf.samplerId = uintAt(b, o, len);
      return;
    case Slot.SAMPLER_MODE:
      s.sf.samplerMode = uintAt(b, o, len);
      return;
    case Slot.SAMPLER_RANDOM_INTERVAL:
      s.sf.samplerRandomInterval = uintAt(b, o, len);
      return;
    case Slot.SELECTOR_ID:
      s.sf.selectorId = uintAt(b, o, len);
      return;
    case Slot.PACKET_INTERVAL:
      s.sf.packetInterval = uintAt(b, o, len);
      return;
    case Slot.PACKET_SPACE:
      s.sf.packetSpace = uintAt(b, o, len);
      return;
    case Slot.SAMPLING_SIZE:
      s.sf.size = uintAt(b, o, len);
      return;
    case Slot.SAMPLING_POPULATION:
      s.sf.population = uintAt(b, o, len);
      return;
    case Slot.FRAME:
      s.frameOff = o;
      s.frameLen = len;
      return;
    default:
      return;
  }
}

/** Converts a sysUpTime value to epoch ms, tolerating the 32-bit uptime wrap (~49.7 days). */
function uptimeToMs(ctx: DataContext, s: Scratch, up: number): number | undefined {
  if (ctx.sysUptimeMs >= 0) {
    // RFC 3954 5.1: first/last switched are sysUptime values at the flow's start/end.
    const behind = (ctx.sysUptimeMs - up) | 0;
    return ctx.exportMs - behind;
  }
  // RFC 7011 / IANA: flowStartSysUpTime is relative to systemInitTimeMilliseconds (160).
  const init = s.sysInit >= 0 ? s.sysInit : ctx.systemInitMs;
  return init >= 0 ? init + up : undefined;
}

function finish(b: Uint8Array, rec: FlowRecord, plan: DecodePlan, s: Scratch, ctx: DataContext): void {
  rec.ipVersion = s.ipVersion === 4 || s.ipVersion === 6 ? s.ipVersion : plan.impliedIpVersion;
  if (s.startUp >= 0) rec.startMs = uptimeToMs(ctx, s, s.startUp);
  if (s.endUp >= 0) rec.endMs = uptimeToMs(ctx, s, s.endUp);
  if (s.frameOff >= 0) walkFrame(b, s.frameOff, s.frameLen, rec, plan.hasCounts, ctx.withAddresses);
  if (plan.recordSampling || ctx.sessionSampling.interfaces.size > 0 || (ctx.exporterSampling?.interfaces.size ?? 0) > 0) {
    resolveRate(
      ctx.sessionSampling,
      ctx.exporterSampling,
      ctx.exporterAddr,
      plan.recordSampling ? s.sf : null,
      rec.inIf ?? -1,
      ctx.sampling,
      s.rate,
    );
    rec.samplingRate = s.rate.rate;
    rec.samplingSource = s.rate.source;
    if (s.rate.source === 'unknown') ctx.unknownSampling++;
  }
}

function resetScratch(s: Scratch, recordSampling: boolean): void {
  s.ipVersion = 0;
  s.startUp = -1;
  s.endUp = -1;
  s.sysInit = -1;
  s.frameOff = -1;
  if (recordSampling) resetSamplingFields(s.sf);
}

/** A record of `plan`'s template with the set-wide fields filled in; resets the scratch for it. */
function startRecord(plan: DecodePlan, ctx: DataContext, rate: number, source: SamplingSource): FlowRecord {
  const rec = emptyRecord(ctx.protocol, ctx.exporter, ctx.domain);
  rec.templateId = plan.templateId;
  rec.exportMs = ctx.exportMs;
  rec.samplingRate = rate;
  rec.samplingSource = source;
  resetScratch(scratch, plan.recordSampling);
  return rec;
}

/**
 * Completes the record read from `b[recStart..recEnd)` and appends it to `out`;
 * `setUnknown`: the set-wide rate applies and is unknown.
 */
function endRecord(
  b: Uint8Array,
  recStart: number,
  recEnd: number,
  rec: FlowRecord,
  plan: DecodePlan,
  ctx: DataContext,
  setUnknown: boolean,
  out: FlowRecord[],
): void {
  finish(b, rec, plan, scratch, ctx);
  if (setUnknown) ctx.unknownSampling++;
  if (ctx.withFields) rec.fields = dumpRecordFields(b, recStart, recEnd, plan);
  out.push(rec);
}

/**
 * Decodes every record of a data set body `b[start..end)` with `plan`, appending to `out`.
 * Returns the number of records. Throws DecodeError('record-malformed') when a variable-length
 * field runs past the set; the caller then discards the whole set (sets are atomic).
 */
export function decodeDataSet(
  b: Uint8Array,
  start: number,
  end: number,
  plan: DecodePlan,
  ctx: DataContext,
  out: FlowRecord[],
): number {
  const s = scratch;
  // The set-wide rate, when nothing in a record can change it: resolved once per set.
  const perRecordRate =
    plan.recordSampling || ctx.sessionSampling.interfaces.size > 0 || (ctx.exporterSampling?.interfaces.size ?? 0) > 0;
  let setRate = 1;
  let setSource: SamplingSource = 'unknown';
  if (!perRecordRate) {
    resolveRate(ctx.sessionSampling, ctx.exporterSampling, ctx.exporterAddr, null, -1, ctx.sampling, s.rate);
    setRate = s.rate.rate;
    setSource = s.rate.source;
  }
  const setUnknown = !perRecordRate && setSource === 'unknown';
  let n = 0;
  if (plan.fixedLength > 0) {
    const L = plan.fixedLength;
    const ops = plan.opSlots.length;
    const opSlots = plan.opSlots;
    const opOffsets = plan.opOffsets;
    const opLens = plan.opLens;
    // Trailing bytes shorter than a record are padding (RFC 7011 3.3.1, RFC 3954 5.3).
    for (let p = start; p + L <= end; p += L) {
      const rec = startRecord(plan, ctx, setRate, setSource);
      for (let k = 0; k < ops; k++) applySlot(opSlots[k]!, b, p + opOffsets[k]!, opLens[k]!, rec, s, ctx);
      endRecord(b, p, p + L, rec, plan, ctx, setUnknown, out);
      n++;
    }
    return n;
  }
  // Variable-length template: walk every field (RFC 7011 section 7 length prefixes).
  const lens = plan.lens;
  const slots = plan.slots;
  const fc = plan.fieldCount;
  let p = start;
  while (end - p >= plan.minLength) {
    const recStart = p;
    const rec = startRecord(plan, ctx, setRate, setSource);
    for (let i = 0; i < fc; i++) {
      let len = lens[i]!;
      if (len < 0) {
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
      const slot = slots[i]!;
      if (slot !== Slot.SKIP) applySlot(slot, b, p, len, rec, s, ctx);
      p += len;
    }
    endRecord(b, recStart, p, rec, plan, ctx, setUnknown, out);
    n++;
  }
  return n;
}

const utf8 = new TextDecoder('utf-8', { fatal: false });

/**
 * interfaceName (RFC 7011 6.1.6 string: UTF-8, no terminator required). Exporters pad with
 * NULs in fixed-length fields; control characters are dropped so a name is safe to show
 * and to use as a tag, and its length is capped.
 */
function interfaceNameAt(b: Uint8Array, p: number, len: number): string | undefined {
  let end = p + Math.min(len, 64);
  const nul = b.indexOf(0, p);
  if (nul >= 0 && nul < end) end = nul;
  const name = utf8.decode(b.subarray(p, end)).replace(/[\u0000-\u001f\u007f]/g, '').trim();
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
