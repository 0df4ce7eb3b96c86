/**
 * Warms the decode path up before the sockets open. V8 runs new code unoptimised until it has
 * seen enough calls; at 100k datagrams/s that first ~100 ms is several times too slow, the
 * socket buffer overflows and a restart under full load would drop the first datagrams
 * (measured: 300-2,000 per restart). Running a few thousand synthetic IPFIX, NetFlow v9 and
 * sFlow datagrams through a scratch decoder and aggregator compiles the same functions the
 * live path uses; nothing of the scratch state is kept.
 */
import { createAggregator } from '../aggregate/index.js';
import { Enricher } from '../enrich/enricher.js';
import { Nat64Prefixes, WELL_KNOWN_NAT64_PREFIX } from '../enrich/nat64.js';
import { EVERY_PAIR_REGISTERED } from '../enrich/series.js';
import { DatagramDecoder, type DatagramDecoderOptions, DEFAULT_DECODER_OPTIONS } from './decoder.js';

const RECORDS_PER_DATAGRAM = 8;

class Bytes {
  private readonly out: number[] = [];
  u8(v: number): this {
    this.out.push(v & 0xff);
    return this;
  }
  u16(v: number): this {
    return this.u8(v >>> 8).u8(v);
  }
  u32(v: number): this {
    return this.u16(v >>> 16).u16(v);
  }
  u64(v: number): this {
    return this.u32(Math.floor(v / 2 ** 32)).u32(v >>> 0);
  }
  raw(b: readonly number[]): this {
    for (const x of b) this.u8(x);
    return this;
  }
  get length(): number {
    return this.out.length;
  }
  bytes(): Uint8Array {
    return Uint8Array.from(this.out);
  }
}

const V6_SRC = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
const V6_DST = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];

type Field = [id: number, length: number, value: (r: number, i: number, nowMs: number) => number | readonly number[]];

const LABELS = [0x10004, 0x20818, 0x04c28, 0, 0x3fefc, 0x12345] as const;
const label = (r: number): number => LABELS[r % LABELS.length]!;

/**
 * Templates of the shapes exporters send (IANA IPFIX information elements, RFC 7012):
 * TurboFan compiles never-taken branches as deoptimisation points, so the warm-up takes the
 * branches live traffic takes — IPv6 and IPv4, 8- and 4-octet counters, millisecond,
 * uptime-relative and absurd (clamped) times, no times, VLAN, direction, sampler ids.
 */
const TEMPLATES: readonly (readonly Field[])[] = [
  [
    [152, 8, (_r, i, now) => now - 2000 - i], // flowStartMilliseconds
    [153, 8, (_r, i, now) => now - 1000 - i], // flowEndMilliseconds
    [1, 8, (r) => 1500 * (r + 1)], // octetDeltaCount
    [2, 8, (r) => r + 1], // packetDeltaCount
    [60, 1, () => 6], // ipVersion
    [10, 4, (r) => 1 + (r % 3)], // ingressInterface
    [14, 4, (r) => 10 + (r % 2)], // egressInterface
    [61, 1, (r) => r % 2], // flowDirection
    [27, 16, () => V6_SRC], // sourceIPv6Address
    [28, 16, () => V6_DST], // destinationIPv6Address
    [5, 1, () => 0], // ipClassOfService
    [7, 2, (r) => 40000 + r], // sourceTransportPort
    [11, 2, () => 443], // destinationTransportPort
    [6, 1, () => 0x18], // tcpControlBits
    [4, 1, () => 6], // protocolIdentifier
    [58, 2, (r) => 100 + (r % 2)], // vlanId
    [31, 4, (r) => label(r)], // flowLabelIPv6
  ],
  [
    [1, 4, (r) => 600 * (r + 1)], // octetDeltaCount, reduced size
    [2, 4, (r) => r + 1], // packetDeltaCount, reduced size
    [8, 4, () => [10, 0, 0, 1]], // sourceIPv4Address
    [12, 4, () => [10, 0, 0, 2]], // destinationIPv4Address
    [10, 2, (r) => 1 + (r % 3)], // ingressInterface, reduced size
    [14, 2, (r) => 10 + (r % 2)], // egressInterface, reduced size
    [7, 2, (r) => 50000 + r], // sourceTransportPort
    [11, 2, () => 2811], // destinationTransportPort
    [4, 1, () => 17], // protocolIdentifier
    [152, 8, () => 1_500_000_000_000], // flowStartMilliseconds, years old: clamped
    [153, 8, () => 1_500_000_001_000], // flowEndMilliseconds
  ],
  [
    [1, 8, (r) => 9000 * (r + 1)], // octetDeltaCount
    [2, 8, (r) => 6 * (r + 1)], // packetDeltaCount
    [27, 16, () => V6_DST], // sourceIPv6Address
    [28, 16, () => V6_SRC], // destinationIPv6Address
    [31, 3, (r) => [(label(r) >> 16) & 0xff, (label(r) >> 8) & 0xff, label(r) & 0xff]], // flowLabelIPv6, 3 octets
    [48, 1, () => 1], // samplerId: the rate comes from the options record
  ],
];

