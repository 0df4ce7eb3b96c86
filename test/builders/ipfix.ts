/**
 * Test-only builder for IPFIX (RFC 7011), NetFlow v9 (RFC 3954) and NetFlow v5 datagrams
 * from named fields. Encoding is written independently of the decoder (no shared code
 * beyond the IANA name table) so encode -> decode round trips test something.
 */
import { ieInfo } from '../../decoders/ipfix/ie.js';

export const VARLEN = 65535;

/** A field specifier: IANA name or numeric id, wire length, optional enterprise number. */
export interface Field {
  id: number;
  length: number;
  pen?: number;
  /** Key used in object records (IANA name, or `ie<id>` / `<pen>.<id>`). */
  name: string;
}

const NAME_TO_ID = new Map<string, number>();
for (let id = 0; id < 1024; id++) {
  const info = ieInfo(id);
  if (info) NAME_TO_ID.set(info.name, id);
}

/** f('octetDeltaCount', 8), f(31, 3), f(100, 4, 29305) for an enterprise field. */
export function f(nameOrId: string | number, length: number, pen?: number): Field {
  if (typeof nameOrId === 'number') {
    const name = pen ? `${pen}.${nameOrId}` : (ieInfo(nameOrId)?.name ?? `ie${nameOrId}`);
    return pen ? { id: nameOrId, length, pen, name } : { id: nameOrId, length, name };
  }
  const id = NAME_TO_ID.get(nameOrId);
  if (id === undefined) throw new Error(`unknown IE name ${nameOrId}`);
  return { id, length, name: nameOrId };
}

/** A value: number / bigint (big-endian unsigned), "a.b.c.d" / IPv6 text, raw bytes. */
export type Value = number | bigint | string | Uint8Array;
export type RecordValues = Value[] | Record<string, Value>;

