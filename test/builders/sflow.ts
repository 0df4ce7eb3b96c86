/**
 * Test-only builders: sFlow v5 datagrams from named fields (sFlow Version 5, section 5) and
 * Ethernet / VLAN / QinQ / MPLS / IPv4 / IPv6 (+ extension headers) / TCP / UDP frames.
 * Lengths, counts, next-header chains and padding are computed, so a test names only the
 * fields it cares about; every field can still be overridden to build malformed input.
 * (Fixture captures are read with the product's reader, collectors/pcap.ts.)
 */

// ---------------------------------------------------------------------------------------
// Byte writer (XDR: big-endian, opaque data padded to 4 octets, RFC 4506)
// ---------------------------------------------------------------------------------------

export class ByteWriter {
  private parts: number[] = [];

  u8(v: number): this {
    this.parts.push(v & 0xff);
    return this;
  }
  u16(v: number): this {
    return this.u8(v >>> 8).u8(v);
  }
  u32(v: number): this {
    return this.u16(v >>> 16).u16(v & 0xffff);
  }
  u64(v: number): this {
    return this.u32(Math.floor(v / 4294967296)).u32(v % 4294967296);
  }
  bytes(b: Uint8Array | readonly number[]): this {
    for (const x of b) this.parts.push(x & 0xff);
    return this;
  }
  zeros(n: number): this {
    for (let i = 0; i < n; i++) this.parts.push(0);
    return this;
  }
  /** Pads with zeros to a multiple of 4 octets. */
  pad4(): this {
    while (this.parts.length % 4 !== 0) this.parts.push(0);
    return this;
  }
  get length(): number {
    return this.parts.length;
  }
  finish(): Uint8Array {
    return Uint8Array.from(this.parts);
  }
}

// ---------------------------------------------------------------------------------------
// Addresses
// ---------------------------------------------------------------------------------------

export function ipv4Bytes(addr: string): Uint8Array {
  const parts = addr.split('.').map((x) => Number(x));
  if (parts.length !== 4 || parts.some((x) => !Number.isInteger(x) || x < 0 || x > 255)) {
    throw new Error(`bad IPv4 address ${addr}`);
  }
  return Uint8Array.from(parts);
}

export function ipv6Bytes(addr: string): Uint8Array {
  const out = new Uint8Array(16);
  let head = addr;
  let tail = '';
  const dbl = addr.indexOf('::');
  if (dbl >= 0) {
    head = addr.slice(0, dbl);
    tail = addr.slice(dbl + 2);
  }
  const words = (s: string): number[] => {
    if (s === '') return [];
    const out: number[] = [];
    for (const part of s.split(':')) {
      if (part.includes('.')) {
        const v4 = ipv4Bytes(part);
        out.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      } else {
        out.push(parseInt(part, 16));
      }
    }
    return out;
  };
  const h = words(head);
  const t = words(tail);
  if (dbl < 0 && h.length !== 8) throw new Error(`bad IPv6 address ${addr}`);
  const all = [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t];
  all.forEach((w, i) => {
    out[2 * i] = w >>> 8;
    out[2 * i + 1] = w & 0xff;
  });
  return out;
}

// ---------------------------------------------------------------------------------------
// Frames
// ---------------------------------------------------------------------------------------

export type L4Spec =
  | { proto: 'tcp' | 'udp' | 'sctp'; srcPort: number; dstPort: number; payload?: number }
  | { proto: 'icmp' | 'icmpv6'; type: number; code: number; payload?: number }
  /** Any other protocol number with an opaque body (e.g. a tunnelled packet). */
  | { proto: number; body: Uint8Array };

export type ExtHeaderSpec =
  | { type: 'hop' | 'routing' | 'dest'; /** Hdr Ext Len (8-octet units beyond the first 8). */ len?: number }
  | { type: 'fragment'; offset: number; more?: boolean; id?: number }
  | { type: 'ah'; /** Payload Len (4-octet units minus 2); 4 = 24 octets, HMAC-96. */ len?: number };

export interface Ipv6Spec {
  version: 6;
  trafficClass?: number;
  flowLabel?: number;
  hopLimit?: number;
  src: string;
  dst: string;
  ext?: ExtHeaderSpec[];
  l4: L4Spec;
  /** Overrides the computed payload length. */
  payloadLength?: number;
}