/** samplerId 1 at 1:4 (IEs 48, 49 samplerMode, 50 samplerRandomInterval). */
const OPTIONS: readonly Field[] = [
  [48, 1, () => 1],
  [49, 1, () => 2],
  [50, 4, () => 4],
];

function put(b: Bytes, len: number, v: number | readonly number[]): void {
  if (typeof v !== 'number') b.raw(v);
  else if (len === 8) b.u64(v);
  else if (len === 4) b.u32(v);
  else if (len === 3) b.u8(v >>> 16).u16(v);
  else if (len === 2) b.u16(v);
  else b.u8(v);
}

function dataSet(b: Bytes, setId: number, fields: readonly Field[], i: number, nowMs: number, count: number): void {
  const rec = new Bytes();
  for (let r = 0; r < count; r++) for (const [, len, value] of fields) put(rec, len, value(r, i, nowMs));
  b.u16(setId)
    .u16(4 + rec.length)
    .raw([...rec.bytes()]);
}

function templateRecord(b: Bytes, id: number, fields: readonly Field[], scopeCount = 0): void {
  b.u16(id).u16(fields.length);
  if (scopeCount > 0) b.u16(scopeCount);
  for (const [fid, len] of fields) b.u16(fid).u16(len);
}

/**
 * IPFIX (RFC 7011): with `templates`, the options template and record and the templates come
 * first (exporters refresh them every few datagrams); then a data set of each template.
 * `seq` is the header's sequence number: data records sent before this message.
 */
function ipfix(i: number, nowMs: number, seq = 0, templates = true): Uint8Array {
  const body = new Bytes();
  if (templates) {
    const tmpl = new Bytes();
    TEMPLATES.forEach((t, k) => templateRecord(tmpl, 256 + k, t));
    body
      .u16(2)
      .u16(4 + tmpl.length)
      .raw([...tmpl.bytes()]); // set 2: templates
    const opt = new Bytes();
    templateRecord(opt, 400, OPTIONS, 1);
    body
      .u16(3)
      .u16(4 + opt.length)
      .raw([...opt.bytes()]); // set 3: options templates
    dataSet(body, 400, OPTIONS, i, nowMs, 1);
  }
  TEMPLATES.forEach((t, k) => dataSet(body, 256 + k, t, i, nowMs, RECORDS_PER_DATAGRAM));
  const msg = new Bytes();
  msg
    .u16(10)
    .u16(16 + body.length)
    .u32(Math.floor(nowMs / 1000))
    .u32(seq)
    .u32(1);
  return Uint8Array.from([...msg.bytes(), ...body.bytes()]);
}

/** NetFlow v9 (RFC 3954): uptime-relative times (21 LAST_SWITCHED, 22 FIRST_SWITCHED). */
const V9_FIELDS: readonly Field[] = [
  [1, 4, (r) => 1500 * (r + 1)], // IN_BYTES
  [2, 4, (r) => r + 1], // IN_PKTS
  [27, 16, () => V6_SRC], // IPV6_SRC_ADDR
  [28, 16, () => V6_DST], // IPV6_DST_ADDR
  [31, 4, (r) => label(r)], // IPV6_FLOW_LABEL
  [10, 4, (r) => 1 + (r % 3)], // INPUT_SNMP
  [14, 4, (r) => 10 + (r % 2)], // OUTPUT_SNMP
  [22, 4, (_r, i) => 3_590_000 - i], // FIRST_SWITCHED (sysUptime ms)
  [21, 4, (_r, i) => 3_599_000 - i], // LAST_SWITCHED
  [4, 1, () => 6], // PROTOCOL
];

function netflow9(i: number, nowMs: number, templates = true): Uint8Array {
  const body = new Bytes();
  if (templates) {
    const tmpl = new Bytes();
    templateRecord(tmpl, 256, V9_FIELDS);
    body
      .u16(0)
      .u16(4 + tmpl.length)
      .raw([...tmpl.bytes()]);
  }
  dataSet(body, 256, V9_FIELDS, i, nowMs, RECORDS_PER_DATAGRAM);
  const msg = new Bytes();
  msg
    .u16(9)
    .u16(RECORDS_PER_DATAGRAM + (templates ? 1 : 0))
    .u32(3_600_000)
    .u32(Math.floor(nowMs / 1000))
    .u32(i)
    .u32(1);
  return Uint8Array.from([...msg.bytes(), ...body.bytes()]);
}

