/**
 * Compiles a template (a list of field specifiers) into a flat decode plan once, when the
 * template arrives. The plan says, for every FlowRecord slot, where its field sits inside a
 * record (`pos`, `len`, indexed by slot number), so decoding a data record reads each slot
 * it needs at a known offset in one straight-line function (data.ts): no switch per field,
 * no per-field lookups, strings or allocations on the hot path. Which of several competing
 * fields wins (flowStartSeconds vs flowStartMilliseconds, IPv4 vs IPv6 source) is also
 * decided here, once.
 */
import type { DataContext } from './data.js';
import type { CompiledFill } from './fill-compiled.js';

/** One field specifier as it appeared on the wire (RFC 7011 section 3.2, RFC 3954 section 5.2). */
export interface TemplateField {
  /** Information element id (PEN bit cleared) or, for v9 scope fields, the scope type. */
  id: number;
  /** Private enterprise number; 0 for IANA elements. */
  pen: number;
  /** Field length in octets; VARLEN (65535) means variable length (IPFIX, and v9 from H3C). */
  length: number;
  /** True for scope fields of an options template. */
  scope: boolean;
}

/**
 * RFC 7011 section 7: a field length of 65535 announces a variable-length field. NetFlow v9
 * (RFC 3954) defines none, but H3C NetStream sends 65535 in v9 templates with the IPFIX
 * length prefix in the data (field 236, VRF name), as logstash-codec-netflow and tshark read
 * it; no fixed v9 field can be 65535 octets long in a datagram, so nothing valid is lost.
 */
export const VARLEN = 65535;

/** Where a field's value goes. Plain numbers (not a TS enum) so the plan is plain data. */
export const Slot = {
  SKIP: 0,
  BYTES: 1,
  PACKETS: 2,
  PROTO: 3,
  TOS: 4,
  SRC_PORT: 5,
  DST_PORT: 6,
  SRC4: 7,
  DST4: 8,
  SRC6: 9,
  DST6: 10,
  IN_IF: 11,
  OUT_IF: 12,
  DIRECTION: 13,
  VLAN: 14, // vlanId 58
  DOT1Q_VLAN: 15, // dot1qVlanId 243, used when 58 is absent
  IP_VERSION: 16,
  FLOW_LABEL: 17,
  START_S: 18,
  END_S: 19,
  START_MS: 20,
  END_MS: 21,
  START_US: 22,
  END_US: 23,
  START_NS: 24,
  END_NS: 25,
  START_UPTIME: 26, // flowStartSysUpTime 22
  END_UPTIME: 27, // flowEndSysUpTime 21
  SYS_INIT: 28, // systemInitTimeMilliseconds 160
  SAMPLING_INTERVAL: 29, // 34
  SAMPLING_ALGORITHM: 30, // 35
  SAMPLER_ID: 31, // 48
  SAMPLER_MODE: 32, // 49
  SAMPLER_RANDOM_INTERVAL: 33, // 50
  SELECTOR_ID: 34, // 302
  PACKET_INTERVAL: 35, // 305
  PACKET_SPACE: 36, // 306
  SAMPLING_SIZE: 37, // 309
  SAMPLING_POPULATION: 38, // 310
  FRAME: 39, // dataLinkFrameSection 315
  SCOPE_INTERFACE: 40, // v9 scope type 2 (interface); IPFIX scope IE 10 maps to IN_IF
  INTERFACE_NAME: 41, // interfaceName 82 (IPFIX) / IF_NAME 82 (v9), in interface options
  BYTES_ADD: 42, // responderOctets 232, added to initiatorOctets 231 in BYTES (NSEL)
  PACKETS_ADD: 43, // responderPackets 299, added to initiatorPackets 298 in PACKETS (NSEL)
  FLOW_ID: 44, // flowId 148: names a flow in the total-to-delta table
  REV_BYTES: 45, // reverse octets of an RFC 5103 biflow (PEN 29305)
  REV_PACKETS: 46, // reverse packets of an RFC 5103 biflow (PEN 29305)
  REV_FLOW_LABEL: 47, // reverseFlowLabelIPv6 (PEN 29305, IE 31)
} as const;

/** Number of slots: the length of DecodePlan.pos / len. */
export const SLOT_COUNT = 48;

/**
 * RFC 5103 section 6.1: the Reverse Information Element Private Enterprise Number. A reverse
 * IE is the forward IE's number with the enterprise bit set and this PEN.
 */
export const REVERSE_PEN = 29305;

