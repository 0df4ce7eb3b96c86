/**
 * goflow2's FlowMessage (schema.ts) behind the one Decoder interface: one message in (the
 * stream input, collectors/goflow2-stream.ts, splits goflow2's length-delimited output), one
 * FlowRecord out. The message is checked on the wire first (wire.ts: truncations, wrong wire
 * types, impossible lengths become typed errors), then decoded with protobufjs.
 *
 * Mapping (goflow2 v2 layout, nanosecond times):
 * - exporter: the caller's context, which the stream input takes from sampler_address (so a
 *   link is router + interfaces, as for the UDP inputs); domain: observation_domain_id;
 * - ipVersion from etype (0x0800 IPv4, 0x86DD IPv6, else 0); flowLabel = ipv6_flow_label &
 *   0xFFFFF for IPv6 only;
 * - bytes / packets as goflow2 reports them (unscaled); samplingRate = sampling_rate, source
 *   'record'; 0 means not stated: the configured default, source 'unknown';
 * - startMs / endMs from time_flow_start_ns / time_flow_end_ns, exportMs from
 *   time_received_ns (goflow2's receive time: the aggregator's clock offset is then the time
 *   between goflow2 and us), microsecond resolution; 0 means absent;
 * - in_if / out_if, ports, proto, vlan_id: 0 means absent (proto3 cannot tell them apart);
 * - addresses: src_addr / dst_addr of 4 or 16 bytes (IPv4-mapped folded to 4) as addrBytes
 *   pointing into the message; formatted only when opts.withAddresses.
 */
import { type DatagramOutcome, type Decoder, emptyOutcome } from '../decoder.js';
import { DecodeError } from '../errors.js';
import { ipv4String, ipv6String } from '../packet/addr.js';
import { emptyRecord, type FlowRecord, sessionKey } from '../record.js';
import { type DecodedFlowMessage, FlowMessageType } from './schema.js';
import { emptyScan, type FlowMessageScan, longToNumber, scanFlowMessage, wireError } from './wire.js';

export const ETYPE_IPV4 = 0x0800;
export const ETYPE_IPV6 = 0x86dd;

/** True for ::ffff:a.b.c.d (16 bytes at `at`). */
function isV4Mapped(b: Uint8Array, at: number): boolean {
  for (let i = 0; i < 10; i++) if (b[at + i] !== 0) return false;
  return b[at + 10] === 0xff && b[at + 11] === 0xff;
}

/** An address field as text (IPv4-mapped folded), undefined unless 4 or 16 bytes. */
export function addressText(b: Uint8Array, at: number, len: number): string | undefined {
  if (len === 4) return ipv4String(b, at);
  if (len !== 16) return undefined;
  return isV4Mapped(b, at) ? ipv4String(b, at + 12) : ipv6String(b, at);
}

/** The exporter of a message that names no (readable) sampler_address. */
export const UNKNOWN_SAMPLER = '0.0.0.0';

/**
 * The exporter a message is counted under, before it is decoded: its sampler_address (the
 * router), or UNKNOWN_SAMPLER when it has none or does not scan (the decoder then counts why
 * under that address). Fills `scan` (time_received_ns, for `ingest`'s receive time).
 */
export function messageExporter(msg: Uint8Array, scan: FlowMessageScan): string {
  if (scanFlowMessage(msg, scan) !== undefined) return UNKNOWN_SAMPLER;
  return addressText(msg, scan.samplerAt, scan.samplerLen) ?? UNKNOWN_SAMPLER;
}

/** ns since the epoch -> ms, to the microsecond (a double holds ns only to ~256 ns today). */
function nsToMs(ns: number): number | undefined {
  return ns > 0 ? Math.round(ns / 1000) / 1000 : undefined;
}

function orUndefined(v: number): number | undefined {
  return v === 0 ? undefined : v;
}