export interface Ipv4Spec {
  version: 4;
  tos?: number;
  id?: number;
  dontFragment?: boolean;
  moreFragments?: boolean;
  /** In 8-octet units. */
  fragOffset?: number;
  ttl?: number;
  src: string;
  dst: string;
  /** Option octets (zero-filled), a multiple of 4, raising IHL above 5. */
  options?: number;
  l4: L4Spec;
  totalLength?: number;
}

export interface VlanTagSpec {
  vid: number;
  pcp?: number;
  /** 0x8100 (default), 0x88a8 or 0x9100. */
  tpid?: number;
}

export interface FrameSpec {
  /** 'ethernet' (default) or 'ip' for a bare IP packet (sFlow header_protocol 11/12). */
  link?: 'ethernet' | 'ip';
  dstMac?: readonly number[];
  srcMac?: readonly number[];
  vlans?: VlanTagSpec[];
  /** MPLS labels from top of stack down; the last gets the bottom-of-stack bit. */
  mpls?: number[];
  ip: Ipv6Spec | Ipv4Spec;
}

const PROTO_NUMBERS = { tcp: 6, udp: 17, sctp: 132, icmp: 1, icmpv6: 58 } as const;
const EXT_NUMBERS = { hop: 0, routing: 43, dest: 60, fragment: 44, ah: 51 } as const;

function l4Number(l4: L4Spec): number {
  return typeof l4.proto === 'number' ? l4.proto : PROTO_NUMBERS[l4.proto];
}

function l4Bytes(l4: L4Spec): Uint8Array {
  const w = new ByteWriter();
  if (typeof l4.proto === 'number') {
    if (!('body' in l4)) throw new Error('numeric protocol needs a body');
    return l4.body;
  }
  if (l4.proto === 'icmp' || l4.proto === 'icmpv6') {
    const s = l4 as { type: number; code: number; payload?: number };
    w.u8(s.type)
      .u8(s.code)
      .u16(0)
      .u32(0)
      .zeros(s.payload ?? 0);
    return w.finish();
  }
  const s = l4 as { proto: 'tcp' | 'udp' | 'sctp'; srcPort: number; dstPort: number; payload?: number };
  w.u16(s.srcPort).u16(s.dstPort);
  if (s.proto === 'tcp') w.u32(1).u32(0).u8(0x50).u8(0x10).u16(0xffff).u16(0).u16(0);
  else if (s.proto === 'udp') w.u16(8 + (s.payload ?? 0)).u16(0);
  else w.u32(0).u32(0);
  w.zeros(s.payload ?? 0);
  return w.finish();
}

/** The upper layer preceded by the extension headers, and the first next-header value. */
function ipv6Payload(spec: Ipv6Spec): { first: number; bytes: Uint8Array } {
  const body = l4Bytes(spec.l4);
  const ext = spec.ext ?? [];
  const w = new ByteWriter();
  for (let i = 0; i < ext.length; i++) {
    const e = ext[i]!;
    const next = i + 1 < ext.length ? EXT_NUMBERS[ext[i + 1]!.type] : l4Number(spec.l4);
    if (e.type === 'fragment') {
      w.u8(next)
        .u8(0)
        .u16(((e.offset & 0x1fff) << 3) | (e.more === true ? 1 : 0))
        .u32(e.id ?? 0x1234);
    } else if (e.type === 'ah') {
      const len = e.len ?? 4;
      w.u8(next)
        .u8(len)
        .u16(0)
        .u32(0x100)
        .u32(1)
        .zeros(4 * (len + 2) - 12);
    } else {
      const len = e.len ?? 0;
      // Options area filled with PadN (type 1) so the header is well formed.
      w.u8(next)
        .u8(len)
        .u8(1)
        .u8(8 * (len + 1) - 4)
        .zeros(8 * (len + 1) - 4);
    }
  }
  w.bytes(body);
  return { first: ext.length > 0 ? EXT_NUMBERS[ext[0]!.type] : l4Number(spec.l4), bytes: w.finish() };
}