/** DecodePlan.volume bits: what decodeDataSet does beyond reading BYTES / PACKETS. */
export const Volume = {
  /** NSEL: BYTES_ADD / PACKETS_ADD are added (initiator + responder). */
  ADD: 1,
  /** BYTES / PACKETS are running totals per flow (octet/packetTotalCount 85/86, or NSEL's). */
  TOTAL_BYTES: 2,
  TOTAL_PACKETS: 4,
  /** RFC 5103 reverse counters: a second record for the other direction. */
  REVERSE: 8,
  /** REV_BYTES / REV_PACKETS are reverse octetTotalCount / packetTotalCount. */
  REV_TOTAL_BYTES: 16,
  REV_TOTAL_PACKETS: 32,
} as const;

/** Any running total: the record needs the per-flow total-to-delta table (totals.ts). */
export const VOLUME_TOTALS = Volume.TOTAL_BYTES | Volume.TOTAL_PACKETS | Volume.REV_TOTAL_BYTES | Volume.REV_TOTAL_PACKETS;

/**
 * A compiled template. `ids` .. `slots` are indexed by field position (the variable-length
 * walk, options records and field dumps use them); `pos` / `len` by slot (the data-record
 * fast path uses them, and never visits skipped fields).
 */
export interface DecodePlan {
  templateId: number;
  kind: 'data' | 'options';
  /**
   * NetFlow v9 plan: scope field ids are scope types (RFC 3954 6.2). RFC 3954 has no varlen,
   * but length 65535 is read as IPFIX varlen there too (H3C NetStream sends it).
   */
  v9: boolean;
  fieldCount: number;
  scopeCount: number;
  ids: Uint16Array;
  pens: Uint32Array;
  /** Field lengths; -1 marks a variable-length field. */
  lens: Int32Array;
  slots: Uint8Array;
  /** Record length when every field is fixed, else -1. */
  fixedLength: number;
  /** Shortest possible record (a varlen field counts 1 octet): anything shorter is padding. */
  minLength: number;
  /**
   * Per slot (indexed by Slot value): the field's octet offset inside a record for
   * fixed-length templates, or the field's index in the template for variable-length ones;
   * -1 when the template does not feed that slot. `len` holds the field length (-1 varlen).
   */
  pos: Int32Array;
  len: Int32Array;
  /**
   * The slot that decides FlowRecord.startMs / endMs (START_S, _MS, _US or _NS; the last of
   * them in field order wins, as when each field was applied in turn), or -1. sysUpTime
   * fields (START_UPTIME / END_UPTIME) override it when present.
   */
  startSlot: number;
  endSlot: number;
  /** The slot that decides srcAddr / dstAddr (SRC4 or SRC6, last in field order), or -1. */
  srcSlot: number;
  dstSlot: number;
  /** flowStart/EndSysUpTime (21/22) present: times need the uptime base (rare path). */
  hasUptime: boolean;
  /** IP version implied by the address fields, for records without ipVersion (60). */
  impliedIpVersion: 0 | 4 | 6;
  /** The template carries sampling parameters in each record (34, 48, 302, 305, 309...). */
  recordSampling: boolean;
  /** The template carries a frame (IE 315) to walk. */
  hasFrame: boolean;
  /** The template carries packet/octet counts (else a PSAMP frame counts one packet). */
  hasCounts: boolean;
  /**
   * The same template read the outer way (first occurrence of every element, the outer
   * header's flow label), for exporters configured so (`exporters.outerFlowLabel`); undefined
   * when the template describes one header only and both readings are the same.
   */
  outer: DecodePlan | undefined;
  /** Fixed-length plans: the fill compiled for their layout, set on first use (data.ts). */
  compiledFill: CompiledFill<DataContext> | undefined;
  /**
   * Volume handling beyond the BYTES / PACKETS slots (Volume bits), 0 for the usual
   * octetDeltaCount / packetDeltaCount template: decided here once (see chooseVolume).
   */
  volume: number;
  /** Neither counters nor a frame: the records carry no volume and are counted, not emitted. */
  noVolume: boolean;
}

/**
 * Elements of the packet's own headers. A template that carries them twice (Cisco IOS XR
 * SRv6: the encapsulating router's outer IPv6 header, then the customer packet's) describes
 * the outer header first and the inner one last.
 */
const HEADER_SLOTS = new Set<number>([
  Slot.SRC4,
  Slot.DST4,
  Slot.SRC6,
  Slot.DST6,
  Slot.PROTO,
  Slot.TOS,
  Slot.SRC_PORT,
  Slot.DST_PORT,
  Slot.FLOW_LABEL,
]);