/** NetFlow v5: 48-octet records after a 24-octet header, sampling interval 1:10. */
function netflow5(i: number, nowMs: number): Uint8Array {
  const msg = new Bytes();
  msg
    .u16(5)
    .u16(RECORDS_PER_DATAGRAM)
    .u32(3_600_000)
    .u32(Math.floor(nowMs / 1000))
    .u32(0)
    .u32(i * RECORDS_PER_DATAGRAM)
    .u8(0)
    .u8(0)
    .u16((1 << 14) | 10);
  for (let r = 0; r < RECORDS_PER_DATAGRAM; r++) {
    msg
      .raw([10, 0, 0, 1])
      .raw([10, 0, 0, 2])
      .raw([0, 0, 0, 0])
      .u16(1)
      .u16(2)
      .u32(r + 1)
      .u32(700 * (r + 1));
    msg
      .u32(3_590_000)
      .u32(3_599_000)
      .u16(40000 + r)
      .u16(443)
      .u8(0)
      .u8(0x18)
      .u8(6)
      .u8(0)
      .u16(0)
      .u16(0)
      .u8(24)
      .u8(24)
      .u16(0);
  }
  return msg.bytes();
}

/**
 * sFlow v5 (sflow.org sFlow version 5): flow samples with raw headers (Ethernet + IPv6 + TCP,
 * Ethernet + 802.1Q + IPv4 + UDP) and an extended switch record, and an expanded flow sample.
 */
function sflow(i: number): Uint8Array {
  const rawHeader = (r: number): Bytes => {
    const h = new Bytes();
    h.raw([0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 6]);
    if (r % 3 === 2) {
      h.u16(0x8100).u16(100).u16(0x0800); // 802.1Q VLAN 100, IPv4
      h.u8(0x45).u8(0).u16(48).u16(0).u16(0).u8(64).u8(17).u16(0).raw([10, 0, 0, 1]).raw([10, 0, 0, 2]); // IPv4, UDP
      h.u16(50000 + r)
        .u16(2811)
        .u16(28)
        .u16(0); // UDP
    } else {
      h.u16(0x86dd); // IPv6
      h.u32((6 << 28) | label(r))
        .u16(20)
        .u8(6)
        .u8(64)
        .raw(V6_SRC)
        .raw(V6_DST); // IPv6, TCP next
      h.u16(40000 + r)
        .u16(443)
        .u32(0)
        .u32(0)
        .u16(0x5010)
        .u16(0)
        .u16(0)
        .u16(0); // TCP
    }
    const rec = new Bytes();
    rec
      .u32(1)
      .u32(1514)
      .u32(4)
      .u32(h.length)
      .raw([...h.bytes()]); // header_protocol 1 (Ethernet)
    while (rec.length % 4 !== 0) rec.u8(0); // XDR opaque<> pads to 4 octets
    return rec;
  };
  const sample = (r: number): { format: number; body: Bytes } => {
    const raw = rawHeader(r);
    const sw = new Bytes().u32(100).u32(0).u32(100).u32(0); // extended switch: VLANs and priorities
    const s = new Bytes();
    const expanded = r % 4 === 3;
    s.u32(i * RECORDS_PER_DATAGRAM + r);
    if (expanded)
      s.u32(0).u32(1 + (r % 3)); // source id type, index
    else s.u32(1 + (r % 3));
    s.u32(r % 2 === 0 ? 1 : 512)
      .u32((i + 1) * RECORDS_PER_DATAGRAM)
      .u32(0); // rate, pool, drops
    if (expanded)
      s.u32(0).u32(1).u32(0).u32(2); // input, output: format + value
    else s.u32(1).u32(2);
    s.u32(2); // two flow records
    s.u32(1)
      .u32(raw.length)
      .raw([...raw.bytes()]); // format 1: sampled_header
    s.u32(1001)
      .u32(sw.length)
      .raw([...sw.bytes()]); // format 1001: extended_switch
    return { format: expanded ? 3 : 1, body: s };
  };
  const msg = new Bytes();
  msg
    .u32(5)
    .u32(1)
    .raw([192, 0, 2, 1])
    .u32(0)
    .u32(i)
    .u32(1000 * i)
    .u32(RECORDS_PER_DATAGRAM);
  for (let r = 0; r < RECORDS_PER_DATAGRAM; r++) {
    const { format, body } = sample(r);
    msg
      .u32(format)
      .u32(body.length)
      .raw([...body.bytes()]); // sample: flow_sample (1) or expanded (3)
  }
  return msg.bytes();
}