export function buildIpv6(spec: Ipv6Spec): Uint8Array {
  const { first, bytes } = ipv6Payload(spec);
  const w = new ByteWriter();
  const tc = spec.trafficClass ?? 0;
  const label = spec.flowLabel ?? 0;
  w.u32(((6 << 28) | ((tc & 0xff) << 20) | (label & 0xfffff)) >>> 0);
  w.u16(spec.payloadLength ?? bytes.length)
    .u8(first)
    .u8(spec.hopLimit ?? 64);
  w.bytes(ipv6Bytes(spec.src)).bytes(ipv6Bytes(spec.dst)).bytes(bytes);
  return w.finish();
}

export function buildIpv4(spec: Ipv4Spec): Uint8Array {
  const body = l4Bytes(spec.l4);
  const options = spec.options ?? 0;
  if (options % 4 !== 0) throw new Error('IPv4 options must be a multiple of 4');
  const ihl = 5 + options / 4;
  const w = new ByteWriter();
  w.u8(0x40 | ihl)
    .u8(spec.tos ?? 0)
    .u16(spec.totalLength ?? ihl * 4 + body.length)
    .u16(spec.id ?? 1);
  const flags = (spec.dontFragment === true ? 0x4000 : 0) | (spec.moreFragments === true ? 0x2000 : 0);
  w.u16(flags | ((spec.fragOffset ?? 0) & 0x1fff))
    .u8(spec.ttl ?? 64)
    .u8(l4Number(spec.l4))
    .u16(0);
  w.bytes(ipv4Bytes(spec.src)).bytes(ipv4Bytes(spec.dst)).zeros(options).bytes(body);
  return w.finish();
}

export function buildFrame(spec: FrameSpec): Uint8Array {
  const ip = spec.ip.version === 6 ? buildIpv6(spec.ip) : buildIpv4(spec.ip);
  if (spec.link === 'ip') return ip;
  const w = new ByteWriter();
  w.bytes(spec.dstMac ?? [0x02, 0, 0, 0, 0, 0x01]).bytes(spec.srcMac ?? [0x02, 0, 0, 0, 0, 0x02]);
  for (const tag of spec.vlans ?? []) w.u16(tag.tpid ?? 0x8100).u16(((tag.pcp ?? 0) << 13) | (tag.vid & 0xfff));
  const mpls = spec.mpls ?? [];
  if (mpls.length > 0) {
    w.u16(0x8847);
    mpls.forEach((label, i) => w.u32((((label & 0xfffff) << 12) | (i === mpls.length - 1 ? 0x100 : 0) | 64) >>> 0));
  } else {
    w.u16(spec.ip.version === 6 ? 0x86dd : 0x0800);
  }
  w.bytes(ip);
  return w.finish();
}

// ---------------------------------------------------------------------------------------
// sFlow datagrams
// ---------------------------------------------------------------------------------------

export type FlowRecordSpec =
  | {
      kind: 'header';
      /** header_protocol: 1 Ethernet (default), 11 IPv4, 12 IPv6. */
      protocol?: number;
      /** Defaults to the frame's length + 4 (FCS). */
      frameLength?: number;
      stripped?: number;
      /** The sampled frame; cut to `headerLength` (default min(frame, 128)). */
      frame: Uint8Array;
      headerLength?: number;
    }
  | { kind: 'switch'; srcVlan: number; srcPriority?: number; dstVlan?: number; dstPriority?: number }
  /** sampled_ethernet (format 2): frame length, MACs (6 octets, XDR-padded to 8), EtherType. */
  | { kind: 'ethernet'; length: number; srcMac?: readonly number[]; dstMac?: readonly number[]; type: number }
  | {
      kind: 'ipv4';
      length: number;
      protocol: number;
      src: string;
      dst: string;
      srcPort?: number;
      dstPort?: number;
      tcpFlags?: number;
      tos?: number;
    }
  | {
      kind: 'ipv6';
      length: number;
      protocol: number;
      src: string;
      dst: string;
      srcPort?: number;
      dstPort?: number;
      tcpFlags?: number;
      priority?: number;
    }
  /** Any record by enterprise/format with an opaque body (vendor or unknown records). */
  | { kind: 'raw'; enterprise: number; format: number; data: Uint8Array; length?: number };

export interface FlowSampleSpec {
  kind: 'flow';
  expanded?: boolean;
  sequence?: number;
  sourceIdType?: number;
  sourceIdIndex?: number;
  samplingRate?: number;
  samplePool?: number;
  drops?: number;
  inputFormat?: number;
  input?: number;
  outputFormat?: number;
  output?: number;
  records: FlowRecordSpec[];
  /** Overrides the record count. */
  recordCount?: number;
}