/** Fixed-size numeric fields: reduced-size encoding allows 1..8 octets (RFC 7011 6.2). */
function numeric(len: number, max = 8): boolean {
  return len >= 1 && len <= max;
}

/**
 * Which slot an IANA element feeds, given its wire length; SKIP when the element is not one
 * we extract or its length makes no sense for its type (such a field is then only skipped,
 * which is what RFC 7011 section 8 asks of collectors for elements they cannot interpret).
 */
function slotFor(id: number, len: number, scope: boolean, v9: boolean): number {
  if (v9 && scope) return id === 2 && numeric(len, 4) ? Slot.SCOPE_INTERFACE : Slot.SKIP;
  const fixed = len !== -1;
  switch (id) {
    // Counters (1, 2, 23, 24, 85, 86, 231, 232, 298, 299, 352) are chosen by chooseVolume.
    case 4:
      return len === 1 ? Slot.PROTO : Slot.SKIP;
    case 5:
      return len === 1 ? Slot.TOS : Slot.SKIP;
    case 7:
      return len === 2 ? Slot.SRC_PORT : Slot.SKIP;
    case 11:
      return len === 2 ? Slot.DST_PORT : Slot.SKIP;
    case 8:
      return len === 4 ? Slot.SRC4 : Slot.SKIP;
    case 12:
      return len === 4 ? Slot.DST4 : Slot.SKIP;
    case 27:
      return len === 16 ? Slot.SRC6 : Slot.SKIP;
    case 28:
      return len === 16 ? Slot.DST6 : Slot.SKIP;
    case 10:
      return fixed && numeric(len, 4) ? Slot.IN_IF : Slot.SKIP;
    case 14:
      return fixed && numeric(len, 4) ? Slot.OUT_IF : Slot.SKIP;
    case 61:
      return len === 1 ? Slot.DIRECTION : Slot.SKIP;
    case 58:
      return fixed && numeric(len, 2) ? Slot.VLAN : Slot.SKIP;
    case 243:
      return fixed && numeric(len, 2) ? Slot.DOT1Q_VLAN : Slot.SKIP;
    case 60:
      return len === 1 ? Slot.IP_VERSION : Slot.SKIP;
    // 20-bit label in 3 or 4 octets (RFC 7012 says 4; pmacct sends 3 with TC bits above it).
    case 31:
      return fixed && numeric(len, 4) ? Slot.FLOW_LABEL : Slot.SKIP;
    case 150:
      return len === 4 ? Slot.START_S : Slot.SKIP;
    case 151:
      return len === 4 ? Slot.END_S : Slot.SKIP;
    case 152:
      return len === 8 ? Slot.START_MS : Slot.SKIP;
    case 153:
      return len === 8 ? Slot.END_MS : Slot.SKIP;
    case 154:
      return len === 8 ? Slot.START_US : Slot.SKIP;
    case 155:
      return len === 8 ? Slot.END_US : Slot.SKIP;
    case 156:
      return len === 8 ? Slot.START_NS : Slot.SKIP;
    case 157:
      return len === 8 ? Slot.END_NS : Slot.SKIP;
    case 22:
      return fixed && numeric(len) ? Slot.START_UPTIME : Slot.SKIP;
    case 21:
      return fixed && numeric(len) ? Slot.END_UPTIME : Slot.SKIP;
    case 160:
      return len === 8 ? Slot.SYS_INIT : Slot.SKIP;
    case 34:
      return fixed && numeric(len) ? Slot.SAMPLING_INTERVAL : Slot.SKIP;
    case 35:
      return fixed && numeric(len) ? Slot.SAMPLING_ALGORITHM : Slot.SKIP;
    case 48:
      return fixed && numeric(len) ? Slot.SAMPLER_ID : Slot.SKIP;
    case 49:
      return fixed && numeric(len) ? Slot.SAMPLER_MODE : Slot.SKIP;
    case 50:
      return fixed && numeric(len) ? Slot.SAMPLER_RANDOM_INTERVAL : Slot.SKIP;
    case 302:
      return fixed && numeric(len) ? Slot.SELECTOR_ID : Slot.SKIP;
    case 305:
      return fixed && numeric(len) ? Slot.PACKET_INTERVAL : Slot.SKIP;
    case 306:
      return fixed && numeric(len) ? Slot.PACKET_SPACE : Slot.SKIP;
    case 309:
      return fixed && numeric(len) ? Slot.SAMPLING_SIZE : Slot.SKIP;
    case 310:
      return fixed && numeric(len) ? Slot.SAMPLING_POPULATION : Slot.SKIP;
    case 315:
      return v9 ? Slot.SKIP : Slot.FRAME;
    case 82:
      return Slot.INTERFACE_NAME;
    default:
      return Slot.SKIP;
  }
}