export function concat(parts: readonly Uint8Array[]): Uint8Array {
  const n = parts.reduce((a, p) => a + p.length, 0);
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function be(value: number | bigint, len: number): Uint8Array {
  const out = new Uint8Array(len);
  let v = BigInt(value);
  for (let i = len - 1; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

export function u16(v: number): Uint8Array {
  return be(v, 2);
}
export function u32(v: number): Uint8Array {
  return be(v, 4);
}

export function ipv4(text: string): Uint8Array {
  return Uint8Array.from(text.split('.').map(Number));
}

export function ipv6(text: string): Uint8Array {
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const words = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  const out = new Uint8Array(16);
  words.forEach((w, i) => {
    const v = parseInt(w, 16);
    out[2 * i] = v >> 8;
    out[2 * i + 1] = v & 0xff;
  });
  return out;
}

function valueBytes(field: Field, v: Value, len: number): Uint8Array {
  if (v instanceof Uint8Array) return v;
  if (typeof v === 'string') {
    if (v.includes(':')) return ipv6(v);
    if (/^\d+\.\d+\.\d+\.\d+$/.test(v)) return ipv4(v);
    return new TextEncoder().encode(v);
  }
  if (len === VARLEN) throw new Error(`${field.name}: numbers need a fixed length`);
  return be(v, len);
}

/** RFC 7011 section 7: 1-octet length below 255, else 255 + 2-octet length (or forced). */
export function varlen(body: Uint8Array, long = false): Uint8Array {
  if (body.length < 255 && !long) return concat([Uint8Array.of(body.length), body]);
  return concat([Uint8Array.of(255), u16(body.length), body]);
}

/** Marks a value to be sent with the 3-octet varlen prefix even when short. */
export class LongVarlen {
  constructor(readonly bytes: Uint8Array) {}
}

export function encodeRecord(fields: readonly Field[], values: RecordValues | (Value | LongVarlen)[]): Uint8Array {
  const parts: Uint8Array[] = [];
  fields.forEach((field, i) => {
    const v = Array.isArray(values) ? values[i] : (values as Record<string, Value>)[field.name];
    if (v === undefined) throw new Error(`no value for ${field.name}`);
    if (field.length === VARLEN) {
      if (v instanceof LongVarlen) parts.push(varlen(v.bytes, true));
      else parts.push(varlen(valueBytes(field, v, VARLEN)));
      return;
    }
    if (v instanceof LongVarlen) throw new Error('LongVarlen on a fixed field');
    const b = valueBytes(field, v, field.length);
    if (b.length !== field.length) throw new Error(`${field.name}: ${b.length} octets for length ${field.length}`);
    parts.push(b);
  });
  return concat(parts);
}

// ---------------------------------------------------------------- IPFIX (RFC 7011)

export interface TemplateDef {
  id: number;
  fields: Field[];
  /** Number of leading scope fields: makes it an options template. */
  scopeCount?: number;
}

function ipfixSpecifiers(fields: readonly Field[]): Uint8Array {
  return concat(fields.map((x) => (x.pen ? concat([u16(x.id | 0x8000), u16(x.length), u32(x.pen)]) : concat([u16(x.id), u16(x.length)]))));
}

export function ipfixSet(setId: number, body: Uint8Array, padding = 0): Uint8Array {
  return concat([u16(setId), u16(4 + body.length + padding), body, new Uint8Array(padding)]);
}

/** Template set (id 2) with the given templates. */
export function ipfixTemplateSet(templates: readonly TemplateDef[], padding = 0): Uint8Array {
  return ipfixSet(2, concat(templates.map((t) => concat([u16(t.id), u16(t.fields.length), ipfixSpecifiers(t.fields)]))), padding);
}

/** Options template set (id 3). */
export function ipfixOptionsTemplateSet(templates: readonly TemplateDef[], padding = 0): Uint8Array {
  return ipfixSet(
    3,
    concat(templates.map((t) => concat([u16(t.id), u16(t.fields.length), u16(t.scopeCount ?? 1), ipfixSpecifiers(t.fields)]))),
    padding,
  );
}

/** Withdrawal records (field count 0) in a template set (2) or options template set (3). */
export function ipfixWithdrawalSet(ids: readonly number[], setId: 2 | 3 = 2): Uint8Array {
  return ipfixSet(setId, concat(ids.map((id) => concat([u16(id), u16(0)]))));
}

/** Withdraw-all: template id 2 in set 2, or 3 in set 3 (RFC 7011 8.1). */
export function ipfixWithdrawAllSet(setId: 2 | 3 = 2): Uint8Array {
  return ipfixWithdrawalSet([setId], setId);
}

export function ipfixDataSet(
  templateId: number,
  fields: readonly Field[],
  records: ReadonlyArray<RecordValues | (Value | LongVarlen)[]>,
  padding = 0,
): Uint8Array {
  return ipfixSet(templateId, concat(records.map((r) => encodeRecord(fields, r))), padding);
}

/**
 * What an exporter sends first: one message defining the templates (ids 256, 257, ... in
 * order), then one message with a data set per template, sequence number 0.
 */
export function templatesThenData(
  templates: readonly { fields: Field[]; records: ReadonlyArray<RecordValues | (Value | LongVarlen)[]> }[],
): Uint8Array[] {
  const id = (i: number): number => 256 + i;
  return [
    ipfixMessage({ seq: 0 }, [ipfixTemplateSet(templates.map((t, i) => ({ id: id(i), fields: t.fields })))]),
    ipfixMessage(
      { seq: 0 },
      templates.map((t, i) => ipfixDataSet(id(i), t.fields, t.records)),
    ),
  ];
}

export interface IpfixHeader {
  domain?: number;
  seq?: number;
  exportSecs?: number;
  /** Override the length field (to build malformed messages). */
  length?: number;
}

export function ipfixMessage(h: IpfixHeader, sets: readonly Uint8Array[]): Uint8Array {
  const body = concat(sets);
  return concat([
    u16(10),
    u16(h.length ?? 16 + body.length),
    u32(h.exportSecs ?? 1_700_000_000),
    u32(h.seq ?? 0),
    u32(h.domain ?? 0),
    body,
  ]);
}

// ---------------------------------------------------------------- NetFlow v9 (RFC 3954)

function pad4(body: Uint8Array): Uint8Array {
  const p = (4 - ((body.length + 4) % 4)) % 4;
  return concat([body, new Uint8Array(p)]);
}

export function v9TemplateFlowset(templates: readonly TemplateDef[]): Uint8Array {
  const body = concat(
    templates.map((t) => concat([u16(t.id), u16(t.fields.length), ...t.fields.map((x) => concat([u16(x.id), u16(x.length)]))])),
  );
  return ipfixSet(0, body);
}

/** Options template flowset (id 1): scope fields first, lengths in octets, padded to 32 bits. */
export function v9OptionsFlowset(t: TemplateDef): Uint8Array {
  const scopes = t.scopeCount ?? 1;
  const spec = (x: Field) => concat([u16(x.id), u16(x.length)]);
  const body = concat([u16(t.id), u16(scopes * 4), u16((t.fields.length - scopes) * 4), ...t.fields.map(spec)]);
  return ipfixSet(1, pad4(body));
}

export function v9DataFlowset(
  templateId: number,
  fields: readonly Field[],
  records: ReadonlyArray<RecordValues>,
  padToWord = true,
): Uint8Array {
  const body = concat(records.map((r) => encodeRecord(fields, r)));
  return ipfixSet(templateId, padToWord ? pad4(body) : body);
}

export interface V9Header {
  count?: number;
  sysUptimeMs?: number;
  unixSecs?: number;
  seq?: number;
  sourceId?: number;
}

/** `count` defaults to `records` (the caller knows how many records the flowsets hold). */
export function v9Message(h: V9Header & { records: number }, flowsets: readonly Uint8Array[]): Uint8Array {
  return concat([
    u16(9),
    u16(h.count ?? h.records),
    u32(h.sysUptimeMs ?? 3_600_000),
    u32(h.unixSecs ?? 1_700_000_000),
    u32(h.seq ?? 0),
    u32(h.sourceId ?? 0),
    ...flowsets,
  ]);
}

// ---------------------------------------------------------------- NetFlow v5

export interface V5Record {
  src: string;
  dst: string;
  nextHop?: string;
  inIf?: number;
  outIf?: number;
  packets: number;
  bytes: number;
  firstUptimeMs?: number;
  lastUptimeMs?: number;
  srcPort?: number;
  dstPort?: number;
  tcpFlags?: number;
  protocol?: number;
  tos?: number;
  srcAs?: number;
  dstAs?: number;
  srcMask?: number;
  dstMask?: number;
}

export interface V5Header {
  sysUptimeMs?: number;
  unixSecs?: number;
  unixNsecs?: number;
  flowSequence?: number;
  engineType?: number;
  engineId?: number;
  /** Sampling mode (2 bits) and interval (14 bits). */
  samplingMode?: number;
  samplingInterval?: number;
  count?: number;
}

export function v5Datagram(h: V5Header, records: readonly V5Record[]): Uint8Array {
  const sampling = ((h.samplingMode ?? 0) << 14) | ((h.samplingInterval ?? 0) & 0x3fff);
  const header = concat([
    u16(5),
    u16(h.count ?? records.length),
    u32(h.sysUptimeMs ?? 3_600_000),
    u32(h.unixSecs ?? 1_700_000_000),
    u32(h.unixNsecs ?? 0),
    u32(h.flowSequence ?? 0),
    Uint8Array.of(h.engineType ?? 0, h.engineId ?? 0),
    u16(sampling),
  ]);
  const recs = records.map((r) =>
    concat([
      ipv4(r.src),
      ipv4(r.dst),
      ipv4(r.nextHop ?? '0.0.0.0'),
      u16(r.inIf ?? 0),
      u16(r.outIf ?? 0),
      u32(r.packets),
      u32(r.bytes),
      u32(r.firstUptimeMs ?? 0),
      u32(r.lastUptimeMs ?? 0),
      u16(r.srcPort ?? 0),
      u16(r.dstPort ?? 0),
      Uint8Array.of(0, r.tcpFlags ?? 0, r.protocol ?? 6, r.tos ?? 0),
      u16(r.srcAs ?? 0),
      u16(r.dstAs ?? 0),
      Uint8Array.of(r.srcMask ?? 0, r.dstMask ?? 0, 0, 0),
    ]),
  );
  return concat([header, ...recs]);
}

// ---------------------------------------------------------------- frames for IE 315

export interface FrameSpec {
  vlan?: number;
  flowLabel: number;
  trafficClass?: number;
  /** IPv6 payload length (the IP length is this + 40). */
  payloadLength: number;
  src?: string;
  dst?: string;
  srcPort?: number;
  dstPort?: number;
  /** Zero-pad the frame section to this length (softflowd -v psamp does). */
  padTo?: number;
}

/** Ethernet (optionally 802.1Q) + IPv6 + UDP header: what a PSAMP exporter copies into IE 315. */
export function ipv6UdpFrame(s: FrameSpec): Uint8Array {
  const eth = concat([
    Uint8Array.of(0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 6),
    s.vlan !== undefined ? concat([u16(0x8100), u16(s.vlan)]) : new Uint8Array(0),
    u16(0x86dd),
  ]);
  const tc = s.trafficClass ?? 0;
  const first = ((6 << 28) | (tc << 20) | (s.flowLabel & 0xfffff)) >>> 0;
  const ip = concat([u32(first), u16(s.payloadLength), Uint8Array.of(17, 64), ipv6(s.src ?? '2001:db8::1'), ipv6(s.dst ?? '2001:db8::2')]);
  const udp = concat([u16(s.srcPort ?? 1234), u16(s.dstPort ?? 5678), u16(s.payloadLength), u16(0)]);
  const frame = concat([eth, ip, udp]);
  if (s.padTo !== undefined && s.padTo > frame.length) return concat([frame, new Uint8Array(s.padTo - frame.length)]);
  return frame;
}