export interface IfCountersSpec {
  kind: 'if';
  ifIndex: number;
  ifType?: number;
  ifSpeed?: number;
  ifDirection?: number;
  ifStatus?: number;
  inOctets?: number;
  inUcast?: number;
  inMulticast?: number;
  inBroadcast?: number;
  inDiscards?: number;
  inErrors?: number;
  inUnknownProtos?: number;
  outOctets?: number;
  outUcast?: number;
  outMulticast?: number;
  outBroadcast?: number;
  outDiscards?: number;
  outErrors?: number;
  promiscuous?: number;
}

export type CounterRecordSpec = IfCountersSpec | { kind: 'raw'; enterprise: number; format: number; data: Uint8Array };

export interface CounterSampleSpec {
  kind: 'counters';
  expanded?: boolean;
  sequence?: number;
  sourceIdType?: number;
  sourceIdIndex?: number;
  records: CounterRecordSpec[];
}

export interface RawSampleSpec {
  kind: 'raw';
  enterprise: number;
  format: number;
  data: Uint8Array;
  /** Overrides the sample length field (to build overruns). */
  length?: number;
}

export type SampleSpec = FlowSampleSpec | CounterSampleSpec | RawSampleSpec;

export interface DatagramSpec {
  version?: number;
  /** IPv4 or IPv6 text; the address type follows. */
  agent: string;
  /** Overrides the address type (to build bad ones). */
  addressType?: number;
  subAgent?: number;
  sequence?: number;
  uptimeMs?: number;
  samples: SampleSpec[];
  /** Overrides the sample count. */
  sampleCount?: number;
}

function dataFormat(enterprise: number, format: number): number {
  return ((enterprise << 12) | (format & 0xfff)) >>> 0;
}

/** data_format, length, body padded to 4 octets. */
function opaque(w: ByteWriter, enterprise: number, format: number, body: Uint8Array, lengthOverride?: number): void {
  w.u32(dataFormat(enterprise, format))
    .u32(lengthOverride ?? padded(body.length))
    .bytes(body)
    .pad4();
}

function padded(n: number): number {
  return (n + 3) & ~3;
}

function flowRecordBody(rec: FlowRecordSpec): { enterprise: number; format: number; body: Uint8Array; length?: number } {
  const w = new ByteWriter();
  switch (rec.kind) {
    case 'header': {
      const headerLength = rec.headerLength ?? Math.min(rec.frame.length, 128);
      w.u32(rec.protocol ?? 1)
        .u32(rec.frameLength ?? rec.frame.length + 4)
        .u32(rec.stripped ?? 4)
        .u32(headerLength);
      w.bytes(rec.frame.subarray(0, headerLength)).pad4();
      return { enterprise: 0, format: 1, body: w.finish() };
    }
    case 'switch':
      w.u32(rec.srcVlan)
        .u32(rec.srcPriority ?? 0)
        .u32(rec.dstVlan ?? 0)
        .u32(rec.dstPriority ?? 0);
      return { enterprise: 0, format: 1001, body: w.finish() };
    case 'ethernet':
      w.u32(rec.length);
      w.bytes(rec.srcMac ?? [0x02, 0, 0, 0, 0, 0x02]).pad4();
      w.bytes(rec.dstMac ?? [0x02, 0, 0, 0, 0, 0x01]).pad4();
      w.u32(rec.type);
      return { enterprise: 0, format: 2, body: w.finish() };
    case 'ipv4':
      w.u32(rec.length).u32(rec.protocol).bytes(ipv4Bytes(rec.src)).bytes(ipv4Bytes(rec.dst));
      w.u32(rec.srcPort ?? 0)
        .u32(rec.dstPort ?? 0)
        .u32(rec.tcpFlags ?? 0)
        .u32(rec.tos ?? 0);
      return { enterprise: 0, format: 3, body: w.finish() };
    case 'ipv6':
      w.u32(rec.length).u32(rec.protocol).bytes(ipv6Bytes(rec.src)).bytes(ipv6Bytes(rec.dst));
      w.u32(rec.srcPort ?? 0)
        .u32(rec.dstPort ?? 0)
        .u32(rec.tcpFlags ?? 0)
        .u32(rec.priority ?? 0);
      return { enterprise: 0, format: 4, body: w.finish() };
    case 'raw':
      return rec.length === undefined
        ? { enterprise: rec.enterprise, format: rec.format, body: rec.data }
        : { enterprise: rec.enterprise, format: rec.format, body: rec.data, length: rec.length };
  }
}