/**
 * Volume candidates (indexes into the table chooseVolume reads). Each IE is an unsigned
 * counter of 1..8 octets (reduced-size encoding, RFC 7011 6.2). Semantics from the IANA IPFIX
 * registry: 1/2 octet/packetDeltaCount, 23/24 postOctet/postPacketDeltaCount (RFC 7012
 * 5.10), 352 layer2OctetDeltaCount, 231/232 initiatorOctets/responderOctets and 298/299
 * initiatorPackets/responderPackets (Cisco NSEL, RFC 7012 / IANA), 85/86
 * octetTotalCount/packetTotalCount (running totals since the flow's start).
 */
const C = {
  B_DELTA: 0,
  B_POST: 1,
  B_L2: 2,
  B_INIT: 3,
  B_RESP: 4,
  B_TOTAL: 5,
  P_DELTA: 6,
  P_POST: 7,
  P_INIT: 8,
  P_RESP: 9,
  P_TOTAL: 10,
  RB_DELTA: 11,
  RB_POST: 12,
  RB_L2: 13,
  RB_TOTAL: 14,
  RP_DELTA: 15,
  RP_POST: 16,
  RP_TOTAL: 17,
  FLOW_ID: 18,
  REV_LABEL: 19,
} as const;
const CANDIDATES = 20;

/** The volume candidate a field is, or -1. `pen` is 0 or REVERSE_PEN (RFC 5103). */
function candidateFor(id: number, pen: number, len: number): number {
  if (!numeric(len)) return -1;
  if (pen === 0) {
    switch (id) {
      case 1:
        return C.B_DELTA;
      case 23:
        return C.B_POST;
      case 352:
        return C.B_L2;
      case 231:
        return C.B_INIT;
      case 232:
        return C.B_RESP;
      case 85:
        return C.B_TOTAL;
      case 2:
        return C.P_DELTA;
      case 24:
        return C.P_POST;
      case 298:
        return C.P_INIT;
      case 299:
        return C.P_RESP;
      case 86:
        return C.P_TOTAL;
      case 148:
        return C.FLOW_ID;
      default:
        return -1;
    }
  }
  if (pen !== REVERSE_PEN) return -1;
  switch (id) {
    case 1:
      return C.RB_DELTA;
    case 23:
      return C.RB_POST;
    case 352:
      return C.RB_L2;
    case 85:
      return C.RB_TOTAL;
    case 2:
      return C.RP_DELTA;
    case 24:
      return C.RP_POST;
    case 86:
      return C.RP_TOTAL;
    case 31:
      return len <= 4 ? C.REV_LABEL : -1;
    default:
      return -1;
  }
}

/**
 * Chooses, once per template, which fields give a record's bytes and packets, in this order
 * of preference (the first the template carries wins, bytes and packets chosen apart):
 *   bytes:   octetDeltaCount 1, postOctetDeltaCount 23, layer2OctetDeltaCount 352,
 *            initiatorOctets 231 + responderOctets 232 (NSEL), octetTotalCount 85;
 *   packets: packetDeltaCount 2, postPacketDeltaCount 24,
 *            initiatorPackets 298 + responderPackets 299 (NSEL), packetTotalCount 86.
 * Totals and NSEL counters are turned into deltas per flow (totals.ts). The same order
 * (without NSEL) picks the RFC 5103 reverse counters. Writes the chosen fields' slots into
 * `slots` and returns the Volume bits.
 */