export interface WarmUpResult {
  datagrams: number;
  records: number;
  errors: number;
  ms: number;
}

/**
 * Decodes and aggregates `rounds` synthetic datagrams of each protocol in scratch state.
 * Returns what it did (tests check every synthetic record decoded without error).
 */
/** The synthetic datagrams (tests decode them one by one). */
export function warmUpDatagrams(nowMs: number): { protocol: string; payload: Uint8Array }[] {
  return [
    { protocol: 'ipfix', payload: ipfix(0, nowMs) },
    { protocol: 'netflow9', payload: netflow9(0, nowMs) },
    { protocol: 'netflow5', payload: netflow5(0, nowMs) },
    { protocol: 'sflow', payload: sflow(0) },
  ];
}

/** Datagrams per exporter session in a warm-up cycle: templates in the first only. */
const CYCLE = 8;

/**
 * The live decoder's options made harmless for scratch use: no crash fixtures, no template
 * log lines, rate limits that never refuse. Their shape stays the live one, so the branches
 * the live options take (the rate-limit checks above all) are compiled, not deoptimisation
 * points: without them the first new session after the warm-up deoptimised decodeInto and
 * TurboFan compiled it again under load.
 */
export function warmUpOptions(live: DatagramDecoderOptions): DatagramDecoderOptions {
  const opts: DatagramDecoderOptions = { ...live, crashDir: '' };
  if (live.onTemplate !== undefined) opts.onTemplate = () => {};
  if (live.rateLimits !== undefined)
    opts.rateLimits = { datagramsPerSecond: Number.MAX_SAFE_INTEGER, newSessionsPerSecond: Number.MAX_SAFE_INTEGER };
  return opts;
}

export function warmUp(rounds = 150, nowMs = Date.now(), liveOptions: DatagramDecoderOptions = DEFAULT_DECODER_OPTIONS): WarmUpResult {
  const t0 = performance.now();
  const decoder = new DatagramDecoder(warmUpOptions(liveOptions));
  const discard = { kind: 'warm-up', writeRows: () => Promise.resolve() };
  const aggregator = createAggregator({}, { now: () => nowMs, store: discard, registry: () => EVERY_PAIR_REGISTERED });
  // Through an Enricher, as live records go: its code is warmed too, and the decoder's call to
  // its downstream meets one receiver type (a second one would keep that call from inlining).
  const target = new Enricher(new Nat64Prefixes([WELL_KNOWN_NAT64_PREFIX]), aggregator, undefined, undefined);
  // One cycle per protocol as an exporter sends it: templates, then data only, sequence
  // numbers counting up (IPFIX: data records, options records included; v9 and v5 as they
  // count), so the decoders take their steady-state branches, not only the first-datagram ones.
  const cycle: { payload: Uint8Array; port: number }[] = [];
  let seq = 0;
  for (let i = 0; i < CYCLE; i++) {
    cycle.push({ payload: ipfix(i, nowMs, seq, i === 0), port: 1000 });
    seq += TEMPLATES.length * RECORDS_PER_DATAGRAM + (i === 0 ? 1 : 0);
    cycle.push({ payload: netflow9(i, nowMs, i === 0), port: 1001 });
    cycle.push({ payload: netflow5(i, nowMs), port: 1002 });
    cycle.push({ payload: sflow(i), port: 1003 });
  }
  // Source ports the cycle uses (one per protocol, consecutive): a new session's ports follow them.
  const cyclePorts = new Set(cycle.map((d) => d.port)).size;
  let errors = 0;
  for (let r = 0; r < rounds; r++) {
    // Several exporters (TEST-NET-1 addresses, RFC 5737: never real ones), so lookups see
    // more than one key. In the second half every round is a new transport session (an
    // exporter restarting, a new sender): its cycle starts with templates, as a new session's
    // does, and the new-session path runs in optimised code.
    const exporter = `192.0.2.${1 + (r % 4)}`;
    const portShift = r < rounds / 2 ? 0 : cyclePorts * r;
    // The receive clock moves (1 ms a round), as it does live: the rate limiters refill.
    const receivedMs = nowMs + r;
    for (const d of cycle) errors += decoder.decodeInto(d.payload, exporter, d.port + portShift, receivedMs, 'any', target).errors.length;
  }
  return { datagrams: rounds * cycle.length, records: decoder.totals.records, errors, ms: performance.now() - t0 };
}