function counterRecordBody(rec: CounterRecordSpec): { enterprise: number; format: number; body: Uint8Array } {
  if (rec.kind === 'raw') return { enterprise: rec.enterprise, format: rec.format, body: rec.data };
  const w = new ByteWriter();
  w.u32(rec.ifIndex)
    .u32(rec.ifType ?? 6)
    .u64(rec.ifSpeed ?? 10_000_000_000)
    .u32(rec.ifDirection ?? 1)
    .u32(rec.ifStatus ?? 3);
  w.u64(rec.inOctets ?? 0)
    .u32(rec.inUcast ?? 0)
    .u32(rec.inMulticast ?? 0)
    .u32(rec.inBroadcast ?? 0);
  w.u32(rec.inDiscards ?? 0)
    .u32(rec.inErrors ?? 0)
    .u32(rec.inUnknownProtos ?? 0);
  w.u64(rec.outOctets ?? 0)
    .u32(rec.outUcast ?? 0)
    .u32(rec.outMulticast ?? 0)
    .u32(rec.outBroadcast ?? 0);
  w.u32(rec.outDiscards ?? 0)
    .u32(rec.outErrors ?? 0)
    .u32(rec.promiscuous ?? 0);
  return { enterprise: 0, format: 1, body: w.finish() };
}

function sampleBody(sample: SampleSpec): { enterprise: number; format: number; body: Uint8Array; length?: number } {
  const w = new ByteWriter();
  if (sample.kind === 'raw') {
    return sample.length === undefined
      ? { enterprise: sample.enterprise, format: sample.format, body: sample.data }
      : { enterprise: sample.enterprise, format: sample.format, body: sample.data, length: sample.length };
  }
  const expanded = sample.expanded === true;
  w.u32(sample.sequence ?? 1);
  const type = sample.sourceIdType ?? 0;
  const index = sample.sourceIdIndex ?? 1;
  if (expanded) w.u32(type).u32(index);
  else w.u32(((type << 24) | (index & 0xffffff)) >>> 0);
  if (sample.kind === 'flow') {
    w.u32(sample.samplingRate ?? 1)
      .u32(sample.samplePool ?? sample.sequence ?? 1)
      .u32(sample.drops ?? 0);
    const inF = sample.inputFormat ?? 0;
    const outF = sample.outputFormat ?? 0;
    const input = sample.input ?? 1;
    const output = sample.output ?? 2;
    if (expanded) w.u32(inF).u32(input).u32(outF).u32(output);
    else w.u32(((inF << 30) | (input & 0x3fffffff)) >>> 0).u32(((outF << 30) | (output & 0x3fffffff)) >>> 0);
    w.u32(sample.recordCount ?? sample.records.length);
    for (const rec of sample.records) {
      const b = flowRecordBody(rec);
      opaque(w, b.enterprise, b.format, b.body, b.length);
    }
    return { enterprise: 0, format: expanded ? 3 : 1, body: w.finish() };
  }
  w.u32(sample.records.length);
  for (const rec of sample.records) {
    const b = counterRecordBody(rec);
    opaque(w, b.enterprise, b.format, b.body);
  }
  return { enterprise: 0, format: expanded ? 4 : 2, body: w.finish() };
}

export function buildSflowDatagram(spec: DatagramSpec): Uint8Array {
  const w = new ByteWriter();
  const v6 = spec.agent.includes(':');
  w.u32(spec.version ?? 5).u32(spec.addressType ?? (v6 ? 2 : 1));
  w.bytes(v6 ? ipv6Bytes(spec.agent) : ipv4Bytes(spec.agent));
  w.u32(spec.subAgent ?? 0)
    .u32(spec.sequence ?? 1)
    .u32(spec.uptimeMs ?? 1000);
  w.u32(spec.sampleCount ?? spec.samples.length);
  for (const sample of spec.samples) {
    const b = sampleBody(sample);
    opaque(w, b.enterprise, b.format, b.body, b.length);
  }
  return w.finish();
}