function chooseVolume(cand: Int32Array, slots: Uint8Array): number {
  let v = 0;
  const first = (...cs: number[]): number => {
    for (const c of cs) if (cand[c]! >= 0) return c;
    return -1;
  };
  // Bytes.
  let c = first(C.B_DELTA, C.B_POST, C.B_L2);
  if (c >= 0) slots[cand[c]!] = Slot.BYTES;
  else if (cand[C.B_INIT]! >= 0 || cand[C.B_RESP]! >= 0) {
    // Cisco ASA: the flow's octets are the initiator's plus the responder's. Taken per flow
    // like running totals: the ASA reports a flow's counters again at teardown after its
    // flow-update (logstash_nf9_cisco_asa2: same flowId, same 81 + 6207 octets in both).
    if (cand[C.B_INIT]! >= 0 && cand[C.B_RESP]! >= 0) {
      slots[cand[C.B_INIT]!] = Slot.BYTES;
      slots[cand[C.B_RESP]!] = Slot.BYTES_ADD;
      v |= Volume.ADD;
    } else slots[cand[cand[C.B_INIT]! >= 0 ? C.B_INIT : C.B_RESP]!] = Slot.BYTES;
    v |= Volume.TOTAL_BYTES;
  } else if (cand[C.B_TOTAL]! >= 0) {
    slots[cand[C.B_TOTAL]!] = Slot.BYTES;
    v |= Volume.TOTAL_BYTES;
  }
  // Packets.
  c = first(C.P_DELTA, C.P_POST);
  if (c >= 0) slots[cand[c]!] = Slot.PACKETS;
  else if (cand[C.P_INIT]! >= 0 || cand[C.P_RESP]! >= 0) {
    if (cand[C.P_INIT]! >= 0 && cand[C.P_RESP]! >= 0) {
      slots[cand[C.P_INIT]!] = Slot.PACKETS;
      slots[cand[C.P_RESP]!] = Slot.PACKETS_ADD;
      v |= Volume.ADD;
    } else slots[cand[cand[C.P_INIT]! >= 0 ? C.P_INIT : C.P_RESP]!] = Slot.PACKETS;
    v |= Volume.TOTAL_PACKETS;
  } else if (cand[C.P_TOTAL]! >= 0) {
    slots[cand[C.P_TOTAL]!] = Slot.PACKETS;
    v |= Volume.TOTAL_PACKETS;
  }
  // RFC 5103 reverse counters.
  c = first(C.RB_DELTA, C.RB_POST, C.RB_L2);
  if (c >= 0) slots[cand[c]!] = Slot.REV_BYTES;
  else if (cand[C.RB_TOTAL]! >= 0) {
    slots[cand[C.RB_TOTAL]!] = Slot.REV_BYTES;
    v |= Volume.REV_TOTAL_BYTES;
  }
  c = first(C.RP_DELTA, C.RP_POST);
  if (c >= 0) slots[cand[c]!] = Slot.REV_PACKETS;
  else if (cand[C.RP_TOTAL]! >= 0) {
    slots[cand[C.RP_TOTAL]!] = Slot.REV_PACKETS;
    v |= Volume.REV_TOTAL_PACKETS;
  }
  if (first(C.RB_DELTA, C.RB_POST, C.RB_L2, C.RB_TOTAL, C.RP_DELTA, C.RP_POST, C.RP_TOTAL) >= 0) {
    v |= Volume.REVERSE;
    if (cand[C.REV_LABEL]! >= 0) slots[cand[C.REV_LABEL]!] = Slot.REV_FLOW_LABEL;
  }
  // The flow's name in the total-to-delta table, when one is needed.
  if ((v & VOLUME_TOTALS) !== 0 && cand[C.FLOW_ID]! >= 0) slots[cand[C.FLOW_ID]!] = Slot.FLOW_ID;
  return v;
}

const RECORD_SAMPLING_SLOTS = new Set<number>([
  Slot.SAMPLING_INTERVAL,
  Slot.SAMPLER_ID,
  Slot.SAMPLER_RANDOM_INTERVAL,
  Slot.SELECTOR_ID,
  Slot.PACKET_INTERVAL,
  Slot.SAMPLING_SIZE,
]);

/**
 * Compiles validated template fields. The caller (templates.ts) has already enforced the
 * field-count cap and rejected templates whose records could be empty.
 */
