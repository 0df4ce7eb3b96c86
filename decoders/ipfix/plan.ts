/**
 * Compiles a template (a list of field specifiers) into a flat decode plan once, when the
 * template arrives. The plan says, for every FlowRecord slot, where its field sits inside a
 * record (`pos`, `len`, indexed by slot number), so decoding a data record reads each slot
 * it needs at a known offset in one straight-line function (data.ts): no switch per field,
 * no per-field lookups, strings or allocations on the hot path. Which of several competing
 * fields wins (flowStartSeconds vs flowStartMilliseconds, IPv4 vs IPv6 source) is also
 * decided here, once.
 */

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
} as const;

/** Number of slots: the length of DecodePlan.pos / len. */
export const SLOT_COUNT = 42;

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
    case 1:
      return fixed && numeric(len) ? Slot.BYTES : Slot.SKIP;
    case 2:
      return fixed && numeric(len) ? Slot.PACKETS : Slot.SKIP;
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
  let hasCounts = false;
  // When a template repeats an element (RFC 7011 section 8 leaves the meaning of repeats to
  // the element), the first occurrence wins, except for the packet's header elements read
  // the inner way: there the last one wins, the innermost header's (the customer packet's
  // addresses, ports and flow label, whose marking is the host's).
  const fieldOf = new Int32Array(SLOT_COUNT).fill(-1);
  let repeated = false;
  let lastLabel = -1;
  let lastSrc = -1;
  let src6 = false;
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
    if (slot === Slot.FLOW_LABEL) lastLabel = i;
    if (slot === Slot.SRC4 || slot === Slot.SRC6) lastSrc = i;
    if (slot === Slot.SRC6 || slot === Slot.DST6) src6 = true;
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
    if (slot === Slot.SRC4 || slot === Slot.DST4) hasV4 = true;
    if (slot === Slot.SRC6 || slot === Slot.DST6 || slot === Slot.FLOW_LABEL) hasV6 = true;
    if (RECORD_SAMPLING_SLOTS.has(slot)) recordSampling = true;
    if (slot === Slot.FRAME) hasFrame = true;
    if (slot === Slot.BYTES || slot === Slot.PACKETS) hasCounts = true;
  }
  // IPv4 inside IPv6 (IOS XR SRv6 with an IPv4 customer): IPv6 addresses, the flow label,
  // then the inner IPv4 addresses. Read the inner way, the innermost header is IPv4 and has
  // no label of its own; the outer header's label is the router's entropy, not the host's.
  const v4InV6 = lastLabel >= 0 && src6 && lastSrc > lastLabel && slots[lastSrc] === Slot.SRC4;
  if (reading === 'inner' && v4InV6) slots[lastLabel] = Slot.SKIP;
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
    outer: reading === 'inner' && (repeated || v4InV6) ? compilePlan(templateId, kind, fields, protocol, 'outer') : undefined,
  };
}