/** Fills the record's address fields from the scan (both 4 or both 16 bytes, else none). */
function setAddresses(rec: FlowRecord, msg: Uint8Array, scan: FlowMessageScan, format: boolean): void {
  let src = scan.srcAt;
  let dst = scan.dstAt;
  let len = scan.srcLen;
  if (len !== scan.dstLen || (len !== 4 && len !== 16)) return;
  if (len === 16 && isV4Mapped(msg, src) && isV4Mapped(msg, dst)) {
    src += 12;
    dst += 12;
    len = 4;
  }
  rec.addrBytes = msg;
  rec.addrLen = len as 4 | 16;
  rec.srcAddrAt = src;
  rec.dstAddrAt = dst;
  if (format) {
    rec.srcAddr = addressText(msg, src, len);
    rec.dstAddr = addressText(msg, dst, len);
  }
}

/** The message as plain data for `decode --fields` (addresses as text, other bytes as hex). */
function fieldsOf(m: DecodedFlowMessage): Record<string, unknown> {
  const o = FlowMessageType.toObject(m as unknown as Parameters<typeof FlowMessageType.toObject>[0], { longs: Number, enums: String });
  for (const [k, v] of Object.entries(o)) {
    if (v instanceof Uint8Array) o[k] = addressText(v, 0, v.length) ?? Buffer.from(v).toString('hex');
  }
  return o;
}

export function createGoflow2Decoder(): Decoder<undefined> {
  const scan = emptyScan();
  return {
    name: 'goflow2',
    createState: () => undefined,
    decode(payload, ctx, _state, opts, sink): DatagramOutcome {
      const out = emptyOutcome();
      out.protocol = 'goflow2';
      if (payload.length === 0) {
        out.errors.push(new DecodeError('bad-length', 'empty FlowMessage (goflow2 never writes one)', 0));
        return out;
      }
      const problem = scanFlowMessage(payload, scan);
      if (problem !== undefined) {
        out.errors.push(problem);
        return out;
      }
      let m: DecodedFlowMessage;
      try {
        m = FlowMessageType.decode(payload) as unknown as DecodedFlowMessage;
      } catch (err) {
        out.errors.push(wireError(err, 0));
        return out;
      }
      const rec = emptyRecord('goflow2', sessionKey(ctx.exporterAddr, ctx.exporterPort), m.observation_domain_id);
      rec.ipVersion = m.etype === ETYPE_IPV4 ? 4 : m.etype === ETYPE_IPV6 ? 6 : 0;
      if (rec.ipVersion === 6) rec.flowLabel = m.ipv6_flow_label & 0xfffff;
      rec.bytes = longToNumber(m.bytes);
      rec.packets = longToNumber(m.packets);
      const rate = longToNumber(m.sampling_rate);
      if (rate > 0) {
        rec.samplingRate = rate;
        rec.samplingSource = 'record';
      } else {
        rec.samplingRate = opts.defaultSamplingRate >= 1 ? opts.defaultSamplingRate : 1;
        rec.samplingSource = 'unknown';
        out.unknownSampling = 1;
      }
      rec.inIf = orUndefined(m.in_if);
      rec.outIf = orUndefined(m.out_if);
      rec.vlan = orUndefined(m.vlan_id);
      rec.srcPort = orUndefined(m.src_port);
      rec.dstPort = orUndefined(m.dst_port);
      rec.ipProtocol = orUndefined(m.proto);
      if (rec.ipVersion !== 0) rec.trafficClass = m.ip_tos;
      rec.startMs = nsToMs(longToNumber(m.time_flow_start_ns));
      rec.endMs = nsToMs(longToNumber(m.time_flow_end_ns));
      rec.exportMs = nsToMs(longToNumber(m.time_received_ns));
      setAddresses(rec, payload, scan, opts.withAddresses);
      if (opts.withFields) rec.fields = fieldsOf(m);
      out.records = 1;
      sink(rec);
      return out;
    },
  };
}