export function compilePlan(
  templateId: number,
  kind: 'data' | 'options',
  fields: readonly TemplateField[],
  protocol: 'ipfix' | 'netflow9',
  reading: 'inner' | 'outer' = 'inner',
): DecodePlan {
  const v9 = protocol === 'netflow9';
  const n = fields.length;
  const ids = new Uint16Array(n);
  const pens = new Uint32Array(n);
  const lens = new Int32Array(n);
  const slots = new Uint8Array(n);
  let fixed = true;
  let minLength = 0;
  let scopeCount = 0;
  let hasV4 = false;
  let hasV6 = false;
  let recordSampling = false;
  let hasFrame = false;
  const cand = new Int32Array(CANDIDATES).fill(-1);
  // When a template repeats an element (RFC 7011 section 8 leaves the meaning of repeats to
  // the element), the first occurrence wins, except for the packet's header elements read
  // the inner way: there the last one wins, the innermost header's (the customer packet's
  // addresses, ports and flow label, whose marking is the host's).
  const fieldOf = new Int32Array(SLOT_COUNT).fill(-1);
  let repeated = false;
  for (let i = 0; i < n; i++) {
    const f = fields[i]!;
    const len = f.length === VARLEN ? -1 : f.length;
    ids[i] = f.id;
    pens[i] = f.pen;
    lens[i] = len;
    if (f.scope) scopeCount++;
    if (len === -1) {
      fixed = false;
      minLength += 1;
    } else {
      minLength += len;
    }
    let slot = f.pen === 0 ? slotFor(f.id, len, f.scope, v9) : Slot.SKIP;
    if (slot !== Slot.SKIP) {
      const prev = fieldOf[slot]!;
      if (prev < 0) fieldOf[slot] = i;
      else if (reading === 'inner' && HEADER_SLOTS.has(slot)) {
        repeated = true;
        slots[prev] = Slot.SKIP;
        fieldOf[slot] = i;
      } else slot = Slot.SKIP;
    }
    slots[i] = slot;
    if (!f.scope && len !== -1) {
      const c = candidateFor(f.id, f.pen, len);
      if (c >= 0 && cand[c]! < 0) cand[c] = i;
    }
    if (slot === Slot.SRC4 || slot === Slot.DST4) hasV4 = true;
    if (slot === Slot.SRC6 || slot === Slot.DST6 || slot === Slot.FLOW_LABEL) hasV6 = true;
    if (RECORD_SAMPLING_SLOTS.has(slot)) recordSampling = true;
    if (slot === Slot.FRAME) hasFrame = true;
  }
  // No rule here for IPv4 after IPv6 fields and a label: that is also how dual-stack templates
  // are laid out (Cisco ASR9k v9 template 313: IPv6 addresses, IE 31, IPv4 addresses), where an
  // IPv6 record's label is the host's. An IPv4 record's label is never a SciTags marking
  // (classification reads labels of IPv6 records only), so an SRv6 router's outer label on an
  // IPv4 customer record counts nothing either way.
  const volume = kind === 'data' ? chooseVolume(cand, slots) : 0;
  let hasCounts = false;
  for (let i = 0; i < n; i++) if (slots[i] === Slot.BYTES || slots[i] === Slot.PACKETS) hasCounts = true;
  // Per-slot positions (see DecodePlan.pos), and the winners among competing slots.
  const pos = new Int32Array(SLOT_COUNT).fill(-1);
  const plen = new Int32Array(SLOT_COUNT).fill(-1);
  let startSlot = -1;
  let endSlot = -1;
  let srcSlot = -1;
  let dstSlot = -1;
  let hasUptime = false;
  for (let i = 0, off = 0; i < n; i++) {
    const slot = slots[i]!;
    const len = lens[i]!;
    if (slot !== Slot.SKIP) {
      pos[slot] = fixed ? off : i;
      plen[slot] = len;
      if (slot === Slot.START_S || slot === Slot.START_MS || slot === Slot.START_US || slot === Slot.START_NS) startSlot = slot;
      else if (slot === Slot.END_S || slot === Slot.END_MS || slot === Slot.END_US || slot === Slot.END_NS) endSlot = slot;
      else if (slot === Slot.SRC4 || slot === Slot.SRC6) srcSlot = slot;
      else if (slot === Slot.DST4 || slot === Slot.DST6) dstSlot = slot;
      else if (slot === Slot.START_UPTIME || slot === Slot.END_UPTIME) hasUptime = true;
    }
    if (fixed) off += len;
  }
  return {
    templateId,
    kind,
    v9,
    fieldCount: n,
    scopeCount,
    ids,
    pens,
    lens,
    slots,
    fixedLength: fixed ? minLength : -1,
    minLength,
    pos,
    len: plen,
    startSlot,
    endSlot,
    srcSlot,
    dstSlot,
    hasUptime,
    // An IPv4 template that also carries IE 31 (pmacct does) is still IPv4.
    impliedIpVersion: hasV4 ? 4 : hasV6 ? 6 : 0,
    recordSampling,
    hasFrame,
    hasCounts,
    compiledFill: undefined,
    volume,
    noVolume: kind === 'data' && !hasCounts && !hasFrame && (volume & Volume.REVERSE) === 0,
    outer: reading === 'inner' && repeated ? compilePlan(templateId, kind, fields, protocol, 'outer') : undefined,
  };
}
